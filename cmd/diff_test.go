package cmd_test

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// nanCopy copies testdata/tiny-llama and writes NaN over the first n values
// of layer 0's q_proj, found through qkv ls's offsets.
func nanCopy(t *testing.T, n int) string {
	t.Helper()
	dir := copyDir(t, filepath.Join("..", "testdata", "tiny-llama"))
	var ls struct {
		Tensors []struct {
			Name   string `json:"name"`
			DType  string `json:"dtype"`
			Offset int64  `json:"offset"`
		} `json:"tensors"`
	}
	_, out, _ := runQKV(80, "ls", dir, "--json")
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "model.safetensors"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, tn := range ls.Tensors {
		if tn.Name == "model.layers.0.self_attn.q_proj.weight" && tn.DType == "F32" {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(float32(math.NaN())))
			for i := 0; i < n; i++ {
				if _, err := f.WriteAt(b[:], tn.Offset+int64(4*i)); err != nil {
					t.Fatal(err)
				}
			}
			return dir
		}
	}
	t.Fatal("tiny-llama has no F32 model.layers.0.self_attn.q_proj.weight")
	return ""
}

// A copy with NaNs is not "identical": the verdict says which projection
// holds them, and a threshold fails on it.
func TestDiffNaNCopy(t *testing.T) {
	orig := filepath.Join("..", "testdata", "tiny-llama")
	bad := nanCopy(t, 3)
	code, out, errs := runQKV(80, "diff", orig, bad)
	first, _, _ := strings.Cut(out, "\n")
	if code != 0 || first != "1 projection of 16 holds NaN or Inf (not compared); the other 15 identical" {
		t.Errorf("exit %d, verdict %q, stderr %s\n%s", code, first, errs, out)
	}
	if !strings.Contains(out, "3 NaN in B") {
		t.Errorf("the table does not say where the NaNs are:\n%s", out)
	}
	var doc struct {
		Passed bool `json:"passed"`
		Layers []struct {
			Q struct {
				NonFinite bool `json:"non_finite"`
				NaNB      int  `json:"nan_b"`
				Identical bool `json:"identical"`
			} `json:"q"`
		} `json:"layers"`
		Summary struct {
			Compared  int `json:"compared"`
			Identical int `json:"identical"`
			NonFinite int `json:"non_finite"`
		} `json:"summary"`
	}
	code, out, _ = runQKV(80, "diff", orig, bad, "--json", "--fail-above", "rel_fro=0.5")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	q := doc.Layers[0].Q
	if code != 1 || doc.Passed || !q.NonFinite || q.NaNB != 3 || q.Identical || doc.Summary.NonFinite != 1 || doc.Summary.Compared != 15 || doc.Summary.Identical != 15 {
		t.Errorf("exit %d, %+v", code, doc)
	}
	// The same copy against itself: still not identical.
	_, out, _ = runQKV(80, "diff", bad, bad)
	if first, _, _ := strings.Cut(out, "\n"); !strings.HasPrefix(first, "1 projection of 16 holds NaN") {
		t.Errorf("NaN copy against itself: %q", first)
	}
}

func TestDiffExitStatus(t *testing.T) {
	zoo := filepath.Join(testref.SharedDir(t), "reference", "zoo")
	llama, q4 := filepath.Join(zoo, "llama", "hf"), filepath.Join(zoo, "llama", "gguf", "llama-Q4_K_M.gguf")
	for _, c := range []struct {
		args   []string
		code   int
		stdout string // first line
		stderr string
	}{
		{[]string{llama, llama}, 0, "identical: all 8 projections are equal element for element", ""},
		{[]string{llama, q4}, 0, "8 projections compared: max rel_fro 0.0714 (layers.0.o), lowest SNR 22.9 dB", ""},
		{[]string{llama, q4, "--fail-above", "rel_fro=0.05"}, 1, "FAIL: 2 projections of 8 failed rel_fro > 0.05: max rel_fro 0.0714 (layers.0.o), lowest SNR 22.9 dB", ""},
		{[]string{llama, q4, "--fail-above", "rel_fro=0.1", "--fail-below", "snr_db=20"}, 0, "8 projections compared", ""},
		{[]string{llama, q4, "--fail-below", "snr_db=25"}, 1, "FAIL: 2 projections of 8 failed snr_db < 25", ""},
		{[]string{llama, filepath.Join(zoo, "qwen2", "hf")}, 3, "", "A and B are not checkpoints of one model: llama vs qwen2, n_heads 8 vs 4, head_dim 32 vs 16"},
		{[]string{llama, q4, "--fail-above", "rel=0.1"}, 2, "", `--fail-above: unknown metric "rel"`},
		{[]string{llama, q4, "--fail-below", "snr_db"}, 2, "", "--fail-below: \"snr_db\" is not METRIC=LIMIT"},
		{[]string{llama, q4, "--format", "html"}, 2, "", `--format must be text, markdown or json, not "html"`},
		{[]string{llama, q4, "--format", "markdown", "--json"}, 2, "", "--json and --format markdown cannot be used together"},
		{[]string{llama, q4, "--format", "markdown"}, 0, "### ✅ qkv diff: 8 projections compared", ""},
		{[]string{llama, q4, "--worst", "0"}, 2, "", "--worst must be at least 1"},
	} {
		code, out, errs := runQKV(200, append([]string{"diff"}, c.args...)...)
		first, _, _ := strings.Cut(out, "\n")
		if code != c.code || !strings.HasPrefix(first, c.stdout) || !strings.Contains(errs, c.stderr) {
			t.Errorf("diff %v: exit %d, first line %q, stderr %q; want %d, %q, %q", c.args, code, first, errs, c.code, c.stdout, c.stderr)
		}
	}
}
