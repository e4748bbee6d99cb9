package attn

import "github.com/qkvdev/qkv/internal/linalg"

// The matrix products of the rerun, as thin adapters over linalg's packed
// single-precision product (float32 accumulation with fused multiply-adds,
// as BLAS does): attn holds no kernel of its own. Operands are row-major
// with strides; op(B) is B (k×n) or, with transB, the transpose of an n×k
// B. The adapters panic on operands too short for their shapes, which only
// a bug in this package can produce.

// packedA is all of an m×k matrix A packed for products; several products
// with the same A (x·W_Qᵀ, x·W_Kᵀ, x·W_Vᵀ) share one packing.
type packedA struct {
	m, k int
	p    linalg.PackedA[float32]
}

// packedB is all of op(B) (k×n) packed; a product may use a prefix of its
// columns and of its depth.
type packedB struct {
	n, k int
	p    linalg.PackedB[float32]
}

// opB views op(B): B is n×k (ldb) when transB, else k×n.
func opB(b []float32, ldb int, transB bool, n, k int) linalg.View[float32] {
	if transB {
		return linalg.RowMajor(b, n, k, ldb).T()
	}
	return linalg.RowMajor(b, k, n, ldb)
}

// gemm computes C = A·op(B) for A m×k (lda) and C m×n (ldc), overwriting C,
// on up to GOMAXPROCS goroutines when parallel is set.
func gemm(transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, parallel bool) {
	if m <= 0 || n <= 0 {
		return
	}
	must(linalg.Mul(c, ldc, 1, linalg.RowMajor(a, m, k, lda), opB(b, ldb, transB, n, k), 0, linalg.MulOptions{Serial: !parallel}))
}

// packMatrixA packs A (m×k, stride lda) for gemmPacked and gemmPP.
func packMatrixA(a []float32, lda, m, k int, parallel bool) packedA {
	pa, err := linalg.PackA[float32](linalg.RowMajor(a, m, k, lda), parallel)
	must(err)
	return packedA{m: m, k: k, p: pa}
}

// gemmPacked computes C = A·op(B) for a packed A; see gemm.
func gemmPacked(pa packedA, transB bool, n int, b []float32, ldb int, c []float32, ldc int, parallel bool) {
	if pa.m <= 0 || n <= 0 {
		return
	}
	must(linalg.MulPackedA(c, ldc, pa.p, opB(b, ldb, transB, n, pa.k), parallel))
}

// packMatrixB packs op(B): B is n×k (ldb) when transB, else k×n.
func packMatrixB(b []float32, ldb int, transB bool, n, k int) packedB {
	pb, err := linalg.PackB[float32](opB(b, ldb, transB, n, k))
	must(err)
	return packedB{n: n, k: k, p: pb}
}

// gemmPP computes C = A·op(B) on one goroutine from packed operands, using
// the first n columns of pb and the first k (≤ pb's depth) depths, k being
// pa's depth.
func gemmPP(pa packedA, pb packedB, n int, c []float32, ldc int) {
	must(linalg.MulPacked(c, ldc, pa.p, pb.p, n))
}

// parallelFor runs f(0..n−1) on up to GOMAXPROCS goroutines when parallel
// is set, else in order on the caller's goroutine.
func parallelFor(n int, f func(i int), parallel bool) { linalg.ForEach(n, parallel, f) }

func must(err error) {
	if err != nil {
		panic("attn: " + err.Error())
	}
}
