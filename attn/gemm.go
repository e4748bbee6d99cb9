package attn

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// gemm computes C = A·op(B) for row-major float32 operands with strides:
// A is m×k (lda), B is n×k when transB (C = A·Bᵀ) or k×n otherwise (ldb),
// and C is m×n (ldc). C is overwritten.
func gemm(transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}
	A := blas32.General{Rows: m, Cols: k, Stride: lda, Data: a}
	tb := blas.NoTrans
	B := blas32.General{Rows: k, Cols: n, Stride: ldb, Data: b}
	if transB {
		tb = blas.Trans
		B = blas32.General{Rows: n, Cols: k, Stride: ldb, Data: b}
	}
	C := blas32.General{Rows: m, Cols: n, Stride: ldc, Data: c}
	blas32.Gemm(blas.NoTrans, tb, 1, A, B, 0, C)
}
