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

// loraRowBlock is how many rows of ΔW are formed at once in float64.
const loraRowBlock = 64

// checkLoRA reports whether a [r, in] and b [out, r] are the factors of
// one update and scale is finite.
func checkLoRA(a, b formats.Matrix, scale float64) error {
	switch {
	case a.Rows < 0 || a.Cols < 0 || len(a.Data) != a.Rows*a.Cols:
		return fmt.Errorf("LoRA A: %d values for shape [%d, %d]", len(a.Data), a.Rows, a.Cols)
	case b.Rows < 0 || b.Cols < 0 || len(b.Data) != b.Rows*b.Cols:
		return fmt.Errorf("LoRA B: %d values for shape [%d, %d]", len(b.Data), b.Rows, b.Cols)
	case b.Cols != a.Rows:
		return fmt.Errorf("LoRA B [%d, %d] and A [%d, %d] disagree on the rank", b.Rows, b.Cols, a.Rows, a.Cols)
	case math.IsNaN(scale) || math.IsInf(scale, 0):
		return fmt.Errorf("LoRA scale %v", scale)
	}
	return nil
}

// LoRASingularValues returns every singular value of the LoRA update
// ΔW = scale·B·A (min(out, in) of them, descending) from its factors in
// PEFT's orientation, A [r, in] and B [out, r], without forming ΔW: thin QR
// factorisations of B and Aᵀ reduce it to an r×r product (see
// linalg.LowRankSingularValues). All but the first min(r, out, in) values
// are exactly zero. The values are those of the exact product, accurate to
// about 1e-12 relative; a float32 copy of ΔW has in addition rounding noise
// of about 1e-7·sv[0] in every value.
func LoRASingularValues(a, b formats.Matrix, scale float64) ([]float64, error) {
	if err := checkLoRA(a, b, scale); err != nil {
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
// in float64 before the rounding. A is [r, in] and B [out, r].
func LoRADelta(a, b formats.Matrix, scale float64) (formats.Matrix, error) {
	if err := checkLoRA(a, b, scale); err != nil {
		return formats.Matrix{}, err
	}
	out, r, in := b.Rows, b.Cols, a.Cols
	dw := formats.NewMatrix(out, in)
	if out == 0 || in == 0 {
		return dw, nil
	}
	acc := make([]float64, min(loraRowBlock, out)*in)
	av := linalg.RowMajor(a.Data, r, in, in)
	for o0 := 0; o0 < out; o0 += loraRowBlock {
		rows := min(loraRowBlock, out-o0)
		bv := linalg.RowMajor(b.Data[o0*r:], rows, r, r)
		if err := linalg.Mul(acc, in, 1, bv, av, 0, linalg.MulOptions{}); err != nil {
			return formats.Matrix{}, err
		}
		dst := dw.Data[o0*in : (o0+rows)*in]
		for i, v := range acc[:rows*in] {
			dst[i] = float32(scale * v)
		}
	}
	return dw, nil
}

// LoRAFactors are the factors of a LoRA update ΔW = Scale·B·A in PEFT's
// orientation: A [r, in], B [out, r].
type LoRAFactors struct {
	A, B  formats.Matrix
	Scale float64
}

// block returns the factors of ΔW's rows [rows[0], rows[1]) and columns
// [cols[0], cols[1]) (an end of −1: to the last): B's rows and A's columns.
func (f *LoRAFactors) block(rows, cols [2]int) LoRAFactors {
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
// statistics are those of ΔW rounded to float32, as `extract` writes it;
// the spectrum is that of the exact product, from LoRASingularValues
// (Method "factors"), so rank, effective rank and condition carry no
// float32 noise: singular values past the rank are exactly zero, and
// condition is null with the flag "singular" whenever r < min(out, in).
// o.Fast is not needed: the exact spectrum costs less than the estimate.
//
// Cost: 2·r·out·in flops and out·in float32 values to form ΔW for the
// element statistics, and about 2r²(out + in) flops for the spectrum.
func LoRAStats(a, b formats.Matrix, scale float64, o StatsOptions) (Stats, error) {
	dw, err := LoRADelta(a, b, scale)
	if err != nil {
		return Stats{}, err
	}
	return factorStats(dw, LoRAFactors{A: a, B: b, Scale: scale}, o), nil
}

// factorStats is LoRAStats for an update dw already formed from checked
// factors f.
func factorStats(dw formats.Matrix, f LoRAFactors, o StatsOptions) Stats {
	var s Stats
	elementStats(&s, dw.Data, dw.Rows, dw.Cols)
	if !s.finite() {
		skipSpectrum(&s)
		return s
	}
	sv, err := LoRASingularValues(f.A, f.B, f.Scale)
	if err != nil {
		// The factors were checked when dw was formed: not reached, but
		// never report a spectrum that was not computed.
		skipSpectrum(&s)
		return s
	}
	s.Method = MethodFactors
	spectralStats(&s, sv, o.RankTol, o.KeepSV)
	return s
}

// AnalyzeLoRA computes the report of one projection that is a LoRA update
// (with heads when opts.Heads), its spectra exact from the factors: the
// head blocks of ΔW are B's row blocks times A (q, k, v) or B times A's
// column blocks (o), so each head's spectrum comes from its own factors.
// Element statistics and the most similar heads use ΔW formed in float32
// (LoRADelta).
func AnalyzeLoRA(f LoRAFactors, p formats.Projection, g formats.Geometry, opts Options) (*MatrixReport, error) {
	opts.defaults()
	dw, err := LoRADelta(f.A, f.B, f.Scale)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", p, err)
	}
	r, _, err := analyzeMatrix(dw, &f, p, g, &opts)
	return r, err
}
