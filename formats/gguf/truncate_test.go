package gguf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// TestTruncatedHeaders cuts every fixture at every byte of its header (up
// to the data offset) and parses each cut in-process: each must be refused
// with one *Error of one line, never parse and never panic. Given the
// whole file's size (a header read over the network), every cut must say
// that the bytes ran out (ErrTruncated) — except cuts in the alignment
// padding after the tensor infos, which hold the whole header and must
// parse to what the whole file does. This is the sweep `qkv ls` once
// ran through the whole command per cut; the command's own one-line
// contract is tested in cmd on a few cuts.
func TestTruncatedHeaders(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testref.RepoRoot(), "testdata", "gguf", "*.gguf"))
	if len(files) < 2 {
		t.Fatal("no fixtures in testdata (run go generate ./...)")
	}
	for _, p := range files {
		t.Run(filepath.Base(p), func(t *testing.T) { cutEveryByte(t, p) })
	}
	t.Run("shared", func(t *testing.T) {
		shared := testref.SharedDir(t)
		for _, rel := range []string{
			"fixtures/gguf/stories260k-v1-f32/tinyllamas-stories-260k-f32.gguf",
			"fixtures/gguf/stories260k-v3-f32/stories260K.gguf",
		} {
			p := filepath.Join(shared, filepath.FromSlash(rel))
			t.Run(filepath.Base(p), func(t *testing.T) { cutEveryByte(t, p) })
		}
	})
}

func cutEveryByte(t *testing.T, path string) {
	full, err := os.ReadFile(path)
	if err != nil {
		t.Skip(err)
	}
	f, err := Parse(full, Options{})
	if err != nil {
		t.Fatalf("the whole file: %v", err)
	}
	end := f.DataOffset
	for n := int64(0); n < end; n++ {
		cut := full[:n:n] // no capacity past the cut: a read beyond it panics
		for _, size := range []int64{0, int64(len(full))} {
			g, err := Parse(cut, Options{Size: size})
			var e *Error
			switch {
			case err == nil && size > 0 && n > end-int64(f.Alignment) && g.DataOffset == end && len(g.Tensors) == len(f.Tensors):
				// the padding: the header is all there
			case err == nil:
				t.Fatalf("cut at %d of %d (size %d): parsed", n, end, size)
			case !errors.As(err, &e) || err.Error() == "" || strings.ContainsAny(err.Error(), "\r\n"):
				t.Fatalf("cut at %d of %d (size %d): %T %q, want one line in an *Error", n, end, size, err, err)
			case size > 0 && !errors.Is(err, ErrTruncated):
				t.Fatalf("cut at %d of %d of a %d-byte file: %v, want ErrTruncated", n, end, size, err)
			}
		}
	}
	t.Logf("%d cuts of a %d-byte header", end, end)
}
