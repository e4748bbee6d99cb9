package inspect

import (
	"math"
	"sort"
)

// Flags for approximate or undetermined quantities, beside those of
// report.go.
const (
	// FlagIllConditioned: sv[last] < eps32·sv[0], so condition would exceed
	// 1/eps32 ≈ 8.4e6: the smallest singular value is below the float32
	// rounding of the largest, a ratio to storage noise rather than a
	// property of the weights. condition is null.
	FlagIllConditioned = "ill_conditioned"
	// FlagEffectiveRankApprox: effective_rank sums singular values that are
	// only approximate (with sv_tail_approximate).
	FlagEffectiveRankApprox = "effective_rank_approximate"
)

// eps32 is float32's machine epsilon, 2⁻²³.
const eps32 = 0x1p-23

// elementStats fills the element-wise statistics of a row-major m×n block.
func elementStats(s *Stats, data []float32, m, n int) {
	var a elemAcc
	a.add(data)
	if a.needDev() {
		a.addDev(data)
	}
	a.fill(s, m, n)
}

// elemAcc accumulates a block's element statistics over its values in
// order, in two passes: add over every value, then (when needDev) addDev
// over every value again in the same order. The sums are plain sequential
// float64 sums, so a block fed in pieces gets the same bits as in one go.
type elemAcc struct {
	n, nan, inf, zero int
	sum, sumsq, max   float64
	dev               float64
}

func (a *elemAcc) add(xs []float32) {
	a.n += len(xs)
	for _, w := range xs {
		x := float64(w)
		switch {
		case x != x:
			a.nan++
			continue
		case math.IsInf(x, 0):
			a.inf++
			continue
		case x == 0:
			a.zero++
		}
		a.sum += x
		a.sumsq += x * x
		if v := math.Abs(x); v > a.max {
			a.max = v
		}
	}
}

// needDev reports whether the second pass is needed: the values are all
// finite and there are some.
func (a *elemAcc) needDev() bool { return a.nan+a.inf == 0 && a.n > 0 }

// addDev adds Σ (w − mean)² (second pass): accurate where Σw²/N − mean²
// would cancel.
func (a *elemAcc) addDev(xs []float32) {
	mean := a.sum / float64(a.n)
	for _, w := range xs {
		d := float64(w) - mean
		a.dev += d * d
	}
}

// fill sets the element statistics of an m×n block.
func (a *elemAcc) fill(s *Stats, m, n int) {
	s.Shape = [2]int{m, n}
	s.NaNCount, s.InfCount, s.ZeroCount = a.nan, a.inf, a.zero
	if a.nan > 0 {
		s.Flags = append(s.Flags, FlagNaN)
	}
	if a.inf > 0 {
		s.Flags = append(s.Flags, FlagInf)
	}
	if !a.needDev() {
		nan := Float(math.NaN())
		s.Fro, s.MaxAbs, s.Mean, s.Std = nan, nan, nan, nan
		if a.n == 0 {
			s.Fro, s.MaxAbs = 0, 0
		}
		return
	}
	count := float64(a.n)
	s.Fro = Float(math.Sqrt(a.sumsq))
	s.MaxAbs = Float(a.max)
	s.Mean = Float(a.sum / count)
	s.Std = Float(math.Sqrt(a.dev / count))
}

// finite reports whether the block's element stats found no NaN/Inf.
func (s *Stats) finite() bool { return s.NaNCount == 0 && s.InfCount == 0 }

// spectralStats fills the statistics derived from the full descending
// spectrum sv. rankTol > 0 overrides the numpy tolerance.
func spectralStats(s *Stats, sv []float64, rankTol float64, keepSV bool) {
	m, n := s.Shape[0], s.Shape[1]
	nan := Float(math.NaN())
	if len(sv) == 0 {
		zero := 0
		s.Rank = &zero
		s.SpectralNorm, s.EffectiveRank, s.StableRank, s.Condition = 0, nan, nan, nan
		return
	}
	s0 := sv[0]
	s.SpectralNorm = Float(s0)
	tol := s0 * float64(max(m, n)) * 1.1920929e-07
	if rankTol > 0 {
		tol = rankTol
	}
	r := 0
	for _, v := range sv {
		if v > tol {
			r++
		}
	}
	s.Rank = &r
	s.EffectiveRank = Float(effectiveRank(sv))
	fro := float64(s.Fro)
	if s0 > 0 {
		s.StableRank = Float(fro * fro / (s0 * s0))
	} else {
		s.StableRank = nan
	}
	switch last := sv[len(sv)-1]; {
	case !(last > 0):
		s.Condition = nan
		s.Flags = append(s.Flags, FlagSingular)
	case last < eps32*s0:
		s.Condition = nan
		s.Flags = append(s.Flags, FlagIllConditioned)
	default:
		s.Condition = Float(s0 / last)
	}
	if keepSV {
		s.SV = sv
	}
	s.spark = sparkSummary(sv)
}

// effectiveRank is exp of the entropy of sv/Σsv; NaN when Σsv = 0.
func effectiveRank(sv []float64) float64 {
	var total float64
	for _, v := range sv {
		total += v
	}
	if total <= 0 {
		return math.NaN()
	}
	var h float64
	for _, v := range sv {
		if p := v / total; p > 0 {
			h -= p * math.Log(p)
		}
	}
	return math.Exp(h)
}

// skipSpectrum marks the spectral statistics of a non-finite block as null.
func skipSpectrum(s *Stats) {
	nan := Float(math.NaN())
	s.SpectralNorm, s.EffectiveRank, s.StableRank, s.Condition = nan, nan, nan, nan
	s.Rank = nil
	s.Flags = append(s.Flags, FlagSpectrumSkipped)
}

// sparkSummary keeps at most 64 values of a descending spectrum, sampled at
// evenly spaced ranks, for rendering.
func sparkSummary(sv []float64) []float64 {
	const k = 64
	if len(sv) <= k {
		return append([]float64(nil), sv...)
	}
	out := make([]float64, k)
	for i := range out {
		out[i] = sv[i*(len(sv)-1)/(k-1)]
	}
	return out
}

// median of a copy of xs, ignoring NaNs; NaN when none remain.
func median(xs []float64) float64 {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
