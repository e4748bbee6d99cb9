package inspect

import (
	"math"

	"github.com/qkvdev/qkv/internal/linalg"
)

// Fast-mode parameters (see the package documentation).
const (
	fastBlock  = 32 // block size of block Lanczos
	fastBlocks = 5  // blocks: a Krylov space of dimension 160
	fastSteps  = fastBlock * fastBlocks / 2
	fastKeep   = 64 // at most this many leading Ritz values are trusted
	// fastConverged: a Ritz value θ_i counts as converged when its residual
	// bound is below fastConverged·θ_i.
	fastConverged = 1e-4
)

// tailBounds returns the effective ranks of the spectrum head ∪ tail for the
// two extreme tails of r values with Σ tail² = energy and 0 ≤ tail ≤ cap:
// packed into as few values of size cap as possible (lo), spread evenly
// (hi).
func tailBounds(head []float64, r int, energy, cap float64) (lo, hi float64) {
	energy = math.Max(energy, 0)
	if r <= 0 || energy == 0 || !(cap > 0) {
		e := effectiveRank(head)
		return e, e
	}
	flat := math.Min(math.Sqrt(energy/float64(r)), cap)
	sv := append(append([]float64(nil), head...), make([]float64, r)...)
	for i := len(head); i < len(sv); i++ {
		sv[i] = flat
	}
	hi = effectiveRank(sv)
	q := int(math.Min(float64(r), math.Floor(energy/(cap*cap))))
	for i := len(head); i < len(sv); i++ {
		sv[i] = 0
	}
	for i := 0; i < q; i++ {
		sv[len(head)+i] = cap
	}
	if q < r {
		sv[len(head)+q] = math.Sqrt(math.Max(0, energy-float64(q)*cap*cap))
	}
	lo = effectiveRank(sv)
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}

// fastSpectralStats fills the fast-mode estimates for a finite matrix.
func fastSpectralStats(s *Stats, a []float32, m, n int) {
	k := min(m, n)
	// The residual bounds of the leading fastKeep+1 Ritz values: one past
	// the trusted head, whose bound caps the tail.
	theta, hi, err := linalg.BlockLanczos(linalg.RowMajor(a, m, n, n), fastBlock, fastBlocks, fastKeep+1)
	if err != nil {
		// a holds m·n values (MatrixStats checked it): not reached, but
		// never report a spectrum that was not computed.
		skipSpectrum(s)
		return
	}
	s.Method = MethodLanczos
	s.Flags = append(s.Flags, FlagEstimated)
	nan := Float(math.NaN())
	s.Rank, s.Condition = nil, nan
	if len(theta) == 0 || !(theta[0] > 0) {
		s.SpectralNorm, s.StableRank, s.EffectiveRank = 0, nan, nan
		return
	}
	s.SpectralNorm = Float(theta[0])
	s.SpectralNormBounds = &[2]Float{Float(theta[0]), Float(hi[0])}
	fro := float64(s.Fro)
	s.StableRank = Float(fro * fro / (theta[0] * theta[0]))
	t := 0
	for t < len(hi) && t < fastKeep && hi[t]-theta[t] <= fastConverged*theta[t] {
		t++
	}
	if t == len(theta) && t == k {
		// The whole spectrum was found.
		s.EffectiveRank = Float(effectiveRank(theta))
		s.EffectiveRankBounds = &[2]Float{s.EffectiveRank, s.EffectiveRank}
		s.spark = sparkSummary(theta)
		return
	}
	t = max(t, 1)
	head := theta[:t]
	energy := fro * fro
	for _, v := range head {
		energy -= v * v
	}
	// fro² − Σθ² cancels: below its rounding error the tail is empty.
	if energy < 4*float64(len(theta))*0x1p-52*fro*fro {
		energy = 0
	}
	// Every singular value beyond the head is at most the t-th one, which
	// is at most hi[t-1].
	lo, up := tailBounds(head, k-t, energy, hi[t-1])
	s.EffectiveRank = Float(math.Sqrt(lo * up))
	s.EffectiveRankBounds = &[2]Float{Float(lo), Float(up)}
	s.spark = sparkSummary(theta[:min(len(theta), 2*fastKeep)])
}
