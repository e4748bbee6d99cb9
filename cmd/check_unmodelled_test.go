package cmd_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestCheckWarnsUnmodelled: what layers and inspect warn of (here a model
// type outside the registry, whose heads are split by guesses) check warns
// of too; before, it passed such a model with no warning at all.
func TestCheckWarnsUnmodelled(t *testing.T) {
	p := filepath.Join(testref.RepoRoot(), "testdata", "hostile", "escape-model-type")
	code, out, errs := run("check", p)
	if code != cmd.ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	flat := strings.Join(strings.Fields(out), " ")
	if !strings.Contains(flat, "1 warning") || !strings.Contains(flat, "not modelled: model_type") || !strings.Contains(flat, "not in qkv's architecture registry") {
		t.Errorf("check of an unregistered model type:\n%s", out)
	}
	// A registered architecture with nothing unmodelled gets no such warning.
	code, out, _ = run("check", filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama"))
	if code != cmd.ExitFindings || strings.Contains(out, "not modelled") {
		t.Errorf("tiny-llama: exit %d:\n%s", code, out)
	}
}
