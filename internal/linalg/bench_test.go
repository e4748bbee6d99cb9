package linalg

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkKernel32 and BenchmarkKernel64 measure the micro-kernels alone
// on L1-resident strips (GFLOPS of the selected kernel).
func BenchmarkKernel32(b *testing.B) { benchKernel(b, kernel32, 16) }
func BenchmarkKernel64(b *testing.B) { benchKernel(b, kernel64, 8) }

func benchKernel[T Float](b *testing.B, kern func(int, []T, []T, []T, int, bool) error, nr int) {
	r := rand.New(rand.NewPCG(1, 1))
	a, bb, c := randSlice[T](r, kc*mr), randSlice[T](r, kc*nr), make([]T, mr*nr)
	for b.Loop() {
		must(kern(kc, a, bb, c, nr, true))
	}
	b.ReportMetric(float64(2*mr*nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
}

// BenchmarkGram1024x4096 measures the float64 Gram matrix of a 1024×4096
// float32 matrix, the first step of inspect's spectrum of such a matrix.
func BenchmarkGram1024x4096(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	a := RowMajor(randSlice[float32](r, 1024*4096), 1024, 4096, 4096)
	for b.Loop() {
		if _, err := Gram(a); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(1024*1024*4096)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
}

// BenchmarkSymEigenvalues measures the eigenvalues of the symmetric Gram
// matrix of a random 1024×4096 matrix (n = 1024; the eigensolver step of
// inspect's spectrum of such a matrix) and of a 2048×2048 one, whose
// symmetric matrix-vector products are split into a fixed number of parts.
func BenchmarkSymEigenvalues(b *testing.B) {
	for _, n := range []int{1024, 2048} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(2, 2))
			a := RowMajor(randSlice[float32](r, n*2*n), n, 2*n, 2*n)
			g, err := Gram(a)
			if err != nil {
				b.Fatal(err)
			}
			s := make([]float64, len(g))
			for b.Loop() {
				copy(s, g)
				if _, ok := SymEigenvalues(s, n); !ok {
					b.Fatal("no convergence")
				}
			}
		})
	}
}
