// Package linalg is qkv's dense linear algebra: one packed matrix product
// with float32 and float64 micro-kernels, the symmetric products built on it
// (Gram matrices, rank-2k updates), a blocked Householder tridiagonalisation
// for symmetric eigenvalues, block Lanczos for the leading singular values,
// and the small factorisations (thin QR, singular values of products of thin
// factors) that the statistics need. It depends on nothing in qkv; inspect
// and attn use it and hold no kernel of their own.
//
// # The product
//
// Mul, MulPackedA and MulPacked compute C = α·A·B + β·C in the manner of
// Goto and BLIS: per depth block of 256, A is packed into strips of 6 rows
// and B into strips of 16 (float32) or 8 (float64) columns, k-major, and a
// register-tiled micro-kernel accumulates one 6×16 or 6×8 tile of C over
// the block with fused multiply-adds. The element type of C is the
// precision of the product; the operands may be float32 or float64 and are
// converted while they are packed (so a float32 matrix can be multiplied in
// float64, where products of float32 values are exact). Within a depth
// block each entry of C is one ordered chain of multiply-adds, so results
// do not depend on the number of goroutines.
//
// On amd64 with AVX2 and FMA the micro-kernels, the 16-row transpose used
// for packing and the fused dot/axpy of the symmetric matrix-vector product
// are assembly (kernel_amd64.s). Every assembly routine sits behind a Go
// wrapper that checks the lengths of the slices it is given and rejects
// short ones with an error before any pointer is taken. Building with the
// `purego` tag, or for another architecture, selects the portable Go
// kernels; `go test -tags purego ./internal/linalg` tests that path.
//
// Every function documents what it computes, its accuracy and its cost in
// the manner of gonum/mat.
package linalg
