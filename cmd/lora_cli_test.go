package cmd_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestLoRAAtTheCommandLine: what issue 14 fixed, as a user sees it — an
// alpha-era MLX adapter's scale is scale × alpha / rank and says why, and
// a LoRA update's spectrum from its factors says the update is singular
// (rank r of a d_model-wide matrix) instead of printing a condition number.
func TestLoRAAtTheCommandLine(t *testing.T) {
	alphaEra := filepath.Join(testref.RepoRoot(), "testdata", "lora", "mlx-alpha-era")
	code, out, errs := run("layers", alphaEra)
	if code != cmd.ExitOK {
		t.Fatalf("layers: exit %d: %s", code, errs)
	}
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"rank 4, scale 40", "lora_parameters.scale × alpha / rank", "2024-01-25 to 2024-06-01", "ΔW=40·B·A r=4"} {
		if !strings.Contains(flat, want) {
			t.Errorf("layers of the alpha-era adapter lacks %q:\n%s", want, out)
		}
	}

	// A head count that fits nothing is named as such (it was "12 heads,
	// 0 KV heads and head_dim 0 need [0, 16]").
	gpt2 := filepath.Join(testref.RepoRoot(), "testdata", "lora", "gpt2-c_attn-peft")
	if code, _, errs := run("layers", gpt2, "--n-heads", "12"); code != cmd.ExitInput || !strings.Contains(errs, "12 heads divide neither") {
		t.Errorf("--n-heads 12 on a 16-wide adapter: exit %d, %s", code, errs)
	}

	mlx := filepath.Join(testref.SharedDir(t), "fixtures", "lora", "mlx-llama3-8b-discollama")
	code, out, errs = run("inspect", mlx, "--json", "--layers", "30")
	if code != cmd.ExitOK {
		t.Fatalf("inspect: exit %d: %s", code, errs)
	}
	var doc struct {
		Layers []struct {
			Index int `json:"index"`
			Q     struct {
				Method    string   `json:"method"`
				Flags     []string `json:"flags"`
				Condition *float64 `json:"condition"`
				Rank      *int     `json:"rank"`
			} `json:"q"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Layers) != 1 || doc.Layers[0].Index != 30 {
		t.Fatalf("want layer 30 alone: %s", out)
	}
	q := doc.Layers[0].Q
	if q.Method != "factors" || !slices.Contains(q.Flags, "singular") || q.Condition != nil || q.Rank == nil || *q.Rank != 8 {
		t.Errorf("layer 30 q: method %q flags %v condition %v rank %v; want factors, singular, null, 8", q.Method, q.Flags, q.Condition, q.Rank)
	}
}
