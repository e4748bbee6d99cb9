package inspect

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

// materialised is an adapter as inspect saw it before its factors were
// handed over: every update formed (LoadLayer) and no factors, so each
// spectrum is a decomposition of the out×in ΔW.
type materialised struct{ LayerSource }

func (s materialised) LoadLayer(i int) (*formats.Layer, error) {
	l, err := s.LayerSource.LoadLayer(i)
	if l != nil {
		l.LoRA = nil
	}
	return l, err
}

func fixtureAdapter(b *testing.B) *formats.Model {
	dir := filepath.Join(testref.SharedDir(b), "fixtures", "lora", "mlx-llama3-8b-discollama")
	ck, err := formats.Open(dir, formats.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ck.Close() })
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkLoRAInspect runs inspect's default analysis of the shared MLX
// adapter (rank-8 updates of Llama 3 8B's q [4096, 4096] and v [1024, 4096]
// in layers 30 and 31) side by side: "materialised" decomposes each formed
// ΔW, "factors" takes the spectra from the factors and forms ΔW 64 rows at
// a time for the element statistics only. B/op shows that the factors path
// never allocates a whole update (64 MiB for q).
func BenchmarkLoRAInspect(b *testing.B) {
	m := fixtureAdapter(b)
	for _, c := range []struct {
		name string
		src  LayerSource
	}{{"materialised", materialised{m}}, {"factors", FromFactors(m)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			c0 := cpuSeconds()
			for b.Loop() {
				if _, err := Run(context.Background(), c.src, Options{Workers: 1}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cpuSeconds()-c0)/float64(b.N), "cpu-s/op")
		})
	}
}
