package cmd_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestForwardMissingMLP: a model whose MLP lacks a tensor the forward pass
// needs (the legacy fixture has ffn_down only) is refused before any
// output, naming the tensor once.
func TestForwardMissingMLP(t *testing.T) {
	p := filepath.Join(testref.RepoRoot(), "testdata", "gguf", "legacy-q8_0-flat-run.gguf")
	code, out, errs := run("attn", p, "--tokens", "1,2")
	want := "no layer 0 MLP up projection: the forward pass needs one"
	if code != cmd.ExitInput || out != "" || !strings.Contains(errs, want) || strings.Contains(errs, "(tensor") {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 3 and %q", code, out, errs, want)
	}
}
