package formats

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestErrNoAttention: FindModel's "no attention at all" errors wrap
// ErrNoAttention, and no other error does. The three cases are the ones
// inspect/check told apart by their words until now (its noAttention); the
// test pins that both ways of telling agree on every file of the hostile
// corpus and testdata.
func TestErrNoAttention(t *testing.T) {
	byWords := func(err error) bool {
		msg := err.Error()
		return strings.Contains(msg, "so there are no attention layers") ||
			strings.Contains(msg, "the GGUF metadata has no general.architecture") ||
			strings.Contains(msg, "found no attention projections (W_Q, W_K, W_V, W_O) under any tensor name")
	}
	root := testref.RepoRoot()
	var paths []string
	for _, pat := range []string{"testdata/hostile/*", "testdata/*", "testdata/gguf/*.gguf", "testdata/arch/*", "testdata/lora/*", "testdata/dtypes/*"} {
		m, _ := filepath.Glob(filepath.Join(root, filepath.FromSlash(pat)))
		paths = append(paths, m...)
	}
	// A GGUF with no tensors at all.
	var buf strings.Builder
	w := &gguf.Writer{KVs: []gguf.KV{{Key: "general.architecture", Type: gguf.String, Value: "llama"}}}
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "vocab-only.gguf")
	os.WriteFile(empty, []byte(buf.String()), 0o644)
	paths = append(paths, empty)
	sort.Strings(paths)
	counts := map[bool]int{}
	for _, p := range paths {
		c, err := Open(p, Options{})
		if err != nil {
			continue
		}
		_, err = FindModel(c, FindOptions{})
		c.Close()
		if err == nil {
			continue
		}
		is := errors.Is(err, ErrNoAttention)
		if is != byWords(err) {
			t.Errorf("%s: errors.Is(ErrNoAttention) %v for %v", p, is, err)
		}
		counts[is]++
	}
	if counts[true] < 3 || counts[false] < 3 {
		t.Errorf("too few cases: %d with no attention, %d other errors", counts[true], counts[false])
	}
	t.Logf("%d errors with no attention, %d others", counts[true], counts[false])
}
