package circuits

import (
	"context"
	"fmt"
	"math"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/linalg"
)

// MaxScoreBytes bounds the memory of the score arrays (6·(layers·heads)²
// float64 values; 3· with RawOnly).
const MaxScoreBytes = 8 << 30

// Compute computes the composition scores of every pair of heads in two
// different layers of src, raw and (for a pre-norm model) with the norm
// folded, and the random baseline. It returns an error when the geometry or
// a layer's matrices do not fit together, when a matrix holds NaN or Inf,
// or when src or ctx does.
func Compute(ctx context.Context, src LayerSource, opts Options) (*Result, error) {
	if opts.BaselineSamples == 0 {
		opts.BaselineSamples = DefaultBaselineSamples
	}
	if opts.MaxMemory <= 0 {
		opts.MaxMemory = DefaultMaxMemory
	}
	g := src.Geometry()
	d, err := dimsOf(g)
	if err != nil {
		return nil, err
	}
	idx := src.LayerIndices()
	n := len(idx)
	// The score arrays are the output's size, whatever the weights' size:
	// refuse what cannot be held before allocating them.
	arrays := 6.0
	if opts.RawOnly {
		arrays = 3
	}
	if need := arrays * 8 * math.Pow(float64(n)*float64(d.h), 2); need > MaxScoreBytes {
		return nil, fmt.Errorf("circuits: %d layers × %d heads need %.3g GiB of score arrays, more than %d GiB", n, d.h, need/(1<<30), MaxScoreBytes>>30)
	}
	if need := workBytes(d); need > maxWorkBytes {
		return nil, fmt.Errorf("circuits: d_model %d, %d heads (%d KV) of head_dim %d, v_head_dim %d need %.3g GiB of work space, more than %d GiB",
			d.dm, d.h, d.kv, d.d, d.dv, need/(1<<30), maxWorkBytes>>30)
	}
	res := &Result{
		Schema: Schema, Layers: append([]int(nil), idx...),
		DModel: d.dm, NHeads: d.h, NKVHeads: d.kv, HeadDim: d.d, VHeadDim: d.dv,
		KVHeadForHead: fmt.Sprintf("g = h // %d (n_heads / n_kv_heads)", d.grp),
		IndexOrder:    "[l1][h1][l2][h2], l = position in layers; entries with l2 <= l1 are 0",
		Raw:           newScores(n, d.h),
		FoldedNorm:    string(formats.NormNone),
	}
	res.Warnings = warnings(g)
	fold := g.PreNorm && g.Norm != formats.NormNone && g.Norm != ""
	switch {
	case opts.RawOnly:
		fold = false
		res.Warnings = append(res.Warnings, "ln_folded not computed (raw only)")
	case fold:
		res.LNFolded = newScores(n, d.h)
		res.FoldedNorm = string(g.Norm)
	default:
		res.LNFolded = res.Raw
		res.Warnings = append(res.Warnings, "no norm before attention (post-norm model): ln_folded equals raw")
	}

	// Bytes kept per earlier layer: its W_O and small factors.
	perLayer := int64(d.dm)*int64(d.h*d.dv)*4 + int64(d.h+2*d.kv)*int64(d.d*d.d+d.dv*d.dv)*8*2
	window := int(max(1, opts.MaxMemory/perLayer))
	total := n * (n - 1) / 2
	done := 0
	b := newBuffers(d)
	// One pass at least, so that a single layer still gets its norms.
	for w0 := 0; w0 < max(n-1, min(n, 1)); w0 += window {
		w1 := min(n-1, w0+window) // earlier layers [w0, w1) in this pass
		var writers []*layerState
		for p := w0; p < n; p++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			l, err := src.LoadLayer(idx[p])
			if err != nil {
				return nil, err
			}
			if err := d.check(l); err != nil {
				return nil, err
			}
			if fold && l.NormWeight == nil {
				fold = false
				res.LNFolded = nil
				res.FoldedNorm = string(formats.NormNone)
				res.Warnings = append(res.Warnings, fmt.Sprintf("layer %d has no pre-attention norm weight: ln_folded is not computed", l.Index))
			}
			s, err := prepare(l, d, p, fold)
			if err != nil {
				return nil, err
			}
			if w0 == 0 {
				for h := range d.h {
					res.Raw.OVNorm[p][h], res.Raw.QKNorm[p][h] = s.v[raw].ov[h], s.v[raw].qk[h]
					if fold {
						res.LNFolded.OVNorm[p][h], res.LNFolded.QKNorm[p][h] = s.v[folded].ov[h], s.v[folded].qk[h]
					}
				}
			}
			for _, w := range writers {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				if err := pairScores(w, s, d, raw, res.Raw, b); err != nil {
					return nil, err
				}
				if fold {
					if err := pairScores(w, s, d, folded, res.LNFolded, b); err != nil {
						return nil, err
					}
				}
				done++
				if opts.Progress != nil {
					opts.Progress(done, total)
				}
			}
			if p < w1 {
				// Keep what a later layer needs: W_O and the factors.
				s.l = &formats.Layer{Index: l.Index, O: l.O}
				writers = append(writers, s)
			}
		}
	}
	res.Undefined = countUndefined(res.Raw, n, d.h)
	if res.LNFolded != nil && res.LNFolded != res.Raw {
		res.Undefined += countUndefined(res.LNFolded, n, d.h)
	}
	if res.Undefined > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d scores are undefined (null): a head's OV or QK circuit is zero", res.Undefined))
	}
	if opts.BaselineSamples > 0 {
		bl, err := RandomBaseline(ctx, d.dm, d.d, opts.BaselineSamples, opts.Seed)
		if err != nil {
			return nil, err
		}
		res.Baseline = bl
	}
	return res, nil
}

// warnings lists what the scores leave out that changes the model's attention.
func warnings(g formats.Geometry) []string {
	var w []string
	if g.QKNorm != formats.QKNormNone {
		w = append(w, fmt.Sprintf("queries and keys are normalised after the projection (%s): the QK circuits here are the linear maps before it", g.QKNorm))
	}
	if g.MLA != nil {
		w = append(w, "latent attention (MLA): the circuits use the effective per-head W_Q, W_K, W_V the checkpoint's factors give")
	}
	for _, u := range g.Unsupported {
		w = append(w, fmt.Sprintf("not modelled (%s %s): %s", u.Kind, u.Name, u.Message))
	}
	return w
}

func countUndefined(s *Scores, n, h int) int {
	c := 0
	for _, a := range []Array4{s.Q, s.K, s.V} {
		for l1 := range n {
			for h1 := range h {
				for l2 := l1 + 1; l2 < n; l2++ {
					for _, v := range a[l1][h1][l2] {
						if math.IsNaN(v) {
							c++
						}
					}
				}
			}
		}
	}
	return c
}

// chunkBytes bounds each work buffer: the earlier layer's heads are taken
// in chunks so that the products' results stay below it (a variable for
// tests).
var chunkBytes = 128 << 20

// maxWorkBytes bounds the work space of one pair of layers (buffers and the
// factors of two layers), whatever the geometry claims.
const maxWorkBytes = 4 << 30

// workBytes is the work space newBuffers and prepare need.
func workBytes(d dims) float64 {
	rows := float64(max(d.h*d.d, d.kv*d.dv))
	hc := float64(max(1, min(d.h, chunkBytes/(8*max(d.h*d.d, d.kv*d.dv, d.dm)*d.dv))))
	cols := hc * float64(d.dv)
	buf := 8 * cols * (2*rows + float64(max(d.d, d.dv)) + float64(d.dm))
	fac := 8 * 2 * 3 * (float64(d.h+d.kv)*float64(d.d)*float64(d.d) + float64(d.h+d.kv)*float64(d.dv)*float64(d.dv))
	return buf + fac
}

// buffers are reused across pairs of layers.
type buffers struct {
	heads   int // earlier heads per chunk
	c, z, t []float64
	wo      []float64 // a chunk of W_O scaled by γ of the later layer
}

func newBuffers(d dims) *buffers {
	rows := max(d.h*d.d, d.kv*d.dv, d.dm)
	hc := max(1, min(d.h, chunkBytes/(8*rows*d.dv)))
	cols := hc * d.dv
	return &buffers{
		heads: hc,
		c:     make([]float64, max(d.h*d.d, d.kv*d.dv)*cols),
		z:     make([]float64, max(d.h*d.d, d.kv*d.dv)*cols),
		t:     make([]float64, max(d.d, d.dv)*cols),
		wo:    make([]float64, d.dm*cols),
	}
}

// pairScores fills the scores of every head of the earlier layer w with
// every head of the later layer r, for one variant.
func pairScores(w, r *layerState, d dims, vi int, out *Scores, b *buffers) error {
	for h0 := 0; h0 < d.h; h0 += b.heads {
		if err := chunkScores(w, r, d, vi, out, b, h0, min(d.h, h0+b.heads)); err != nil {
			return err
		}
	}
	return nil
}

// chunkScores is pairScores for the earlier heads [h0, h1).
func chunkScores(w, r *layerState, d dims, vi int, out *Scores, b *buffers, h0, h1 int) error {
	fw, fr := w.v[vi], r.v[vi]
	ncol := d.h * d.dv       // columns of W_O
	cols := (h1 - h0) * d.dv // columns of this chunk
	off := h0 * d.dv
	wo32 := linalg.RowMajor(w.l.O.Data[off:], d.dm, cols, ncol)
	wo := linalg.RowMajor(b.wo, d.dm, cols, cols)
	if vi == folded {
		for i := range d.dm {
			gi := r.gamma[i]
			row := w.l.O.Data[i*ncol+off : i*ncol+off+cols]
			dst := b.wo[i*cols : (i+1)*cols]
			for j, v := range row {
				dst[j] = gi * float64(v)
			}
		}
	}
	products := []struct {
		m     formats.Matrix
		rows  int
		arr   Array4
		block int // rows per reader block
	}{
		{r.l.Q, d.h * d.d, out.Q, d.d},
		{r.l.K, d.kv * d.d, out.K, d.d},
		{r.l.V, d.kv * d.dv, out.V, d.dv},
	}
	for pi, p := range products {
		a := linalg.RowMajor(p.m.Data, p.rows, d.dm, d.dm)
		c := b.c[:p.rows*cols]
		var err error
		if vi == folded {
			err = mul(c, cols, a, wo)
		} else {
			err = mul(c, cols, a, wo32)
		}
		if err != nil {
			return err
		}
		// Z = C·blockdiag(F_V(g1)ᵀ): the earlier head's value side.
		z := b.z[:p.rows*cols]
		for e := h0; e < h1; e++ {
			j := (e - h0) * d.dv
			cv := linalg.View[float64]{Data: c[j:], Rows: p.rows, Cols: d.dv, RowStride: cols, ColStride: 1}
			fv := linalg.RowMajor(fw.fv[e/d.grp], d.dv, d.dv, d.dv)
			if err := mul(z[j:], cols, cv, fv.T()); err != nil {
				return err
			}
		}
		for h2 := range d.h {
			g2 := h2 / d.grp
			var left []float64
			var row0 int
			den := fr.qk[h2]
			switch pi {
			case 0: // Q: ‖F(W_K^g2)·W_Q^h2·…‖
				left, row0 = fr.fk[g2], h2*d.d
			case 1: // K: ‖F(W_Q^h2)·W_K^g2·…‖
				left, row0 = fr.fq[h2], g2*d.d
			default: // V: ‖F(W_O^h2ᵀ)·W_V^g2·…‖
				left, row0, den = r.fo[h2], g2*d.dv, fr.ov[h2]
			}
			nb := p.block
			t := b.t[:nb*cols]
			if err := mul(t, cols, linalg.RowMajor(left, nb, nb, nb), linalg.RowMajor(z[row0*cols:], nb, cols, cols)); err != nil {
				return err
			}
			for e := h0; e < h1; e++ {
				j := (e - h0) * d.dv
				var s float64
				for i := range nb {
					for _, v := range t[i*cols+j : i*cols+j+d.dv] {
						s += v * v
					}
				}
				score := math.NaN()
				if q := fw.ov[e] * den; q > 0 {
					score = math.Sqrt(s) / q
				}
				p.arr[w.pos][e][r.pos][h2] = score
			}
		}
	}
	return nil
}
