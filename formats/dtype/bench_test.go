package dtype

import (
	"math/rand/v2"
	"testing"
)

// benchElements is 4M float32 values, 16 MB of output per decode.
const benchElements = 4 << 20

// BenchmarkDecode measures float32 written per second for every decodable
// type, on one goroutine.
// Input is random bytes: fine for throughput, the kernels have no
// data-dependent branches that matter.
func BenchmarkDecode(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	dst := make([]float32, benchElements)
	for _, typ := range All() {
		if !typ.Decodable() {
			continue
		}
		n := benchElements / typ.BlockSize() * typ.BlockSize()
		size, err := typ.ByteSize(int64(n))
		if err != nil {
			b.Fatal(err)
		}
		src := make([]byte, size)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		out := dst[:n]
		b.Run(typ.Name()+"/1core", func(b *testing.B) {
			b.SetBytes(int64(n) * 4)
			for b.Loop() {
				if err := Decode(typ, out, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
