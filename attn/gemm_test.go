package attn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemm compares the adapters over linalg's product with a float64
// triple loop, for shapes that exercise edge tiles, several depth blocks
// and strides (the kernels themselves, assembly and portable, are tested in
// internal/linalg).
func TestGemm(t *testing.T) { checkGemm(t) }

func checkGemm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range []struct{ m, n, k int }{{1, 1, 1}, {5, 7, 3}, {6, 16, 4}, {13, 33, 257}, {97, 300, 600}, {12, 17, 1000}} {
		for _, transB := range []bool{true, false} {
			for _, parallel := range []bool{false, true} {
				lda, ldb, ldc := s.k+3, s.k+1, s.n+5
				if !transB {
					ldb = s.n + 2
				}
				a := randVec(r, s.m*lda, 1)
				brows := s.n
				if !transB {
					brows = s.k
				}
				b := randVec(r, brows*ldb, 1)
				c := randVec(r, s.m*ldc, 1) // overwritten, except the padding
				pad := append([]float32(nil), c...)
				gemm(transB, s.m, s.n, s.k, a, lda, b, ldb, c, ldc, parallel)
				var worst float64
				for i := 0; i < s.m; i++ {
					for j := 0; j < ldc; j++ {
						got := float64(c[i*ldc+j])
						if j >= s.n {
							if c[i*ldc+j] != pad[i*ldc+j] {
								t.Fatalf("%v: wrote past column n at [%d,%d]", s, i, j)
							}
							continue
						}
						var want, mag float64
						for p := 0; p < s.k; p++ {
							var bv float32
							if transB {
								bv = b[j*ldb+p]
							} else {
								bv = b[p*ldb+j]
							}
							want += float64(a[i*lda+p]) * float64(bv)
							mag += math.Abs(float64(a[i*lda+p]) * float64(bv))
						}
						if e := math.Abs(got-want) / (mag + 1e-30); e > worst {
							worst = e
						}
					}
				}
				if worst > 1e-6 {
					t.Errorf("%v transB=%v: relative error %g", s, transB, worst)
				}
			}
		}
	}
}

// The packed adapters: one packing of A shared by products, and prefixes
// of a packed B (the causal blocks of the rerun).
func TestPackedAdapters(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	const m, n, k = 13, 40, 300
	a := randVec(r, m*k, 1)
	b := randVec(r, n*(k+7), 1) // n×(k+7), used transposed
	pa := packMatrixA(a, k, m, k, true)
	full := make([]float32, m*n)
	gemmPacked(pa, true, n, b, k+7, full, n, true)
	want := make([]float32, m*n)
	gemm(true, m, n, k, a, k, b, k+7, want, n, false)
	if d := maxAbsDiff(full, want); d != 0 {
		t.Errorf("gemmPacked differs from gemm by %g", d)
	}
	pb := packMatrixB(b, k+7, true, n, k+7)
	pre := make([]float32, m*25)
	gemmPP(pa, pb, 25, pre, 25)
	for i := 0; i < m; i++ {
		for j := 0; j < 25; j++ {
			if pre[i*25+j] != want[i*n+j] {
				t.Fatalf("gemmPP [%d,%d] = %g, want %g", i, j, pre[i*25+j], want[i*n+j])
			}
		}
	}
	var hits [10]int
	parallelFor(10, func(i int) { hits[i]++ }, true)
	for i, h := range hits {
		if h != 1 {
			t.Errorf("parallelFor ran %d %d times", i, h)
		}
	}
}
