package cmd_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestMapSingleTensor: --map q=^NAME$ (no capture group) inspects one
// tensor of any file as W_Q of layer 0, with the spectrum of that tensor;
// an unanchored expression matching several tensors is refused naming them.
func TestMapSingleTensor(t *testing.T) {
	tiny := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	code, out, errs := run("inspect", tiny, "--json", "--map", `q=^model\.layers\.2\.mlp\.down_proj\.weight$`)
	if code != cmd.ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc struct {
		Layers []struct {
			Index int `json:"index"`
			Q     *struct {
				Shape []int `json:"shape"`
			} `json:"q"`
			K json.RawMessage `json:"k"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Layers) != 1 || doc.Layers[0].Index != 0 || doc.Layers[0].Q == nil {
		t.Fatalf("want one layer 0 with W_Q: %s", out)
	}
	if s := doc.Layers[0].Q.Shape; len(s) != 2 || s[0] != 64 || s[1] != 96 {
		t.Errorf("W_Q shape %v, want the down_proj's [64 96]", s)
	}
	code, _, errs = run("inspect", tiny, "--map", `q=mlp\.down_proj\.weight`)
	if code != cmd.ExitInput || !strings.Contains(errs, "matches 4") {
		t.Errorf("ambiguous single-tensor map: exit %d, %s", code, errs)
	}
}
