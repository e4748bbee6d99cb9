package attn

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/qkvdev/qkv/formats"
)

// BenchmarkLayer4096 reruns one layer of a 4096-wide model with 32 query
// heads and 8 KV heads (head_dim 128, RMSNorm, full RoPE, causal) on T = 512,
// with random weights: the computation of testdata/bench/layer4096.py.
func BenchmarkLayer4096(b *testing.B) {
	const T, D, H, KV, HD = 512, 4096, 32, 8, 128
	g := formats.Geometry{Arch: "llama", DModel: D, NLayers: 1, NHeads: H, NKVHeads: KV, HeadDim: HD,
		Causal: true, RotaryDims: HD, RopeTheta: 10000, Norm: formats.NormRMS, NormEps: 1e-5, PreNorm: true}
	r := rand.New(rand.NewPCG(1, 2))
	l := &formats.Layer{Q: randMatrix(r, H*HD, D, 0.02), K: randMatrix(r, KV*HD, D, 0.02),
		V: randMatrix(r, KV*HD, D, 0.02), O: randMatrix(r, D, H*HD, 0.02), NormWeight: randVec(r, D, 0.1)}
	for i := range l.NormWeight {
		l.NormWeight[i]++
	}
	x, _, err := RandomInput(T, D, 3, 1)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Run(g, l, x, Options{}); err != nil { // warm up, as the script does
		b.Fatal(err)
	}
	b.ResetTimer()
	c0 := cpuTime()
	best := time.Duration(1 << 62)
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := Run(g, l, x, Options{}); err != nil {
			b.Fatal(err)
		}
		best = min(best, time.Since(t0))
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(best)/1e6, "best-ms")
}

// BenchmarkSoftmaxRows turns one head's causal 512×512 scores into
// probabilities: the part of Run outside the matrix products.
func BenchmarkSoftmaxRows(b *testing.B) {
	const T = 512
	src := make([]float32, T*T)
	for i := range src {
		src[i] = float32(i%97) * 0.01
	}
	p := make([]float32, T*T)
	for i := 0; i < b.N; i++ {
		copy(p, src)
		softmaxRows(p, T, rowRule{scale: 0.1, causal: true})
	}
}
