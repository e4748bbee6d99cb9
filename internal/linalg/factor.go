package linalg

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// Gram returns the n×n matrix A·Aᵀ of the n×k view a, accumulated in
// float64 (products of float32 values are exact there), both triangles
// filled. Pass a.T() for AᵀA.
//
// Accuracy: each entry to about k·eps64 times Σ_p |a_ip·a_jp|. Cost: n²·k
// flops (one triangle through Mul, then mirrored); memory n² values.
func Gram[S Float](a View[S]) ([]float64, error) {
	if err := a.Check(); err != nil {
		return nil, err
	}
	n := a.Rows
	g := make([]float64, n*n)
	if err := Mul(g, n, 1, a, a.T(), 1, MulOptions{Tri: Lower}); err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			g[i*n+j] = g[j*n+i]
		}
	}
	return g, nil
}

// SingularValues returns the min(m, n) singular values of the row-major
// m×n matrix x, descending; x is overwritten. It is LAPACK's dgesvd without
// vectors as gonum implements it: Householder bidiagonalisation, then
// bidiagonal QR. x must hold m·n values (nil otherwise).
//
// Accuracy: backward stable, each value to about a small multiple of
// max(m, n)·eps64·σ_max absolute. Cost: about 4·m·n² − 4n³/3 flops for
// m ≥ n, on one goroutine.
func SingularValues(x []float64, m, n int) []float64 {
	k := min(m, n)
	if k <= 0 || len(x) < m*n {
		return nil
	}
	g := blas64.General{Rows: m, Cols: n, Stride: n, Data: x}
	s := make([]float64, k)
	none := blas64.General{Stride: 1}
	work := make([]float64, 1)
	lapack64.Gesvd(lapack.SVDNone, lapack.SVDNone, g, none, none, s, work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Gesvd(lapack.SVDNone, lapack.SVDNone, g, none, none, s, work, len(work))
	return s
}

// ThinR returns the r×c upper-triangular factor R (r = min(rows, c),
// row-major) of a thin QR factorisation X = Q·R of the row-major rows×c
// matrix x, which is overwritten (LAPACK's dgeqrf as gonum implements it:
// Householder reflections). R determines everything about X that does not
// depend on the orthonormal Q: XᵀX = RᵀR, and X·Yᵀ = Q_X·(R_X R_Yᵀ)·Q_Yᵀ has
// the singular values of the small R_X R_Yᵀ. x must hold rows·c values (nil
// otherwise).
//
// Accuracy: backward stable (R is the exact factor of X + E with ‖E‖ a
// small multiple of rows·eps64·‖X‖). Cost: 2·rows·c² − 2c³/3 flops.
func ThinR(x []float64, rows, c int) []float64 {
	if rows < 0 || c < 0 || len(x) < rows*c {
		return nil
	}
	r := min(rows, c)
	out := make([]float64, r*c)
	if r == 0 {
		return out
	}
	g := blas64.General{Rows: rows, Cols: c, Stride: c, Data: x}
	tau := make([]float64, r)
	work := make([]float64, 1)
	lapack64.Geqrf(g, tau, work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Geqrf(g, tau, work, len(work))
	for i := 0; i < r; i++ {
		copy(out[i*c+i:(i+1)*c], x[i*c+i:(i+1)*c])
	}
	return out
}

// CrossSingularValues returns the singular values of the r×r matrix
// Rx·Ryᵀ, descending, for row-major r×c matrices rx and ry (typically two
// ThinR factors of matrices with c columns: then they are the nonzero
// singular values of X·Yᵀ). The product is summed in float64 in order.
// Cost: 2r²c flops plus an r×r SVD.
func CrossSingularValues(rx, ry []float64, r, c int) []float64 {
	if r <= 0 || c < 0 || len(rx) < r*c || len(ry) < r*c {
		return nil
	}
	m := make([]float64, r*r)
	for i := 0; i < r; i++ {
		for j := 0; j < r; j++ {
			var s float64
			for t := 0; t < c; t++ {
				s += rx[i*c+t] * ry[j*c+t]
			}
			m[i*r+j] = s
		}
	}
	return SingularValues(m, r, r)
}

// LowRankSingularValues returns the singular values of scale·B·A for the
// out×r view b and the r×in view a, never forming the out×in product: with
// thin QR factorisations B = Q_B R_B and Aᵀ = Q_A R_A, scale·B·A =
// Q_B (scale·R_B R_Aᵀ) Q_Aᵀ, whose singular values are |scale| times those
// of the r×r matrix R_B R_Aᵀ. It returns min(out, in, r) values,
// descending; the remaining min(out, in) − r singular values of the
// product are exactly zero.
//
// This is how a LoRA update ΔW = scale·B·A is measured: B is PEFT's lora_B
// [out, r], A its lora_A [r, in].
//
// Accuracy: the factors are widened to float64 and reduced by backward
// stable steps, so every value carries an absolute error of a small
// multiple of (out + in)·eps64·|scale|·‖B‖·‖A‖ — relative 1e-12 or better
// for the leading values; values much below that are not resolved.
// Cost: about 2r²·(out + in) flops plus an r×r SVD, against 2·r·out·in to
// form the product and O(out·in·min(out, in)) to decompose it.
func LowRankSingularValues[S Float](b, a View[S], scale float64) ([]float64, error) {
	if err := b.Check(); err != nil {
		return nil, err
	}
	if err := a.Check(); err != nil {
		return nil, err
	}
	out, r, in := b.Rows, b.Cols, a.Cols
	if a.Rows != r {
		return nil, fmt.Errorf("%w: B %d×%d times A %d×%d", ErrShape, out, r, a.Rows, in)
	}
	if math.IsNaN(scale) || math.IsInf(scale, 0) {
		return nil, fmt.Errorf("linalg: scale %v", scale)
	}
	if out == 0 || in == 0 || r == 0 {
		return nil, nil
	}
	rb := ThinR(dense(b), out, r) // min(out, r)×r
	ra := ThinR(dense(a.T()), in, r)
	// Pad the shorter factor with zero rows so both are r×r (a factor with
	// fewer than r rows has rank below r; the padding adds zero singular
	// values, which the trim below removes).
	rb, ra = padRows(rb, min(out, r), r, r), padRows(ra, min(in, r), r, r)
	sv := CrossSingularValues(rb, ra, r, r)
	sv = sv[:min(out, in, r)]
	as := math.Abs(scale)
	for i := range sv {
		sv[i] *= as
	}
	return sv, nil
}

// dense copies the view v into a row-major float64 matrix.
func dense[S Float](v View[S]) []float64 {
	out := make([]float64, v.Rows*v.Cols)
	for i := 0; i < v.Rows; i++ {
		row := out[i*v.Cols : (i+1)*v.Cols]
		for j := range row {
			row[j] = float64(v.Data[i*v.RowStride+j*v.ColStride])
		}
	}
	return out
}

// padRows extends a row-major rows×c matrix to want rows with zeros.
func padRows(x []float64, rows, want, c int) []float64 {
	if rows >= want {
		return x
	}
	return append(x[:rows*c], make([]float64, (want-rows)*c)...)
}
