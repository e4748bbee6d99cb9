package inspect

import (
	"math"

	"github.com/qkvdev/qkv/internal/linalg"
)

// Spectrum methods, as recorded in Stats.Method.
const (
	MethodGram    = "gram"
	MethodSVD     = "svd"
	MethodLanczos = "lanczos"
)

// haveFMA reports whether linalg computes the products with its assembly
// kernels (AVX2 + FMA): it decides the last bits of the statistics (see
// Numerics).
var haveFMA = linalg.Kernel() == "avx2-fma"

// directBelow is the smaller dimension under which the direct SVD is always
// used: it is cheap there and never loses accuracy.
const directBelow = 48

// gramRelErr is the largest estimated relative error of a singular value
// that the Gram route accepts. The estimate is conservative: on a 4096×4096
// standard normal matrix (condition 9.7e3) it is 2.7e-6 where the measured
// error against numpy's float64 SVD is 1.3e-8.
const gramRelErr = 1e-5

// SingularValues returns every singular value of the row-major m×n float32
// matrix a, in descending order, and the method used ("gram" or "svd"). The
// input must be finite. Every value is accurate to about 1e-5 relative (see
// the package documentation for how the route is chosen).
func SingularValues(a []float32, m, n int) ([]float64, string) {
	sv, method, _ := singularValues(a, m, n, false, 0)
	return sv, method
}

// approxTailFrom is the smaller dimension from which MatrixStats accepts a
// Gram spectrum whose values below the rank threshold are approximate,
// rather than paying for the direct route.
const approxTailFrom = 512

// singularValues is SingularValues; with approxTail it may return a Gram
// spectrum whose last approx values (all below the rank threshold, the
// default one or rankTol when > 0) are only
// accurate to about sqrt(c·eps64)·sv[0] absolute.
func singularValues(a []float32, m, n int, approxTail bool, rankTol float64) (sv []float64, method string, approx int) {
	k := min(m, n)
	if k <= 0 || len(a) != m*n {
		return nil, MethodSVD, 0
	}
	// Small matrices go straight to the direct route, except very long thin
	// ones, whose float64 copy would be large while their Gram matrix is tiny.
	if k >= directBelow || m*n > 1<<22 {
		if sv, approx, ok := gramSingularValues(a, m, n); ok {
			if approx == 0 {
				return sv, MethodGram, 0
			}
			// The inaccurate values must all lie below the rank threshold, so
			// that rank stays exact.
			tol := sv[0] * float64(max(m, n)) * 1.1920929e-07
			if rankTol > 0 {
				tol = rankTol
			}
			if approxTail && k >= approxTailFrom && gramCutoff(sv[0], k) < tol {
				return sv, MethodGram, approx
			}
		}
	}
	return directSingularValues(a, m, n), MethodSVD, 0
}

// gramCutoff is the smallest singular value the Gram route resolves to
// gramRelErr: below it the estimate c·eps64·λ_max/(2λ) exceeds gramRelErr.
func gramCutoff(s0 float64, k int) float64 {
	c := 4 * math.Sqrt(float64(k)) * 0x1p-52
	return s0 * math.Sqrt(c/(2*gramRelErr))
}

// widen returns a as float64, transposed when transpose is set, so that the
// result is k×L with k = min(m, n) rows when the caller asks for it.
func widen(a []float32, m, n int, transpose bool) []float64 {
	out := make([]float64, m*n)
	if !transpose {
		for i, v := range a {
			out[i] = float64(v)
		}
		return out
	}
	// Blocked transpose keeps both sides in cache.
	const b = 64
	for i0 := 0; i0 < m; i0 += b {
		for j0 := 0; j0 < n; j0 += b {
			for i := i0; i < min(i0+b, m); i++ {
				row := a[i*n : (i+1)*n]
				for j := j0; j < min(j0+b, n); j++ {
					out[j*m+i] = float64(row[j])
				}
			}
		}
	}
	return out
}

// gramSingularValues computes sv from the eigenvalues of the Gram matrix of
// the smaller side and counts the trailing values whose estimated relative
// error exceeds gramRelErr; ok is false when the eigensolver fails.
func gramSingularValues(a []float32, m, n int) (sv []float64, approx int, ok bool) {
	// The Gram matrix of the smaller side: A Aᵀ when m ≤ n, else Aᵀ A.
	v, k := linalg.RowMajor(a, m, n, n), m
	if m > n {
		v, k = v.T(), n
	}
	g, err := linalg.Gram(v)
	if err != nil {
		return nil, 0, false
	}
	lam, ok := linalg.SymEigenvalues(g, k)
	if !ok {
		return nil, 0, false
	}
	lmax := lam[k-1]
	if !(lmax > 0) {
		return nil, 0, false
	}
	sv = make([]float64, k)
	cut := gramCutoff(math.Sqrt(lmax), k)
	for i := range sv {
		sv[i] = math.Sqrt(math.Max(0, lam[k-1-i]))
		if !(sv[i] >= cut) {
			approx++
		}
	}
	return sv, approx, true
}

// directSingularValues runs the LAPACK-style dgesvd without vectors on a
// float64 copy of a.
func directSingularValues(a []float32, m, n int) []float64 {
	return linalg.SingularValues(widen(a, m, n, false), m, n)
}
