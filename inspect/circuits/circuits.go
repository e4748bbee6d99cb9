// Package circuits computes the composition scores of Elhage et al. (2021)
// between every pair of attention heads in an earlier and a later layer, as
// TransformerLens defines them (HookedTransformer.all_composition_scores),
// from the weights alone: raw, and with each layer's pre-attention norm
// weight folded into its W_Q, W_K and W_V; and the score two random
// low-rank matrices get, the baseline to read them against.
//
// # Definitions
//
// Per layer, query head h reads KV group g = h / (n_heads / n_kv_heads);
// W_Q^h, W_K^g, W_V^g are row blocks (head_dim rows; v_head_dim for V) of the
// projections and W_O^h the matching column block of W_O (the layout of
// DESIGN.md). The circuits, d_model × d_model, are
//
//	OV_h = W_O^h · W_V^g        (head output = OV·x)
//	QK_h = W_Q^hᵀ · W_K^g       (attention logit = x_qᵀ·QK·x_k)
//
// For an earlier head (l1, h1) with A = OV_{l1,h1} and a later head (l2, h2),
// l1 < l2, with ‖·‖ the Frobenius norm:
//
//	Q[l1][h1][l2][h2] = ‖QK_{l2,h2}ᵀ · A‖ / (‖A‖·‖QK_{l2,h2}‖)   its output feeds the query
//	K[l1][h1][l2][h2] = ‖QK_{l2,h2} · A‖ / (‖A‖·‖QK_{l2,h2}‖)    ... the key
//	V[l1][h1][l2][h2] = ‖OV_{l2,h2} · A‖ / (‖A‖·‖OV_{l2,h2}‖)    ... the value
//
// and 0 where l2 ≤ l1. Biases, the 1/√d scale, RoPE, ALiBi and softmax play
// no part. ln_folded replaces W_Q, W_K, W_V of layer l by W·diag(γ_l), γ_l the
// weight of the layer's pre-attention norm (no mean-centering, norm biases
// ignored; W_O unchanged); a post-norm model (no norm before attention) has
// ln_folded equal to raw. A score whose denominator is zero (a head whose
// circuit is zero) is undefined: null in JSON.
//
// The baseline is the mean score ‖W_A·W_B‖/(‖W_A‖·‖W_B‖) of W_A = A_l·A_rᵀ,
// W_B = B_l·B_rᵀ with A_l, A_r, B_l, B_r d_model × head_dim of i.i.d.
// uniform entries (the method of ARENA's exercises; the score does not
// depend on the scale), about 1/√d_model.
//
// # How it is computed
//
// Never through a d_model × d_model matrix. For a matrix W of r rows, F is
// an r × r factor of its Gram matrix, FᵀF = W·Wᵀ (pivoted Cholesky of the
// Gram matrix accumulated in float64), so that ‖X·W‖ = ‖X·Fᵀ‖ and
// ‖Wᵀ·Y‖ = ‖F·Y‖ for any X, Y. Then, with g1, g2 the groups of h1, h2,
//
//	‖QK₂ᵀ·A‖ = ‖F(W_K^g2) · (W_Q^h2 · W_O^h1) · F(W_V^g1)ᵀ‖
//	‖QK₂·A‖  = ‖F(W_Q^h2) · (W_K^g2 · W_O^h1) · F(W_V^g1)ᵀ‖
//	‖OV₂·A‖  = ‖F(W_O^h2ᵀ) · (W_V^g2 · W_O^h1) · F(W_V^g1)ᵀ‖
//	‖A‖ = ‖F(W_O^h1ᵀ)·F(W_V^g1)ᵀ‖,  ‖QK‖ = ‖F(W_Q^h)·F(W_K^g)ᵀ‖
//
// The middle factors of all pairs of two layers are blocks of three
// products [W_Q; W_K; W_V]_{l2} · W_O_{l1}, computed in float64 from the
// float32 weights (whose products are exact in float64); everything else is
// head_dim-sized. Per pair of layers and variant that is
// (n_heads·head_dim + n_kv_heads·(head_dim + v_head_dim)) × d_model ×
// n_heads·v_head_dim multiply-adds — the inner products between the heads'
// subspaces of the residual stream, which an exact method has to form — and
// about 6% more for the head-sized steps. (For 32 layers of 32 heads and
// d_model 4096 that is 2·10^14 multiply-adds for both variants: hours, not
// minutes, on two cores.)
//
// Layers are streamed: each is decoded once per pass and only the W_O of
// earlier layers (float32) and head_dim-sized factors are kept; when they
// would exceed Options.MaxMemory the earlier layers are taken in windows,
// and later layers are decoded again for each window. The earlier layer's
// heads are taken in chunks so that no work buffer exceeds 128 MB.
package circuits

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/linalg"
)

// Schema names the JSON document's format.
const Schema = "qkv.circuits/v1"

// LayerSource yields a model's decoded attention layers (formats.Model is
// one). LoadLayer may be called more than once for a layer.
type LayerSource interface {
	Geometry() formats.Geometry
	LayerIndices() []int
	LoadLayer(i int) (*formats.Layer, error)
}

// Options control Compute. The zero value takes the defaults.
type Options struct {
	// BaselineSamples is the number of random pairs the baseline mean is
	// taken over (default 300, as ARENA's exercises); < 0 skips it.
	BaselineSamples int
	// Seed seeds the baseline's random numbers.
	Seed uint64
	// MaxMemory bounds, in bytes, the earlier layers' W_O kept at once
	// (default 2 GiB); more layers are handled in several passes.
	MaxMemory int64
	// RawOnly skips ln_folded (half the work): Result.LNFolded is nil.
	RawOnly bool
	// Progress, when set, is called after each pair of layers.
	Progress func(done, total int)
}

// Defaults.
const (
	DefaultBaselineSamples = 300
	DefaultMaxMemory       = 2 << 30
)

// Array4 is a score array indexed [l1][h1][l2][h2]; undefined scores are NaN
// (null in JSON).
type Array4 [][][][]float64

// MarshalJSON writes NaN and ±Inf as null.
func (a Array4) MarshalJSON() ([]byte, error) {
	if a == nil {
		return []byte("null"), nil
	}
	b := make([]byte, 0, 64)
	b = append(b, '[')
	for i, x := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, y := range x {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			for k, z := range y {
				if k > 0 {
					b = append(b, ',')
				}
				b = appendRow(b, z)
			}
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	return append(b, ']'), nil
}

func appendRow(b []byte, row []float64) []byte {
	b = append(b, '[')
	for i, v := range row {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		}
	}
	return append(b, ']')
}

// UnmarshalJSON reads numbers and nulls (as NaN).
func (a *Array4) UnmarshalJSON(b []byte) error {
	var raw [][][][]*float64
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Array4, len(raw))
	for i, x := range raw {
		out[i] = make([][][]float64, len(x))
		for j, y := range x {
			out[i][j] = make([][]float64, len(y))
			for k, z := range y {
				row := make([]float64, len(z))
				for l, v := range z {
					row[l] = math.NaN()
					if v != nil {
						row[l] = *v
					}
				}
				out[i][j][k] = row
			}
		}
	}
	*a = out
	return nil
}

// newArray4 allocates an n×h×n×h zero array on one backing slice.
func newArray4(n, h int) Array4 {
	flat := make([]float64, n*h*n*h)
	a := make(Array4, n)
	for i := range a {
		a[i] = make([][][]float64, h)
		for j := range a[i] {
			a[i][j] = make([][]float64, n)
			for k := range a[i][j] {
				off := ((i*h+j)*n + k) * h
				a[i][j][k] = flat[off : off+h : off+h]
			}
		}
	}
	return a
}

// Scores are one variant's composition scores and the norms they divide by.
type Scores struct {
	Q Array4 `json:"Q"`
	K Array4 `json:"K"`
	V Array4 `json:"V"`
	// OVNorm[l][h] = ‖OV_{l,h}‖ and QKNorm[l][h] = ‖QK_{l,h}‖ (Frobenius).
	OVNorm [][]float64 `json:"ov_fro"`
	QKNorm [][]float64 `json:"qk_fro"`
}

func newScores(n, h int) *Scores {
	s := &Scores{Q: newArray4(n, h), K: newArray4(n, h), V: newArray4(n, h)}
	s.OVNorm = make([][]float64, n)
	s.QKNorm = make([][]float64, n)
	for i := range s.OVNorm {
		s.OVNorm[i] = make([]float64, h)
		s.QKNorm[i] = make([]float64, h)
	}
	return s
}

// Baseline is the random-baseline score.
type Baseline struct {
	Mean     float64 `json:"mean"`
	Std      float64 `json:"std"`    // population standard deviation
	Stderr   float64 `json:"stderr"` // std/√n_samples
	NSamples int     `json:"n_samples"`
	DModel   int     `json:"d_model"`
	DHead    int     `json:"d_head"`
	Seed     uint64  `json:"seed"`
	Method   string  `json:"method"`
}

// Result is the JSON document of `qkv circuits`: scores indexed by the
// position of a layer in Layers (its index in the model).
type Result struct {
	Schema   string `json:"schema"`
	Layers   []int  `json:"layers"`
	DModel   int    `json:"d_model"`
	NHeads   int    `json:"n_heads"`
	NKVHeads int    `json:"n_kv_heads"`
	HeadDim  int    `json:"head_dim"`
	VHeadDim int    `json:"v_head_dim"`
	// KVHeadForHead states how a query head finds its K/V group.
	KVHeadForHead string  `json:"kv_head_for_head"`
	IndexOrder    string  `json:"index_order"`
	Raw           *Scores `json:"raw"`
	// LNFolded is nil with Options.RawOnly or when some layer lacks its
	// norm weight (Warnings says which); for a post-norm model it is Raw.
	LNFolded *Scores `json:"ln_folded"`
	// FoldedNorm is the norm whose weight was folded ("rmsnorm",
	// "layernorm"), or "none" (post-norm model, or not folded).
	FoldedNorm string    `json:"ln_folded_norm"`
	Baseline   *Baseline `json:"baseline"`
	// Undefined counts scores that are null (a zero circuit).
	Undefined int      `json:"undefined_scores"`
	Warnings  []string `json:"warnings,omitempty"`
}

// ErrShape is wrapped by errors about matrices that do not fit the geometry.
var ErrShape = errors.New("circuits: matrix does not fit the geometry")

// dims are the checked sizes of a model.
type dims struct {
	dm, h, kv, d, dv, grp int
}

func dimsOf(g formats.Geometry) (dims, error) {
	dv := g.HeadDim
	if g.VHeadDim > 0 {
		dv = g.VHeadDim
	}
	kv := g.NKVHeads
	if kv == 0 {
		kv = g.NHeads
	}
	d := dims{dm: g.DModel, h: g.NHeads, kv: kv, d: g.HeadDim, dv: dv}
	if d.dm <= 0 || d.h <= 0 || d.kv <= 0 || d.d <= 0 || d.dv <= 0 {
		return d, fmt.Errorf("%w: d_model %d, n_heads %d, n_kv_heads %d, head_dim %d, v_head_dim %d must all be positive", ErrShape, d.dm, d.h, d.kv, d.d, d.dv)
	}
	const maxDim = 1 << 24
	if d.dm > maxDim || d.h > maxDim || d.kv > maxDim || d.d > maxDim || d.dv > maxDim {
		return d, fmt.Errorf("%w: a dimension above %d (d_model %d, n_heads %d, n_kv_heads %d, head_dim %d, v_head_dim %d)", ErrShape, maxDim, d.dm, d.h, d.kv, d.d, d.dv)
	}
	if d.h%d.kv != 0 {
		return d, fmt.Errorf("%w: n_heads %d is not a multiple of n_kv_heads %d", ErrShape, d.h, d.kv)
	}
	d.grp = d.h / d.kv
	return d, nil
}

// check validates one layer's matrices against the geometry.
func (d dims) check(l *formats.Layer) error {
	want := []struct {
		name       string
		m          formats.Matrix
		rows, cols int
	}{
		{"q", l.Q, d.h * d.d, d.dm},
		{"k", l.K, d.kv * d.d, d.dm},
		{"v", l.V, d.kv * d.dv, d.dm},
		{"o", l.O, d.dm, d.h * d.dv},
	}
	for _, w := range want {
		if w.m.Rows != w.rows || w.m.Cols != w.cols || len(w.m.Data) != w.rows*w.cols {
			return fmt.Errorf("%w: layer %d %s is %d×%d (%d values), want %d×%d", ErrShape, l.Index, w.name, w.m.Rows, w.m.Cols, len(w.m.Data), w.rows, w.cols)
		}
		for i, v := range w.m.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("circuits: layer %d %s holds %v at row %d, column %d: composition scores are undefined", l.Index, w.name, v, i/w.cols, i%w.cols)
			}
		}
	}
	if l.NormWeight != nil {
		if len(l.NormWeight) != d.dm {
			return fmt.Errorf("%w: layer %d norm weight has %d values, want d_model %d", ErrShape, l.Index, len(l.NormWeight), d.dm)
		}
		for i, v := range l.NormWeight {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("circuits: layer %d norm weight %d is %v", l.Index, i, v)
			}
		}
	}
	return nil
}

// factors are one variant's head_dim-sized factors of a layer.
type factors struct {
	fq [][]float64 // per head: d×d, FᵀF = W_Q^h·W_Q^hᵀ
	fk [][]float64 // per group: d×d
	fv [][]float64 // per group: dv×dv
	ov []float64   // per head ‖OV‖
	qk []float64   // per head ‖QK‖
}

// layerState is what is kept of a layer: its matrices and factors.
type layerState struct {
	pos   int
	l     *formats.Layer
	fo    [][]float64 // per head: dv×dv, FᵀF = W_O^hᵀ·W_O^h (no norm on W_O)
	v     [2]*factors // raw, folded (nil when not folded)
	gamma []float64   // the norm weight as float64, nil when not folded
}

// variants.
const (
	raw    = 0
	folded = 1
)

// prepare computes the factors of a layer.
func prepare(l *formats.Layer, d dims, pos int, fold bool) (*layerState, error) {
	s := &layerState{pos: pos, l: l}
	s.fo = make([][]float64, d.h)
	for h := range d.h {
		blk := linalg.RowMajor(l.O.Data[h*d.dv:], d.dm, d.dv, d.h*d.dv)
		g, err := gram(blk.T(), nil)
		if err != nil {
			return nil, err
		}
		s.fo[h] = factor(g, d.dv)
	}
	if fold {
		s.gamma = make([]float64, d.dm)
		for i, v := range l.NormWeight {
			s.gamma[i] = float64(v)
		}
	}
	for vi := range 2 {
		if vi == folded && !fold {
			break
		}
		var gamma []float64
		if vi == folded {
			gamma = s.gamma
		}
		f := &factors{fq: make([][]float64, d.h), fk: make([][]float64, d.kv), fv: make([][]float64, d.kv),
			ov: make([]float64, d.h), qk: make([]float64, d.h)}
		var err error
		blocks := func(m formats.Matrix, n, rows int, out [][]float64) {
			for b := range n {
				if err != nil {
					return
				}
				var g []float64
				if g, err = gram(linalg.RowMajor(m.Data[b*rows*d.dm:], rows, d.dm, d.dm), gamma); err == nil {
					out[b] = factor(g, rows)
				}
			}
		}
		blocks(l.Q, d.h, d.d, f.fq)
		blocks(l.K, d.kv, d.d, f.fk)
		blocks(l.V, d.kv, d.dv, f.fv)
		if err != nil {
			return nil, err
		}
		for h := range d.h {
			g := h / d.grp
			f.ov[h] = crossNorm(s.fo[h], f.fv[g], d.dv)
			f.qk[h] = crossNorm(f.fq[h], f.fk[g], d.d)
		}
		s.v[vi] = f
	}
	return s, nil
}

// gram returns the r×r matrix (W·diag(γ))·(W·diag(γ))ᵀ of the r×c view w
// (γ nil: W·Wᵀ), in float64.
func gram[S linalg.Float](w linalg.View[S], gamma []float64) ([]float64, error) {
	if gamma == nil {
		return linalg.Gram(w)
	}
	r, c := w.Rows, w.Cols
	ws := make([]float64, r*c)
	for i := range r {
		for j := range c {
			ws[i*c+j] = float64(w.Data[i*w.RowStride+j*w.ColStride]) * gamma[j]
		}
	}
	return linalg.Gram(linalg.RowMajor(ws, r, c, c))
}

// factor returns an n×n F with FᵀF = G for the n×n positive semidefinite G
// (overwritten): pivoted Cholesky PᵀGP = UᵀU gives F = U·Pᵀ; rows past the
// numerical rank are zero.
func factor(g []float64, n int) []float64 {
	f := make([]float64, n*n)
	piv := make([]int, n)
	work := make([]float64, 2*n)
	t, rank, _ := lapack64.Pstrf(blas64.Symmetric{Uplo: blas.Upper, N: n, Stride: n, Data: g}, piv, -1, work)
	for i := 0; i < rank; i++ {
		for k := i; k < n; k++ {
			f[i*n+piv[k]] = t.Data[i*t.Stride+k]
		}
	}
	return f
}

// crossNorm returns ‖X·Yᵀ‖ for n×n row-major X and Y.
func crossNorm(x, y []float64, n int) float64 {
	var s float64
	for i := range n {
		xi := x[i*n : (i+1)*n]
		for j := range n {
			yj := y[j*n : (j+1)*n]
			var dot float64
			for k, v := range xi {
				dot += v * yj[k]
			}
			s += dot * dot
		}
	}
	return math.Sqrt(s)
}
