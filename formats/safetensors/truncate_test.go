package safetensors

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// TestTruncatedHeaders cuts every fixture at every byte of its header (up
// to the data offset) and parses each cut in-process, alone and as the
// beginning of a file of the whole size (a header read over the network):
// each must be refused with one *Error of one line, never parse and never
// panic. This is the sweep `qkv ls` once ran through the whole command per
// cut; the command's own one-line contract is tested in cmd on a few cuts.
func TestTruncatedHeaders(t *testing.T) {
	paths := []string{filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama", "model.safetensors")}
	sharded, _ := filepath.Glob(filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama-sharded", "*.safetensors"))
	paths = append(paths, sharded...)
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) { cutEveryByte(t, p) })
	}
	t.Run("shared", func(t *testing.T) {
		p := filepath.Join(testref.SharedDir(t), "fixtures", "safetensors", "gpt2-tiny-random", "model.safetensors")
		cutEveryByte(t, p)
	})
}

func cutEveryByte(t *testing.T, path string) {
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(full, Options{})
	if err != nil {
		t.Fatalf("the whole file: %v", err)
	}
	end := f.DataOffset
	for n := int64(0); n < end; n++ {
		cut := full[:n:n] // no capacity past the cut: a read beyond it panics
		for _, size := range []int64{0, int64(len(full))} {
			_, err := Parse(cut, Options{Size: size})
			var e *Error
			if err == nil || !errors.As(err, &e) || err.Error() == "" || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("cut at %d of %d (size %d): %T %q, want one line in an *Error", n, end, size, err, err)
			}
		}
	}
	t.Logf("%d cuts of a %d-byte header", end, end)
}
