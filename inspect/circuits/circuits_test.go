package circuits

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
)

// synth is a random model held in memory.
type synth struct {
	geo    formats.Geometry
	layers []*formats.Layer
	loads  int
}

func (s *synth) Geometry() formats.Geometry { return s.geo }
func (s *synth) LayerIndices() []int {
	idx := make([]int, len(s.layers))
	for i, l := range s.layers {
		idx[i] = l.Index
	}
	return idx
}
func (s *synth) LoadLayer(i int) (*formats.Layer, error) {
	s.loads++
	for _, l := range s.layers {
		if l.Index == i {
			c := *l
			return &c, nil
		}
	}
	return nil, errors.New("no such layer")
}

func randMatrix(r *rand.Rand, rows, cols int) formats.Matrix {
	m := formats.NewMatrix(rows, cols)
	for i := range m.Data {
		m.Data[i] = float32(r.NormFloat64())
	}
	return m
}

// newSynth builds a random model; layer indices start at first.
func newSynth(seed int64, nl, dm, h, kv, d, dv, first int, norm bool) *synth {
	r := rand.New(rand.NewSource(seed))
	s := &synth{geo: formats.Geometry{DModel: dm, NLayers: nl, NHeads: h, NKVHeads: kv, HeadDim: d, Norm: formats.NormNone}}
	if dv != d {
		s.geo.VHeadDim = dv
	}
	if norm {
		s.geo.PreNorm, s.geo.Norm = true, formats.NormLayerNorm
	}
	for i := range nl {
		l := &formats.Layer{Index: first + i, Q: randMatrix(r, h*d, dm), K: randMatrix(r, kv*d, dm),
			V: randMatrix(r, kv*dv, dm), O: randMatrix(r, dm, h*dv)}
		if norm {
			l.NormWeight = make([]float32, dm)
			for j := range l.NormWeight {
				l.NormWeight[j] = float32(0.5 + r.Float64())
			}
		}
		s.layers = append(s.layers, l)
	}
	return s
}

// dense is a float64 row-major matrix for the brute-force check.
type dense struct {
	r, c int
	v    []float64
}

func (a dense) mul(b dense) dense {
	out := dense{a.r, b.c, make([]float64, a.r*b.c)}
	for i := range a.r {
		for k := range a.c {
			x := a.v[i*a.c+k]
			for j := range b.c {
				out.v[i*b.c+j] += x * b.v[k*b.c+j]
			}
		}
	}
	return out
}

func (a dense) t() dense {
	out := dense{a.c, a.r, make([]float64, len(a.v))}
	for i := range a.r {
		for j := range a.c {
			out.v[j*a.r+i] = a.v[i*a.c+j]
		}
	}
	return out
}

func (a dense) fro() float64 {
	var s float64
	for _, x := range a.v {
		s += x * x
	}
	return math.Sqrt(s)
}

// block returns rows [r0, r1) and columns [c0, c1) of m, columns scaled by
// gamma when given.
func block(m formats.Matrix, r0, r1, c0, c1 int, gamma []float32) dense {
	out := dense{r1 - r0, c1 - c0, make([]float64, (r1-r0)*(c1-c0))}
	for i := r0; i < r1; i++ {
		for j := c0; j < c1; j++ {
			x := float64(m.At(i, j))
			if gamma != nil {
				x *= float64(gamma[j])
			}
			out.v[(i-r0)*out.c+j-c0] = x
		}
	}
	return out
}

// bruteForce computes one variant's scores straight from the definition,
// forming every d_model × d_model circuit.
func bruteForce(s *synth, fold bool) (q, k, v Array4) {
	g := s.geo
	dv := g.HeadDim
	if g.VHeadDim > 0 {
		dv = g.VHeadDim
	}
	n, h, d, dm := len(s.layers), g.NHeads, g.HeadDim, g.DModel
	grp := h / g.NKVHeads
	ov := make([][]dense, n)
	qk := make([][]dense, n)
	for li, l := range s.layers {
		var gamma []float32
		if fold {
			gamma = l.NormWeight
		}
		for hh := range h {
			gg := hh / grp
			wq := block(l.Q, hh*d, (hh+1)*d, 0, dm, gamma)
			wk := block(l.K, gg*d, (gg+1)*d, 0, dm, gamma)
			wv := block(l.V, gg*dv, (gg+1)*dv, 0, dm, gamma)
			wo := block(l.O, 0, dm, hh*dv, (hh+1)*dv, nil)
			ov[li] = append(ov[li], wo.mul(wv))
			qk[li] = append(qk[li], wq.t().mul(wk))
		}
	}
	q, k, v = newArray4(n, h), newArray4(n, h), newArray4(n, h)
	for l1 := range n {
		for h1 := range h {
			a := ov[l1][h1]
			for l2 := l1 + 1; l2 < n; l2++ {
				for h2 := range h {
					b := qk[l2][h2]
					q[l1][h1][l2][h2] = b.t().mul(a).fro() / (a.fro() * b.fro())
					k[l1][h1][l2][h2] = b.mul(a).fro() / (a.fro() * b.fro())
					o := ov[l2][h2]
					v[l1][h1][l2][h2] = o.mul(a).fro() / (a.fro() * o.fro())
				}
			}
		}
	}
	return q, k, v
}

// TestBruteForce checks shapes the zoo lacks — v_head_dim ≠ head_dim,
// head_dim > d_model/n_heads, several groups, layer indices not from 0 —
// against circuits formed in full.
func TestBruteForce(t *testing.T) {
	tests := []struct {
		name                        string
		nl, dm, h, kv, d, dv, first int
	}{
		{"mha", 3, 24, 4, 4, 6, 6, 0},
		{"gqa, v_head_dim", 3, 20, 6, 2, 5, 3, 7},
		{"head_dim > d_model", 2, 8, 2, 1, 12, 10, 0},
	}
	defer func(c int) { chunkBytes = c }(chunkBytes)
	for _, tc := range tests {
		for _, chunk := range []int{chunkBytes, 1} {
			t.Run(fmt.Sprintf("%s/chunk %d", tc.name, chunk), func(t *testing.T) {
				// chunk 1: one earlier head at a time.
				chunkBytes = chunk
				s := newSynth(int64(tc.dm), tc.nl, tc.dm, tc.h, tc.kv, tc.d, tc.dv, tc.first, true)
				res, err := Compute(context.Background(), s, Options{BaselineSamples: -1})
				if err != nil {
					t.Fatal(err)
				}
				for vi, sc := range []*Scores{res.Raw, res.LNFolded} {
					q, k, v := bruteForce(s, vi == 1)
					for _, c := range []struct {
						name      string
						got, want Array4
					}{{"Q", sc.Q, q}, {"K", sc.K, k}, {"V", sc.V, v}} {
						worst := 0.0
						for l1 := range c.want {
							for h1 := range c.want[l1] {
								for l2 := range c.want[l1][h1] {
									for h2, w := range c.want[l1][h1][l2] {
										g := c.got[l1][h1][l2][h2]
										e := math.Abs(g - w)
										if w != 0 {
											e /= w
										}
										worst = max(worst, e)
									}
								}
							}
						}
						if worst > 1e-12 {
							t.Errorf("variant %d %s: worst relative error %.3g", vi, c.name, worst)
						}
					}
				}
				if res.Layers[0] != tc.first {
					t.Errorf("layers %v, want from %d", res.Layers, tc.first)
				}
			})
		}
	}
}

// TestPasses: a memory bound of one layer gives the same scores, decoding
// later layers once per earlier layer.
func TestPasses(t *testing.T) {
	s := newSynth(3, 4, 16, 2, 1, 8, 8, 0, true)
	one, err := Compute(context.Background(), s, Options{BaselineSamples: -1})
	if err != nil {
		t.Fatal(err)
	}
	if s.loads != 4 {
		t.Errorf("%d loads in one pass, want 4", s.loads)
	}
	s.loads = 0
	many, err := Compute(context.Background(), s, Options{BaselineSamples: -1, MaxMemory: 1})
	if err != nil {
		t.Fatal(err)
	}
	if s.loads != 4+3+2 {
		t.Errorf("%d loads with one layer per pass, want 9", s.loads)
	}
	a, _ := json.Marshal(one)
	b, _ := json.Marshal(many)
	if string(a) != string(b) {
		t.Errorf("results differ with passes")
	}
}

func TestDeadHeadAndMissingNorm(t *testing.T) {
	s := newSynth(5, 2, 16, 2, 2, 8, 8, 0, true)
	// Head 1 of layer 0 writes nothing: its W_O columns are zero.
	o := s.layers[0].O
	for i := range o.Rows {
		for j := 8; j < 16; j++ {
			o.Data[i*o.Cols+j] = 0
		}
	}
	s.layers[1].NormWeight = nil
	res, err := Compute(context.Background(), s, Options{BaselineSamples: -1})
	if err != nil {
		t.Fatal(err)
	}
	if res.LNFolded != nil || res.FoldedNorm != "none" {
		t.Errorf("ln_folded computed without layer 1's norm weight")
	}
	only, err := Compute(context.Background(), newSynth(5, 2, 16, 2, 2, 8, 8, 0, true), Options{BaselineSamples: -1, RawOnly: true})
	if err != nil || only.LNFolded != nil || only.FoldedNorm != "none" {
		t.Errorf("raw only: %v, ln_folded %v, %q", err, only.LNFolded, only.FoldedNorm)
	}
	if !math.IsNaN(res.Raw.Q[0][1][1][0]) || math.IsNaN(res.Raw.Q[0][0][1][0]) {
		t.Errorf("scores of the dead head: %v, of a live one: %v", res.Raw.Q[0][1][1], res.Raw.Q[0][0][1])
	}
	if res.Undefined != 3*2 {
		t.Errorf("undefined %d, want 6 (Q, K, V of head 1 with 2 later heads)", res.Undefined)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `[null,null]`) || !strings.Contains(string(b), `"ln_folded":null`) {
		t.Errorf("JSON: %.300s", b)
	}
	joined := strings.Join(res.Warnings, "\n")
	if !strings.Contains(joined, "layer 1 has no pre-attention norm weight") || !strings.Contains(joined, "6 scores are undefined") {
		t.Errorf("warnings %q", res.Warnings)
	}
	var back struct {
		Raw Scores `json:"raw"`
	}
	if err := json.Unmarshal(b, &back); err != nil || !math.IsNaN(back.Raw.Q[0][1][1][0]) || back.Raw.Q[0][0][1][0] != res.Raw.Q[0][0][1][0] {
		t.Errorf("JSON round trip: %v", err)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(s *synth)
		match string
	}{
		{"heads not a multiple", func(s *synth) { s.geo.NKVHeads = 3 }, "not a multiple"},
		{"no d_model", func(s *synth) { s.geo.DModel = 0 }, "must all be positive"},
		{"short q", func(s *synth) { s.layers[1].Q.Rows-- }, "layer 1 q is 15×16"},
		{"o narrow", func(s *synth) { s.layers[0].O = formats.NewMatrix(16, 12) }, "layer 0 o is 16×12 (192 values), want 16×16"},
		{"nan", func(s *synth) { s.layers[1].V.Data[17] = float32(math.NaN()) }, "layer 1 v holds NaN at row 1, column 1"},
		{"norm length", func(s *synth) { s.layers[0].NormWeight = s.layers[0].NormWeight[:3] }, "norm weight has 3 values"},
		{"norm inf", func(s *synth) { s.layers[0].NormWeight[2] = float32(math.Inf(-1)) }, "norm weight 2 is -Inf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSynth(9, 2, 16, 2, 2, 8, 8, 0, true)
			tc.edit(s)
			_, err := Compute(context.Background(), s, Options{BaselineSamples: -1})
			if err == nil || !strings.Contains(err.Error(), tc.match) {
				t.Fatalf("error %v, want %q", err, tc.match)
			}
		})
	}
	huge := newSynth(9, 2, 16, 2, 2, 8, 8, 0, false)
	huge.geo.NHeads, huge.geo.NKVHeads, huge.geo.HeadDim = 1<<20, 1<<20, 1
	if _, err := Compute(context.Background(), huge, Options{}); err == nil || !strings.Contains(err.Error(), "GiB of score arrays") {
		t.Errorf("a million heads: %v", err)
	}
	huge.geo.NHeads, huge.geo.NKVHeads, huge.geo.HeadDim = 2, 2, 1<<20
	if _, err := Compute(context.Background(), huge, Options{}); err == nil || !strings.Contains(err.Error(), "GiB of work space") {
		t.Errorf("head_dim 2^20: %v", err)
	}
	huge.geo.NHeads, huge.geo.NKVHeads = 1<<30, 1<<30
	if _, err := Compute(context.Background(), huge, Options{}); err == nil || !strings.Contains(err.Error(), "a dimension above") {
		t.Errorf("2^30 heads: %v", err)
	}
	s := newSynth(9, 3, 16, 2, 2, 8, 8, 0, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Compute(ctx, s, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// TestBaseline: the mean is near 1/√d_model and the sampling is seeded.
func TestBaseline(t *testing.T) {
	a, err := RandomBaseline(context.Background(), 256, 16, 200, 4)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := RandomBaseline(context.Background(), 256, 16, 200, 4)
	if *a != *b {
		t.Errorf("same seed, different baselines")
	}
	if math.Abs(a.Mean-1/16.0) > 0.1/16 || a.Std <= 0 || a.Stderr != a.Std/math.Sqrt(200) {
		t.Errorf("baseline %+v, want a mean near 1/16", a)
	}
	if _, err := RandomBaseline(context.Background(), 0, 16, 1, 0); err == nil {
		t.Errorf("no error for d_model 0")
	}
}

// TestTopAndLayers: Layers serves decoded layers; Top orders the scores.
func TestTopAndLayers(t *testing.T) {
	s := newSynth(11, 3, 16, 2, 1, 8, 8, 4, false)
	res, err := Compute(context.Background(), Layers(s.geo, s.layers), Options{BaselineSamples: -1})
	if err != nil {
		t.Fatal(err)
	}
	top := res.Raw.Top(res.Layers, 1000)
	if len(top) != 3*3*2*2 {
		t.Fatalf("%d pairs, want 36 (3 modes × 3 layer pairs × 2 × 2 heads)", len(top))
	}
	for i, p := range top {
		pos := func(l int) int { return l - 4 }
		var a Array4
		switch p.Mode {
		case "Q":
			a = res.Raw.Q
		case "K":
			a = res.Raw.K
		default:
			a = res.Raw.V
		}
		if p.Layer1 >= p.Layer2 || a[pos(p.Layer1)][p.Head1][pos(p.Layer2)][p.Head2] != p.Score {
			t.Errorf("pair %d %+v does not match the arrays", i, p)
		}
		if i > 0 && p.Score > top[i-1].Score {
			t.Errorf("pair %d out of order", i)
		}
	}
	if got := res.Raw.Top(res.Layers, 2); len(got) != 2 || got[0] != top[0] {
		t.Errorf("Top(2) = %v", got)
	}
}

// TestNorms: ‖OV‖ and ‖QK‖ against the circuits formed in full, for a model
// of one layer (no pairs) and of two.
func TestNorms(t *testing.T) {
	for _, nl := range []int{1, 2} {
		s := newSynth(13, nl, 12, 3, 1, 4, 5, 0, true)
		res, err := Compute(context.Background(), s, Options{BaselineSamples: -1})
		if err != nil {
			t.Fatal(err)
		}
		for vi, sc := range []*Scores{res.Raw, res.LNFolded} {
			for li, l := range s.layers {
				var gamma []float32
				if vi == 1 {
					gamma = l.NormWeight
				}
				for h := range 3 {
					wq := block(l.Q, h*4, (h+1)*4, 0, 12, gamma)
					wk := block(l.K, 0, 4, 0, 12, gamma)
					wv := block(l.V, 0, 5, 0, 12, gamma)
					wo := block(l.O, 0, 12, h*5, (h+1)*5, nil)
					ov, qk := wo.mul(wv).fro(), wq.t().mul(wk).fro()
					if math.Abs(sc.OVNorm[li][h]-ov) > 1e-12*ov || math.Abs(sc.QKNorm[li][h]-qk) > 1e-12*qk {
						t.Errorf("%d layers, variant %d, layer %d head %d: ov %v qk %v, want %v %v", nl, vi, li, h, sc.OVNorm[li][h], sc.QKNorm[li][h], ov, qk)
					}
				}
			}
		}
	}
}
