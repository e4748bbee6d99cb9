package cmd

import (
	"math"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
)

// TestCircuitsCost: the estimate is inspect/circuits' count, (H·d +
// KV·(d+dv))·d_model·H·dv per pair of layers and variant plus 6%, and a
// 32-layer, 32-head, 4096-wide model is announced in hours.
func TestCircuitsCost(t *testing.T) {
	g := formats.Geometry{DModel: 4096, NLayers: 32, NHeads: 32, NKVHeads: 32, HeadDim: 128, PreNorm: true, Norm: formats.NormRMS}
	per := float64(32*128+32*(128+128)) * 4096 * 32 * 128
	if got, want := circuitsCost(g, 32, true), 1.06*per*496*2; math.Abs(got-want) > 1e-9*want {
		t.Errorf("cost %g, want %g", got, want)
	}
	if got, want := circuitsCost(g, 32, false), 1.06*per*496; math.Abs(got-want) > 1e-9*want {
		t.Errorf("raw-only cost %g, want %g", got, want)
	}
	post := g
	post.PreNorm = false
	if circuitsCost(post, 32, true) != circuitsCost(g, 32, false) {
		t.Error("a post-norm model has one variant")
	}
	// GQA with a different value head dim.
	gqa := formats.Geometry{DModel: 2048, NHeads: 16, NKVHeads: 4, HeadDim: 128, VHeadDim: 64}
	if got, want := circuitsCost(gqa, 2, false), 1.06*float64(16*128+4*(128+64))*2048*16*64; math.Abs(got-want) > 1e-9*want {
		t.Errorf("GQA cost %g, want %g", got, want)
	}
	rate := machineRate()
	if !(rate > 1e6) {
		t.Fatalf("machine rate %g multiply-adds/s", rate)
	}
	cost := circuitsCost(g, 32, true)
	msg := costNotice(g, 32, true, cost, cost/rate)
	t.Logf("%s", msg)
	if !strings.Contains(msg, "hours") && !strings.Contains(msg, "days") {
		t.Errorf("a 32-layer 4096-wide model is not announced in hours: %s", msg)
	}
	for _, want := range []string{"496 pairs of layers", "--raw-only halves it", "--layers narrows it"} {
		if !strings.Contains(msg, want) {
			t.Errorf("notice lacks %q: %s", want, msg)
		}
	}
}
