package diff

import (
	"bytes"
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/testref"
)

// NaN and Inf are counted on each side; a matrix holding them is never
// identical, not even to itself, and has no metric.
func TestNonFiniteCounted(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	a := formats.Matrix{Rows: 2, Cols: 2, Data: []float32{1, 2, 3, 4}}
	b := formats.Matrix{Rows: 2, Cols: 2, Data: []float32{1, nan, nan, inf}}
	d := Matrices(a, b, false)
	if !d.NonFinite || d.Identical || d.NaNA != 0 || d.InfA != 0 || d.NaNB != 2 || d.InfB != 1 || d.RelFro.Valid() || d.MaxAbs.Valid() {
		t.Errorf("A finite, B with 2 NaN and 1 Inf: %+v", d)
	}
	if got := d.nonFiniteText(); got != "2 NaN and 1 Inf in B" {
		t.Errorf("text %q", got)
	}
	self := Matrices(b, b, false)
	if !self.NonFinite || self.Identical || self.NaNA != 2 || self.NaNB != 2 {
		t.Errorf("B against itself: %+v", self)
	}
	s := summarize([]LayerDiff{{Index: 0, Q: self, K: Matrices(a, a, false),
		V: Matrices(a, formats.Matrix{Rows: 1, Cols: 4, Data: a.Data}, false)}}, 5)
	if s.Compared != 1 || s.Identical != 1 || s.NonFinite != 1 || s.Errors != 1 {
		t.Errorf("summary %+v", s)
	}
}

func TestThresholds(t *testing.T) {
	nan := inspect.Float(math.NaN())
	proj := func(rel, cos, snr, dsig float64) *ProjDiff {
		return &ProjDiff{RelFro: inspect.Float(rel), Cosine: inspect.Float(cos), MaxAbs: 0.1, SNRdB: inspect.Float(snr),
			SpectralNormChange: inspect.Float(dsig), EffectiveRankChange: 0, DeltaEffectiveRank: 3}
	}
	r := &Report{Layers: []LayerDiff{
		{Index: 0, Q: proj(0.01, 0.999, 40, -0.2), K: proj(0.1, 0.99, 20, 0.01),
			V: &ProjDiff{Identical: true, RelFro: 0, Cosine: 1, MaxAbs: 0, SNRdB: nan, SpectralNormChange: 0, EffectiveRankChange: 0, DeltaEffectiveRank: nan},
			O: &ProjDiff{NonFinite: true, NaNB: 3, RelFro: nan, Cosine: nan, MaxAbs: nan, SNRdB: nan, SpectralNormChange: nan, EffectiveRankChange: nan, DeltaEffectiveRank: nan}},
		{Index: 1, Q: &ProjDiff{Error: "shapes differ: [1, 2] vs [2, 1]", RelFro: nan}},
	}}
	ts := []Threshold{}
	for _, c := range []struct{ s, bound string }{{"rel_fro=0.05", Above}, {"snr_db=30", Below}, {"spectral_norm_change=0.1", Above}} {
		th, err := ParseThreshold(c.s, c.bound)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, th)
	}
	r.Check(ts)
	var got []string
	for _, f := range r.Failures {
		got = append(got, failureText(f))
	}
	want := []string{
		"layers.0.q: spectral_norm_change -0.2 > 0.1", // by absolute value
		"layers.0.k: rel_fro 0.1 > 0.05",
		"layers.0.k: snr_db 20 < 30",
		"layers.0.o: rel_fro undefined (3 NaN in B)",
		"layers.0.o: snr_db undefined (3 NaN in B)",
		"layers.0.o: spectral_norm_change undefined (3 NaN in B)",
		"layers.1.q: rel_fro undefined (shapes differ: [1, 2] vs [2, 1])",
		"layers.1.q: snr_db undefined (shapes differ: [1, 2] vs [2, 1])",
		"layers.1.q: spectral_norm_change undefined (shapes differ: [1, 2] vs [2, 1])",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r.Passed {
		t.Error("passed with failures")
	}
	r.Check(nil)
	if !r.Passed || len(r.Failures) != 0 {
		t.Errorf("no thresholds: passed %v, %d failures", r.Passed, len(r.Failures))
	}
}

func TestParseThreshold(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"rel_fro", "not METRIC=LIMIT"},
		{"relfro=0.1", `unknown metric "relfro"`},
		{"rel_fro=x", "not a finite number"},
		{"rel_fro=NaN", "not a finite number"},
		{"rel_fro=+Inf", "not a finite number"},
	} {
		if _, err := ParseThreshold(c.in, Above); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
	}
	th, err := ParseThreshold(" cosine = 0.999 ", Below)
	if err != nil || th != (Threshold{Metric: "cosine", Bound: Below, Limit: 0.999}) {
		t.Errorf("%+v, %v", th, err)
	}
}

// Two different models are refused, naming what differs.
func TestCompareMismatchedModels(t *testing.T) {
	zoo := filepath.Join(testref.SharedDir(t), "reference", "zoo")
	ma, ca := open(t, filepath.Join(zoo, "llama", "hf"))
	defer ca.Close()
	mb, cb := open(t, filepath.Join(zoo, "qwen2", "hf"))
	defer cb.Close()
	_, err := Compare(context.Background(), ma, mb, Options{})
	var mm *MismatchError
	if !errors.As(err, &mm) || !strings.Contains(err.Error(), "n_heads 8 vs 4") {
		t.Errorf("llama against qwen2: %v", err)
	}
}

func TestMarkdown(t *testing.T) {
	r := &Report{A: "a`b.gguf", B: "b", Passed: false,
		Layers:  []LayerDiff{{Index: 3, Q: &ProjDiff{RelFro: 0.5, Cosine: 0.9, MaxAbs: 1, SNRdB: 6, SpectralNormChange: 0.1, EffectiveRankChange: -1, DeltaEffectiveRank: 2}}},
		Summary: Summary{Compared: 1, MaxRelFro: 0.5, MeanRelFro: 0.5, MinSNRdB: 6, Worst: []Worst{{Layer: 3, Projection: "q", RelFro: 0.5, SNRdB: 6}}},
		OnlyInB: []string{"x|y"}}
	r.Check([]Threshold{{Metric: "rel_fro", Bound: Above, Limit: 0.1}})
	var b bytes.Buffer
	if err := r.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{"### ❌ qkv diff: FAIL: 1 projection of 1 failed", "- **A**: `a'b.gguf`", "| 3 | q | 0.5 | 0.9 | 1 | 6 | 10.00% | -1.00 | 2 |", "layers.3.q: rel_fro 0.5 > 0.1", "Only in B: `x|y`"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// Progress is told of every layer pair compared, ending at the total.
func TestCompareProgress(t *testing.T) {
	llama := filepath.Join(testref.SharedDir(t), "reference", "zoo", "llama")
	ma, ca := open(t, filepath.Join(llama, "hf"))
	defer ca.Close()
	mb, cb := open(t, filepath.Join(llama, "gguf", "llama-f32.gguf"))
	defer cb.Close()
	var calls [][2]int
	rep, err := Compare(context.Background(), ma, mb, Options{Progress: func(done, total int) { calls = append(calls, [2]int{done, total}) }})
	if err != nil {
		t.Fatal(err)
	}
	n := len(rep.Layers)
	if n == 0 || len(calls) != n || calls[n-1] != [2]int{n, n} {
		t.Errorf("progress calls %v for %d layers", calls, n)
	}
}
