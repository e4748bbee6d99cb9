package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/source/hubtest"
)

// copyDir copies a folder's regular files into a new temporary folder.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := os.WriteFile(filepath.Join(dst, e.Name()), readFile(t, filepath.Join(src, e.Name())), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dst
}

func status(res *VerifyResult) map[string]string {
	m := map[string]string{}
	for _, f := range res.Files {
		m[f.Path] = f.Status
	}
	return m
}

func failedNames(res *VerifyResult) []string {
	var s []string
	for _, f := range res.Files {
		if f.Failed() {
			s = append(s, f.Path)
		}
	}
	return s
}

func TestManifestAndVerifyLocal(t *testing.T) {
	dir := copyDir(t, repoDir("testdata", "tiny-llama-sharded"))
	d := NewLocalDir(dir)
	var prog HashProgress
	m, res, err := WriteManifest(context.Background(), d, VerifyOptions{Progress: func(p HashProgress) { prog = p }})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Passed || len(m.Files) != 4 || m.Schema != ManifestSchema {
		t.Fatalf("manifest %+v, result %+v", m, res)
	}
	var total int64
	for _, f := range m.Files {
		b := readFile(t, filepath.Join(dir, f.Path))
		s := sha256.Sum256(b)
		if f.SHA256 != hex.EncodeToString(s[:]) || f.Size != int64(len(b)) {
			t.Errorf("%s: manifest says %d bytes %s", f.Path, f.Size, f.SHA256)
		}
		total += f.Size
	}
	if !prog.Done || prog.Bytes != total || prog.Total != total {
		t.Errorf("progress %+v, want %d bytes", prog, total)
	}
	// Round trip through JSON.
	var buf bytes.Buffer
	if err := m.Write(&buf); err != nil {
		t.Fatal(err)
	}
	m2, err := ParseManifest(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	res, err = Verify(context.Background(), d, VerifyOptions{Manifest: m2})
	if err != nil || !res.Passed || res.Compared != 4 {
		t.Fatalf("verify of an intact copy: %+v %v", res, err)
	}

	const shard1, shard2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	// One flipped byte.
	p2 := filepath.Join(dir, shard2)
	good := readFile(t, p2)
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0x10
	os.WriteFile(p2, bad, 0o644)
	res, err = Verify(context.Background(), d, VerifyOptions{Manifest: m2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed || strings.Join(failedNames(res), ",") != shard2 || status(res)[shard2] != StatusMismatch {
		t.Errorf("flipped byte: %+v", res.Files)
	}
	for _, f := range res.Files {
		if f.Path == shard2 && !strings.Contains(f.Message, "expected") {
			t.Errorf("message %q", f.Message)
		}
	}
	os.WriteFile(p2, good, 0o644)

	// A truncated shard fails on its size, without being hashed.
	p1 := filepath.Join(dir, shard1)
	g1 := readFile(t, p1)
	os.WriteFile(p1, g1[:len(g1)-100], 0o644)
	res, _ = Verify(context.Background(), d, VerifyOptions{Manifest: m2})
	if res.Passed || strings.Join(failedNames(res), ",") != shard1 || status(res)[shard1] != StatusSize {
		t.Errorf("truncated: %+v", res.Files)
	}
	// Missing, and an extra file (listed, not a failure).
	os.Remove(p1)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	res, _ = Verify(context.Background(), d, VerifyOptions{Manifest: m2})
	if st := status(res); res.Passed || st[shard1] != StatusMissing || st["notes.txt"] != StatusUnlisted {
		t.Errorf("missing/extra: %v", st)
	}
	// Without a manifest nothing says what a plain folder's files should be.
	res, _ = Verify(context.Background(), d, VerifyOptions{})
	if !res.Passed || res.Compared != 0 || status(res)[shard2] != StatusUnverified {
		t.Errorf("no manifest: %+v", res)
	}
}

func TestVerifyHFCacheAndHub(t *testing.T) {
	src := repoDir("testdata", "tiny-llama-sharded")
	hf, _ := makeHFCache(t, "org/m", src)
	h := hubtest.New(t)
	h.AddRepo(t, "org/m", src)
	const shard2 = "model-00002-of-00002.safetensors"

	// The cache: against the blob names, offline.
	c := newTestClient(t, h, "", func(o *Options) { o.HFCacheDir, o.Offline = hf, true })
	tg, err := c.Resolve(context.Background(), "org/m")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Verify(context.Background(), tg.Dir, VerifyOptions{})
	if err != nil || !res.Passed || res.Compared != 4 {
		t.Fatalf("cache: %+v %v", res, err)
	}
	for _, f := range res.Files {
		want := AgainstCacheGit
		if strings.HasSuffix(f.Path, ".safetensors") {
			want = AgainstCacheLFS
		}
		if f.Against != want {
			t.Errorf("%s against %s, want %s", f.Path, f.Against, want)
		}
	}
	// A corrupted blob.
	link := filepath.Join(tg.Dir.Name(), shard2)
	target, _ := filepath.EvalSymlinks(link)
	b := readFile(t, target)
	b[200] ^= 1
	os.WriteFile(target, b, 0o644)
	res, _ = Verify(context.Background(), tg.Dir, VerifyOptions{})
	if res.Passed || strings.Join(failedNames(res), ",") != shard2 {
		t.Errorf("corrupted blob: %+v", res.Files)
	}

	// The Hub: streamed, against the LFS ids and git blob ids, through a
	// reset mid-body (resumed) without filling the cache.
	cache := t.TempDir()
	c = newTestClient(t, h, cache, nil)
	tg, err = c.Resolve(context.Background(), "hf://org/m")
	if err != nil {
		t.Fatal(err)
	}
	h.Inject(hubtest.Fault{Kind: hubtest.ResetMidBody, Host: hubtest.HostCDN})
	res, err = Verify(context.Background(), tg.Dir, VerifyOptions{Parallel: 2})
	if err != nil || !res.Passed || res.Compared != 4 {
		t.Fatalf("hub: %+v %v", res, err)
	}
	for _, f := range res.Files {
		if f.Status != StatusOK || (strings.HasSuffix(f.Path, ".safetensors") != (f.Against == AgainstHubLFS)) {
			t.Errorf("%+v", f)
		}
	}
	if c.IO().Retries != 1 {
		t.Errorf("retries %d, want 1 (the reset)", c.IO().Retries)
	}
	if n := checkCacheEntries(t, cache, nil); n != 0 {
		t.Errorf("verify wrote %d range cache entries", n)
	}
}

func TestParseManifestRefuses(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	for _, tc := range []struct{ in, want string }{
		{`{"schema":"qkv.manifest/v2","files":[]}`, "schema"},
		{`{"schema":"qkv.manifest/v1","files":[{"path":"../x","size":1,"sha256":"` + sha + `"}]}`, "segment"},
		{`{"schema":"qkv.manifest/v1","files":[{"path":"/x","size":1,"sha256":"` + sha + `"}]}`, "segment"},
		{`{"schema":"qkv.manifest/v1","files":[{"path":"x","size":-1,"sha256":"` + sha + `"}]}`, "negative"},
		{`{"schema":"qkv.manifest/v1","files":[{"path":"x","size":1,"sha256":"AB"}]}`, "hex"},
		{`{"schema":"qkv.manifest/v1","files":[{"path":"x","size":1,"sha256":"` + sha + `"},{"path":"x","size":1,"sha256":"` + sha + `"}]}`, "twice"},
		{`{"schema":"qkv.manifest/v1","files":[],"extra":1}`, `not a qkv manifest: unknown key "extra"`},
		{`{"schema":"qkv.manifest/v1","file":[]}`, `not a qkv manifest: unknown key "file" (did you mean "files"?)`},
		{`{"schema":"qkv.manifest/v1","files":[]} {}`, "not a qkv manifest: data after the JSON value at byte 40"},
		{`{"schema":"qkv.manifest/v1","files":[{"path":"x","size":"1"}]}`, "not a qkv manifest: files.size must be an integer, not a string"},
		{`{"schema":"qkv.manifest/v1","files":[{"path":"x","size":1.5}]}`, "not a qkv manifest: files.size must be an integer, not 1.5"},
		{`garbage`, "not a qkv manifest: not valid JSON at byte 0: a value cannot start with 'g'"},
		{`{"schema":"qkv.manifest/v1","files":[`, "not a qkv manifest: the JSON ends early"},
	} {
		if _, err := ParseManifest([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.in, err, tc.want)
		}
	}
}
