package formats

import (
	"path/filepath"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

func TestSourceInfo(t *testing.T) {
	root := testref.RepoRoot()
	for _, tc := range []struct {
		path  string
		files []string
	}{
		{filepath.Join(root, "testdata", "tiny-llama-sharded"), []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}},
		{filepath.Join(root, "testdata", "gguf", "tiny-llama-f16.gguf"), []string{"tiny-llama-f16.gguf"}},
	} {
		c, err := Open(tc.path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s := c.Source()
		c.Close()
		if s.Kind != "local" || s.Input != tc.path || len(s.Files) != len(tc.files) {
			t.Fatalf("%s: %+v", tc.path, s)
		}
		for i, f := range s.Files {
			if f.Name != tc.files[i] || f.Size <= 0 {
				t.Errorf("%s: file %d is %+v, want %s", tc.path, i, f, tc.files[i])
			}
		}
	}
}
