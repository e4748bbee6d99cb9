package attn

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkGemmProj measures one x·Wᵀ product of the 4096-wide benchmark
// (512×4096 by 4096×4096) on one goroutine.
func BenchmarkGemmProj(b *testing.B) {
	const m, n, k = 512, 4096, 4096
	r := rand.New(rand.NewPCG(1, 1))
	a, w, c := randVec(r, m*k, 1), randVec(r, n*k, 1), make([]float32, m*n)
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		gemm(true, m, n, k, a, k, w, k, c, n, false)
	}
	flops := float64(2*m*n*k) * float64(b.N)
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
	b.ReportMetric(flops/(cpuTime()-c0).Seconds()/1e9, "GFLOPS/cpu-s")
}
