package attn

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
)

// TestRopeFreqsByHand checks each rope scaling type on small cases whose
// values follow from the published formulas with pencil and paper
// (transformers' modeling_rope_utils; rot = 4 or 8, theta = 10000, so the
// plain frequencies are 10000^(−2i/rot): 1, 0.01 for rot 4 and
// 1, 0.1, 0.01, 0.001 for rot 8).
func TestRopeFreqsByHand(t *testing.T) {
	tr, fa := true, false
	// llama3, orig 1000, low 1, high 4: wavelengths 2π/inv = 6.28, 62.8,
	// 628.3, 6283; kept below 1000/4 = 250, divided by 8 above 1000/1,
	// smoothed between with s = (1000/628.3 − 1)/(4 − 1).
	s := (1000/(2*math.Pi/0.01) - 1) / 3
	// YaRN, orig 64, factor 4: d(r) = 8·ln(64/(2πr))/(2·ln 10000), so
	// d(32) = −0.497 and d(1) = 1.008. Truncated: [0, 2], ramp (0, ½, 1, 1);
	// not truncated: [0, 1.008], ramp (0, 0.992, 1, 1).
	d1 := 8 * math.Log(64/(2*math.Pi)) / (2 * math.Log(10000))
	r1 := 1 / d1
	cases := []struct {
		name string
		rot  int
		sc   *formats.RopeScaling
		T    int
		want []float64
		af   float64
	}{
		{"default", 4, nil, 8, []float64{1, 0.01}, 1},
		{"linear", 4, &formats.RopeScaling{Type: "linear", Factor: 2}, 8, []float64{0.5, 0.005}, 1},
		// dynamic, factor 2, max 8: unchanged up to T = 8; at T = 16 the base
		// becomes 10000·(2·16/8 − 1)^(4/2) = 90000.
		{"dynamic short", 4, &formats.RopeScaling{Type: "dynamic", Factor: 2, MaxPositions: 8}, 8, []float64{1, 0.01}, 1},
		{"dynamic long", 4, &formats.RopeScaling{Type: "dynamic", Factor: 2, MaxPositions: 8}, 16, []float64{1, 1.0 / 300}, 1},
		{"llama3", 8, &formats.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 1000},
			8, []float64{1, 0.1, (1-s)*0.01/8 + s*0.01, 0.001 / 8}, 1},
		{"yarn truncate", 8, &formats.RopeScaling{Type: "yarn", Factor: 4, OriginalMaxPositions: 64, Truncate: &tr},
			8, []float64{1, 0.1*0.5 + 0.025*0.5, 0.0025, 0.00025}, 0.1*math.Log(4) + 1},
		{"yarn no truncate", 8, &formats.RopeScaling{Type: "yarn", Factor: 4, OriginalMaxPositions: 64, Truncate: &fa, BetaFast: 32, BetaSlow: 1},
			8, []float64{1, 0.1*(1-r1) + 0.025*r1, 0.0025, 0.00025}, 0.1*math.Log(4) + 1},
		// DeepSeek: mscale = mscale_all_dim gives attention factor 1; an
		// explicit attention_factor wins.
		{"yarn mscale", 8, &formats.RopeScaling{Type: "yarn", Factor: 4, OriginalMaxPositions: 64, MScale: 1, MScaleAllDim: 1},
			8, []float64{1, 0.0625, 0.0025, 0.00025}, 1},
		{"yarn mscale ratio", 8, &formats.RopeScaling{Type: "yarn", Factor: 4, OriginalMaxPositions: 64, MScale: 0.5, MScaleAllDim: 1},
			8, []float64{1, 0.0625, 0.0025, 0.00025}, (0.05*math.Log(4) + 1) / (0.1*math.Log(4) + 1)},
		{"yarn attention_factor", 8, &formats.RopeScaling{Type: "yarn", Factor: 4, OriginalMaxPositions: 64, AttentionFactor: 0.75},
			8, []float64{1, 0.0625, 0.0025, 0.00025}, 0.75},
		// yarn without factor: max/original = 256/64 = 4.
		{"yarn factor from lengths", 8, &formats.RopeScaling{Type: "yarn", OriginalMaxPositions: 64, MaxPositions: 256},
			8, []float64{1, 0.0625, 0.0025, 0.00025}, 0.1*math.Log(4) + 1},
		// longrope, orig 8, max 32: short factors up to T = 8, long past it;
		// attention factor sqrt(1 + ln 4/ln 8) = sqrt(5/3).
		{"longrope short", 4, &formats.RopeScaling{Type: "longrope", OriginalMaxPositions: 8, MaxPositions: 32,
			ShortFactor: []float64{1, 2}, LongFactor: []float64{4, 8}}, 8, []float64{1, 0.005}, math.Sqrt(5.0 / 3)},
		{"longrope long", 4, &formats.RopeScaling{Type: "longrope", OriginalMaxPositions: 8, MaxPositions: 32,
			ShortFactor: []float64{1, 2}, LongFactor: []float64{4, 8}}, 9, []float64{0.25, 0.00125}, math.Sqrt(5.0 / 3)},
	}
	for _, c := range cases {
		f, err := RopeFreqs(c.rot, 10000, c.sc, c.T)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(f.InvFreq) != len(c.want) {
			t.Fatalf("%s: %d frequencies, want %d", c.name, len(f.InvFreq), len(c.want))
		}
		for i, w := range c.want {
			if d := math.Abs(float64(f.InvFreq[i])-w) / w; d > 2e-7 {
				t.Errorf("%s: inv_freq[%d] = %.9g, want %.9g", c.name, i, f.InvFreq[i], w)
			}
		}
		if math.Abs(f.AttentionFactor-c.af) > 1e-12 {
			t.Errorf("%s: attention factor %.12g, want %.12g", c.name, f.AttentionFactor, c.af)
		}
		if (c.sc == nil) != (f.Scaling == nil) {
			t.Errorf("%s: scaling settings %v", c.name, f.Scaling)
		}
		// The float64 reference of the naive test agrees too.
		ref, af := refInvFreq(c.rot, 10000, c.sc, c.T)
		for i := range ref {
			if d := math.Abs(float64(f.InvFreq[i])-ref[i]) / ref[i]; d > 2e-7 {
				t.Errorf("%s: inv_freq[%d] = %.9g, float64 reference %.9g", c.name, i, f.InvFreq[i], ref[i])
			}
		}
		if math.Abs(af-f.AttentionFactor) > 1e-12 {
			t.Errorf("%s: attention factor %g, float64 reference %g", c.name, f.AttentionFactor, af)
		}
	}
}

func TestRopeFreqsErrors(t *testing.T) {
	for name, sc := range map[string]*formats.RopeScaling{
		"linear no factor":      {Type: "linear"},
		"dynamic no length":     {Type: "dynamic", Factor: 2},
		"yarn no length":        {Type: "yarn", Factor: 2},
		"longrope short list":   {Type: "longrope", OriginalMaxPositions: 8, ShortFactor: []float64{1}, LongFactor: []float64{1, 2}},
		"longrope zero factor":  {Type: "longrope", OriginalMaxPositions: 8, ShortFactor: []float64{0, 1}, LongFactor: []float64{1, 2}},
		"llama3 no orig":        {Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4},
		"llama3 high below low": {Type: "llama3", Factor: 8, LowFreqFactor: 4, HighFreqFactor: 1, OriginalMaxPositions: 8},
	} {
		if _, err := RopeFreqs(4, 10000, sc, 8); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	_, err := RopeFreqs(4, 10000, &formats.RopeScaling{Type: "foo", Factor: 2}, 8)
	var ue *UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), `rope_scaling type "foo"`) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := RopeFreqs(3, 10000, nil, 8); err == nil {
		t.Error("odd rotary dims: no error")
	}
}

// TestRotaryPairs: the interleaved style turns (2i, 2i+1), the half-split
// style (i, i + rot/2), each by position·inv_freq_i, inside [off, off+rot).
func TestRotaryPairs(t *testing.T) {
	inv := []float32{1, 0.5}
	cos, sin := ropeTable(2, inv, 2) // attention factor 2 scales cos and sin
	for _, interleaved := range []bool{false, true} {
		x := []float32{0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 9} // head width 11, rotate dims 6..9 at position 1
		applyRotary(x, 1, 11, 1, 11, 6, 4, interleaved, cos[2:], sin[2:])
		pa, pb := [2]int{6, 8}, [2]int{7, 9} // pair 0, pair 1 (half-split)
		if interleaved {
			pa, pb = [2]int{6, 7}, [2]int{8, 9}
		}
		orig := []float64{0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 9}
		for i, pr := range [][2]int{pa, pb} {
			a := float64(inv[i])
			c, s := 2*math.Cos(a), 2*math.Sin(a)
			wa := orig[pr[0]]*c - orig[pr[1]]*s
			wb := orig[pr[1]]*c + orig[pr[0]]*s
			if math.Abs(float64(x[pr[0]])-wa) > 1e-6 || math.Abs(float64(x[pr[1]])-wb) > 1e-6 {
				t.Errorf("interleaved=%v pair %d: (%g, %g), want (%g, %g)", interleaved, i, x[pr[0]], x[pr[1]], wa, wb)
			}
		}
		if x[10] != 9 || x[0] != 0 {
			t.Errorf("interleaved=%v: dims outside the rotary range changed", interleaved)
		}
	}
}
