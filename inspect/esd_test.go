package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect/esd"
	"github.com/qkvdev/qkv/internal/testref"
)

// esdRef is one matrix of reference/analysis (heavytail.json): the fields
// of section 1 of its README, with WeightWatcher's sentinels (−1) for the
// α-dependent fields of a failed fit.
type esdRef map[string]any

func (r esdRef) num(k string) (float64, bool) {
	v, ok := r[k].(float64)
	return v, ok
}

// compareESD checks an esd object against the reference with the README's
// tolerances (1.6): the counts, status and warning exactly; given the same
// xmin_index, α, σ, α̂, log α-norm, xmin and xmax to 1e-6 relative and D to
// 1e-6 absolute; the norm metrics to 1e-9 relative, entropy to 1e-6. For a
// failed fit every α-dependent field must be null.
func compareESD(got *esd.Result, want esdRef) []string {
	var bad []string
	fail := func(f string, a ...any) { bad = append(bad, fmt.Sprintf(f, a...)) }
	if got == nil {
		return []string{"no esd object"}
	}
	if got.Status != want["status"] {
		return []string{fmt.Sprintf("status %s, want %v", got.Status, want["status"])}
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"num_evals", got.NumEvals}, {"num_evals_fitted", got.NumEvalsFitted}, {"matrix_rank", got.MatrixRank}} {
		if w, _ := want.num(c.name); float64(c.v) != w {
			fail("%s %d, want %v", c.name, c.v, w)
		}
	}
	for _, c := range []struct {
		name string
		v    float64
		tol  float64
	}{{"norm", got.Norm, 1e-9}, {"log_norm", got.LogNorm, 1e-9}, {"spectral_norm", got.SpectralNorm, 1e-9},
		{"log_spectral_norm", got.LogSpectralNorm, 1e-9}, {"stable_rank", got.StableRank, 1e-9}, {"entropy", got.Entropy, 1e-6}} {
		if w, ok := want.num(c.name); !ok || relDiff(c.v, w) > c.tol {
			fail("%s %.17g, want %v (rel %.2g > %g)", c.name, c.v, want[c.name], relDiff(c.v, w), c.tol)
		}
	}
	if got.Status != esd.StatusSuccess {
		if got.Alpha != nil || got.D != nil || got.Xmin != nil || got.XminIndex != nil || got.Xmax != nil || got.NumPLSpikes != nil ||
			got.Sigma != nil || got.AlphaWeighted != nil || got.LogAlphaNorm != nil || got.Warning != nil || got.Reason == "" {
			fail("a failed fit with α-dependent values or without a reason: %+v", got)
		}
		return bad
	}
	if got.Warning == nil || *got.Warning != want["warning"] {
		fail("warning %v, want %v", got.Warning, want["warning"])
	}
	xi, _ := want.num("xmin_index")
	spikes, _ := want.num("num_pl_spikes")
	if got.XminIndex == nil || float64(*got.XminIndex) != xi || got.NumPLSpikes == nil || float64(*got.NumPLSpikes) != spikes {
		return append(bad, fmt.Sprintf("xmin_index %v num_pl_spikes %v, want %v %v", got.XminIndex, got.NumPLSpikes, xi, spikes))
	}
	for _, c := range []struct {
		name string
		v    *float64
	}{{"alpha", got.Alpha}, {"sigma", got.Sigma}, {"alpha_weighted", got.AlphaWeighted}, {"log_alpha_norm", got.LogAlphaNorm},
		{"xmin", got.Xmin}, {"xmax", got.Xmax}} {
		if w, ok := want.num(c.name); !ok || c.v == nil || relDiff(*c.v, w) > 1e-6 {
			fail("%s %v, want %v", c.name, c.v, want[c.name])
		}
	}
	if w, ok := want.num("D"); !ok || got.D == nil || math.Abs(*got.D-w) > 1e-6 {
		fail("D %v, want %v", got.D, want["D"])
	}
	return bad
}

// worstESD tracks the largest relative difference of α seen.
type worstESD struct {
	alpha float64
	at    string
	n     int
}

func (w *worstESD) add(name string, got *esd.Result, want esdRef) {
	w.n++
	if got == nil || got.Alpha == nil {
		return
	}
	if a, ok := want.num("alpha"); ok {
		if d := relDiff(*got.Alpha, a); d >= w.alpha {
			w.alpha, w.at = d, name
		}
	}
}

// TestESDZooThroughInspect: `inspect --esd` on every zoo model read from
// its Hugging Face files gives every matrix the heavy-tail metrics of
// reference/analysis/<arch>/heavytail.json, field by field within the
// reference's tolerances, and the alpha_low/alpha_high findings its α
// implies.
func TestESDZooThroughInspect(t *testing.T) {
	shared := testref.SharedDir(t)
	files, _ := filepath.Glob(filepath.Join(shared, "reference", "analysis", "*", "heavytail.json"))
	if len(files) < 8 {
		t.Fatalf("%d heavytail.json files under %s, want 8", len(files), shared)
	}
	var worst worstESD
	for _, f := range files {
		arch := filepath.Base(filepath.Dir(f))
		var doc struct {
			Matrices map[string]esdRef `json:"matrices"`
		}
		if err := testref.ReadJSON(f, &doc); err != nil {
			t.Fatal(err)
		}
		m := openModel(t, filepath.Join(shared, "reference", "zoo", arch, "hf"))
		rep, err := Run(context.Background(), m, Options{ESD: true, Heads: true, Workers: 2}, nil)
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		seen := 0
		for _, l := range rep.Layers {
			for _, p := range formats.Projections {
				mr := l.Matrix(p)
				key := fmt.Sprintf("layers.%d.%s", l.Index, p)
				want, ok := doc.Matrices[key]
				if mr == nil || !ok {
					t.Errorf("%s %s: report %v, reference %v", arch, key, mr != nil, ok)
					continue
				}
				seen++
				for _, b := range compareESD(mr.ESD, want) {
					t.Errorf("%s %s: %s", arch, key, b)
				}
				worst.add(arch+" "+key, mr.ESD, want)
				if mr.SV != nil {
					t.Errorf("%s %s: singular values kept without Options.Spectrum", arch, key)
				}
				checkAlphaFinding(t, arch+" "+key, rep.Findings, l.Index, string(p), mr.ESD)
			}
		}
		if seen != len(doc.Matrices) {
			t.Errorf("%s: compared %d matrices of the reference's %d", arch, seen, len(doc.Matrices))
		}
	}
	t.Logf("%d matrices; largest relative difference of α %.2g (%s)", worst.n, worst.alpha, worst.at)
}

// checkAlphaFinding: a fitted α below 2 or above 6 is a finding of that
// matrix, with α as its value; any other α none.
func checkAlphaFinding(t *testing.T, name string, fs []Finding, layer int, matrix string, e *esd.Result) {
	t.Helper()
	var got []Finding
	for _, f := range fs {
		if (f.Kind == KindAlphaLow || f.Kind == KindAlphaHigh) && f.Layer == layer && f.Matrix == matrix {
			got = append(got, f)
		}
	}
	want := ""
	if e != nil && e.Alpha != nil {
		switch {
		case *e.Alpha < DefaultAlphaLow:
			want = KindAlphaLow
		case *e.Alpha > DefaultAlphaHigh:
			want = KindAlphaHigh
		}
	}
	switch {
	case want == "" && len(got) > 0:
		t.Errorf("%s: finding %+v for α %v", name, got[0], *e.Alpha)
	case want != "" && (len(got) != 1 || got[0].Kind != want || float64(got[0].Value) != *e.Alpha):
		t.Errorf("%s: findings %+v, want one %s with α %v", name, got, want, *e.Alpha)
	}
}

// TestESDMatricesThroughMap: each larger matrix of reference/analysis/
// matrices, a lone tensor "weight" in a safetensors file without a
// config, is inspected as W_Q of layer 0 through the map q=^weight$ (no
// capture group: layer 0; no head counts needed without heads), and its
// heavy-tail metrics equal the reference's.
func TestESDMatricesThroughMap(t *testing.T) {
	shared := testref.SharedDir(t)
	files, _ := filepath.Glob(filepath.Join(shared, "reference", "analysis", "matrices", "*.heavytail.json"))
	if len(files) < 4 {
		t.Fatalf("%d matrices, want 4", len(files))
	}
	var worst worstESD
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".heavytail.json")
		var want esdRef
		if err := testref.ReadJSON(f, &want); err != nil {
			t.Fatal(err)
		}
		ck, err := formats.Open(strings.TrimSuffix(f, ".heavytail.json")+".safetensors", formats.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		m, err := formats.FindModel(ck, formats.FindOptions{Map: map[formats.Projection]*regexp.Regexp{formats.ProjQ: regexp.MustCompile(`^weight$`)}})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.HeadsKnown() == nil {
			t.Errorf("%s: head counts known without a config", name)
		}
		rep, err := Run(context.Background(), m, Options{ESD: true, Spectrum: true, Workers: 2}, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(rep.Layers) != 1 || rep.Layers[0].Index != 0 || rep.Layers[0].Q == nil || rep.Layers[0].K != nil || rep.Layers[0].O != nil {
			t.Fatalf("%s: layers %+v, want layer 0 with W_Q alone", name, rep.Layers)
		}
		q := rep.Layers[0].Q
		for _, b := range compareESD(q.ESD, want) {
			t.Errorf("%s: %s", name, b)
		}
		worst.add(name, q.ESD, want)
		if len(q.SV) != min(q.Shape[0], q.Shape[1]) {
			t.Errorf("%s: %d singular values kept with Options.Spectrum", name, len(q.SV))
		}
		for _, fl := range q.Flags {
			if fl == FlagTailApprox {
				t.Errorf("%s: an approximate tail with the heavy-tail metrics", name)
			}
		}
		checkAlphaFinding(t, name, rep.Findings, 0, "q", q.ESD)
	}
	t.Logf("%d matrices; largest relative difference of α %.2g (%s)", worst.n, worst.alpha, worst.at)
}

// TestESDOptions: the combination with fast mode is refused; an all-zero
// matrix gets a flag instead of metrics and a non-finite one neither; the
// thresholds are settings (absent without the option) and decide the
// findings and the esd warning.
func TestESDOptions(t *testing.T) {
	src := plantedModel()
	if _, err := Run(context.Background(), src, Options{ESD: true, Fast: true}, nil); !errors.Is(err, ErrESDFast) {
		t.Errorf("ESD with Fast: %v", err)
	}
	l, _ := src.LoadLayer(0)
	if _, err := AnalyzeLayer(l, src.Geometry(), Options{ESD: true, Fast: true}); !errors.Is(err, ErrESDFast) {
		t.Errorf("AnalyzeLayer, ESD with Fast: %v", err)
	}
	if _, err := Run(context.Background(), src, Options{ESD: true, Thresholds: Thresholds{AlphaLow: 7, AlphaHigh: 3}}, nil); err == nil {
		t.Errorf("α thresholds low 7 > high 3 accepted")
	}

	var plain, with bytes.Buffer
	rep, err := Run(context.Background(), src, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&plain); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"esd"`, `"alpha_low"`, `"alpha_high"`} {
		if strings.Contains(plain.String(), s) {
			t.Errorf("a report without Options.ESD holds %s", s)
		}
	}

	// Layer 1's o holds a NaN; zero out layer 3's k.
	zero := &testModel{g: src.g}
	for _, l := range src.layers {
		c := *l
		if c.Index == 3 {
			c.K = formats.NewMatrix(l.K.Rows, l.K.Cols)
		}
		zero.layers = append(zero.layers, &c)
	}
	rep, err = Run(context.Background(), zero, Options{ESD: true, Thresholds: Thresholds{AlphaLow: 3.5, AlphaHigh: 3.6}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteJSON(&with); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(with.String(), `"alpha_low": 3.5,`) || !strings.Contains(with.String(), `"alpha_high": 3.6`) || !rep.Settings.ESD {
		t.Errorf("settings do not record the α thresholds: %+v", rep.Settings)
	}
	if k := rep.Layers[3].K; k.ESD != nil || !slices.Contains(k.Flags, FlagESDZero) {
		t.Errorf("all-zero k: esd %+v flags %v", k.ESD, k.Flags)
	}
	if o := rep.Layers[1].O; o.ESD != nil || !slices.Contains(o.Flags, FlagSpectrumSkipped) || slices.Contains(o.Flags, FlagESDZero) {
		t.Errorf("o with a NaN: esd %+v flags %v", o.ESD, o.Flags)
	}
	low, high := 0, 0
	for _, l := range rep.Layers {
		for _, p := range formats.Projections {
			m := l.Matrix(p)
			if m.ESD == nil || m.ESD.Alpha == nil {
				continue
			}
			checkAlphaFindingAt(t, rep.Findings, l.Index, string(p), *m.ESD.Alpha, 3.5, 3.6)
			w := *m.ESD.Warning
			switch a := *m.ESD.Alpha; {
			case a < 3.5:
				low++
				if w != esd.WarningOverTrained {
					t.Errorf("layer %d %s: α %g, warning %q", l.Index, p, a, w)
				}
			case a > 3.6:
				high++
				if w != esd.WarningUnderTrained {
					t.Errorf("layer %d %s: α %g, warning %q", l.Index, p, a, w)
				}
			}
		}
	}
	if low == 0 || high == 0 {
		t.Errorf("thresholds 3.5 and 3.6 gave %d low and %d high α findings: the test lost its point", low, high)
	}
}

// checkAlphaFindingAt: one finding of the right kind for α outside
// [lo, hi], none inside.
func checkAlphaFindingAt(t *testing.T, fs []Finding, layer int, matrix string, alpha, lo, hi float64) {
	t.Helper()
	n := 0
	for _, f := range fs {
		if (f.Kind == KindAlphaLow || f.Kind == KindAlphaHigh) && f.Layer == layer && f.Matrix == matrix {
			n++
			if f.Kind == KindAlphaLow && !(alpha < lo && float64(f.Threshold) == lo) || f.Kind == KindAlphaHigh && !(alpha > hi && float64(f.Threshold) == hi) {
				t.Errorf("layer %d %s: %+v for α %g", layer, matrix, f, alpha)
			}
		}
	}
	if want := alpha < lo || alpha > hi; want != (n == 1) || n > 1 {
		t.Errorf("layer %d %s: %d α findings for α %g", layer, matrix, n, alpha)
	}
}

// TestESDExactTail: a rank-deficient 512×600 matrix, whose Gram spectrum
// resolves the values below the rank threshold only approximately
// (sv_tail_approximate without the option), is decomposed directly with
// Options.ESD, and its metrics are those of the exact spectrum — which the
// approximate one would have got wrong (matrix_rank counts its noise).
func TestESDExactTail(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	w := randMatrix(r, 512, 600, 1)
	clear(w.Data[100*600 : 164*600]) // 64 zero rows: rank 448
	src := &testModel{g: formats.Geometry{DModel: 600}, layers: []*formats.Layer{{Index: 0, Q: w}}}
	plain, err := Run(context.Background(), src, Options{Spectrum: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q := plain.Layers[0].Q; !slices.Contains(q.Flags, FlagTailApprox) || q.Method != MethodGram {
		t.Fatalf("without the metrics: method %s flags %v, want an approximate Gram tail (the case this test is about)", q.Method, q.Flags)
	}
	rep, err := Run(context.Background(), src, Options{Spectrum: true, ESD: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := rep.Layers[0].Q
	if slices.Contains(q.Flags, FlagTailApprox) || q.Method != MethodSVD || *q.Rank != 448 {
		t.Errorf("with the metrics: method %s flags %v rank %d", q.Method, q.Flags, *q.Rank)
	}
	exact := directSingularValues(w.Data, 512, 600)
	want, err := esd.Analyze(exact, 512, 600, esd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(q.ESD)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("esd %s\nwant (direct SVD) %s", gotJSON, wantJSON)
	}
	approx, err := esd.Analyze(plain.Layers[0].Q.SV, 512, 600, esd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if approx.MatrixRank == want.MatrixRank {
		t.Errorf("the approximate tail gives matrix_rank %d too: this test would not notice an approximate spectrum", approx.MatrixRank)
	}
	t.Logf("matrix_rank %d exact, %d from the approximate Gram tail", want.MatrixRank, approx.MatrixRank)
}
