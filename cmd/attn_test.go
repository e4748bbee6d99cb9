package cmd_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/testref"
)

// attnCase is one zoo model's expected attention rerun (attn.json).
type attnCase struct {
	NLayers int `json:"n_layers"`
	Cases   struct {
		Full struct {
			TokenIDs []int `json:"token_ids"`
		} `json:"full"`
	} `json:"cases"`
}

// TestAttnReproducesPyTorch runs `qkv attn --all --out` on every zoo model's
// Hugging Face folder for both reference cases and compares with the
// probabilities and outputs PyTorch computed: probabilities within 1e-5
// absolute, outputs within 1e-4 relative (Frobenius). The model's GGUF
// files are rerun too; quantized ones must stay within their quantization
// error (checked loosely here, measured in the log).
func TestAttnReproducesPyTorch(t *testing.T) {
	zoo := filepath.Join(testref.SharedDir(t), "reference", "zoo")
	archs, err := os.ReadDir(zoo)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range archs {
		if !a.IsDir() {
			continue
		}
		dir := filepath.Join(zoo, a.Name())
		var spec attnCase
		if err := testref.ReadJSON(filepath.Join(dir, "expected", "attn.json"), &spec); err != nil {
			t.Fatal(err)
		}
		want, err := testref.ReadSafetensors(filepath.Join(dir, "expected", "attn.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(spec.Cases.Full.TokenIDs))
		for i, id := range spec.Cases.Full.TokenIDs {
			ids[i] = fmt.Sprint(id)
		}
		sources := []string{filepath.Join(dir, "hf")}
		ggufs, _ := filepath.Glob(filepath.Join(dir, "gguf", "*.gguf"))
		for _, g := range ggufs {
			if !strings.Contains(g, "-split-") || strings.HasSuffix(g, "00001-of-00003.gguf") {
				sources = append(sources, g)
			}
		}
		for _, src := range sources {
			name := a.Name() + "/" + filepath.Base(src)
			quantized := !strings.HasSuffix(src, "hf") && !strings.Contains(src, "f32")
			// Bounds on the relative error an encoding may cause, a few times
			// what was measured on these models (f16/bf16 ≤ 6e-4, Q8_0/Q6_K ≤
			// 0.023, Q4_K_M ≤ 0.1): a decoding or layout bug gives errors of
			// order 1.
			limit := 2e-3
			switch {
			case strings.Contains(src, "Q4_K_M"):
				limit = 0.25
			case strings.Contains(src, "Q8_0"), strings.Contains(src, "Q6_K"):
				limit = 0.06
			}
			for _, c := range []struct {
				name string
				args []string
			}{
				{"raw", []string{"--input", filepath.Join(dir, "expected", "attn.safetensors") + ":raw.x", "--norm", "off"}},
				{"full", []string{"--tokens", strings.Join(ids, ",")}},
			} {
				t.Run(name+"/"+c.name, func(t *testing.T) {
					out := filepath.Join(t.TempDir(), "attn.safetensors")
					code, _, errs := run(append([]string{"attn", src, "--all", "--json", "--out", out}, c.args...)...)
					if code != cmd.ExitOK {
						t.Fatalf("exit %d: %s", code, errs)
					}
					got, err := testref.ReadSafetensors(out)
					if err != nil {
						t.Fatal(err)
					}
					for i := 0; i < spec.NLayers; i++ {
						for _, kind := range []string{"probs", "out"} {
							key := fmt.Sprintf("layers.%d.%s", i, kind)
							g, w := got[key], want[c.name+"."+key]
							if len(g.F64) != len(w.F64) || fmt.Sprint(g.Shape) != fmt.Sprint(w.Shape) {
								t.Fatalf("%s: shape %v, want %v", key, g.Shape, w.Shape)
							}
							maxAbs, diff2, ref2 := 0.0, 0.0, 0.0
							for k := range w.F64 {
								d := g.F64[k] - w.F64[k]
								maxAbs = math.Max(maxAbs, math.Abs(d))
								diff2 += d * d
								ref2 += w.F64[k] * w.F64[k]
							}
							rel := math.Sqrt(diff2 / ref2)
							switch {
							case quantized:
								t.Logf("%s: max abs %.3g, rel %.3g (quantization error)", key, maxAbs, rel)
								if rel > limit {
									t.Errorf("%s: relative error %.3g is beyond this encoding's error (%g)", key, rel, limit)
								}
							case kind == "probs" && maxAbs > 1e-5:
								t.Errorf("%s: max abs error %.3g > 1e-5", key, maxAbs)
							case kind == "out" && rel > 1e-4:
								t.Errorf("%s: relative error %.3g > 1e-4", key, rel)
							}
						}
					}
				})
			}
		}
	}
}
