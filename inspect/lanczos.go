package inspect

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"
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

// blockRitz runs block Lanczos (a block Krylov space of AᵀA with full
// reorthogonalisation, Rayleigh–Ritz on A) on the row-major m×n float32
// matrix a, with block size b and s blocks. It returns the Ritz values θ
// (descending, each at most the corresponding singular value) and, for the
// leading ones, upper bounds hi_i such that a singular value of A lies in
// [θ_i, hi_i] (from the residual ‖AᵀA y − θ² y‖ of the Ritz vector).
func blockRitz(a []float32, m, n, b, s int) (theta, hi []float64) {
	av := view[float32]{data: a, rs: n, cs: 1}  // A, m×n
	atv := view[float32]{data: a, rs: 1, cs: n} // Aᵀ, n×m
	// basis holds the orthonormal n-vectors as rows; ys the m-vectors A·q
	// as columns of an m×cap matrix.
	capd := b * s
	basis := make([]float64, 0, capd*n)
	ys := make([]float64, m*capd)
	d := 0
	// A fixed pseudo-random start block (splitmix64) keeps runs reproducible.
	seed := uint64(0x9e3779b97f4a7c15)
	block := make([]float64, b*n)
	for i := range block {
		seed += 0x9e3779b97f4a7c15
		z := seed
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		block[i] = float64(z>>11)/float64(1<<53) - 0.5
	}
	// aty holds (AᵀA q)ᵀ for every basis vector q, as rows: the raw next
	// blocks, kept for the residuals.
	aty := make([]float64, 0, capd*n)
	k := b
	for step := 0; step < s && d+b <= capd; step++ {
		k = orthonormalize(block, k, n, basis, d)
		if k == 0 {
			break // the Krylov space is invariant: its Ritz values are exact
		}
		block = block[:k*n]
		// Y = A·Q_stepᵀ (m×k), stored into columns d..d+k of ys.
		gemmNT(m, k, n, 1, av, view[float64]{data: block, rs: n, cs: 1}, ys[d:], capd, triFull)
		basis = append(basis, block...)
		d += k
		// (Aᵀ Y)ᵀ = Yᵀ A (k×n): rows are the next block's vectors.
		next := make([]float64, k*n)
		gemmNT(k, n, m, 1, view[float64]{data: ys[d-k:], rs: 1, cs: capd}, atv, next, n, triFull)
		aty = append(aty, next...)
		block = next
	}
	if d == 0 {
		return nil, nil
	}
	// Rayleigh–Ritz: the singular values of Z = A·Q are the square roots of
	// the eigenvalues of ZᵀZ (d×d).
	zv := view[float64]{data: ys, rs: 1, cs: capd} // Zᵀ, d×m
	g := make([]float64, d*d)
	gemmNT(d, d, m, 1, zv, zv, g, d, triFull)
	lam, vecs := symEigen(g, d)
	theta = make([]float64, d)
	for i := range theta {
		theta[i] = math.Sqrt(math.Max(0, lam[d-1-i]))
	}
	// Residuals of the leading Ritz pairs: r = Aᵀ(Z x) − θ² (Q x), with
	// X the leading eigenvectors as rows (t×d).
	t := min(d, fastKeep+1)
	xs := make([]float64, t*d)
	for c := 0; c < t; c++ {
		for r := 0; r < d; r++ {
			xs[c*d+r] = vecs[r*d+d-1-c]
		}
	}
	atz := make([]float64, t*n) // rows (Aᵀ Z x_c)ᵀ = Σ_r x_c[r]·aty[r]
	gemmNT(t, n, d, 1, view[float64]{data: xs, rs: d, cs: 1}, view[float64]{data: aty, rs: 1, cs: n}, atz, n, triFull)
	qx := make([]float64, t*n) // rows (Q x_c)ᵀ
	gemmNT(t, n, d, 1, view[float64]{data: xs, rs: d, cs: 1}, view[float64]{data: basis, rs: 1, cs: n}, qx, n, triFull)
	hi = make([]float64, t)
	for c := 0; c < t; c++ {
		th2 := theta[c] * theta[c]
		var rho float64
		for i := 0; i < n; i++ {
			res := atz[c*n+i] - th2*qx[c*n+i]
			rho += res * res
		}
		hi[c] = math.Sqrt(th2 + math.Sqrt(rho))
	}
	return theta, hi
}

// orthonormalize makes the k rows of x (k×n) orthonormal and orthogonal to
// the d rows of basis: block classical Gram–Schmidt against the basis, then
// modified Gram–Schmidt within the block, each twice; rows that lose all
// but 1e-10 of their norm are dropped. Nearly dependent rows lose
// orthogonality in one round, so rounds repeat (on the now unit rows) until
// the block is orthogonal to the basis to 1e-13. It returns the number of
// rows kept (compacted to the front of x).
func orthonormalize(x []float64, k, n int, basis []float64, d int) int {
	norms := make([]float64, k)
	for i := 0; i < k; i++ {
		norms[i] = math.Sqrt(dot(x[i*n:(i+1)*n], x[i*n:(i+1)*n]))
	}
	bv := view[float64]{data: basis, rs: n, cs: 1}
	btv := view[float64]{data: basis, rs: 1, cs: n}
	c := make([]float64, k*d)
	project := func() float64 {
		worst := 0.0
		if d == 0 {
			return 0
		}
		for pass := 0; pass < 2; pass++ {
			clear(c[:k*d])
			gemmNT(k, d, n, 1, view[float64]{data: x, rs: n, cs: 1}, bv, c, d, triFull)
			if pass == 0 {
				for _, v := range c[:k*d] {
					worst = math.Max(worst, math.Abs(v))
				}
			}
			gemmNT(k, n, d, -1, view[float64]{data: c, rs: d, cs: 1}, btv, x, n, triFull)
		}
		return worst
	}
	for round := 0; round < 4; round++ {
		worst := project()
		if round > 0 && worst < 1e-13 {
			break
		}
		kept := 0
		for i := 0; i < k; i++ {
			xi := x[i*n : (i+1)*n]
			for pass := 0; pass < 2; pass++ {
				for j := 0; j < kept; j++ {
					xj := x[j*n : (j+1)*n]
					cf := dot(xi, xj)
					for t := range xi {
						xi[t] -= cf * xj[t]
					}
				}
			}
			nr := math.Sqrt(dot(xi, xi))
			if !(nr > 1e-10*norms[i]) {
				continue
			}
			dst := x[kept*n : (kept+1)*n]
			for t := range xi {
				dst[t] = xi[t] / nr
			}
			norms[kept] = 1
			kept++
		}
		k = kept
	}
	return k
}

// symEigen returns the eigenvalues (ascending) and eigenvectors (columns of
// the row-major result) of the symmetric d×d matrix g (overwritten).
func symEigen(g []float64, d int) ([]float64, []float64) {
	sym := blas64.Symmetric{N: d, Stride: d, Data: g, Uplo: blas.Upper}
	w := make([]float64, d)
	work := make([]float64, 1)
	lapack64.Syev(lapack.EVCompute, sym, w, work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Syev(lapack.EVCompute, sym, w, work, len(work))
	return w, g
}

func dot(x, y []float64) float64 {
	var s float64
	for i := range x {
		s += x[i] * y[i]
	}
	return s
}

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
	theta, hi := blockRitz(a, m, n, fastBlock, fastBlocks)
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
