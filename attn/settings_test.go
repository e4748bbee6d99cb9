package attn

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
)

// TestRefusesUnsupported: a geometry naming what qkv does not model, or
// carrying a value Run does not know, is refused with an *UnsupportedError
// that names each item, before any arithmetic.
func TestRefusesUnsupported(t *testing.T) {
	g := testGeometry()
	l := testModel(1, g)
	x, _, _ := RandomInput(4, g.DModel, 1, 1)
	cases := []struct {
		name string
		f    func(g *formats.Geometry)
		want []string
	}{
		{"registry item", func(g *formats.Geometry) {
			g.Unsupported = []formats.Unsupported{{Kind: "config_key", Name: "rope_scaling.rope_type",
				Message: "model uses rope_scaling type 'foo', which qkv does not implement"}}
		}, []string{"model uses rope_scaling type 'foo', which qkv does not implement"}},
		{"two items", func(g *formats.Geometry) {
			g.Unsupported = []formats.Unsupported{{Kind: "tensor", Name: "model.layers.0.self_attn.x_norm.weight",
				Message: "tensor model.layers.0.self_attn.x_norm.weight in the attention block is not used by the rule"},
				{Kind: "config_key", Name: "attn_temperature_tuning"}}
		}, []string{"2 settings", "x_norm.weight", `config key "attn_temperature_tuning"`}},
		{"unknown rope type", func(g *formats.Geometry) { g.RopeScaling = &formats.RopeScaling{Type: "foo", Factor: 2} },
			[]string{`rope_scaling type "foo"`}},
		{"unknown local rope type", func(g *formats.Geometry) {
			g.LocalRopeTheta, g.LocalRopeScaling = 10000, &formats.RopeScaling{Type: "su"}
		}, []string{`rope_scaling type "su"`}},
		{"unknown qk norm", func(g *formats.Geometry) { g.QKNorm = "layer_norm" }, []string{`Q/K norm "layer_norm"`}},
		{"unknown rope style", func(g *formats.Geometry) { g.RopeStyle = "complex" }, []string{`RoPE style "complex"`}},
		{"unknown layer type", func(g *formats.Geometry) {
			g.LayerTypes = []string{"chunked_attention", "full_attention", "chunked_attention"}
		}, []string{`layer type "chunked_attention"`}},
	}
	for _, c := range cases {
		gg := g
		c.f(&gg)
		_, err := Run(gg, l, x, Options{})
		var ue *UnsupportedError
		if !errors.As(err, &ue) {
			t.Errorf("%s: error %v, want *UnsupportedError", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not name %q", c.name, err, w)
			}
		}
		if CheckSupported(gg) == nil {
			t.Errorf("%s: CheckSupported passes", c.name)
		}
	}
	if err := CheckSupported(g); err != nil {
		t.Errorf("plain geometry: %v", err)
	}
}

func TestSettingsErrors(t *testing.T) {
	base := testGeometry()
	x, _, _ := RandomInput(4, base.DModel, 1, 1)
	cases := map[string]func(g *formats.Geometry, l *formats.Layer){
		"per-head norm without weights": func(g *formats.Geometry, l *formats.Layer) { g.QKNorm = formats.QKNormPerHead },
		"whole norm with per-head weights": func(g *formats.Geometry, l *formats.Layer) {
			g.QKNorm, l.QNorm, l.KNorm = formats.QKNormWhole, make([]float32, g.HeadDim), make([]float32, g.HeadDim)
		},
		"norm weights, no norm":  func(g *formats.Geometry, l *formats.Layer) { l.QNorm = make([]float32, g.HeadDim) },
		"sinks without logits":   func(g *formats.Geometry, l *formats.Layer) { g.Sinks = true },
		"logits without sinks":   func(g *formats.Geometry, l *formats.Layer) { l.Sinks = make([]float32, g.NHeads) },
		"short sinks":            func(g *formats.Geometry, l *formats.Layer) { g.Sinks, l.Sinks = true, make([]float32, 3) },
		"sliding without window": func(g *formats.Geometry, l *formats.Layer) { g.LayerTypes = []string{"sliding_attention"} },
		"negative softcap":       func(g *formats.Geometry, l *formats.Layer) { g.Softcap = -1 },
		"NaN scale":              func(g *formats.Geometry, l *formats.Layer) { g.ScoreScale = math.NaN() },
		"theta zero":             func(g *formats.Geometry, l *formats.Layer) { g.RopeTheta = 0 },
		"mla without factors": func(g *formats.Geometry, l *formats.Layer) {
			g.MLA = &formats.MLA{KVLoraRank: 4, QKRopeHeadDim: 8, VHeadDim: 8}
		},
		"factors without mla":     func(g *formats.Geometry, l *formats.Layer) { l.MLA = &formats.MLALayer{} },
		"bad rope scaling values": func(g *formats.Geometry, l *formats.Layer) { g.RopeScaling = &formats.RopeScaling{Type: "llama3"} },
	}
	for name, f := range cases {
		g := base
		l := testModel(2, g)
		f(&g, l)
		if _, err := Run(g, l, x, Options{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// MLA shape mismatches.
	mla := base
	mla.NKVHeads, mla.HeadDim, mla.VHeadDim, mla.RotaryDims = 4, 10, 6, 4
	mla.MLA = &formats.MLA{QLoraRank: 12, KVLoraRank: 10, QKNopeHeadDim: 6, QKRopeHeadDim: 4, VHeadDim: 6}
	good := settingsModel(3, mla)
	if _, err := Run(mla, good, x, Options{}); err != nil {
		t.Fatalf("good MLA layer: %v", err)
	}
	for name, f := range map[string]func(g *formats.Geometry, l *formats.MLALayer){
		"short kv_b":        func(g *formats.Geometry, l *formats.MLALayer) { l.KVB.Data = l.KVB.Data[:5] },
		"q_a norm missing":  func(g *formats.Geometry, l *formats.MLALayer) { l.QANorm = nil },
		"head_dim mismatch": func(g *formats.Geometry, l *formats.MLALayer) { g.HeadDim = 12 },
		"rotary mismatch":   func(g *formats.Geometry, l *formats.MLALayer) { g.RotaryDims = 2 },
		"q_a with rank 0":   func(g *formats.Geometry, l *formats.MLALayer) { m := *g.MLA; m.QLoraRank = 0; g.MLA = &m },
	} {
		g := mla
		f2 := *good.MLA
		l := *good
		l.MLA = &f2
		f(&g, &f2)
		if _, err := Run(g, &l, x, Options{}); err == nil {
			t.Errorf("MLA %s: no error", name)
		}
	}
}

// TestSinkMetric: a head whose sink logit dominates gives the sink almost
// all of every row, and the learned sink mass is 1 − the row sums.
func TestSinkMetric(t *testing.T) {
	g := testGeometry()
	g.Sinks = true
	l := testModel(4, g)
	l.Sinks = []float32{30, 0, -30, float32(math.Inf(-1))}
	x, _, _ := RandomInput(6, g.DModel, 2, 1)
	res, err := Run(g, l, x, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for h, head := range res.Probs {
		var mass float64
		for _, row := range head {
			var s float64
			for _, p := range row {
				s += float64(p)
			}
			mass += 1 - s
		}
		mass /= 6
		got := *res.Heads[h].LearnedSink
		if math.Abs(got-mass) > 1e-6 {
			t.Errorf("head %d: learned sink mass %g, 1 − row sums %g", h, got, mass)
		}
		switch h {
		case 0:
			if got < 0.999 {
				t.Errorf("sink logit 30: mass %g", got)
			}
		case 3:
			if got != 0 {
				t.Errorf("sink logit −Inf: mass %g", got)
			}
		}
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, NewDocument([]*Result{res}, false)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"learned_sink_mass"`) || !strings.Contains(buf.String(), `"sinks": true`) {
		t.Errorf("JSON lacks the sink settings or metric:\n%s", buf.String())
	}
	// Without sinks the metric is absent.
	g.Sinks, l.Sinks = false, nil
	res, _ = Run(g, l, x, Options{})
	buf.Reset()
	_ = WriteJSON(&buf, NewDocument([]*Result{res}, false))
	if strings.Contains(buf.String(), `"learned_sink_mass"`) {
		t.Error("learned_sink_mass written for a model without sinks")
	}
}

// TestSettingsJSON: every attention setting is stated in the document, and
// layers that differ carry their own mask and RoPE.
func TestSettingsJSON(t *testing.T) {
	g := testGeometry()
	g.LayerTypes = []string{"sliding_attention", "full_attention"}
	g.SlidingWindow, g.LocalRopeTheta, g.RopeTheta = 3, 10000, 1e6
	g.RopeScaling = &formats.RopeScaling{Type: "yarn", Factor: 4, OriginalMaxPositions: 16, MaxPositions: 64}
	g.QKNorm, g.QKNormEps = formats.QKNormPerHead, 1e-6
	g.ScoreScale, g.ScoreScaleRule, g.Softcap = 0.25, "query_pre_attn_scalar^-0.5", 50
	g.NormWeightOffset, g.EmbeddingScale = 1, 4
	x, _, _ := RandomInput(5, g.DModel, 1, 1)
	var results []*Result
	for i := 0; i < 2; i++ {
		l := settingsModel(uint64(i), g)
		l.Index = i
		r, err := Run(g, l, x, Options{})
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, NewDocument(results, false)); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Settings map[string]any `json:"settings"`
		Layers   []struct {
			Attention *LayerAttention `json:"attention"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Settings
	for key, want := range map[string]any{"scale": 0.25, "scale_formula": "query_pre_attn_scalar^-0.5",
		"attn_logit_softcapping": 50.0, "sinks": false, "embedding_scale": 4.0, "norm_weight_offset": 1.0, "per_layer": PerLayerNote} {
		if s[key] != want {
			t.Errorf("settings.%s = %v, want %v", key, s[key], want)
		}
	}
	if qn, _ := s["qk_norm"].(map[string]any); qn == nil || qn["kind"] != "per_head_rms" || qn["eps"] != 1e-6 {
		t.Errorf("settings.qk_norm = %v", s["qk_norm"])
	}
	if s["rope"] != nil {
		t.Errorf("settings.rope = %v for layers that differ", s["rope"])
	}
	a0, a1 := doc.Layers[0].Attention, doc.Layers[1].Attention
	if a0 == nil || a1 == nil {
		t.Fatal("layers that differ carry no attention settings")
	}
	if a0.LayerType != "sliding_attention" || a0.SlidingWindow != 3 || a0.RoPE == nil || a0.RoPE.Theta != 10000 || a0.RoPE.Scaling != nil {
		t.Errorf("layer 0 attention %+v", a0)
	}
	if a1.LayerType != "full_attention" || a1.SlidingWindow != 0 || a1.RoPE == nil || a1.RoPE.Theta != 1e6 ||
		a1.RoPE.Scaling == nil || a1.RoPE.Scaling.Type != "yarn" || len(a1.RoPE.InvFreqValues) != 4 ||
		math.Abs(a1.RoPE.AttentionFactor-(0.1*math.Log(4)+1)) > 1e-12 || len(a1.RoPE.Scaling.CorrectionRange) != 2 {
		t.Errorf("layer 1 attention %+v, rope %+v", a1, a1.RoPE)
	}
	// One layer (or layers that agree): the settings keep mask and RoPE.
	one := NewDocument(results[1:], false)
	if one.Settings.RoPE == nil || one.Settings.PerLayer != "" || one.Settings.Mask == "" || one.Layers[0].Attention != nil {
		t.Errorf("single layer document: rope %v, per_layer %q, mask %q, layer attention %v",
			one.Settings.RoPE, one.Settings.PerLayer, one.Settings.Mask, one.Layers[0].Attention)
	}
}
