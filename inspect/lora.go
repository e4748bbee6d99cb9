package inspect

import (
	"fmt"
	"math"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/linalg"
)

// MethodFactors records a spectrum computed exactly from a low-rank
// factorisation (LoRA updates).
const MethodFactors = "factors"

// loraRowBlock is how many rows of ΔW are formed at once when its element
// statistics are computed from the factors.
const loraRowBlock = 64

// LoRAFactors are the factors of a LoRA update ΔW = Scale·B·A in PEFT's
// orientation: A [r, in], B [out, r] (formats.LoRAFactors, which
// formats.Layer.LoRA holds for an adapter's projections).
type LoRAFactors = formats.LoRAFactors

// LoRASingularValues returns every singular value of the LoRA update
// ΔW = scale·B·A (min(out, in) of them, descending) from its factors in
// PEFT's orientation, A [r, in] and B [out, r], without forming ΔW: thin QR
// factorisations of B and Aᵀ reduce it to an r×r product (see
// linalg.LowRankSingularValues). All but the first min(r, out, in) values
// are exactly zero. The values are those of the exact product, accurate to
// about 1e-12 relative; a float32 copy of ΔW has in addition rounding noise
// of about 1e-7·sv[0] in every value.
func LoRASingularValues(a, b formats.Matrix, scale float64) ([]float64, error) {
	f := LoRAFactors{A: a, B: b, Scale: scale}
	if err := f.Check(); err != nil {
		return nil, err
	}
	sv, err := linalg.LowRankSingularValues(linalg.RowMajor(b.Data, b.Rows, b.Cols, b.Cols), linalg.RowMajor(a.Data, a.Rows, a.Cols, a.Cols), scale)
	if err != nil {
		return nil, err
	}
	full := make([]float64, min(b.Rows, a.Cols))
	copy(full, sv)
	return full, nil
}

// LoRADelta returns ΔW = scale·B·A rounded to float32, each entry summed
// in float64 before the rounding (formats.LoRAFactors.Delta: the values
// `extract` writes). A is [r, in] and B [out, r].
func LoRADelta(a, b formats.Matrix, scale float64) (formats.Matrix, error) {
	f := LoRAFactors{A: a, B: b, Scale: scale}
	return f.Delta()
}

// factorBlock returns the factors of ΔW's rows [rows[0], rows[1]) and
// columns [cols[0], cols[1]) (an end of −1: to the last): B's rows and A's
// columns.
func factorBlock(f *LoRAFactors, rows, cols [2]int) LoRAFactors {
	b, a := f.B, f.A
	if rows[1] >= 0 {
		b = b.RowBlock(rows[0], rows[1])
	}
	if cols[1] >= 0 {
		a = a.ColBlock(cols[0], cols[1])
	}
	return LoRAFactors{A: a, B: b, Scale: f.Scale}
}

// LoRAStats returns the statistics of the LoRA update ΔW = scale·B·A from
// its factors A [r, in] and B [out, r] (PEFT's orientation; for a head
// block pass B's rows of that head, or A's columns for W_O). Element
// statistics are those of ΔW rounded to float32, as `extract` writes it,
// formed 64 rows at a time and never held whole; the spectrum is that of
// the exact product, from LoRASingularValues (Method "factors"), so rank,
// effective rank and condition carry no float32 noise: singular values
// past the rank are exactly zero, and condition is null with the flag
// "singular" whenever r < min(out, in). o.Fast is not needed: the exact
// spectrum costs less than the estimate.
//
// Cost: 4·r·out·in flops to form ΔW twice (the mean, then the deviations)
// for the element statistics, and about 2r²(out + in) flops for the
// spectrum; memory 64 rows of ΔW.
func LoRAStats(a, b formats.Matrix, scale float64, o StatsOptions) (Stats, error) {
	f := &LoRAFactors{A: a, B: b, Scale: scale}
	if err := f.Check(); err != nil {
		return Stats{}, err
	}
	whole, _ := loraElements(f, formats.Matrix{}, 0, 0, false)
	factorSpectrum(&whole, f, o)
	return whole, nil
}

// factorSpectrum fills the spectral statistics of a block whose element
// statistics s holds, from its checked factors f.
func factorSpectrum(s *Stats, f *LoRAFactors, o StatsOptions) {
	if !s.finite() {
		skipSpectrum(s)
		return
	}
	sv, err := LoRASingularValues(f.A, f.B, f.Scale)
	if err != nil {
		// The factors were checked: not reached, but never report a
		// spectrum that was not computed.
		skipSpectrum(s)
		return
	}
	s.Method = MethodFactors
	spectralStats(s, sv, o.RankTol, o.KeepSV)
}

// loraElements computes the element statistics of ΔW and, with count > 0,
// of its count head blocks of hd rows (or hd columns when cols is set),
// bit for bit as elementStats gives them on the formed matrix and blocks.
// The rows come from dw when it is not empty (ΔW already formed), else
// they are formed from f loraRowBlock at a time, twice (the mean, then
// the deviations from it).
func loraElements(f *LoRAFactors, dw formats.Matrix, count, hd int, cols bool) (Stats, []Stats) {
	out, in := f.B.Rows, f.A.Cols
	var whole elemAcc
	heads := make([]elemAcc, count)
	var form *deltaRows
	if dw.Empty() {
		form = newDeltaRows(f)
	}
	rows := func(o0, o1 int) []float32 {
		if !dw.Empty() {
			return dw.Data[o0*in : o1*in]
		}
		return form.rows(o0, o1)
	}
	pass := func(dev bool) {
		add := func(a *elemAcc, xs []float32) {
			if dev {
				a.addDev(xs)
			} else {
				a.add(xs)
			}
		}
		for o0 := 0; o0 < out; o0 += loraRowBlock {
			o1 := min(o0+loraRowBlock, out)
			block := rows(o0, o1)
			for o := o0; o < o1; o++ {
				row := block[(o-o0)*in : (o-o0+1)*in]
				add(&whole, row)
				switch {
				case count == 0:
				case cols:
					for h := range heads {
						add(&heads[h], row[h*hd:(h+1)*hd])
					}
				default:
					add(&heads[o/hd], row)
				}
			}
		}
	}
	pass(false)
	need := whole.needDev()
	for h := range heads {
		need = need || heads[h].needDev()
	}
	if need {
		pass(true)
	}
	var ws Stats
	whole.fill(&ws, out, in)
	hs := make([]Stats, count)
	for h := range heads {
		if cols {
			heads[h].fill(&hs[h], out, hd)
		} else {
			heads[h].fill(&hs[h], hd, in)
		}
	}
	return ws, hs
}

// deltaRows forms rows of ΔW = Scale·B·A, bit for bit the values of
// formats.LoRAFactors.DeltaRows (the one definition, which `extract`
// writes), loraRowBlock rows at a time. For r ≤ linalg's depth block (256)
// it uses the packed product, A packed once: each entry is then one chain
// of fused multiply-adds over k in order from zero, and since a product of
// two float32 values is exact in float64, each fused step rounds exactly
// as DeltaRows' separate multiply and add do; the result is scaled and
// rounded to float32 the same way. Larger ranks use DeltaRows itself.
// Memory: the rows (1 MiB for 64 rows of 4096), their float64 sums (2 MiB)
// and A packed (r·in values).
type deltaRows struct {
	f   *LoRAFactors
	buf []float32
	acc []float64
	// pb is A packed once for the product (nil: DeltaRows is used).
	pb *linalg.PackedB[float64]
}

// mulDepth is the largest rank whose rows come from the packed product
// (linalg's depth block: one chain of multiply-adds per entry).
const mulDepth = 256

func newDeltaRows(f *LoRAFactors) *deltaRows {
	out, r, in := f.B.Rows, f.A.Rows, f.A.Cols
	d := &deltaRows{f: f, buf: make([]float32, min(loraRowBlock, out)*in)}
	if r >= 1 && r <= mulDepth {
		if pb, err := linalg.PackB[float64](linalg.RowMajor(f.A.Data, r, in, in)); err == nil {
			d.pb = &pb
			d.acc = make([]float64, min(loraRowBlock, out)*in)
			return d
		}
	}
	d.acc = make([]float64, in)
	return d
}

func (d *deltaRows) rows(o0, o1 int) []float32 {
	f := d.f
	r, in := f.A.Rows, f.A.Cols
	dst := d.buf[:(o1-o0)*in]
	if d.pb == nil {
		f.DeltaRows(o0, o1, dst, d.acc)
		return dst
	}
	acc := d.acc[:(o1-o0)*in]
	pa, err := linalg.PackA[float64](linalg.RowMajor(f.B.Data[o0*r:o1*r], o1-o0, r, r), false)
	if err == nil {
		err = linalg.MulPacked(acc, in, pa, *d.pb, in)
	}
	if err != nil {
		// The factors were checked: not reached; DeltaRows is the definition.
		f.DeltaRows(o0, o1, dst, nil)
		return dst
	}
	for i, v := range acc {
		dst[i] = float32(f.Scale * v)
	}
	return dst
}

// AnalyzeLoRA computes the report of one projection that is a LoRA update
// (with heads when opts.Heads), its spectra exact from the factors and
// ΔW never formed whole (analyzeLoRA). A failed check of the factors, or
// heads that do not fit them, is an error.
func AnalyzeLoRA(f LoRAFactors, p formats.Projection, g formats.Geometry, opts Options) (*MatrixReport, error) {
	opts.defaults()
	if err := opts.check(); err != nil {
		return nil, err
	}
	r, _, err := analyzeLoRA(&f, formats.Matrix{}, p, g, &opts, false)
	return r, err
}

// analyzeLoRA computes a LoRA projection's report from its factors: the
// head blocks of ΔW are B's row blocks times A (q, k, v) or B times A's
// column blocks (o), so each block's spectrum comes from its own factors,
// and the most similar pair of heads from inner products of the factors
// (the exact update's blocks, not their float32 rounding). dw, when not
// empty, is ΔW already formed (formats' LoadLayer), which then provides the
// element statistics; otherwise they are computed 64 rows at a time.
// With blocks set the head blocks of ΔW are returned too (the circuits
// need them), formed from the factors when dw is empty.
func analyzeLoRA(f *LoRAFactors, dw formats.Matrix, p formats.Projection, g formats.Geometry, opts *Options, blocks bool) (*MatrixReport, []formats.Matrix, error) {
	if err := f.Check(); err != nil {
		return nil, nil, fmt.Errorf("%s: %v", p, err)
	}
	out, in := f.B.Rows, f.A.Cols
	if !dw.Empty() && (dw.Rows != out || dw.Cols != in || len(dw.Data) != out*in) {
		return nil, nil, fmt.Errorf("%s: the update is [%d, %d] with %d values, its factors [%d, %d]", p, dw.Rows, dw.Cols, len(dw.Data), out, in)
	}
	cols := p == formats.ProjO
	count, hd := 0, 0
	if opts.Heads {
		count, hd = g.NHeads, headDim(g, p)
		if p == formats.ProjK || p == formats.ProjV {
			count = g.NKVHeads
		}
		size := out
		if cols {
			size = in
		}
		switch {
		case count <= 0 || hd <= 0:
			return nil, nil, fmt.Errorf("%s: geometry has %d heads of dimension %d", p, count, hd)
		case size != count*hd && cols:
			return nil, nil, fmt.Errorf("%s: matrix has %d columns, want %d heads × %d", p, size, count, hd)
		case size != count*hd:
			return nil, nil, fmt.Errorf("%s: matrix has %d rows, want %d heads × %d", p, size, count, hd)
		}
	}
	whole, hs := loraElements(f, dw, count, hd, cols)
	so := opts.statsOptions()
	wso := so
	if opts.ESD {
		wso.KeepSV = true // the exact spectrum, for the heavy-tail fit
	}
	factorSpectrum(&whole, f, wso)
	r := &MatrixReport{Stats: whole}
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
	all := [2]int{0, -1}
	r.Heads = make([]HeadStats, count)
	fs := make([]LoRAFactors, count)
	for h := range hs {
		span := [2]int{h * hd, (h + 1) * hd}
		hst := HeadStats{Head: h, Stats: hs[h]}
		if cols {
			fs[h], hst.Block.Columns = factorBlock(f, all, span), &span
		} else {
			fs[h], hst.Block.Rows = factorBlock(f, span, all), &span
		}
		factorSpectrum(&hst.Stats, &fs[h], so)
		r.Heads[h] = hst
	}
	r.MostSimilar = factorSimilar(f, fs, cols, r.Heads)
	if !blocks {
		return r, nil, nil
	}
	var bl []formats.Matrix
	if !dw.Empty() {
		var err error
		if bl, err = headBlocks(dw, count, hd, cols); err != nil {
			return nil, nil, fmt.Errorf("%s: %v", p, err)
		}
		return r, bl, nil
	}
	for h := range fs {
		// Entry for entry the values of the whole ΔW's block.
		m, err := fs[h].Delta()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", p, err)
		}
		bl = append(bl, m)
	}
	return r, bl, nil
}

// factorSimilar finds the pair of head blocks with the largest cosine
// similarity of their flattened values, from the factors: for row blocks
// B_a·A and B_b·A the inner product is Σ (B_a G) ∘ B_b with G = A·Aᵀ; for
// column blocks B·A_a and B·A_b it is Σ (H A_a) ∘ A_b with H = Bᵀ·B (r×r
// matrices, float64). As mostSimilar, it skips non-finite and zero blocks.
func factorSimilar(f *LoRAFactors, fs []LoRAFactors, cols bool, heads []HeadStats) *HeadPair {
	r := f.A.Rows
	// gram returns xᵀx for cols (x [n, r]: Bᵀ B) or x xᵀ (x [r, n]: A Aᵀ).
	var g []float64
	if cols {
		g = gramOf(f.B.Data, f.B.Rows, r, true)
	} else {
		g = gramOf(f.A.Data, r, f.A.Cols, false)
	}
	// other[h] is the factor that differs between heads (B_h [hd, r] or
	// A_h [r, hd]) and left[h] = other[h]·G (rows) or G·other[h] (columns).
	other := make([]formats.Matrix, len(fs))
	left := make([][]float64, len(fs))
	for h := range fs {
		if cols {
			x := fs[h].A // [r, hd]
			other[h] = x
			l := make([]float64, len(x.Data))
			for i := 0; i < r; i++ {
				for k := 0; k < r; k++ {
					gik := g[i*r+k]
					for j := 0; j < x.Cols; j++ {
						l[i*x.Cols+j] += gik * float64(x.Data[k*x.Cols+j])
					}
				}
			}
			left[h] = l
		} else {
			x := fs[h].B // [hd, r]
			other[h] = x
			l := make([]float64, len(x.Data))
			for i := 0; i < x.Rows; i++ {
				for k := 0; k < r; k++ {
					xik := float64(x.Data[i*r+k])
					for j := 0; j < r; j++ {
						l[i*r+j] += xik * g[k*r+j]
					}
				}
			}
			left[h] = l
		}
	}
	dot := func(a, b int) float64 {
		var s float64
		for i, v := range left[a] {
			s += v * float64(other[b].Data[i])
		}
		return s
	}
	norm := make([]float64, len(fs))
	for h := range fs {
		norm[h] = math.Sqrt(math.Max(0, dot(h, h)))
	}
	var best *HeadPair
	for a := range fs {
		if !heads[a].finite() || !(float64(heads[a].Fro) > 0) || !(norm[a] > 0) {
			continue
		}
		for b := a + 1; b < len(fs); b++ {
			if !heads[b].finite() || !(float64(heads[b].Fro) > 0) || !(norm[b] > 0) {
				continue
			}
			c := dot(a, b) / (norm[a] * norm[b]) // the scale cancels
			if best == nil || c > float64(best.Cosine) {
				best = &HeadPair{A: a, B: b, Cosine: Float(c)}
			}
		}
	}
	return best
}

// gramOf returns xᵀx (transpose set; x is rows×n, the result n×n) or x xᵀ
// (the result rows×rows) of a float32 row-major matrix, in float64.
func gramOf(x []float32, rows, n int, transpose bool) []float64 {
	if transpose {
		g := make([]float64, n*n)
		for i := 0; i < rows; i++ {
			row := x[i*n : (i+1)*n]
			for a, va := range row {
				for b, vb := range row {
					g[a*n+b] += float64(va) * float64(vb)
				}
			}
		}
		return g
	}
	g := make([]float64, rows*rows)
	for a := 0; a < rows; a++ {
		ra := x[a*n : (a+1)*n]
		for b := a; b < rows; b++ {
			rb := x[b*n : (b+1)*n]
			var s float64
			for j, v := range ra {
				s += float64(v) * float64(rb[j])
			}
			g[a*rows+b], g[b*rows+a] = s, s
		}
	}
	return g
}
