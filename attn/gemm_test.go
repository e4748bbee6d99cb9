package attn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemm compares the blocked product with a float64 triple loop, for
// shapes that exercise edge tiles, several depth blocks and strides.
func TestGemm(t *testing.T) { checkGemm(t) }

// TestPortableKernel runs the products and a layer with the portable Go
// kernels, which amd64 machines with AVX2 do not otherwise use.
func TestPortableKernel(t *testing.T) {
	saved := useAVX2
	useAVX2 = false
	defer func() { useAVX2 = saved }()
	checkGemm(t)
	TestPackT16(t)
	TestAgainstNaive(t)
}

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

func TestKernelsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, kb := range []int{1, 3, 4, 7, 256} {
		a, b := randVec(r, kb*mr, 1), randVec(r, kb*nr, 1)
		for _, load := range []int{0, 1} {
			c1 := randVec(r, mr*20, 1)
			c2 := append([]float32(nil), c1...)
			kernel(kb, a, b, c1, 20, load)
			kernelGo(kb, a, b, c2, 20, load)
			if d := maxAbsDiff(c1, c2); d > 1e-4 {
				t.Errorf("kb=%d load=%d: kernels differ by %g", kb, load, d)
			}
		}
	}
}

func TestPackT16(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for kb := 1; kb <= 41; kb++ {
		const ldb = 45
		b := randVec(r, 16*ldb, 1)
		got, want := make([]float32, kb*nr), make([]float32, kb*nr)
		packT16(got, b, ldb, kb)
		for p := 0; p < kb; p++ {
			for q := 0; q < nr; q++ {
				want[p*nr+q] = b[q*ldb+p]
			}
		}
		if maxAbsDiff(got, want) != 0 {
			t.Fatalf("kb=%d: packed strip differs", kb)
		}
	}
}
