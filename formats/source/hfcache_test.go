package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/source/hubtest"
)

// makeHFCache lays out srcDir's files as huggingface_hub does in its
// cache (see hubtest.WriteHFCache).
func makeHFCache(t *testing.T, repo, srcDir string, skip ...string) (string, string) {
	t.Helper()
	return hubtest.WriteHFCache(t, t.TempDir(), repo, srcDir, skip...)
}

func TestHFCacheFirst(t *testing.T) {
	dir := repoDir("testdata", "tiny-llama-sharded")
	hf, commit := makeHFCache(t, "org/m", dir)
	h := hubtest.New(t)
	h.AddRepo(t, "org/m", dir)
	for _, offline := range []bool{false, true} {
		c := newTestClient(t, h, "", func(o *Options) { o.HFCacheDir, o.Offline = hf, offline })
		for _, in := range []string{"org/m", "hf://org/m@main", "hf://org/m@" + commit, "hf://org/m/model-00002-of-00002.safetensors"} {
			tg, err := c.Resolve(context.Background(), in)
			if err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			if tg.Kind != KindHFCache || tg.Commit != commit {
				t.Errorf("%s: kind %v commit %s", in, tg.Kind, tg.Commit)
			}
			heads := openShardHeaders(t, tg.Dir)
			if len(heads) != 2 {
				t.Errorf("%d shards", len(heads))
			}
			src, err := tg.Dir.Open("model-00001-of-00002.safetensors")
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := src.(*Local); !ok {
				t.Errorf("a cached file is read as %T, not mapped", src)
			}
			src.Close()
		}
		if got := h.Count(nil); got != 0 {
			t.Errorf("offline=%v: %d requests for a cached repository", offline, got)
		}
	}
}

func TestHFCacheIncomplete(t *testing.T) {
	dir := repoDir("testdata", "tiny-llama-sharded")
	// A partial download: the second shard never arrived.
	hf, _ := makeHFCache(t, "org/m", dir, "model-00002-of-00002.safetensors")
	h := hubtest.New(t)
	h.AddRepo(t, "org/m", dir)

	// Online: the Hub serves it.
	c := newTestClient(t, h, "", func(o *Options) { o.HFCacheDir = hf })
	tg, err := c.Resolve(context.Background(), "org/m")
	if err != nil {
		t.Fatal(err)
	}
	if tg.Kind != KindHub {
		t.Errorf("kind %v, want hub", tg.Kind)
	}
	// Offline: a one-line error naming what is missing.
	c = newTestClient(t, h, "", func(o *Options) { o.HFCacheDir, o.Offline = hf, true })
	h.ResetLog()
	_, err = c.Resolve(context.Background(), "org/m")
	oneLineErr(t, err)
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "lacks model-00002-of-00002.safetensors") {
		t.Errorf("offline, incomplete: %v", err)
	}
	_, err = c.Resolve(context.Background(), "org/other@v2")
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "models--org--other") {
		t.Errorf("offline, absent: %v", err)
	}
	if got := h.Count(nil); got != 0 {
		t.Errorf("%d requests while offline", got)
	}
}

func TestEnvOptions(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "token"), []byte("hf_fromfile\n"), 0o600)
	for _, tc := range []struct {
		env  map[string]string
		want Options
	}{
		{map[string]string{"HF_HOME": home}, Options{HFCacheDir: filepath.Join(home, "hub"), Token: "hf_fromfile"}},
		{map[string]string{"HF_HOME": home, "HF_TOKEN": "hf_env", "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "https://hf-mirror.com/"},
			Options{HFCacheDir: filepath.Join(home, "hub"), Token: "hf_env", Offline: true, Endpoint: "https://hf-mirror.com"}},
		{map[string]string{"HF_HOME": home, "HF_HUB_CACHE": "/x/hub", "HF_HUB_OFFLINE": "true"}, Options{HFCacheDir: "/x/hub", Token: "hf_fromfile", Offline: true}},
		{map[string]string{"HF_HOME": home, "HF_HUB_OFFLINE": "0", "HF_TOKEN_PATH": filepath.Join(home, "none")}, Options{HFCacheDir: filepath.Join(home, "hub")}},
	} {
		for _, k := range []string{"HF_HOME", "HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"} {
			t.Setenv(k, tc.env[k])
		}
		got := EnvOptions()
		if got.HFCacheDir != tc.want.HFCacheDir || got.Token != tc.want.Token || got.Offline != tc.want.Offline || got.Endpoint != tc.want.Endpoint {
			t.Errorf("env %v: got %+v", tc.env, got)
		}
	}
}
