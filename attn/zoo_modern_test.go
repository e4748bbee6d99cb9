package attn

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

// modernScaling is a rope_scaling block as attn.json writes it.
type modernScaling struct {
	RopeType             string    `json:"rope_type"`
	Factor               float64   `json:"factor"`
	OriginalMaxPositions int       `json:"original_max_position_embeddings"`
	MaxPositions         int       `json:"max_position_embeddings"`
	LowFreqFactor        float64   `json:"low_freq_factor"`
	HighFreqFactor       float64   `json:"high_freq_factor"`
	BetaFast             float64   `json:"beta_fast"`
	BetaSlow             float64   `json:"beta_slow"`
	Truncate             *bool     `json:"truncate"`
	ShortFactor          []float64 `json:"short_factor"`
	LongFactor           []float64 `json:"long_factor"`
}

func (s *modernScaling) contract() *formats.RopeScaling {
	if s == nil {
		return nil
	}
	return &formats.RopeScaling{Type: s.RopeType, Factor: s.Factor, OriginalMaxPositions: s.OriginalMaxPositions,
		MaxPositions: s.MaxPositions, LowFreqFactor: s.LowFreqFactor, HighFreqFactor: s.HighFreqFactor,
		BetaFast: s.BetaFast, BetaSlow: s.BetaSlow, Truncate: s.Truncate, ShortFactor: s.ShortFactor, LongFactor: s.LongFactor}
}

// modernAttn is the part of a zoo-modern expected/attn.json the tests read.
type modernAttn struct {
	T          int      `json:"T"`
	Arch       string   `json:"arch"`
	Causal     *bool    `json:"causal"`
	DModel     int      `json:"d_model"`
	HeadDim    int      `json:"head_dim"`
	NHeads     int      `json:"n_heads"`
	NKVHeads   int      `json:"n_kv_heads"`
	NLayers    int      `json:"n_layers"`
	Scale      float64  `json:"scale"`
	LayerTypes []string `json:"layer_types"`
	Window     int      `json:"sliding_window"`
	QKNorm     *struct {
		Eps float64 `json:"eps"`
	} `json:"qk_norm"`
	Rope *struct {
		RotaryDims int            `json:"rotary_dims"`
		Theta      float64        `json:"theta"`
		Scaling    *modernScaling `json:"scaling"`
		Yarn       *struct {
			AttentionFactor float64   `json:"attention_factor"`
			InvFreq         []float64 `json:"inv_freq_float32"`
		} `json:"yarn"`
	} `json:"rope"`
	// Per-layer RoPE (gemma3): rope_scaling is an object or a sentence.
	Layers map[string]struct {
		RopeTheta   float64         `json:"rope_theta"`
		RopeScaling json.RawMessage `json:"rope_scaling"`
	} `json:"layers"`
	MLA *struct {
		QLoraRank     int     `json:"q_lora_rank"`
		KVLoraRank    int     `json:"kv_lora_rank"`
		QKNopeHeadDim int     `json:"qk_nope_head_dim"`
		QKRopeHeadDim int     `json:"qk_rope_head_dim"`
		VHeadDim      int     `json:"v_head_dim"`
		LatentNormEps float64 `json:"latent_norm_eps"`
	} `json:"mla"`
	Cases json.RawMessage `json:"cases"` // an object, or a sentence (llama-rope-scaling)
	// llama-rope-scaling writes these at the top level.
	InvFreq     []float64      `json:"inv_freq"`
	RopeScaling *modernScaling `json:"rope_scaling"`
	RopeTheta   float64        `json:"rope_theta"`
}

type modernCases struct {
	Full struct {
		PreNorm *struct {
			Type   string  `json:"type"`
			Eps    float64 `json:"eps"`
			Weight string  `json:"weight"`
		} `json:"pre_norm"`
		TokenIDs []int  `json:"token_ids"`
		X        string `json:"x"`
	} `json:"full"`
}

// modernModel is one zoo-modern folder with the geometry its README and
// attn.json describe, built here by hand rather than by package formats.
type modernModel struct {
	name  string
	cfg   modernAttn
	cases modernCases
	geo   formats.Geometry
	proj  map[string]testref.Tensor
	hf    map[string]testref.Tensor
	attn  map[string]testref.Tensor
	// gemmaNorm: pre-norm weights are stored as w, applied as 1 + w.
	gemmaNorm bool
	// tolerances from the folder's README
	probsAbs, outAbs, outRel float64
}

func (m *modernModel) tensor(t *testing.T, src map[string]testref.Tensor, name string) testref.Tensor {
	t.Helper()
	v, ok := src[name]
	if !ok {
		t.Fatalf("%s: tensor %s missing", m.name, name)
	}
	return v
}

func (m *modernModel) matrix(t *testing.T, src map[string]testref.Tensor, name string) formats.Matrix {
	t.Helper()
	v := m.tensor(t, src, name)
	if len(v.Shape) != 2 {
		t.Fatalf("%s: %s has shape %v", m.name, name, v.Shape)
	}
	return formats.Matrix{Rows: v.Shape[0], Cols: v.Shape[1], Data: v.F32()}
}

func (m *modernModel) vector(src map[string]testref.Tensor, name string) []float32 {
	if v, ok := src[name]; ok {
		return v.F32()
	}
	return nil
}

func loadModern(t *testing.T, name string) *modernModel {
	t.Helper()
	root := filepath.Join(testref.SharedDir(t), "reference", "zoo-modern")
	dir := filepath.Join(root, name)
	m := &modernModel{name: name, probsAbs: 1e-5, outAbs: 1e-5, outRel: 1e-4}
	if err := testref.ReadJSON(filepath.Join(dir, "expected", "attn.json"), &m.cfg); err != nil {
		t.Fatal(err)
	}
	if len(m.cfg.Cases) > 0 && m.cfg.Cases[0] == '{' {
		if err := json.Unmarshal(m.cfg.Cases, &m.cases); err != nil {
			t.Fatalf("%s: cases: %v", name, err)
		}
	}
	proj := filepath.Join(dir, "expected", "projections.safetensors")
	hf := filepath.Join(dir, "hf", "model.safetensors")
	if name == "llama-rope-scaling" {
		// Its README: the weights and projections are those of ../../zoo/llama.
		proj = filepath.Join(root, "..", "zoo", "llama", "expected", "projections.safetensors")
	}
	var err error
	for _, f := range []struct {
		dst  *map[string]testref.Tensor
		path string
	}{{&m.proj, proj}, {&m.hf, hf}, {&m.attn, filepath.Join(dir, "expected", "attn.safetensors")}} {
		if *f.dst, err = testref.ReadSafetensors(f.path); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	c := m.cfg
	g := formats.Geometry{Arch: c.Arch, DModel: c.DModel, NLayers: c.NLayers, NHeads: c.NHeads, NKVHeads: c.NKVHeads,
		HeadDim: c.HeadDim, Causal: true, Norm: formats.NormNone, LayerTypes: c.LayerTypes, SlidingWindow: c.Window}
	if c.Causal != nil {
		g.Causal = *c.Causal
	}
	if c.Rope != nil {
		g.RotaryDims, g.RopeTheta, g.RopeScaling = c.Rope.RotaryDims, c.Rope.Theta, c.Rope.Scaling.contract()
	}
	if pn := m.cases.Full.PreNorm; pn != nil {
		g.PreNorm, g.Norm, g.NormEps = true, formats.NormRMS, pn.Eps
	}
	// What attn.json states only in words, from each folder's README.md.
	switch name {
	case "qwen3":
		g.QKNorm, g.QKNormEps = formats.QKNormPerHead, c.QKNorm.Eps
	case "olmo2":
		g.QKNorm, g.QKNormEps = formats.QKNormWhole, c.QKNorm.Eps
	case "gemma3":
		// Full layers: rope_theta with linear scaling; sliding layers:
		// rope_local_base_freq without scaling (attn.json "layers").
		full, local := c.Layers["1"], c.Layers["0"]
		var sc modernScaling
		if err := json.Unmarshal(full.RopeScaling, &sc); err != nil {
			t.Fatalf("gemma3 layer 1 rope_scaling: %v", err)
		}
		g.RotaryDims, g.RopeTheta, g.RopeScaling = c.HeadDim, full.RopeTheta, sc.contract()
		g.LocalRopeTheta = local.RopeTheta
		g.QKNorm, g.QKNormEps = formats.QKNormPerHead, c.QKNorm.Eps
		g.ScoreScale, g.ScoreScaleRule = 1/math.Sqrt(24), "query_pre_attn_scalar^-0.5"
		g.NormWeightOffset, g.EmbeddingScale = 1, math.Sqrt(float64(c.DModel))
		m.gemmaNorm = true
	case "gpt_oss":
		g.Sinks = true
	case "deepseek_v3":
		ml := c.MLA
		g.MLA = &formats.MLA{QLoraRank: ml.QLoraRank, KVLoraRank: ml.KVLoraRank, QKNopeHeadDim: ml.QKNopeHeadDim,
			QKRopeHeadDim: ml.QKRopeHeadDim, VHeadDim: ml.VHeadDim}
		g.VHeadDim, g.RopeStyle = ml.VHeadDim, formats.RopeInterleavedPairs
	case "llama-rope-scaling":
		// The llama model of ../zoo (README: raw case only, causal).
		x := m.matrix(t, m.attn, "raw.x")
		g.DModel, g.RotaryDims, g.RopeTheta, g.RopeScaling = x.Cols, c.HeadDim, c.RopeTheta, c.RopeScaling.contract()
		for ; ; g.NLayers++ {
			if _, ok := m.attn[fmt.Sprintf("raw.layers.%d.out", g.NLayers)]; !ok {
				break
			}
		}
		m.outAbs = 0 // its README gives probs 1e-5 absolute and out 1e-4 relative only
	}
	m.geo = g
	return m
}

func (m *modernModel) layer(t *testing.T, i int) *formats.Layer {
	t.Helper()
	p := fmt.Sprintf("layers.%d.", i)
	l := &formats.Layer{Index: i, O: m.matrix(t, m.proj, p+"o"),
		QBias: m.vector(m.proj, p+"q_bias"), KBias: m.vector(m.proj, p+"k_bias"),
		VBias: m.vector(m.proj, p+"v_bias"), OBias: m.vector(m.proj, p+"o_bias"),
		QNorm: m.vector(m.proj, p+"q_norm"), KNorm: m.vector(m.proj, p+"k_norm"),
		Sinks: m.vector(m.proj, p+"sinks")}
	if m.geo.MLA != nil {
		l.MLA = &formats.MLALayer{QA: m.matrix(t, m.proj, p+"q_a"), QANorm: m.vector(m.proj, p+"q_a_norm"),
			QB: m.matrix(t, m.proj, p+"q_b"), KVA: m.matrix(t, m.proj, p+"kv_a"),
			KVANorm: m.vector(m.proj, p+"kv_a_norm"), KVB: m.matrix(t, m.proj, p+"kv_b")}
		// The effective matrices are there too; Run must not need them.
		l.Q, l.K, l.V = m.matrix(t, m.proj, p+"q"), m.matrix(t, m.proj, p+"k"), m.matrix(t, m.proj, p+"v")
	} else {
		l.Q, l.K, l.V = m.matrix(t, m.proj, p+"q"), m.matrix(t, m.proj, p+"k"), m.matrix(t, m.proj, p+"v")
	}
	if pn := m.cases.Full.PreNorm; pn != nil {
		w := m.tensor(t, m.hf, strings.ReplaceAll(pn.Weight, "{i}", fmt.Sprint(i))).F32()
		if m.gemmaNorm {
			for j := range w {
				w[j] = 1 + w[j] // Gemma3RMSNorm: x·rsqrt(mean(x²) + eps)·(1 + w), in float32
			}
		}
		l.NormWeight = w
	}
	return l
}

func maxAbs32(a, b []float32) float64 {
	var m float64
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if d > m || d != d {
			m = d
		}
	}
	return m
}

var modernFolders = []string{"qwen3", "gemma3", "deepseek_v3", "gpt_oss", "olmo2", "llama-rope-scaling"}

// TestZooModernAttention reruns every layer of every zoo-modern folder on
// both cases and compares with expected/attn.safetensors (PyTorch float32
// following the transformers modeling code, eager attention).
func TestZooModernAttention(t *testing.T) {
	for _, name := range modernFolders {
		m := loadModern(t, name)
		for _, cs := range []string{"raw", "full"} {
			if _, ok := m.attn[cs+".x"]; !ok {
				continue // llama-rope-scaling has the raw case only
			}
			t.Run(name+"/"+cs, func(t *testing.T) {
				x := m.matrix(t, m.attn, cs+".x")
				if x.Rows != m.cfg.T {
					t.Fatalf("%s.x has %d rows, attn.json says T = %d", cs, x.Rows, m.cfg.T)
				}
				var worstP, worstO, worstRel float64
				for i := 0; i < m.geo.NLayers; i++ {
					r, err := Run(m.geo, m.layer(t, i), x, Options{NoNorm: cs == "raw"})
					if err != nil {
						t.Fatal(err)
					}
					if want := m.cfg.Scale; math.Abs(r.Settings.Scale-want) > 1e-7 {
						t.Errorf("layer %d: scale %g, attn.json %g", i, r.Settings.Scale, want)
					}
					wantP := m.tensor(t, m.attn, fmt.Sprintf("%s.layers.%d.probs", cs, i)).F32()
					var gotP []float32
					for _, head := range r.Probs {
						for _, row := range head {
							gotP = append(gotP, row...)
						}
					}
					if len(gotP) != len(wantP) {
						t.Fatalf("layer %d: %d probabilities, want %d", i, len(gotP), len(wantP))
					}
					wantO := m.tensor(t, m.attn, fmt.Sprintf("%s.layers.%d.out", cs, i)).F32()
					dp, do, dr := maxAbs32(gotP, wantP), maxAbs32(r.Out.Data, wantO), relFro(r.Out.Data, wantO)
					worstP, worstO, worstRel = max(worstP, dp), max(worstO, do), max(worstRel, dr)
					t.Logf("layer %d: max|Δprobs| = %.3g, max|Δout| = %.3g, rel Frobenius Δout = %.3g", i, dp, do, dr)
					if !(dp <= m.probsAbs) {
						t.Errorf("layer %d: probs differ by %g (> %g)", i, dp, m.probsAbs)
					}
					if m.outAbs > 0 && !(do <= m.outAbs) {
						t.Errorf("layer %d: out differs by %g absolute (> %g)", i, do, m.outAbs)
					}
					if !(dr <= m.outRel) {
						t.Errorf("layer %d: out differs by %g relative (> %g)", i, dr, m.outRel)
					}
					if r.NonFiniteOut != 0 || r.NonFiniteProbs != 0 {
						t.Errorf("layer %d: non-finite values %d/%d", i, r.NonFiniteProbs, r.NonFiniteOut)
					}
					if m.geo.Sinks {
						checkSinkMass(t, r, gotP)
					}
				}
				t.Logf("worst: probs abs %.3g, out abs %.3g, out rel %.3g", worstP, worstO, worstRel)
			})
		}
	}
}

// checkSinkMass: each head's learned sink mass is 1 − Σ_j p_ij averaged
// over rows, with p the probabilities as the reference stores them.
func checkSinkMass(t *testing.T, r *Result, probs []float32) {
	t.Helper()
	T := r.Settings.T
	for h, hm := range r.Heads {
		if hm.LearnedSink == nil {
			t.Fatalf("head %d: no learned sink mass", h)
		}
		var mass float64
		for i := 0; i < T; i++ {
			var s float64
			for _, p := range probs[(h*T+i)*T : (h*T+i+1)*T] {
				s += float64(p)
			}
			mass += 1 - s
		}
		mass /= float64(T)
		if d := math.Abs(mass - *hm.LearnedSink); d > 1e-5 {
			t.Errorf("layer %d head %d: learned sink mass %g, from the probabilities %g", r.Layer, h, *hm.LearnedSink, mass)
		}
	}
}

// TestZooModernRopeFrequencies compares the inverse frequencies and the
// attention factor with those attn.json lists (gpt_oss: YaRN in float32;
// llama-rope-scaling: llama3 computed in float64).
func TestZooModernRopeFrequencies(t *testing.T) {
	for _, tc := range []struct {
		name string
		rel  float64
	}{{"gpt_oss", 1.2e-7}, {"llama-rope-scaling", 3e-7}} { // one float32 ulp; measured 0 and 1.1e-7
		m := loadModern(t, tc.name)
		var want []float64
		wantAF := 1.0
		if y := m.cfg.Rope; y != nil && y.Yarn != nil {
			want, wantAF = y.Yarn.InvFreq, y.Yarn.AttentionFactor
		} else {
			want = m.cfg.InvFreq
		}
		f, err := RopeFreqs(m.geo.RotaryDims, m.geo.RopeTheta, m.geo.RopeScaling, m.cfg.T)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.InvFreq) != len(want) || len(want) == 0 {
			t.Fatalf("%s: %d frequencies, attn.json lists %d", tc.name, len(f.InvFreq), len(want))
		}
		for i, w := range want {
			if d := math.Abs(float64(f.InvFreq[i])-w) / w; d > tc.rel {
				t.Errorf("%s: inv_freq[%d] = %.9g, attn.json %.9g (rel %.2g)", tc.name, i, f.InvFreq[i], w, d)
			}
		}
		if math.Abs(f.AttentionFactor-wantAF) > 1e-12 {
			t.Errorf("%s: attention factor %.15g, attn.json %.15g", tc.name, f.AttentionFactor, wantAF)
		}
	}
}

// TestZooModernBuildInput rebuilds full.x from the token ids: embedding rows,
// times sqrt(d_model) for gemma3.
func TestZooModernBuildInput(t *testing.T) {
	for _, name := range modernFolders {
		m := loadModern(t, name)
		if _, ok := m.attn["full.x"]; !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			ids := m.cases.Full.TokenIDs
			emb := m.matrix(t, m.hf, "model.embed_tokens.weight")
			e := EmbeddingInput{TokenRows: formats.NewMatrix(len(ids), emb.Cols), TokenScale: float32(m.geo.EmbeddingScale)}
			for i, id := range ids {
				copy(e.TokenRows.Row(i), emb.Row(id))
			}
			x, err := BuildInput(e)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbs32(x.Data, m.tensor(t, m.attn, "full.x").F32()); d != 0 {
				t.Errorf("full.x differs by %g", d)
			}
		})
	}
}

// TestZooModernEachSettingMatters drops one setting at a time and checks
// that the rerun then misses the reference: each setting the test above
// verifies is one the reference depends on, not one it happens not to use.
func TestZooModernEachSettingMatters(t *testing.T) {
	type mutation struct {
		name string
		f    func(g *formats.Geometry, l *formats.Layer)
	}
	perModel := map[string][]mutation{
		"qwen3": {{"no q/k norm", func(g *formats.Geometry, l *formats.Layer) { g.QKNorm, l.QNorm, l.KNorm = formats.QKNormNone, nil, nil }}},
		"olmo2": {{"no q/k norm", func(g *formats.Geometry, l *formats.Layer) { g.QKNorm, l.QNorm, l.KNorm = formats.QKNormNone, nil, nil }}},
		"gemma3": {
			{"scale 1/sqrt(head_dim)", func(g *formats.Geometry, l *formats.Layer) { g.ScoreScale = 0 }},
			{"no local theta", func(g *formats.Geometry, l *formats.Layer) { g.LocalRopeTheta = 0 }},
			{"no linear scaling", func(g *formats.Geometry, l *formats.Layer) { g.RopeScaling = nil }},
			{"no sliding window", func(g *formats.Geometry, l *formats.Layer) { g.LayerTypes = nil }},
			{"q/k norm weight w, not 1 + w", func(g *formats.Geometry, l *formats.Layer) {
				for i := range l.QNorm {
					l.QNorm[i]--
				}
			}},
		},
		"gpt_oss": {
			{"no sinks", func(g *formats.Geometry, l *formats.Layer) { g.Sinks, l.Sinks = false, nil }},
			{"no yarn", func(g *formats.Geometry, l *formats.Layer) { g.RopeScaling = nil }},
			{"yarn truncate true", func(g *formats.Geometry, l *formats.Layer) {
				s := *g.RopeScaling
				s.Truncate = nil
				g.RopeScaling = &s
			}},
			{"no sliding window", func(g *formats.Geometry, l *formats.Layer) { g.LayerTypes = nil }},
		},
		"deepseek_v3": {
			{"half-split rope", func(g *formats.Geometry, l *formats.Layer) { g.RopeStyle = "" }},
			{"latent norms as identity", func(g *formats.Geometry, l *formats.Layer) {
				f := *l.MLA
				f.QANorm, f.KVANorm = make([]float32, len(f.QANorm)), make([]float32, len(f.KVANorm))
				for i := range f.QANorm {
					f.QANorm[i] = 1
				}
				for i := range f.KVANorm {
					f.KVANorm[i] = 1
				}
				l.MLA = &f
			}},
		},
		"llama-rope-scaling": {{"no llama3 scaling", func(g *formats.Geometry, l *formats.Layer) { g.RopeScaling = nil }}},
	}
	for _, name := range modernFolders {
		m := loadModern(t, name)
		cs := "full"
		if _, ok := m.attn["full.x"]; !ok {
			cs = "raw"
		}
		x := m.matrix(t, m.attn, cs+".x")
		for _, mu := range perModel[name] {
			var worst float64
			for i := 0; i < m.geo.NLayers; i++ {
				g, l := m.geo, m.layer(t, i)
				mu.f(&g, l)
				r, err := Run(g, l, x, Options{NoNorm: cs == "raw"})
				if err != nil {
					t.Fatalf("%s without %s: %v", name, mu.name, err)
				}
				var got []float32
				for _, head := range r.Probs {
					for _, row := range head {
						got = append(got, row...)
					}
				}
				worst = max(worst, maxAbs32(got, m.tensor(t, m.attn, fmt.Sprintf("%s.layers.%d.probs", cs, i)).F32()))
			}
			t.Logf("%s, %s: max|Δprobs| = %.3g", name, mu.name, worst)
			if worst <= 100*m.probsAbs {
				t.Errorf("%s: %s changes the probabilities by only %g", name, mu.name, worst)
			}
		}
	}
}
