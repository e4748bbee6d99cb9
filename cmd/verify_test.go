package cmd_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/source/hubtest"
	"github.com/qkvdev/qkv/internal/testref"
)

type verifyDoc struct {
	Schema string `json:"schema"`
	Source struct {
		Kind   string `json:"kind"`
		Repo   string `json:"repo"`
		Commit string `json:"commit"`
		Files  []struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
		} `json:"files"`
	} `json:"source"`
	Passed   bool `json:"passed"`
	Compared int  `json:"compared"`
	Files    []struct {
		Path    string `json:"path"`
		Size    int64  `json:"size"`
		SHA256  string `json:"sha256"`
		Against string `json:"against"`
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"files"`
	IO struct {
		Requests     int64 `json:"requests"`
		BytesFetched int64 `json:"bytes_fetched"`
	} `json:"io"`
}

// verifyEnv isolates the test from the user's Hugging Face setup and caches.
func verifyEnv(t *testing.T, endpoint string) {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HF_HOME", home)
	t.Setenv("HF_HUB_CACHE", filepath.Join(home, "hub"))
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, "cache"))
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_ENDPOINT", endpoint)
}

func verifyCopy(t *testing.T) string {
	t.Helper()
	src := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama-sharded")
	dst := t.TempDir()
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
	}
	return dst
}

func TestVerifyManifest(t *testing.T) {
	verifyEnv(t, "")
	dir := verifyCopy(t)
	man := filepath.Join(t.TempDir(), "m.json")
	code, out, errs := runQKV(120, "verify", dir, "--write-manifest", man)
	if code != 0 || !strings.Contains(out, "wrote "+man+" (4 files)") {
		t.Fatalf("write: exit %d\n%s%s", code, out, errs)
	}
	var m struct {
		Schema string `json:"schema"`
		Files  []struct {
			Path   string `json:"path"`
			Size   int64  `json:"size"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
	}
	b, _ := os.ReadFile(man)
	if err := json.Unmarshal(b, &m); err != nil || m.Schema != "qkv.manifest/v1" || len(m.Files) != 4 {
		t.Fatalf("manifest %s: %v", b, err)
	}
	for _, f := range m.Files {
		data, _ := os.ReadFile(filepath.Join(dir, f.Path))
		s := sha256.Sum256(data)
		if f.SHA256 != hex.EncodeToString(s[:]) || f.Size != int64(len(data)) {
			t.Errorf("manifest entry %+v is wrong", f)
		}
	}
	if code, out, errs := runQKV(120, "verify", dir, "--manifest", man); code != 0 || !strings.Contains(out, "ok: 4 files match what they should be") {
		t.Fatalf("intact: exit %d\n%s%s", code, out, errs)
	}

	const shard1, shard2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	p2 := filepath.Join(dir, shard2)
	good, _ := os.ReadFile(p2)
	bad := append([]byte(nil), good...)
	bad[1000] ^= 0x80
	os.WriteFile(p2, bad, 0o644)
	code, out, errs = runQKV(120, "verify", dir, "--manifest", man)
	if code != 1 || !strings.Contains(out, "MISMATCH") || !strings.Contains(out, shard2+": sha256 is ") {
		t.Errorf("flipped byte: exit %d\n%s%s", code, out, errs)
	}
	os.WriteFile(p2, good, 0o644)

	p1 := filepath.Join(dir, shard1)
	g1, _ := os.ReadFile(p1)
	os.WriteFile(p1, g1[:len(g1)/2], 0o644)
	var doc verifyDoc
	code, out, _ = runQKV(120, "verify", dir, "--manifest", man, "--json")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if code != 1 || doc.Schema != "qkv.verify/v1" || doc.Passed {
		t.Errorf("truncated: exit %d %+v", code, doc)
	}
	for _, f := range doc.Files {
		if (f.Path == shard1) != (f.Status == "size") {
			t.Errorf("truncated: %+v", f)
		}
	}
}

// A Hugging Face cache snapshot is verified against its blob names, offline;
// a manifest of a snapshot with a corrupted blob is not written.
func TestVerifyHFCacheBlob(t *testing.T) {
	verifyEnv(t, "")
	t.Setenv("HF_HUB_OFFLINE", "1")
	src := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama-sharded")
	root := filepath.Join(os.Getenv("HF_HUB_CACHE"), "models--org--tiny")
	commit := strings.Repeat("ab", 20)
	snap := filepath.Join(root, "snapshots", commit)
	os.MkdirAll(filepath.Join(root, "blobs"), 0o755)
	os.MkdirAll(filepath.Join(root, "refs"), 0o755)
	os.MkdirAll(snap, 0o755)
	os.WriteFile(filepath.Join(root, "refs", "main"), []byte(commit+"\n"), 0o644)
	entries, _ := os.ReadDir(src)
	blobOf := map[string]string{}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(src, e.Name()))
		s := sha256.Sum256(b)
		id := hex.EncodeToString(s[:]) // every file as an LFS blob here
		os.WriteFile(filepath.Join(root, "blobs", id), b, 0o644)
		os.Symlink(filepath.Join("..", "..", "blobs", id), filepath.Join(snap, e.Name()))
		blobOf[e.Name()] = filepath.Join(root, "blobs", id)
	}
	code, out, errs := runQKV(120, "verify", "org/tiny")
	if code != 0 || !strings.Contains(out, "hf-cache-blob") || !strings.Contains(out, "ok: 4 files match what they should be") {
		t.Fatalf("intact cache: exit %d\n%s%s", code, out, errs)
	}
	const shard = "model-00001-of-00002.safetensors"
	b, _ := os.ReadFile(blobOf[shard])
	b[len(b)-1] ^= 1
	os.WriteFile(blobOf[shard], b, 0o644)
	man := filepath.Join(t.TempDir(), "m.json")
	code, out, errs = runQKV(120, "verify", "org/tiny", "--write-manifest", man)
	if code != 1 || !strings.Contains(out, shard+": sha256 is ") || !strings.Contains(errs, "not writing the manifest") {
		t.Errorf("corrupted blob: exit %d\n%s%s", code, out, errs)
	}
	if _, err := os.Stat(man); err == nil {
		t.Error("a manifest of a corrupted snapshot was written")
	}
}

func TestVerifyManifestInFolder(t *testing.T) {
	verifyEnv(t, "")
	dir := verifyCopy(t)
	man := filepath.Join(dir, "qkv.manifest.json")
	if code, out, errs := runQKV(120, "verify", dir, "--write-manifest", man); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	code, out, _ := runQKV(120, "verify", dir, "--manifest", man, "--json")
	var doc verifyDoc
	json.Unmarshal([]byte(out), &doc)
	if code != 0 || len(doc.Files) != 4 {
		t.Errorf("the manifest in the folder was verified too: exit %d, %d files", code, len(doc.Files))
	}
	// One file of the folder.
	code, out, _ = runQKV(120, "verify", filepath.Join(dir, "config.json"), "--manifest", man, "--json")
	json.Unmarshal([]byte(out), &doc)
	if code != 0 || len(doc.Files) != 1 || doc.Files[0].Path != "config.json" || doc.Files[0].Status != "ok" {
		t.Errorf("one file: exit %d %+v", code, doc.Files)
	}
	// To stdout.
	code, out, _ = runQKV(120, "verify", dir, "--write-manifest", "-")
	if code != 0 || !strings.HasPrefix(out, "{\n  \"schema\": \"qkv.manifest/v1\"") {
		t.Errorf("manifest to stdout: exit %d\n%s", code, out)
	}
}

func TestVerifyHub(t *testing.T) {
	h := hubtest.New(t)
	h.AddRepo(t, "org/tiny", filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama-sharded"))
	verifyEnv(t, h.URL)
	code, out, errs := runQKV(120, "verify", "hf://org/tiny", "--json")
	var doc verifyDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("exit %d: %v\n%s%s", code, err, out, errs)
	}
	if code != 0 || !doc.Passed || doc.Compared != 4 || doc.Source.Kind != "hub" || len(doc.Source.Commit) != 40 || len(doc.Source.Files) != 4 || doc.IO.Requests == 0 {
		t.Errorf("exit %d %+v", code, doc)
	}
	for _, f := range doc.Files {
		want := "hub-git"
		if strings.HasSuffix(f.Path, ".safetensors") {
			want = "hub-lfs"
		}
		if f.Against != want || f.Status != "ok" {
			t.Errorf("%+v", f)
		}
	}
	for _, r := range h.Requests() {
		if r.Host == hubtest.HostCDN && r.Auth != "" {
			t.Errorf("the CDN got a token")
		}
	}
	// Offline with nothing cached: exit 3, one line, naming what is missing.
	t.Setenv("HF_HUB_OFFLINE", "1")
	code, out, errs = runQKV(120, "verify", "org/other")
	if code != 3 || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "HF_HUB_OFFLINE") {
		t.Errorf("offline: exit %d %q %q", code, out, errs)
	}
}

func TestVerifyUsage(t *testing.T) {
	verifyEnv(t, "")
	dir := verifyCopy(t)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"schema":"other"}`), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"verify", dir, "--manifest", "a", "--write-manifest", "b"}, 2, "cannot be used together"},
		{[]string{"verify", filepath.Join(dir, "nope")}, 3, "no such file or folder"},
		{[]string{"verify", dir, "--manifest", bad}, 3, "manifest schema"},
		{[]string{"verify", dir, "--manifest", filepath.Join(dir, "none.json")}, 3, "no such file"},
		{[]string{"verify", "http://example.com/x.gguf"}, 3, "refusing plain http://"},
	} {
		code, out, errs := runQKV(80, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, out, errs)
		}
	}
}
