package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/linalg"
)

// hadamard returns the n×n Sylvester Hadamard matrix scaled to be
// orthogonal (entries ±1/sqrt(n), exact in float32 for n a power of 4).
func hadamard(n int) []float64 {
	h := []float64{1}
	for size := 1; size < n; size *= 2 {
		next := make([]float64, 4*size*size)
		for i := 0; i < size; i++ {
			for j := 0; j < size; j++ {
				v := h[i*size+j]
				next[i*2*size+j] = v
				next[i*2*size+j+size] = v
				next[(i+size)*2*size+j] = v
				next[(i+size)*2*size+j+size] = -v
			}
		}
		h = next
	}
	s := 1 / math.Sqrt(float64(n))
	for i := range h {
		h[i] *= s
	}
	return h
}

// withSingularValues builds the m×n float32 matrix U diag(s) Vᵀ from columns
// of Hadamard matrices; with integer s its entries are exact in float32, so
// its singular values are exactly s.
func withSingularValues(m, n int, s []float64) formats.Matrix {
	hu, hv := hadamard(m), hadamard(n)
	w := formats.NewMatrix(m, n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var x float64
			for k, sk := range s {
				x += hu[i*m+k] * sk * hv[j*n+k]
			}
			if float64(float32(x)) != x {
				panic("inexact test matrix")
			}
			w.Data[i*n+j] = float32(x)
		}
	}
	return w
}

func TestKnownSingularValues(t *testing.T) {
	seq := func(k int, f func(i int) float64) []float64 {
		s := make([]float64, k)
		for i := range s {
			s[i] = f(i)
		}
		return s
	}
	cases := []struct {
		name   string
		m, n   int
		s      []float64
		rank   int
		method string
	}{
		{"square well-conditioned", 64, 64, seq(64, func(i int) float64 { return float64(200 - i) }), 64, MethodGram},
		{"wide well-conditioned", 64, 256, seq(64, func(i int) float64 { return float64(300 - 2*i) }), 64, MethodGram},
		{"tall well-conditioned", 256, 64, seq(64, func(i int) float64 { return float64(300 - 3*i) }), 64, MethodGram},
		{"ill-conditioned", 64, 64, seq(64, func(i int) float64 { return math.Ldexp(1, 20-i/3) }), 51, MethodSVD},
		{"rank 10 of 64", 64, 256, seq(64, func(i int) float64 {
			if i < 10 {
				return float64(100 - i)
			}
			return 0
		}), 10, MethodSVD},
		{"small", 16, 64, seq(16, func(i int) float64 { return float64(16 - i) }), 16, MethodSVD},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := withSingularValues(c.m, c.n, c.s)
			st := MatrixStats(w, StatsOptions{KeepSV: true})
			if st.Method != c.method {
				t.Errorf("method %q, want %q", st.Method, c.method)
			}
			if *st.Rank != c.rank {
				t.Errorf("rank %d, want %d", *st.Rank, c.rank)
			}
			for i, want := range c.s {
				got := st.SV[i]
				if want == 0 {
					if got > 1e-12*c.s[0] {
						t.Errorf("sv[%d] = %g, want 0", i, got)
					}
				} else if relDiff(got, want) > 1e-9 {
					t.Errorf("sv[%d] = %.17g, want %g", i, got, want)
				}
			}
			var fro2, sum float64
			for _, v := range c.s {
				fro2 += v * v
				sum += v
			}
			if relDiff(float64(st.Fro), math.Sqrt(fro2)) > 1e-12 {
				t.Errorf("fro %g, want %g", float64(st.Fro), math.Sqrt(fro2))
			}
			if relDiff(float64(st.StableRank), fro2/(c.s[0]*c.s[0])) > 1e-9 {
				t.Errorf("stable rank %g", float64(st.StableRank))
			}
			var h float64
			for _, v := range c.s {
				if v > 0 {
					h -= v / sum * math.Log(v/sum)
				}
			}
			if relDiff(float64(st.EffectiveRank), math.Exp(h)) > 1e-9 {
				t.Errorf("effective rank %g, want %g", float64(st.EffectiveRank), math.Exp(h))
			}
		})
	}
}

func TestRankTolOverride(t *testing.T) {
	s := []float64{64, 32, 16, 8, 4, 2, 1}
	w := withSingularValues(16, 16, append(s, make([]float64, 9)...))
	for _, c := range []struct {
		tol  float64
		rank int
	}{{0, 7}, {3, 5}, {16, 2}, {15.9, 3}, {100, 0}} {
		st := MatrixStats(w, StatsOptions{RankTol: c.tol})
		if *st.Rank != c.rank {
			t.Errorf("tol %g: rank %d, want %d", c.tol, *st.Rank, c.rank)
		}
		if st.SV != nil {
			t.Errorf("SV kept without keepSV")
		}
	}
}

func TestNonFinite(t *testing.T) {
	cases := []struct {
		name  string
		vals  []float32
		nan   int
		inf   int
		zero  int
		flags []string
	}{
		{"nan", []float32{1, float32(math.NaN()), 0, 2}, 1, 0, 1, []string{FlagNaN, FlagSpectrumSkipped}},
		{"inf", []float32{1, float32(math.Inf(-1)), 0, 0}, 0, 1, 2, []string{FlagInf, FlagSpectrumSkipped}},
		{"both", []float32{float32(math.NaN()), float32(math.Inf(1)), 3, 4}, 1, 1, 0, []string{FlagNaN, FlagInf, FlagSpectrumSkipped}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := MatrixStats(formats.Matrix{Rows: 2, Cols: 2, Data: c.vals}, StatsOptions{KeepSV: true})
			if st.NaNCount != c.nan || st.InfCount != c.inf || st.ZeroCount != c.zero {
				t.Errorf("counts %d/%d/%d", st.NaNCount, st.InfCount, st.ZeroCount)
			}
			if fmt.Sprint(st.Flags) != fmt.Sprint(c.flags) {
				t.Errorf("flags %v, want %v", st.Flags, c.flags)
			}
			b, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("invalid JSON %s: %v", b, err)
			}
			for _, k := range []string{"fro", "max_abs", "mean", "std", "spectral_norm", "rank", "effective_rank", "stable_rank", "condition"} {
				if v, ok := back[k]; !ok || v != nil {
					t.Errorf("%s = %v, want null", k, v)
				}
			}
		})
	}
}

func TestMalformedMatrix(t *testing.T) {
	for _, w := range []formats.Matrix{
		{Rows: -1, Cols: 0},
		{Rows: 2, Cols: 3, Data: make([]float32, 5)},
		{Rows: 0, Cols: 7},
	} {
		s := MatrixStats(w, StatsOptions{KeepSV: true})
		if s.Shape != [2]int{0, 0} && s.Shape != [2]int{0, 7} {
			t.Errorf("%+v: shape %v", w, s.Shape)
		}
		l := &formats.Layer{Q: w, K: w, V: w, O: w}
		if _, err := AnalyzeLayer(l, formats.Geometry{NHeads: 1, NKVHeads: 1, HeadDim: 1}, Options{Heads: true}); err == nil {
			t.Errorf("%+v: no error", w)
		}
	}
}

func TestSingularCondition(t *testing.T) {
	st := MatrixStats(formats.Matrix{Rows: 2, Cols: 2, Data: []float32{1, 2, 2, 4}}, StatsOptions{})
	if *st.Rank != 1 || st.Condition.Valid() && float64(st.Condition) < 1e13 {
		t.Errorf("rank %d condition %v", *st.Rank, float64(st.Condition))
	}
	z := MatrixStats(formats.NewMatrix(3, 5), StatsOptions{})
	if *z.Rank != 0 || z.Condition.Valid() || z.ZeroCount != 15 || float64(z.Fro) != 0 {
		t.Errorf("zero matrix: %+v", z)
	}
}

// testModel is an in-memory LayerSource.
type testModel struct {
	g      formats.Geometry
	layers []*formats.Layer
	loads  atomic.Int32
}

func (m *testModel) Geometry() formats.Geometry { return m.g }
func (m *testModel) LayerIndices() []int {
	var out []int
	for _, l := range m.layers {
		out = append(out, l.Index)
	}
	return out
}
func (m *testModel) LoadLayer(i int) (*formats.Layer, error) {
	m.loads.Add(1)
	for _, l := range m.layers {
		if l.Index == i {
			c := *l
			return &c, nil
		}
	}
	return nil, fmt.Errorf("no layer %d", i)
}

func randMatrix(r *rand.Rand, m, n int, std float64) formats.Matrix {
	w := formats.NewMatrix(m, n)
	for i := range w.Data {
		w.Data[i] = float32(r.NormFloat64() * std)
	}
	return w
}

// plantedModel has 5 layers with a dead head, a duplicated head, a rank-1
// head, a NaN and an outlier W_O.
func plantedModel() *testModel {
	g := formats.Geometry{Arch: "test", DModel: 64, NLayers: 5, NHeads: 4, NKVHeads: 2, HeadDim: 16}
	r := rand.New(rand.NewSource(7))
	m := &testModel{g: g}
	for i := 0; i < 5; i++ {
		l := &formats.Layer{Index: i,
			Q: randMatrix(r, 64, 64, 0.1), K: randMatrix(r, 32, 64, 0.1),
			V: randMatrix(r, 32, 64, 0.06), O: randMatrix(r, 64, 64, 0.06)}
		m.layers = append(m.layers, l)
	}
	// layer 0: q head 2 dead; k head 1 = k head 0 + 0.1% noise.
	l0 := m.layers[0]
	clear(l0.Q.Data[2*16*64 : 3*16*64])
	for i := 0; i < 16*64; i++ {
		l0.K.Data[16*64+i] = l0.K.Data[i] * float32(1+0.001*r.NormFloat64())
	}
	// layer 1: v head 0 rank 1; one NaN in o.
	l1 := m.layers[1]
	for i := 0; i < 16; i++ {
		for j := 0; j < 64; j++ {
			l1.V.Data[i*64+j] = float32((float64(i) + 1) * (float64(j%7) - 3) * 0.001)
		}
	}
	l1.O.Data[5] = float32(math.NaN())
	// layer 2: o scaled ×100.
	for i := range m.layers[2].O.Data {
		m.layers[2].O.Data[i] *= 100
	}
	return m
}

func TestRunFindings(t *testing.T) {
	src := plantedModel()
	var order []int
	var progress []int
	rep, err := Run(context.Background(), src, Options{Heads: true, Workers: 2, Progress: func(d, n int) { progress = append(progress, d) }},
		func(l LayerReport) error { order = append(order, l.Index); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(order) != "[0 1 2 3 4]" || fmt.Sprint(progress) != "[1 2 3 4 5]" {
		t.Errorf("emit order %v progress %v", order, progress)
	}
	type key struct {
		kind, matrix string
		layer, head  int
	}
	got := map[key]bool{}
	for _, f := range rep.Findings {
		h := -1
		if f.Head != nil {
			h = *f.Head
		}
		got[key{f.Kind, f.Matrix, f.Layer, h}] = true
	}
	want := []key{
		{KindDeadHead, "q", 0, 2},
		{KindDuplicateHeads, "k", 0, 0},
		{KindRankCollapsed, "v", 1, 0},
		{KindNaN, "o", 1, -1},
		{KindNaN, "o", 1, 0},
		{KindOutlierNorm, "o", 2, -1},
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing finding %+v", w)
		}
		delete(got, w)
	}
	for k := range got {
		t.Errorf("unexpected finding %+v", k)
	}
	// Circuits: one per query head, with the GQA group.
	c := rep.Layers[0].Circuits
	if len(c) != 4 || c[3].KVHead != 1 || c[1].KVHead != 0 {
		t.Fatalf("circuits %+v", c)
	}
	// The dead head's QK circuit is zero.
	if float64(c[2].QK.SpectralNorm) != 0 {
		t.Errorf("dead head QK norm %v", float64(c[2].QK.SpectralNorm))
	}
	if rep.Layers[1].Circuits != nil {
		t.Errorf("circuits computed for a layer with NaN")
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`:\s*-?(NaN|Inf)`).MatchString(buf.String()) {
		t.Errorf("non-finite number in JSON")
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema"] != Schema {
		t.Errorf("schema %v", doc["schema"])
	}
	l0 := doc["layers"].([]any)[0].(map[string]any)
	q := l0["q"].(map[string]any)
	for _, k := range []string{"shape", "fro", "max_abs", "mean", "std", "nan_count", "inf_count", "zero_count", "spectral_norm", "rank", "effective_rank", "stable_rank", "condition", "heads"} {
		if _, ok := q[k]; !ok {
			t.Errorf("q lacks %q", k)
		}
	}
	if _, ok := q["sv"]; ok {
		t.Errorf("sv present without Spectrum")
	}
}

// checks a circuit's singular values against the explicitly formed product.
func TestCircuitsAgainstExplicit(t *testing.T) {
	src := plantedModel()
	l := src.layers[2]
	g := src.g
	lr, err := AnalyzeLayer(l, g, Options{Heads: true})
	if err != nil {
		t.Fatal(err)
	}
	d, hd := g.DModel, g.HeadDim
	for h := 0; h < g.NHeads; h++ {
		kv := g.KVHead(h)
		qk := make([]float64, d*d)
		ov := make([]float64, d*d)
		for i := 0; i < d; i++ {
			for j := 0; j < d; j++ {
				var s, u float64
				for t := 0; t < hd; t++ {
					s += float64(l.Q.At(h*hd+t, i)) * float64(l.K.At(kv*hd+t, j))
					u += float64(l.O.At(i, h*hd+t)) * float64(l.V.At(kv*hd+t, j))
				}
				qk[i*d+j], ov[i*d+j] = s, u
			}
		}
		for name, c := range map[string]struct {
			m   []float64
			got CircuitStats
		}{"qk": {qk, lr.Circuits[h].QK}, "ov": {ov, lr.Circuits[h].OV}} {
			sv := linalg.SingularValues(c.m, d, d)
			if relDiff(float64(c.got.SpectralNorm), sv[0]) > 1e-9 {
				t.Errorf("head %d %s norm %g, want %g", h, name, float64(c.got.SpectralNorm), sv[0])
			}
			// Only the first hd values are non-zero; the rest are rounding noise.
			if relDiff(float64(c.got.EffectiveRank), effectiveRank(sv[:hd])) > 1e-9 {
				t.Errorf("head %d %s effective rank %g, want %g", h, name, float64(c.got.EffectiveRank), effectiveRank(sv[:hd]))
			}
		}
	}
}

func TestRunErrors(t *testing.T) {
	src := plantedModel()
	src.layers[1].Q = formats.NewMatrix(60, 64) // not n_heads × head_dim
	_, err := Run(context.Background(), src, Options{Heads: true, Workers: 2}, nil)
	if err == nil || !strings.Contains(err.Error(), "layer 1") {
		t.Errorf("err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, plantedModel(), Options{}, nil); err == nil {
		t.Errorf("cancelled run succeeded")
	}
	stop := fmt.Errorf("stop")
	if _, err := Run(context.Background(), plantedModel(), Options{}, func(LayerReport) error { return stop }); err != stop {
		t.Errorf("emit error %v", err)
	}
}

// A large rank-deficient matrix takes the Gram route with an approximate
// tail: rank exact, values above the rank threshold exact to 1e-9.
func TestApproximateTail(t *testing.T) {
	const n = 1024
	h := hadamard(n)
	s := make([]float64, n)
	for i := 0; i < 900; i++ {
		s[i] = float64(1024 - i)
	}
	us := make([]float64, n*n) // rows of U·diag(s)
	vt := make([]float64, n*n) // rows of V
	for i := 0; i < n; i++ {
		for k := 0; k < n; k++ {
			us[i*n+k] = h[i*n+k] * s[k]
			vt[i*n+k] = h[i*n+k]
		}
	}
	a := make([]float64, n*n)
	if err := linalg.Mul(a, n, 1, linalg.RowMajor(us, n, n, n), linalg.RowMajor(vt, n, n, n).T(), 0, linalg.MulOptions{}); err != nil {
		t.Fatal(err)
	}
	w := formats.NewMatrix(n, n)
	for i, v := range a {
		if float64(float32(v)) != v {
			t.Fatalf("inexact entry %d: %v", i, v)
		}
		w.Data[i] = float32(v)
	}
	st := MatrixStats(w, StatsOptions{KeepSV: true})
	if st.Method != MethodGram || *st.Rank != 900 || st.Condition.Valid() {
		t.Fatalf("method %s rank %d condition %v flags %v", st.Method, *st.Rank, float64(st.Condition), st.Flags)
	}
	if fmt.Sprint(st.Flags) != fmt.Sprint([]string{FlagTailApprox, FlagEffectiveRankApprox}) {
		t.Errorf("flags %v", st.Flags)
	}
	for i := 0; i < 900; i++ {
		if relDiff(st.SV[i], s[i]) > 1e-9 {
			t.Fatalf("sv[%d] = %.17g, want %g", i, st.SV[i], s[i])
		}
	}
	for i := 900; i < n; i++ {
		if st.SV[i] > 1e-6*s[0] {
			t.Fatalf("tail sv[%d] = %g", i, st.SV[i])
		}
	}
	// SingularValues itself never returns an approximate tail.
	if _, method := SingularValues(w.Data, n, n); method != MethodSVD {
		t.Errorf("SingularValues used %s", method)
	}
}
