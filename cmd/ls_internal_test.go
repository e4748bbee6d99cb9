package cmd

import (
	"bytes"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/termui"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestLsStreamedJSON: the streamed qkv.ls/v1 document is byte for byte the
// one encoding/json writes for the whole report.
func TestLsStreamedJSON(t *testing.T) {
	root := testref.RepoRoot()
	paths, _ := filepath.Glob(filepath.Join(root, "testdata", "gguf", "*.gguf"))
	paths = append(paths, filepath.Join(root, "testdata", "tiny-llama"), filepath.Join(root, "testdata", "tiny-llama-sharded"),
		filepath.Join(root, "testdata", "hostile", "gguf-unknown-type-huge.gguf"), filepath.Join(root, "testdata", "dtypes", "F8_E4M3.safetensors"))
	for _, p := range paths {
		ck, err := formats.Open(p, formats.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []*regexp.Regexp{nil, regexp.MustCompile(`attn_q|q_proj`), regexp.MustCompile(`^$`)} {
			l := buildLs(ck, re)
			var got, want bytes.Buffer
			if err := l.writeJSON(&got); err != nil {
				t.Fatal(err)
			}
			if err := termui.WriteJSON(&want, l.report()); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("%s (match %v): streamed JSON differs:\n got  %.600s\n want %.600s", p, re, got.String(), want.String())
			}
		}
		ck.Close()
	}
}
