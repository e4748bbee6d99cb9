package inspect

import (
	"errors"
	"fmt"
	"math"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect/esd"
	"github.com/qkvdev/qkv/internal/linalg"
)

// StatsOptions configure the numerics of MatrixStats; the zero value
// computes every statistic exactly with the default rank tolerance.
type StatsOptions struct {
	// RankTol > 0 replaces the numpy rank tolerance by this absolute value.
	RankTol float64
	// Fast estimates the spectral statistics of matrices with min(m, n) >
	// 160 by block Lanczos instead of full spectra (see the package
	// documentation).
	Fast bool
	// KeepSV keeps every singular value in Stats.SV.
	KeepSV bool
	// exactTail refuses the Gram spectrum whose values below the rank
	// threshold are approximate (sv_tail_approximate): such a matrix is
	// decomposed directly (for the heavy-tail metrics, which use them).
	exactTail bool
}

// statsOptions are the numerics options a run passes to MatrixStats.
func (o *Options) statsOptions() StatsOptions {
	return StatsOptions{RankTol: o.RankTol, Fast: o.Fast, KeepSV: o.Spectrum}
}

// MatrixStats computes the statistics of one matrix: element statistics
// always; the full spectrum (or, with o.Fast, the Lanczos estimates) when
// the matrix is finite.
func MatrixStats(w formats.Matrix, o StatsOptions) Stats {
	var s Stats
	if w.Rows < 0 || w.Cols < 0 || len(w.Data) != w.Rows*w.Cols {
		// A malformed Matrix is reported as empty rather than indexed.
		w = formats.Matrix{}
	}
	elementStats(&s, w.Data, w.Rows, w.Cols)
	if !s.finite() {
		skipSpectrum(&s)
		return s
	}
	if o.Fast && min(w.Rows, w.Cols) > 2*fastSteps {
		fastSpectralStats(&s, w.Data, w.Rows, w.Cols)
		return s
	}
	sv, method, approx := singularValues(w.Data, w.Rows, w.Cols, !o.exactTail, o.RankTol)
	s.Method = method
	spectralStats(&s, sv, o.RankTol, o.KeepSV)
	if approx > 0 {
		// The smallest values are below the rank threshold and resolved only
		// to about 1e-7·sv[0]: the condition number is not determined, and
		// the effective rank, which sums them, is approximate.
		flags := []string{}
		for _, f := range s.Flags {
			if f != FlagSingular && f != FlagIllConditioned {
				flags = append(flags, f)
			}
		}
		s.Flags = append(flags, FlagTailApprox, FlagEffectiveRankApprox)
		s.Condition = Float(math.NaN())
	}
	return s
}

// headBlocks splits w into its head blocks: count row blocks of hd rows, or
// count column blocks of hd columns (copied) when cols is set.
func headBlocks(w formats.Matrix, count, hd int, cols bool) ([]formats.Matrix, error) {
	if count <= 0 || hd <= 0 {
		return nil, fmt.Errorf("geometry has %d heads of dimension %d", count, hd)
	}
	out := make([]formats.Matrix, count)
	if cols {
		if w.Cols != count*hd {
			return nil, fmt.Errorf("matrix has %d columns, want %d heads × %d", w.Cols, count, hd)
		}
		for h := range out {
			out[h] = w.ColBlock(h*hd, (h+1)*hd)
		}
		return out, nil
	}
	if w.Rows != count*hd {
		return nil, fmt.Errorf("matrix has %d rows, want %d heads × %d", w.Rows, count, hd)
	}
	for h := range out {
		out[h] = w.RowBlock(h*hd, (h+1)*hd)
	}
	return out, nil
}

// analyzeMatrix computes a projection's report, with heads when asked.
func analyzeMatrix(w formats.Matrix, p formats.Projection, g formats.Geometry, opts *Options) (*MatrixReport, []formats.Matrix, error) {
	if w.Rows < 0 || w.Cols < 0 || len(w.Data) != w.Rows*w.Cols {
		return nil, nil, fmt.Errorf("%s: %d values for shape [%d, %d]", p, len(w.Data), w.Rows, w.Cols)
	}
	so := opts.statsOptions()
	whole := so
	if opts.ESD {
		// The heavy-tail fit needs every singular value, exactly.
		whole.KeepSV, whole.exactTail = true, true
	}
	r := &MatrixReport{Stats: MatrixStats(w, whole)}
	if opts.ESD {
		if err := addESD(r, opts); err != nil {
			return nil, nil, fmt.Errorf("%s: %v", p, err)
		}
		if !opts.Spectrum {
			r.SV = nil
		}
	}
	if !opts.Heads {
		return r, nil, nil
	}
	count := g.NHeads
	if p == formats.ProjK || p == formats.ProjV {
		count = g.NKVHeads
	}
	hd := headDim(g, p)
	blocks, err := headBlocks(w, count, hd, p == formats.ProjO)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %v", p, err)
	}
	r.Heads = make([]HeadStats, len(blocks))
	for h, b := range blocks {
		span := [2]int{h * hd, (h + 1) * hd}
		hs := HeadStats{Head: h, Stats: MatrixStats(b, so)}
		if p == formats.ProjO {
			hs.Block.Columns = &span
		} else {
			hs.Block.Rows = &span
		}
		r.Heads[h] = hs
	}
	r.MostSimilar = mostSimilar(blocks, r.Heads)
	return r, blocks, nil
}

// addESD computes the heavy-tail metrics of a matrix from its full
// spectrum r.SV (kept for it): none when the spectrum was not computed
// (non-finite values: spectrum_skipped) or the matrix is empty, and the
// flag esd_zero_matrix instead of them when every singular value is zero.
func addESD(r *MatrixReport, opts *Options) error {
	m, n := r.Shape[0], r.Shape[1]
	if r.SV == nil || m == 0 || n == 0 {
		return nil
	}
	res, err := esd.Analyze(r.SV, m, n, esd.Options{OverTrained: opts.AlphaLow, UnderTrained: opts.AlphaHigh})
	switch {
	case errors.Is(err, esd.ErrZero):
		r.Flags = append(r.Flags, FlagESDZero)
		return nil
	case err != nil:
		return err
	}
	r.ESD = res
	return nil
}

// headDim is the size of a head block of projection p: head_dim for q and
// k, the value head dim (latent attention's v_head_dim) for v and o.
func headDim(g formats.Geometry, p formats.Projection) int {
	if p == formats.ProjV || p == formats.ProjO {
		return g.ValueHeadDim()
	}
	return g.HeadDim
}

// mostSimilar finds the pair of blocks with the largest cosine similarity of
// their flattened values; nil with fewer than two finite, non-zero blocks.
func mostSimilar(blocks []formats.Matrix, heads []HeadStats) *HeadPair {
	var best *HeadPair
	for a := range blocks {
		na := float64(heads[a].Fro)
		if !heads[a].finite() || !(na > 0) {
			continue
		}
		for b := a + 1; b < len(blocks); b++ {
			nb := float64(heads[b].Fro)
			if !heads[b].finite() || !(nb > 0) {
				continue
			}
			var dot float64
			x, y := blocks[a].Data, blocks[b].Data
			for i := range x {
				dot += float64(x[i]) * float64(y[i])
			}
			c := dot / (na * nb)
			if best == nil || c > float64(best.Cosine) {
				best = &HeadPair{A: a, B: b, Cosine: Float(c)}
			}
		}
	}
	return best
}

// transposedF64 returns the hd×d block b as a d×hd float64 matrix.
func transposedF64(b formats.Matrix) []float64 { return widen(b.Data, b.Rows, b.Cols, true) }

// circuitOf returns the summary of the circuit whose singular values are
// those of ra rbᵀ (both r×c).
func circuitOf(ra, rb []float64, r, c int) CircuitStats {
	sv := linalg.CrossSingularValues(ra, rb, r, c)
	cs := CircuitStats{SpectralNorm: Float(math.NaN()), EffectiveRank: Float(math.NaN())}
	if len(sv) > 0 {
		cs.SpectralNorm = Float(sv[0])
		cs.EffectiveRank = Float(effectiveRank(sv))
	}
	return cs
}

// circuits computes every query head's QK and OV circuit summaries from the
// head blocks of q, k, v and o (skipping them when any block is non-finite).
func circuits(g formats.Geometry, q, k, v, o []formats.Matrix, lr *LayerReport) []Circuit {
	if len(q) == 0 || len(k) == 0 || len(v) == 0 || len(o) == 0 || lr.Q == nil || lr.K == nil || lr.V == nil || lr.O == nil {
		return nil
	}
	if !lr.Q.finite() || !lr.K.finite() || !lr.V.finite() || !lr.O.finite() {
		return nil
	}
	hd, vhd := g.HeadDim, g.ValueHeadDim()
	d := q[0].Cols
	r, rv := min(d, hd), min(d, vhd)
	rq := make([][]float64, len(q))
	ro := make([][]float64, len(o))
	rk := make([][]float64, len(k))
	rvs := make([][]float64, len(v))
	for h := range q {
		rq[h] = linalg.ThinR(transposedF64(q[h]), d, hd)
		// W_O^h is already d×vhd.
		ro[h] = linalg.ThinR(widen(o[h].Data, o[h].Rows, o[h].Cols, false), o[h].Rows, vhd)
	}
	for j := range k {
		rk[j] = linalg.ThinR(transposedF64(k[j]), d, hd)
		rvs[j] = linalg.ThinR(transposedF64(v[j]), d, vhd)
	}
	out := make([]Circuit, len(q))
	for h := range q {
		grp := g.KVHead(h)
		if grp >= len(k) {
			grp = len(k) - 1
		}
		out[h] = Circuit{Head: h, KVHead: grp,
			QK: circuitOf(rq[h], rk[grp], r, hd),
			OV: circuitOf(ro[h], rvs[grp], rv, vhd)}
	}
	return out
}

// AnalyzeLayer computes one layer's report. A projection with LoRA factors
// (l.LoRA, an adapter's) is analysed from them (see AnalyzeLoRA); its
// Matrix, when formed, provides the element statistics.
func AnalyzeLayer(l *formats.Layer, g formats.Geometry, opts Options) (LayerReport, error) {
	opts.defaults()
	lr := LayerReport{Index: l.Index}
	if err := opts.check(); err != nil {
		return lr, err
	}
	blocks := map[formats.Projection][]formats.Matrix{}
	// The circuits need every projection's head blocks.
	circ := opts.Heads && g.NKVHeads > 0 && g.NHeads%g.NKVHeads == 0
	for _, p := range formats.Projections {
		m, f := l.Matrix(p), l.LoRA[p]
		if m.Rows == 0 && m.Cols == 0 && len(m.Data) == 0 && f == nil {
			circ = false
		}
	}
	for _, p := range formats.Projections {
		m, f := l.Matrix(p), l.LoRA[p]
		var r *MatrixReport
		var b []formats.Matrix
		var err error
		switch {
		case f != nil:
			// A LoRA update: spectra exact from its factors, ΔW used
			// when formed (LoadLayer) and never formed whole otherwise
			// (LoadLayerFactors).
			r, b, err = analyzeLoRA(f, m, p, g, &opts, circ)
		case m.Rows == 0 && m.Cols == 0 && len(m.Data) == 0:
			// The checkpoint lacks this projection (a LoRA adapter that
			// targets only some): no report rather than a 0×0 one.
			continue
		default:
			r, b, err = analyzeMatrix(m, p, g, &opts)
		}
		if err != nil {
			return lr, fmt.Errorf("layer %d: %v", l.Index, err)
		}
		blocks[p] = b
		switch p {
		case formats.ProjQ:
			lr.Q = r
		case formats.ProjK:
			lr.K = r
		case formats.ProjV:
			lr.V = r
		case formats.ProjO:
			lr.O = r
		}
	}
	if circ {
		lr.Circuits = circuits(g, blocks[formats.ProjQ], blocks[formats.ProjK], blocks[formats.ProjV], blocks[formats.ProjO], &lr)
	}
	latentFactors(&lr, l.MLA, g, &opts)
	return lr, nil
}

// latentFactors adds a latent-attention layer's stored factors to its
// report, and to q, k and v the rank their latent dimension allows.
func latentFactors(lr *LayerReport, ml *formats.MLALayer, g formats.Geometry, opts *Options) {
	if ml == nil || g.MLA == nil {
		return
	}
	so := opts.statsOptions()
	for _, f := range []struct {
		name string
		m    formats.Matrix
	}{{"q_a", ml.QA}, {"q_b", ml.QB}, {"kv_a", ml.KVA}, {"kv_b", ml.KVB}} {
		if f.m.Rows > 0 && f.m.Cols > 0 && len(f.m.Data) == f.m.Rows*f.m.Cols {
			lr.Factors = append(lr.Factors, FactorReport{Name: f.name, Stats: MatrixStats(f.m, so)})
		}
	}
	// As formats' LayersReport states them: the effective q passes through
	// q_lora_rank latent dimensions (none without q_a: q_proj is stored), k
	// through kv_lora_rank plus the shared rope rows, v through kv_lora_rank.
	for _, x := range []struct {
		m     *MatrixReport
		bound int
	}{{lr.Q, g.MLA.QLoraRank}, {lr.K, g.MLA.KVLoraRank + g.MLA.QKRopeHeadDim}, {lr.V, g.MLA.KVLoraRank}} {
		if x.m != nil && x.bound > 0 {
			x.m.RankBound = x.bound
		}
	}
}
