package hubtest

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// WriteHFCache lays out the files directly in srcDir (but those named in
// skip) under cache as huggingface_hub does in its cache (HF_HUB_CACHE):
// blobs named by SHA-256 (weights) or git blob id (small files), a
// snapshot of relative symbolic links, and refs/main. It returns the cache
// folder and the snapshot's commit.
func WriteHFCache(t testing.TB, cache, repo, srcDir string, skip ...string) (string, string) {
	t.Helper()
	root := filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
	commit := fmt.Sprintf("%040x", 0xc0ffee)
	snap := filepath.Join(root, "snapshots", commit)
	for _, d := range []string{filepath.Join(root, "blobs"), filepath.Join(root, "refs"), snap} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(srcDir)
	if err != nil {
		t.Fatal(err)
	}
outer:
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		for _, s := range skip {
			if e.Name() == s {
				continue outer
			}
		}
		b, err := os.ReadFile(filepath.Join(srcDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var id string
		if isLFS(e.Name()) {
			s := sha256.Sum256(b)
			id = hex.EncodeToString(s[:])
		} else {
			g := sha1.New()
			fmt.Fprintf(g, "blob %d\x00", len(b))
			g.Write(b)
			id = hex.EncodeToString(g.Sum(nil))
		}
		if err := os.WriteFile(filepath.Join(root, "blobs", id), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..", "..", "blobs", id), filepath.Join(snap, e.Name())); err != nil {
			t.Skipf("cannot make symbolic links here: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "refs", "main"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	return cache, commit
}
