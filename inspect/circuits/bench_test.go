package circuits

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/linalg"
)

// genSource generates a random pre-norm model's layers on demand (seeded by
// the layer index), so that a benchmark of a large model holds no more than
// the layers Compute keeps.
type genSource struct {
	geo formats.Geometry
}

func (s genSource) Geometry() formats.Geometry { return s.geo }
func (s genSource) LayerIndices() []int {
	idx := make([]int, s.geo.NLayers)
	for i := range idx {
		idx[i] = i
	}
	return idx
}
func (s genSource) LoadLayer(i int) (*formats.Layer, error) {
	g := s.geo
	r := rand.New(rand.NewPCG(uint64(i), 20261206))
	fill := func(rows, cols int) formats.Matrix {
		m := formats.NewMatrix(rows, cols)
		for j := range m.Data {
			m.Data[j] = float32(r.Float64()*2 - 1)
		}
		return m
	}
	l := &formats.Layer{Index: i, Q: fill(g.NHeads*g.HeadDim, g.DModel), K: fill(g.NKVHeads*g.HeadDim, g.DModel),
		V: fill(g.NKVHeads*g.HeadDim, g.DModel), O: fill(g.DModel, g.NHeads*g.HeadDim)}
	l.NormWeight = make([]float32, g.DModel)
	for j := range l.NormWeight {
		l.NormWeight[j] = float32(0.5 + r.Float64())
	}
	return l, nil
}

func genModel(layers, heads, kv, dModel int) genSource {
	return genSource{formats.Geometry{DModel: dModel, NLayers: layers, NHeads: heads, NKVHeads: kv,
		HeadDim: dModel / heads, PreNorm: true, Norm: formats.NormRMS}}
}

// multiplyAdds is the size of the products [W_Q; W_K; W_V]_{l2}·W_O_{l1} of
// one pair of layers, per variant: the part any exact method must compute.
func multiplyAdds(g formats.Geometry) float64 {
	return float64(g.NHeads+2*g.NKVHeads) * float64(g.HeadDim) * float64(g.DModel) * float64(g.NHeads*g.HeadDim)
}

// benchCompute times Compute on a generated model (both variants, no
// baseline) and, side by side in the same iteration, the anchor: one
// product of the size of a pair of layers' [W_Q; W_K; W_V]·W_O, in float64
// through the same multiplication. It reports the achieved rate and the
// ratio of Compute to the products it cannot avoid (in CPU time, steadier
// than wall time on a shared machine).
func benchCompute(b *testing.B, layers, heads, kv, dModel int) {
	src := genModel(layers, heads, kv, dModel)
	g := src.geo
	pairs := layers * (layers - 1) / 2
	fma := 2 * multiplyAdds(g) * float64(pairs)
	// The anchor's operands.
	l0, _ := src.LoadLayer(0)
	rows := (heads + 2*kv) * g.HeadDim
	a := formats.NewMatrix(rows, dModel)
	copy(a.Data, l0.Q.Data)
	copy(a.Data[len(l0.Q.Data):], l0.K.Data)
	copy(a.Data[len(l0.Q.Data)+len(l0.K.Data):], l0.V.Data)
	c := make([]float64, rows*heads*g.HeadDim)
	var total, anchor time.Duration
	var cpu, cpuAnchor float64
	for b.Loop() {
		c0 := cpuSeconds()
		t0 := time.Now()
		if _, err := Compute(context.Background(), src, Options{BaselineSamples: -1}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		c1 := cpuSeconds()
		cpu += c1 - c0
		ncol := heads * g.HeadDim
		if err := mul(c, ncol, linalg.RowMajor(a.Data, rows, dModel, dModel), linalg.RowMajor(l0.O.Data, dModel, ncol, ncol)); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		cpuAnchor += cpuSeconds() - c1
		total += t1.Sub(t0)
		anchor += t2.Sub(t1)
	}
	n := float64(b.N)
	sec := total.Seconds() / n
	// One anchor product is one variant of one pair.
	floor := anchor.Seconds() / n * 2 * float64(pairs)
	b.ReportMetric(sec, "s/model")
	b.ReportMetric(fma/sec/1e9, "GFMA/s")
	cpuSec := cpu / n
	cpuFloor := cpuAnchor / n * 2 * float64(pairs)
	b.ReportMetric(cpuSec/cpuFloor, "x-products")
	b.ReportMetric(cpuSec, "cpu-s/model")
	b.Logf("%d layers × %d heads (%d kv) × %d: %d pairs, %.3g multiply-adds in products; %.3g s (products alone %.3g s); "+
		"%.3g cpu-s (products alone %.3g), %.3g GFMA per cpu-s", layers, heads, kv, dModel, pairs, fma, sec, floor, cpuSec, cpuFloor, fma/cpuSec/1e9)
}

func BenchmarkCompute(b *testing.B) {
	for _, c := range []struct{ layers, heads, kv, dModel int }{
		{32, 32, 32, 512},
		{32, 32, 8, 1024},
		{2, 32, 32, 4096}, // one pair of the 32-layer, 32-head, 4096-wide model
		{2, 32, 8, 4096},
	} {
		b.Run(fmt.Sprintf("L%d-H%d-KV%d-D%d", c.layers, c.heads, c.kv, c.dModel), func(b *testing.B) {
			benchCompute(b, c.layers, c.heads, c.kv, c.dModel)
		})
	}
}
