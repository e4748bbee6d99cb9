package check

import (
	"fmt"
	"math"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/linalg"
)

// Spectra modes of a check (Settings.Mode of its statistics, in inspect's
// words).
const (
	// ModeBounds: spectral norms from block Lanczos with their bounds,
	// exact where a rule needs the value (see analyzer).
	ModeBounds = "fast"
	// ModeExact: every matrix's full spectrum, as `qkv inspect` computes it.
	ModeExact = "full"
)

// Block Lanczos of the gate: 4 blocks of 8 vectors, a Krylov space of 32
// (inspect --fast uses 160). On trained weights, whose leading singular
// values stand apart, the spectral norm's bracket is tight; on Gaussian
// noise, the hardest case, it is within a few per cent.
const (
	gateBlock  = 8
	gateBlocks = 4
	// smallExact: matrices no larger than this on a side get their full
	// spectrum; it costs no more than the estimate.
	smallExact = gateBlock * gateBlocks * 5
)

// analyzer computes, per layer, the statistics the rules need and no
// more: every matrix's element statistics (Frobenius norm, max |w|, counts)
// and spectral norm — its Lanczos bounds, or the full spectrum when the
// run is exact, when the matrix is small, or when a bounds rule falls
// between the bounds (so that every bounds decision is certain); per-head
// statistics only with a head check on: the head blocks' Gram matrix (their
// norms for dead heads, their cosines for duplicates) and, for
// rank_collapsed, each head's spectrum.
type analyzer struct {
	g      formats.Geometry
	th     inspect.Thresholds
	exact  bool
	heads  bool // dead_head or duplicate_heads or rank_collapsed, and the heads fit
	rank   bool // rank_collapsed
	bounds map[string]Bounds
}

// mode is the statistics' Settings.Mode.
func (a *analyzer) mode() string {
	if a.exact {
		return ModeExact
	}
	return ModeBounds
}

// layer analyses one decoded layer.
func (a *analyzer) layer(l *formats.Layer) (inspect.LayerReport, error) {
	lr := inspect.LayerReport{Index: l.Index}
	for _, p := range formats.Projections {
		w := l.Matrix(p)
		if w.Rows == 0 && w.Cols == 0 && len(w.Data) == 0 {
			continue // an adapter without this projection
		}
		if w.Rows < 0 || w.Cols < 0 || len(w.Data) != w.Rows*w.Cols {
			return lr, fmt.Errorf("layer %d: %s: %d values for shape [%d, %d]", l.Index, p, len(w.Data), w.Rows, w.Cols)
		}
		mr := &inspect.MatrixReport{Stats: a.matrixStats(w, string(p))}
		if a.heads {
			if err := a.headStats(w, p, mr); err != nil {
				return lr, fmt.Errorf("layer %d: %s: %v", l.Index, p, err)
			}
		}
		switch p {
		case formats.ProjQ:
			lr.Q = mr
		case formats.ProjK:
			lr.K = mr
		case formats.ProjV:
			lr.V = mr
		case formats.ProjO:
			lr.O = mr
		}
	}
	return lr, nil
}

// matrixStats are a whole matrix's statistics.
func (a *analyzer) matrixStats(w formats.Matrix, kind string) inspect.Stats {
	b, bounded := a.bounds[kind]
	if a.exact || (bounded && b.EffectiveRankRatio != nil) || min(w.Rows, w.Cols) <= smallExact {
		return inspect.MatrixStats(w, inspect.StatsOptions{})
	}
	s := elementStats(w)
	if s.NaNCount+s.InfCount > 0 {
		nan := inspect.Float(math.NaN())
		s.SpectralNorm, s.EffectiveRank, s.StableRank, s.Condition = nan, nan, nan, nan
		s.Flags = append(s.Flags, inspect.FlagSpectrumSkipped)
		return s
	}
	theta, hi, err := linalg.BlockLanczos(linalg.RowMajor(w.Data, w.Rows, w.Cols, w.Cols), gateBlock, gateBlocks, 1)
	if err != nil || len(theta) == 0 || len(hi) == 0 {
		return inspect.MatrixStats(w, inspect.StatsOptions{})
	}
	lo, up := theta[0], hi[0]
	up = math.Min(up, float64(s.Fro)) // ‖W‖₂ ≤ ‖W‖_F
	if bounded && b.SpectralNorm != nil {
		for _, end := range b.SpectralNorm {
			if end != nil && lo <= *end && *end <= up {
				// The rule's bound falls between the estimate's bounds: only
				// the exact value decides.
				return inspect.MatrixStats(w, inspect.StatsOptions{})
			}
		}
	}
	s.Method = inspect.MethodLanczos
	s.Flags = append(s.Flags, inspect.FlagEstimated)
	s.SpectralNorm = inspect.Float(lo)
	s.SpectralNormBounds = &[2]inspect.Float{inspect.Float(lo), inspect.Float(up)}
	return s
}

// elementStats are the element statistics the rules read: the Frobenius
// norm, max |w| and the NaN/Inf counts, inspect's definitions (NaN and Inf
// counted and excluded; fro and max |w| undefined, NaN, when there are
// any). Mean, std and the spectral statistics are not computed (NaN).
func elementStats(w formats.Matrix) inspect.Stats {
	nan := inspect.Float(math.NaN())
	s := inspect.Stats{Shape: [2]int{w.Rows, w.Cols}, Mean: nan, Std: nan, SpectralNorm: nan, EffectiveRank: nan, StableRank: nan, Condition: nan}
	if _, nonfinite := summarize(w.Data); nonfinite {
		for _, v := range w.Data {
			if v != v {
				s.NaNCount++
			} else if math.IsInf(float64(v), 0) {
				s.InfCount++
			}
		}
		if s.NaNCount > 0 {
			s.Flags = append(s.Flags, inspect.FlagNaN)
		}
		if s.InfCount > 0 {
			s.Flags = append(s.Flags, inspect.FlagInf)
		}
		s.Fro, s.MaxAbs = nan, nan
		return s
	}
	// Four sums, so that the additions do not wait on each other; |w| as
	// bits (a finite float's magnitude orders as its bits do), without a
	// branch on the sign.
	var s0, s1, s2, s3 float64
	var m0, m1 uint32
	d := w.Data
	i := 0
	for ; i+3 < len(d); i += 4 {
		a, b, c, e := d[i], d[i+1], d[i+2], d[i+3]
		s0 += float64(a) * float64(a)
		s1 += float64(b) * float64(b)
		s2 += float64(c) * float64(c)
		s3 += float64(e) * float64(e)
		m0 = max(m0, math.Float32bits(a)&0x7fffffff, math.Float32bits(b)&0x7fffffff)
		m1 = max(m1, math.Float32bits(c)&0x7fffffff, math.Float32bits(e)&0x7fffffff)
	}
	for ; i < len(d); i++ {
		s0 += float64(d[i]) * float64(d[i])
		m0 = max(m0, math.Float32bits(d[i])&0x7fffffff)
	}
	maxAbs := math.Float32frombits(max(m0, m1))
	s.Fro, s.MaxAbs = inspect.Float(math.Sqrt((s0+s1)+(s2+s3))), inspect.Float(maxAbs)
	return s
}

// headStats fills the matrix's head blocks (rows of q, k and v; columns of
// o): each head's Frobenius norm and NaN/Inf counts, the most similar pair
// (from the Gram matrix of the flattened blocks) and, for rank_collapsed,
// each head's full statistics.
func (a *analyzer) headStats(w formats.Matrix, p formats.Projection, mr *inspect.MatrixReport) error {
	count, hd := a.g.NHeads, a.g.HeadDim
	switch p {
	case formats.ProjK:
		count = a.g.NKVHeads
	case formats.ProjV:
		count, hd = a.g.NKVHeads, a.g.ValueHeadDim()
	case formats.ProjO:
		hd = a.g.ValueHeadDim()
	}
	if count <= 0 || hd <= 0 {
		return fmt.Errorf("geometry has %d heads of dimension %d", count, hd)
	}
	cols := p == formats.ProjO
	n := w.Rows
	if cols {
		n = w.Cols
	}
	if n != count*hd {
		what := "rows"
		if cols {
			what = "columns"
		}
		return fmt.Errorf("matrix has %d %s, want %d heads × %d", n, what, count, hd)
	}
	blocks := make([]formats.Matrix, count)
	// flat holds each head's block as one row, for the Gram matrix.
	var flat []float32
	blockLen := hd * w.Cols
	if cols {
		blockLen = w.Rows * hd
		flat = make([]float32, count*blockLen)
		for h := range blocks {
			blocks[h] = formats.Matrix{Rows: w.Rows, Cols: hd, Data: flat[h*blockLen : (h+1)*blockLen]}
			for r := 0; r < w.Rows; r++ {
				copy(blocks[h].Row(r), w.Row(r)[h*hd:(h+1)*hd])
			}
		}
	} else {
		flat = w.Data
		for h := range blocks {
			blocks[h] = w.RowBlock(h*hd, (h+1)*hd)
		}
	}
	finite := mr.NaNCount+mr.InfCount == 0
	gram, err := linalg.Gram(linalg.RowMajor(flat, count, blockLen, blockLen))
	if err != nil {
		return err
	}
	nan := inspect.Float(math.NaN())
	mr.Heads = make([]inspect.HeadStats, count)
	for h, b := range blocks {
		hs := inspect.HeadStats{Head: h}
		span := [2]int{h * hd, (h + 1) * hd}
		if cols {
			hs.Block.Columns = &span
		} else {
			hs.Block.Rows = &span
		}
		if a.rank && a.mayCollapse(gram[h*count+h], b, mr) {
			hs.Stats = inspect.MatrixStats(b, inspect.StatsOptions{})
		} else {
			hs.Stats = inspect.Stats{Shape: [2]int{b.Rows, b.Cols}, Fro: inspect.Float(math.Sqrt(gram[h*count+h])),
				MaxAbs: nan, Mean: nan, Std: nan, SpectralNorm: nan, EffectiveRank: nan, StableRank: nan, Condition: nan}
			if !finite {
				for _, v := range b.Data {
					if v != v {
						hs.NaNCount++
					} else if math.IsInf(float64(v), 0) {
						hs.InfCount++
					}
				}
				if hs.NaNCount+hs.InfCount > 0 {
					hs.Fro = nan
				}
			}
		}
		mr.Heads[h] = hs
	}
	// The most similar pair: the largest cosine of two finite, non-zero
	// blocks (the first such pair on ties, as inspect orders them).
	for x := 0; x < count; x++ {
		fx := float64(mr.Heads[x].Fro)
		if mr.Heads[x].NaNCount+mr.Heads[x].InfCount > 0 || !(fx > 0) {
			continue
		}
		for y := x + 1; y < count; y++ {
			fy := float64(mr.Heads[y].Fro)
			if mr.Heads[y].NaNCount+mr.Heads[y].InfCount > 0 || !(fy > 0) {
				continue
			}
			c := gram[x*count+y] / (math.Sqrt(gram[x*count+x]) * math.Sqrt(gram[y*count+y]))
			if mr.MostSimilar == nil || c > float64(mr.MostSimilar.Cosine) {
				mr.MostSimilar = &inspect.HeadPair{A: x, B: y, Cosine: inspect.Float(c)}
			}
		}
	}
	return nil
}

// mayCollapse reports whether head block b (of squared Frobenius norm
// fro2) could have an effective rank below the rank_collapsed limit, so
// that its spectrum is needed. The effective rank exp(H(σ/Σσ)) is at least
// 1/Σ(σ/Σσ)² (Rényi entropy of order 2 is at most Shannon's), which is at
// least ‖B‖_F²/σ₁(B)², the stable rank; and σ₁(B) ≤ σ₁(W) for a block of W.
// A head whose stable rank, with W's spectral norm's upper bound (its exact
// value in exact mode; with Lanczos, twice the margin in σ²), clears the
// limit cannot have collapsed.
func (a *analyzer) mayCollapse(fro2 float64, b formats.Matrix, w *inspect.MatrixReport) bool {
	lim := a.th.RankCollapsed * float64(min(b.Rows, b.Cols))
	up := float64(w.SpectralNorm)
	margin := 1.0
	if bs := w.SpectralNormBounds; bs != nil {
		up, margin = float64(bs[1]), 2
	}
	if !(up > 0) || math.IsNaN(fro2) {
		return true
	}
	return fro2/(up*up) < margin*lim
}
