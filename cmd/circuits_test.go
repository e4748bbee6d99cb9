package cmd_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// circuitsJSON is the part of qkv circuits --json the tests read.
type circuitsJSON struct {
	Schema   string       `json:"schema"`
	Layers   []int        `json:"layers"`
	NHeads   int          `json:"n_heads"`
	NKVHeads int          `json:"n_kv_heads"`
	KVHead   []int        `json:"kv_head"`
	Raw      *scoresJSON  `json:"raw"`
	LNFolded *scoresJSON  `json:"ln_folded"`
	Baseline *baselineRef `json:"baseline"`
	TopPairs map[string][]struct {
		Mode   string  `json:"mode"`
		Layer1 int     `json:"layer1"`
		Head1  int     `json:"head1"`
		Layer2 int     `json:"layer2"`
		Head2  int     `json:"head2"`
		Score  float64 `json:"score"`
	} `json:"top_pairs"`
	Source struct {
		Input string `json:"input"`
		Files []struct {
			Name string `json:"name"`
			Size int64  `json:"size"`
		} `json:"files"`
	} `json:"source"`
	QKV struct {
		Version string `json:"version"`
	} `json:"qkv"`
}

type scoresJSON struct {
	Q, K, V [][][][]*float64
}

type baselineRef struct {
	Mean     float64 `json:"mean"`
	Std      float64 `json:"std"`
	Stderr   float64 `json:"stderr"`
	NSamples int     `json:"n_samples"`
}

// compositionRef is reference/analysis/<arch>/composition.json.
type compositionRef struct {
	NLayers  int `json:"n_layers"`
	NHeads   int `json:"n_heads"`
	NKVHeads int `json:"n_kv_heads"`
	Raw      struct {
		Q, K, V [][][][]float64
	} `json:"raw"`
	LNFolded struct {
		Q, K, V [][][][]float64
	} `json:"ln_folded"`
	Baseline baselineRef `json:"baseline"`
}

func runCircuitsJSON(t *testing.T, args ...string) circuitsJSON {
	t.Helper()
	code, out, errs := runQKV(80, append([]string{"circuits"}, args...)...)
	if code != 0 {
		t.Fatalf("qkv circuits %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	var doc circuitsJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("qkv circuits %s: %v", strings.Join(args, " "), err)
	}
	return doc
}

// compareScores returns the largest relative error of got against want
// (both [l1][h1][l2][h2]); a null where the reference has a number fails.
func compareScores(t *testing.T, name string, got [][][][]*float64, want [][][][]float64) float64 {
	t.Helper()
	worst := 0.0
	if len(got) != len(want) {
		t.Fatalf("%s: %d layers, reference %d", name, len(got), len(want))
	}
	for l1 := range want {
		for h1 := range want[l1] {
			for l2 := range want[l1][h1] {
				for h2, w := range want[l1][h1][l2] {
					g := got[l1][h1][l2][h2]
					if g == nil {
						t.Fatalf("%s[%d][%d][%d][%d]: null, reference %v", name, l1, h1, l2, h2, w)
					}
					e := math.Abs(*g - w)
					if w != 0 {
						e /= math.Abs(w)
					}
					if !(e <= 1e-6) {
						t.Fatalf("%s[%d][%d][%d][%d] = %v, reference %v (relative error %.3g)", name, l1, h1, l2, h2, *g, w, e)
					}
					worst = max(worst, e)
				}
			}
		}
	}
	return worst
}

// TestCircuitsReference runs qkv circuits --json on every zoo model's
// Hugging Face folder and compares every score, raw and ln_folded, with
// reference/analysis/<arch>/composition.json (TransformerLens' definitions
// computed by numpy) within 1e-6 relative, and the baseline mean within
// the reference's stochastic tolerance. --out writes the same document.
func TestCircuitsReference(t *testing.T) {
	shared := testref.SharedDir(t)
	refs, err := filepath.Glob(filepath.Join(shared, "reference", "analysis", "*", "composition.json"))
	if err != nil || len(refs) == 0 {
		t.Fatalf("no reference/analysis/*/composition.json in %s", shared)
	}
	for _, refPath := range refs {
		arch := filepath.Base(filepath.Dir(refPath))
		t.Run(arch, func(t *testing.T) {
			var ref compositionRef
			if err := testref.ReadJSON(refPath, &ref); err != nil {
				t.Fatal(err)
			}
			model := filepath.Join(shared, "reference", "zoo", arch, "hf")
			const samples = 2000
			doc := runCircuitsJSON(t, model, "--json", "--baseline-samples", "2000", "--seed", "7")
			if doc.Schema != "qkv.circuits/v1" || len(doc.Layers) != ref.NLayers || doc.NHeads != ref.NHeads || doc.NKVHeads != ref.NKVHeads {
				t.Fatalf("schema %q, layers %v, %d heads (%d KV); reference %d layers, %d heads (%d KV)",
					doc.Schema, doc.Layers, doc.NHeads, doc.NKVHeads, ref.NLayers, ref.NHeads, ref.NKVHeads)
			}
			for h, g := range doc.KVHead {
				if g != h/(ref.NHeads/ref.NKVHeads) {
					t.Fatalf("kv_head %v", doc.KVHead)
				}
			}
			if doc.Raw == nil || doc.LNFolded == nil {
				t.Fatal("raw or ln_folded is null")
			}
			worst := 0.0
			for _, c := range []struct {
				name string
				got  [][][][]*float64
				want [][][][]float64
			}{
				{"raw.Q", doc.Raw.Q, ref.Raw.Q}, {"raw.K", doc.Raw.K, ref.Raw.K}, {"raw.V", doc.Raw.V, ref.Raw.V},
				{"ln_folded.Q", doc.LNFolded.Q, ref.LNFolded.Q}, {"ln_folded.K", doc.LNFolded.K, ref.LNFolded.K},
				{"ln_folded.V", doc.LNFolded.V, ref.LNFolded.V},
			} {
				worst = max(worst, compareScores(t, c.name, c.got, c.want))
			}
			b, rb := doc.Baseline, ref.Baseline
			if b == nil || b.NSamples != samples {
				t.Fatalf("baseline %+v", b)
			}
			tol := 5 * math.Sqrt(rb.Std*rb.Std/samples+rb.Stderr*rb.Stderr)
			if math.Abs(b.Mean-rb.Mean) > tol {
				t.Errorf("baseline mean %v, reference %v ± %v", b.Mean, rb.Mean, tol)
			}
			t.Logf("%s: worst relative error %.2g over raw and ln_folded; baseline %.5f vs %.5f (±%.5f)", arch, worst, b.Mean, rb.Mean, tol)
			if doc.Source.Input != model || len(doc.Source.Files) == 0 || doc.QKV.Version == "" {
				t.Errorf("provenance: source %+v, qkv %+v", doc.Source, doc.QKV)
			}
			// The strongest pair is the reference's largest score.
			top := doc.TopPairs["ln_folded"]
			if len(top) == 0 {
				t.Fatal("no top_pairs.ln_folded")
			}
			best := 0.0
			for _, a := range [][][][][]float64{ref.LNFolded.Q, ref.LNFolded.K, ref.LNFolded.V} {
				for l1 := range a {
					for h1 := range a[l1] {
						for l2 := range a[l1][h1] {
							best = max(best, slices.Max(a[l1][h1][l2]))
						}
					}
				}
			}
			if math.Abs(top[0].Score-best) > 1e-6*best {
				t.Errorf("top pair %+v, reference's largest ln_folded score %v", top[0], best)
			}
		})
	}
}

// TestCircuitsOutAndLayers: --out writes the --json document byte for
// byte; --layers scores the selected layers as the same sub-arrays of the
// whole run; --raw-only leaves ln_folded null.
func TestCircuitsOutAndLayers(t *testing.T) {
	model := filepath.Join("..", "testdata", "tiny-llama")
	code, full, errs := runQKV(80, "circuits", model, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	out := filepath.Join(t.TempDir(), "c.json")
	code, text, errs := runQKV(80, "circuits", model, "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(written) != full {
		t.Errorf("--out wrote %d bytes that differ from --json's %d", len(written), len(full))
	}
	if !strings.HasPrefix(text, "llama — 4 layers × 8 heads (2 KV)") {
		t.Errorf("text with --out does not start with the verdict:\n%.300s", text)
	}
	var all, sub circuitsJSON
	if err := json.Unmarshal([]byte(full), &all); err != nil {
		t.Fatal(err)
	}
	sub = runCircuitsJSON(t, model, "--json", "--layers", "1,3")
	if !slices.Equal(sub.Layers, []int{1, 3}) {
		t.Fatalf("layers %v", sub.Layers)
	}
	pos := []int{1, 3}
	for _, v := range []struct {
		name     string
		got, all *scoresJSON
	}{{"raw", sub.Raw, all.Raw}, {"ln_folded", sub.LNFolded, all.LNFolded}} {
		for mi, arrs := range [][2][][][][]*float64{{v.got.Q, v.all.Q}, {v.got.K, v.all.K}, {v.got.V, v.all.V}} {
			for h1 := range 8 {
				for h2 := range 8 {
					g, w := arrs[0][0][h1][1][h2], arrs[1][pos[0]][h1][pos[1]][h2]
					if (g == nil) != (w == nil) || g != nil && *g != *w {
						t.Fatalf("%s %c [L1 H%d][L3 H%d]: %v, whole run %v", v.name, "QKV"[mi], h1, h2, g, w)
					}
				}
			}
		}
	}
	raw := runCircuitsJSON(t, model, "--json", "--raw-only", "--baseline-samples", "0")
	if raw.LNFolded != nil || raw.Baseline != nil || raw.Raw == nil {
		t.Errorf("--raw-only --baseline-samples 0: ln_folded %v, baseline %v", raw.LNFolded != nil, raw.Baseline)
	}
}

// TestCircuitsUsage: bad flags exit 2 before any work; an adapter is
// refused (exit 3) with a reason.
func TestCircuitsUsage(t *testing.T) {
	model := filepath.Join("..", "testdata", "tiny-llama")
	scratch := copyModel(t, model) // refusals to write the input's files are tried on a copy
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"circuits", model, "--top", "-1"}, 2, "--top"},
		{[]string{"circuits", model, "--per-head", "-3"}, 2, "--per-head"},
		{[]string{"circuits", model, "--baseline-samples", "-1"}, 2, "--baseline-samples"},
		{[]string{"circuits", model, "--layers", "9"}, 2, "no layer 9"},
		{[]string{"circuits", model, "--out", t.TempDir()}, 2, "is a folder"},
		{[]string{"circuits", model, "--out", "-"}, 2, "--json prints"},
		{[]string{"circuits", scratch, "--out", filepath.Join(scratch, "model.safetensors")}, 2, "input's files"},
		{[]string{"circuits", scratch, "--out", filepath.Join(scratch, "config.json")}, 2, "input's files"},
		{[]string{"circuits", filepath.Join("..", "testdata", "lora", "bloom-qkv-peft"), "--base", filepath.Join("..", "testdata", "lora", "bloom-base")}, 3, "LoRA adapter"},
	} {
		code, _, errs := runQKV(80, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("qkv %s: exit %d (want %d), stderr %q (want %q)", strings.Join(c.args, " "), code, c.code, errs, c.want)
		}
	}
}
