package formats

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// TestGeneratedArchitectures checks the registry entries that have no
// reference folder on the tiny models internal/gen writes by the rules of
// transformers' modeling code (testdata/arch/NAME/hf) and of llama.cpp's
// converter (testdata/arch/NAME/NAME.gguf): the geometry each config
// implies; every extracted array against the stored tensors read by
// testref's independent reader (with the architecture's rule applied here:
// Gemma's 1 + w, DeepSeek's effective matrices); and the GGUF form against
// the Hugging Face form.
func TestGeneratedArchitectures(t *testing.T) {
	tests := []struct {
		name string
		geo  func(t *testing.T, g Geometry)
		// ggufDiffers lists geometry fields the GGUF cannot carry.
		ggufAssumes string
	}{
		{"mistral", func(t *testing.T, g Geometry) {
			if fmt.Sprint(g.LayerTypes) != "[sliding_attention sliding_attention]" || g.SlidingWindow != 3 || g.RopeTheta != 1e6 {
				t.Errorf("geometry %+v", g)
			}
		}, ""},
		{"mixtral", func(t *testing.T, g Geometry) {
			if g.LayerTypes != nil || g.NKVHeads != 2 || g.HeadDim != 4 {
				t.Errorf("geometry %+v", g)
			}
		}, ""},
		{"qwen3_moe", func(t *testing.T, g Geometry) {
			if g.QKNorm != QKNormPerHead || g.HeadDim != 8 || g.LayerTypes != nil {
				t.Errorf("geometry %+v", g)
			}
		}, ""},
		{"gemma", func(t *testing.T, g Geometry) {
			if g.NormWeightOffset != 1 || g.EmbeddingScale != 4 || g.HeadDim != 8 || g.ScoreScale != 0 || g.Softcap != 0 || g.LayerTypes != nil {
				t.Errorf("geometry %+v", g)
			}
		}, ""},
		{"gemma2", func(t *testing.T, g Geometry) {
			if g.NormWeightOffset != 1 || g.EmbeddingScale != 4 || g.Softcap != 50 || g.SlidingWindow != 3 ||
				fmt.Sprint(g.LayerTypes) != "[sliding_attention full_attention]" {
				t.Errorf("geometry %+v", g)
			}
		}, "query_pre_attn_scalar"},
		{"llama4", func(t *testing.T, g Geometry) {
			if g.QKNorm != QKNormL2 || !g.QKNormRoPEOnly || fmt.Sprint(g.NoRoPELayers) != "[3]" || g.RopeStyle != RopeInterleavedPairs ||
				g.RopeTheta != 5e5 || g.QueryTemperature == nil || g.QueryTemperature.FloorScale != 8192 || g.QueryTemperature.AttnScale != 0.1 {
				t.Errorf("geometry %+v", g)
			}
			for i, want := range []string{LayerChunkedAttention, LayerChunkedAttention, LayerChunkedAttention, LayerFullAttention} {
				la := g.ForLayer(i)
				if la.Type != want || la.RoPE != (i != 3) || (la.QKNorm == QKNormL2) != (i != 3) || (la.Temperature != nil) != (i == 3) ||
					(want == LayerChunkedAttention && la.Chunk != g.AttentionChunk) {
					t.Errorf("layer %d: %+v", i, la)
				}
			}
		}, "general.architecture"},
		{"deepseek_v2", func(t *testing.T, g Geometry) {
			m := g.MLA
			if m == nil || m.QLoraRank != 0 || m.KVLoraRank != 8 || m.QKNopeHeadDim != 4 || m.QKRopeHeadDim != 4 || m.VHeadDim != 4 ||
				g.HeadDim != 8 || g.NKVHeads != 4 || g.RotaryDims != 4 || g.RopeStyle != RopeInterleavedPairs || math.Abs(g.ScoreScale-1/math.Sqrt(8)) > 1e-15 {
				t.Errorf("geometry %+v, mla %+v", g, m)
			}
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join("..", "testdata", "arch", tc.name)
			hf := openModel(t, filepath.Join(dir, "hf"), FindOptions{})
			g := hf.Geometry()
			if len(g.Unsupported) > 0 || len(g.Assumptions) > 0 {
				t.Errorf("warnings: %+v %+v", g.Unsupported, g.Assumptions)
			}
			tc.geo(t, g)
			raw, err := testref.ReadSafetensors(filepath.Join(dir, "hf", "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			hfArrays := map[string][]float32{}
			for _, i := range hf.LayerIndices() {
				l, err := hf.LoadLayer(i)
				if err != nil {
					t.Fatal(err)
				}
				for _, x := range hf.Extracted(l, Projections) {
					hfArrays[x.Name] = x.Data
				}
				checkAgainstRaw(t, hf, l, raw)
			}
			ggufPath := filepath.Join(dir, tc.name+".gguf")
			if _, ok := raw["model.embed_tokens.weight"]; !ok {
				t.Fatal("no embeddings")
			}
			if tc.name == "mistral" {
				return // no GGUF form: llama.cpp's converter writes Mistral as llama (see mixtral)
			}
			gm := openModel(t, ggufPath, FindOptions{})
			gg := gm.Geometry()
			if len(gg.Unsupported) > 0 || (tc.ggufAssumes == "") != (len(gg.Assumptions) == 0) || (tc.ggufAssumes != "" && !hasNote(gg.Assumptions, tc.ggufAssumes)) {
				t.Errorf("GGUF warnings: %+v %+v", gg.Unsupported, gg.Assumptions)
			}
			if gg.DModel != g.DModel || gg.NHeads != g.NHeads || gg.NKVHeads != g.NKVHeads || gg.HeadDim != g.HeadDim ||
				gg.RotaryDims != g.RotaryDims || gg.RopeTheta != g.RopeTheta || gg.QKNorm != g.QKNorm || gg.RopeStyle != g.RopeStyle ||
				gg.NormWeightOffset != g.NormWeightOffset || gg.EmbeddingScale != g.EmbeddingScale || gg.Softcap != g.Softcap ||
				fmt.Sprint(gg.MLA) != fmt.Sprint(g.MLA) || fmt.Sprint(gg.NoRoPELayers) != fmt.Sprint(g.NoRoPELayers) {
				t.Errorf("GGUF geometry %+v\nHF geometry %+v", gg, g)
			}
			n := 0
			for _, i := range gm.LayerIndices() {
				l, err := gm.LoadLayer(i)
				if err != nil {
					t.Fatal(err)
				}
				for _, x := range gm.Extracted(l, Projections) {
					n++
					want, ok := hfArrays[x.Name]
					if !ok {
						t.Errorf("GGUF %s: not in the Hugging Face form", x.Name)
						continue
					}
					compareExact(t, "GGUF "+x.Name, x.Data, testref.Tensor{F64: f64(want)})
				}
			}
			if n != len(hfArrays) {
				t.Errorf("GGUF gives %d arrays, Hugging Face %d", n, len(hfArrays))
			}
		})
	}
}

// checkAgainstRaw compares a layer with the stored Hugging Face tensors,
// applying the architecture's rule independently of the extraction code.
func checkAgainstRaw(t *testing.T, m *Model, l *Layer, raw map[string]testref.Tensor) {
	t.Helper()
	pre := fmt.Sprintf("model.layers.%d.", l.Index)
	get := func(name string) []float32 {
		x, ok := raw[pre+name]
		if !ok {
			t.Fatalf("%s%s missing", pre, name)
		}
		return x.F32()
	}
	exact := func(what string, got, want []float32) {
		t.Helper()
		compareExact(t, fmt.Sprintf("layer %d %s", l.Index, what), got, testref.Tensor{F64: f64(want)})
	}
	exact("o", l.O.Data, get("self_attn.o_proj.weight"))
	exact("q", l.Q.Data, get("self_attn.q_proj.weight"))
	g := m.Geometry()
	plusOne := func(v []float32) []float32 {
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = x + float32(g.NormWeightOffset)
		}
		return out
	}
	exact("norm", l.NormWeight, plusOne(get("input_layernorm.weight")))
	if g.QKNorm == QKNormPerHead {
		exact("q_norm", l.QNorm, get("self_attn.q_norm.weight"))
		exact("k_norm", l.KNorm, get("self_attn.k_norm.weight"))
	} else if l.QNorm != nil || l.KNorm != nil {
		t.Errorf("layer %d: Q/K norm weights the model does not have", l.Index)
	}
	if g.MLA == nil {
		exact("k", l.K.Data, get("self_attn.k_proj.weight"))
		exact("v", l.V.Data, get("self_attn.v_proj.weight"))
		return
	}
	// Latent attention: K_h = [kv_b K-nope rows of h · diag(n) · kv_a latent; kv_a rope rows], V_h likewise.
	ml := g.MLA
	kva, n, kvb := get("self_attn.kv_a_proj_with_mqa.weight"), get("self_attn.kv_a_layernorm.weight"), get("self_attn.kv_b_proj.weight")
	d, kvr, nope, rope, vd := g.DModel, ml.KVLoraRank, ml.QKNopeHeadDim, ml.QKRopeHeadDim, ml.VHeadDim
	worst := 0.0
	for h := 0; h < g.NHeads; h++ {
		for r := 0; r < nope+rope+vd; r++ {
			for c := 0; c < d; c++ {
				var want float64
				var got float32
				switch {
				case r < nope: // K-nope
					for k := 0; k < kvr; k++ {
						want += float64(kvb[(h*(nope+vd)+r)*kvr+k]) * float64(n[k]) * float64(kva[k*d+c])
					}
					got = l.K.At(h*(nope+rope)+r, c)
				case r < nope+rope: // the shared rope key, exact
					want = float64(kva[(kvr+r-nope)*d+c])
					got = l.K.At(h*(nope+rope)+r, c)
				default: // V
					j := r - nope - rope
					for k := 0; k < kvr; k++ {
						want += float64(kvb[(h*(nope+vd)+nope+j)*kvr+k]) * float64(n[k]) * float64(kva[k*d+c])
					}
					got = l.V.At(h*vd+j, c)
				}
				worst = math.Max(worst, math.Abs(float64(got)-want))
			}
		}
	}
	if worst > 1e-6 {
		t.Errorf("layer %d: effective K/V differ from the factors by %g", l.Index, worst)
	}
	if !strings.Contains(fmt.Sprint(l.MLA.KVB.Rows), fmt.Sprint(g.NHeads*(nope+vd))) {
		t.Errorf("kv_b rows %d", l.MLA.KVB.Rows)
	}
}
