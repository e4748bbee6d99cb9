package attn

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

// zooAttn is the part of expected/attn.json the tests read.
type zooAttn struct {
	T        int    `json:"T"`
	Arch     string `json:"arch"`
	Causal   bool   `json:"causal"`
	DModel   int    `json:"d_model"`
	HeadDim  int    `json:"head_dim"`
	NHeads   int    `json:"n_heads"`
	NKVHeads int    `json:"n_kv_heads"`
	NLayers  int    `json:"n_layers"`
	Scale    float64
	RoPE     *struct {
		RotaryDims int     `json:"rotary_dims"`
		Theta      float64 `json:"theta"`
	} `json:"rope"`
	ALiBi *struct {
		Slopes []float64 `json:"slopes"`
	} `json:"alibi"`
	Cases struct {
		Full struct {
			PreNorm *struct {
				Type   string  `json:"type"`
				Eps    float64 `json:"eps"`
				Weight string  `json:"weight"`
				Bias   string  `json:"bias"`
			} `json:"pre_norm"`
			TokenIDs            []int   `json:"token_ids"`
			EmbeddingLayerNorm  float64 `json:"embedding_layernorm_eps"`
			EmbeddingNormConfig *struct {
				Eps    float64 `json:"eps"`
				Weight string  `json:"weight"`
				Bias   string  `json:"bias"`
			} `json:"embedding_norm"`
		} `json:"full"`
	} `json:"cases"`
}

// zooEmbedding names each architecture's input-embedding tensors in
// hf/model.safetensors (Hugging Face names).
var zooEmbedding = map[string]struct{ tokens, positions, tokenType, normW, normB string }{
	"llama":    {tokens: "model.embed_tokens.weight"},
	"qwen2":    {tokens: "model.embed_tokens.weight"},
	"phi3":     {tokens: "model.embed_tokens.weight"},
	"gpt2":     {tokens: "transformer.wte.weight", positions: "transformer.wpe.weight"},
	"gpt_neox": {tokens: "gpt_neox.embed_in.weight"},
	"falcon":   {tokens: "transformer.word_embeddings.weight"},
	"bloom": {tokens: "transformer.word_embeddings.weight",
		normW: "transformer.word_embeddings_layernorm.weight", normB: "transformer.word_embeddings_layernorm.bias"},
	"bert": {tokens: "embeddings.word_embeddings.weight", positions: "embeddings.position_embeddings.weight",
		tokenType: "embeddings.token_type_embeddings.weight",
		normW:     "embeddings.LayerNorm.weight", normB: "embeddings.LayerNorm.bias"},
}

type zooModel struct {
	name  string
	cfg   zooAttn
	geo   formats.Geometry
	proj  map[string]testref.Tensor
	hf    map[string]testref.Tensor
	attn  map[string]testref.Tensor
	norms bool // whether the full case has a pre-norm
}

func zooModels(t *testing.T) []zooModel {
	t.Helper()
	dir := filepath.Join(testref.SharedDir(t), "reference", "zoo")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []zooModel
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		md := filepath.Join(dir, e.Name())
		m := zooModel{name: e.Name()}
		if err := testref.ReadJSON(filepath.Join(md, "expected", "attn.json"), &m.cfg); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		for _, f := range []struct {
			dst  *map[string]testref.Tensor
			path string
		}{{&m.proj, "expected/projections.safetensors"}, {&m.hf, "hf/model.safetensors"}, {&m.attn, "expected/attn.safetensors"}} {
			if *f.dst, err = testref.ReadSafetensors(filepath.Join(md, f.path)); err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
		}
		c := m.cfg
		m.geo = formats.Geometry{Arch: c.Arch, DModel: c.DModel, NLayers: c.NLayers, NHeads: c.NHeads,
			NKVHeads: c.NKVHeads, HeadDim: c.HeadDim, Causal: c.Causal, ALiBi: c.ALiBi != nil, Norm: formats.NormNone}
		if c.RoPE != nil && c.RoPE.RotaryDims > 0 {
			m.geo.RotaryDims, m.geo.RopeTheta = c.RoPE.RotaryDims, c.RoPE.Theta
		}
		if pn := c.Cases.Full.PreNorm; pn != nil {
			m.norms = true
			m.geo.PreNorm, m.geo.NormEps = true, pn.Eps
			switch strings.ToLower(pn.Type) {
			case "rmsnorm":
				m.geo.Norm = formats.NormRMS
			case "layernorm":
				m.geo.Norm = formats.NormLayerNorm
			default:
				t.Fatalf("%s: unknown pre_norm type %q", m.name, pn.Type)
			}
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		t.Fatalf("no models under %s", dir)
	}
	return out
}

func (m *zooModel) tensor(t *testing.T, src map[string]testref.Tensor, name string) testref.Tensor {
	t.Helper()
	v, ok := src[name]
	if !ok {
		t.Fatalf("%s: tensor %s missing", m.name, name)
	}
	return v
}

func (m *zooModel) matrix(t *testing.T, src map[string]testref.Tensor, name string) formats.Matrix {
	v := m.tensor(t, src, name)
	if len(v.Shape) != 2 {
		t.Fatalf("%s: %s has shape %v", m.name, name, v.Shape)
	}
	return formats.Matrix{Rows: v.Shape[0], Cols: v.Shape[1], Data: v.F32()}
}

func (m *zooModel) layer(t *testing.T, i int) *formats.Layer {
	p := fmt.Sprintf("layers.%d.", i)
	l := &formats.Layer{Index: i,
		Q: m.matrix(t, m.proj, p+"q"), K: m.matrix(t, m.proj, p+"k"),
		V: m.matrix(t, m.proj, p+"v"), O: m.matrix(t, m.proj, p+"o")}
	for _, b := range []struct {
		dst  *[]float32
		name string
	}{{&l.QBias, "q_bias"}, {&l.KBias, "k_bias"}, {&l.VBias, "v_bias"}, {&l.OBias, "o_bias"}} {
		if v, ok := m.proj[p+b.name]; ok {
			*b.dst = v.F32()
		}
	}
	if pn := m.cfg.Cases.Full.PreNorm; pn != nil {
		idx := fmt.Sprint(i)
		l.NormWeight = m.tensor(t, m.hf, strings.ReplaceAll(pn.Weight, "{i}", idx)).F32()
		if pn.Bias != "" {
			l.NormBias = m.tensor(t, m.hf, strings.ReplaceAll(pn.Bias, "{i}", idx)).F32()
		}
	}
	return l
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if d > m || d != d {
			m = d
		}
	}
	return m
}

func relFro(got, want []float32) float64 {
	var num, den float64
	for i := range got {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / den)
}

func TestZooAttention(t *testing.T) {
	for _, m := range zooModels(t) {
		for _, cs := range []string{"raw", "full"} {
			t.Run(m.name+"/"+cs, func(t *testing.T) {
				x := m.matrix(t, m.attn, cs+".x")
				if x.Rows != m.cfg.T {
					t.Fatalf("%s.x has %d rows, attn.json says T = %d", cs, x.Rows, m.cfg.T)
				}
				for i := 0; i < m.cfg.NLayers; i++ {
					l := m.layer(t, i)
					r, err := Run(m.geo, l, x, Options{NoNorm: cs == "raw"})
					if err != nil {
						t.Fatal(err)
					}
					if want := m.cfg.Scale; math.Abs(r.Settings.Scale-want) > 1e-7 {
						t.Errorf("scale %g, attn.json %g", r.Settings.Scale, want)
					}
					if m.cfg.ALiBi != nil {
						for h, s := range m.cfg.ALiBi.Slopes {
							if math.Abs(r.Settings.ALiBiSlopes[h]-s) > 1e-12 {
								t.Errorf("alibi slope %d: %g, attn.json %g", h, r.Settings.ALiBiSlopes[h], s)
							}
						}
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
					dp, do := maxAbsDiff(gotP, wantP), relFro(r.Out.Data, wantO)
					t.Logf("layer %d: max|Δprobs| = %.3g, rel Frobenius Δout = %.3g", i, dp, do)
					if !(dp <= 1e-5) {
						t.Errorf("layer %d: probs differ by %g (> 1e-5)", i, dp)
					}
					if !(do <= 1e-4) {
						t.Errorf("layer %d: out differs by %g relative (> 1e-4)", i, do)
					}
					if r.NonFiniteOut != 0 || r.NonFiniteProbs != 0 {
						t.Errorf("layer %d: non-finite values %d/%d", i, r.NonFiniteProbs, r.NonFiniteOut)
					}
				}
			})
		}
	}
}

func TestZooBuildInput(t *testing.T) {
	for _, m := range zooModels(t) {
		t.Run(m.name, func(t *testing.T) {
			names, ok := zooEmbedding[m.cfg.Arch]
			if !ok {
				t.Skipf("no embedding names for arch %q", m.cfg.Arch)
			}
			ids := m.cfg.Cases.Full.TokenIDs
			if len(ids) != m.cfg.T {
				t.Fatalf("%d token ids, T = %d", len(ids), m.cfg.T)
			}
			emb := m.matrix(t, m.hf, names.tokens)
			var e EmbeddingInput
			e.TokenRows = formats.NewMatrix(len(ids), emb.Cols)
			for i, id := range ids {
				copy(e.TokenRows.Row(i), emb.Row(id))
			}
			if names.positions != "" {
				e.Positions = m.matrix(t, m.hf, names.positions).RowBlock(0, len(ids))
			}
			if names.tokenType != "" {
				e.TokenType = m.matrix(t, m.hf, names.tokenType).Row(0)
			}
			if names.normW != "" {
				e.NormWeight = m.tensor(t, m.hf, names.normW).F32()
				e.NormBias = m.tensor(t, m.hf, names.normB).F32()
				e.NormEps = m.cfg.Cases.Full.EmbeddingLayerNorm
				if c := m.cfg.Cases.Full.EmbeddingNormConfig; c != nil {
					e.NormEps = c.Eps
				}
				if e.NormEps == 0 {
					t.Fatal("attn.json gives no embedding norm eps")
				}
			}
			x, err := BuildInput(e)
			if err != nil {
				t.Fatal(err)
			}
			want := m.tensor(t, m.attn, "full.x").F32()
			d := relFro(x.Data, want)
			t.Logf("rel Frobenius Δx = %.3g", d)
			if !(d <= 1e-6) {
				t.Errorf("full.x differs by %g relative (> 1e-6)", d)
			}
		})
	}
}
