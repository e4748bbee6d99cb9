package formats

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// TestForeignNoFalsePositives: no safetensors or GGUF file of testdata or
// the shared fixtures, nor any malformed one of the hostile corpus, is
// taken for another format.
func TestForeignNoFalsePositives(t *testing.T) {
	var files []string
	for _, root := range []string{filepath.Join(testref.RepoRoot(), "testdata"), filepath.Join(testref.SharedDir(t), "fixtures")} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && (strings.HasSuffix(p, ".safetensors") || strings.HasSuffix(p, ".gguf")) {
				files = append(files, p)
			}
			return nil
		})
	}
	n := 0
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		head := b[:min(len(b), foreignSniffBytes)]
		rel, _ := filepath.Rel(testref.RepoRoot(), p)
		if what := foreignFormat(head, p); what != "" && !strings.Contains(rel, "lfs-pointer") && !strings.Contains(rel, "html-page") {
			t.Errorf("%s taken for %s", p, what)
		}
		n++
	}
	if n < 50 {
		t.Errorf("only %d files checked", n)
	}
}

// TestForeignFormat: the first bytes of each format, as their writers
// start them.
func TestForeignFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		head string
		want string // a word the message must hold; "" for none
	}{
		{"x.bin", "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", "legacy pickle"},
		{"x.pt", "\x80\x05\x95", "protocol 5"},
		{"x.bin", "\x80\x01", ""}, // not a protocol PyTorch writes
		{"x.npy", "\x93NUMPY\x02\x00", "format 2.0"},
		{"x", "\x89HDF\r\n\x1a\n", "HDF5"},
		{"x", strings.Repeat("\x00", 512) + "\x89HDF\r\n\x1a\n", "HDF5"}, // after a user block
		{"x.onnx", "\x08\x07\x12\x07pytorch", "ONNX"},
		{"x.bin", "\x08\x07\x3a\x10", "ONNX"},
		{"x.bin", "\x08\x01\x12", ""}, // ir_version 1 does not exist
		{"flax_model.msgpack", "\x81\xa6params", "Flax"},
		{"saved_model.pb", "\x08\x01", "SavedModel"},
		{"x.bin", "lmgg\x01\x00\x00\x00", "GGML"},
		{"x.bin", "fmgg", "GGML"},
		{"x.safetensors", "version https://git-lfs.github.com/spec/v1\n", "LFS"},
		{"x.gguf", "  <HTML><body>", "HTML"},
		{"x", "PK\x03\x04" + strings.Repeat("\x00", 22) + "\x09\x00\x00\x00arr_0.npy", "NumPy archive"},
		{"x", "PK\x03\x04" + strings.Repeat("\x00", 22) + "\x05\x00\x00\x00a.txt", `first entry is "a.txt"`},
		{"x", "PK\x03\x04" + strings.Repeat("\x00", 22) + "\x10\x00\x00\x00model/data.pkl", "PyTorch"},
		{"x", "hello", ""},
		{"x", "", ""},
	} {
		got := foreignFormat([]byte(tc.head), tc.name)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s %q: %q, want one holding %q", tc.name, tc.head, got, tc.want)
		}
	}
}
