package linalg

import (
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
