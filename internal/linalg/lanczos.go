package linalg

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// BlockLanczos estimates the leading singular values of the m×n matrix a.
// It builds a block Krylov space of AᵀA from a fixed pseudo-random start
// block of b vectors (so runs are reproducible), s blocks deep, with full
// reorthogonalisation, and runs Rayleigh–Ritz on A over it.
//
// It returns the Ritz values θ, descending (at most b·s of them; fewer when
// the space becomes invariant, in which case they are exact), and for the
// leading min(len(θ), nBounds) of them upper bounds hi: a singular value of
// A lies in [θ_i, hi_i], where hi_i = sqrt(θ_i² + ρ_i) and ρ_i = ‖AᵀA y −
// θ_i² y‖ is the residual of the Ritz vector y.
//
// Accuracy: θ_i ≤ σ_i always (interlacing); the brackets are rigorous up to
// float64 rounding. Convergence is fastest for the largest, well separated
// values (decaying spectra such as trained weights'); the brackets say how
// far each value got.
//
// Cost: about 4·m·n·b·s flops for the Krylov space (products through Mul,
// all in float64), plus O(n·(b·s)²) for the reorthogonalisation; memory
// about (2n + m)·b·s values.
func BlockLanczos[S Float](a View[S], b, s, nBounds int) (theta, hi []float64, err error) {
	if err := a.Check(); err != nil {
		return nil, nil, err
	}
	if b <= 0 || s <= 0 {
		return nil, nil, fmt.Errorf("%w: block Lanczos with %d blocks of %d", ErrShape, s, b)
	}
	m, n := a.Rows, a.Cols
	if m == 0 || n == 0 {
		return nil, nil, nil
	}
	at := a.T()
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
		must(Mul(ys[d:], capd, 1, a, RowMajor(block, k, n, n).T(), 1, MulOptions{}))
		basis = append(basis, block...)
		d += k
		// (Aᵀ Y)ᵀ = Yᵀ A (k×n): rows are the next block's vectors.
		next := make([]float64, k*n)
		must(Mul(next, n, 1, RowMajor(ys[d-k:], m, k, capd).T(), at.T(), 1, MulOptions{}))
		aty = append(aty, next...)
		block = next
	}
	if d == 0 {
		return nil, nil, nil
	}
	// Rayleigh–Ritz: the singular values of Z = A·Q are the square roots of
	// the eigenvalues of ZᵀZ (d×d).
	zt := RowMajor(ys, m, d, capd).T() // Zᵀ, d×m
	g := make([]float64, d*d)
	must(Mul(g, d, 1, zt, zt.T(), 1, MulOptions{}))
	lam, vecs := symEigen(g, d)
	theta = make([]float64, d)
	for i := range theta {
		theta[i] = math.Sqrt(math.Max(0, lam[d-1-i]))
	}
	// Residuals of the leading Ritz pairs: r = Aᵀ(Z x) − θ² (Q x), with
	// X the leading eigenvectors as rows (t×d).
	t := min(d, nBounds)
	xs := make([]float64, t*d)
	for c := 0; c < t; c++ {
		for r := 0; r < d; r++ {
			xs[c*d+r] = vecs[r*d+d-1-c]
		}
	}
	atz := make([]float64, t*n) // rows (Aᵀ Z x_c)ᵀ = Σ_r x_c[r]·aty[r]
	must(Mul(atz, n, 1, RowMajor(xs, t, d, d), RowMajor(aty, d, n, n), 1, MulOptions{}))
	qx := make([]float64, t*n) // rows (Q x_c)ᵀ
	must(Mul(qx, n, 1, RowMajor(xs, t, d, d), RowMajor(basis, d, n, n), 1, MulOptions{}))
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
	return theta, hi, nil
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
	bv := RowMajor(basis, d, n, n)
	c := make([]float64, k*d)
	project := func() float64 {
		worst := 0.0
		if d == 0 {
			return 0
		}
		for pass := 0; pass < 2; pass++ {
			clear(c[:k*d])
			must(Mul(c, d, 1, RowMajor(x, k, n, n), bv.T(), 1, MulOptions{}))
			if pass == 0 {
				for _, v := range c[:k*d] {
					worst = math.Max(worst, math.Abs(v))
				}
			}
			must(Mul(x, n, -1, RowMajor(c, k, d, d), bv, 1, MulOptions{}))
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
