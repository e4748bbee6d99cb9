package formats

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// modernAttn is the part of a zoo-modern attn.json the geometry is checked
// against.
type modernAttn struct {
	Arch       string   `json:"arch"`
	DModel     int      `json:"d_model"`
	NHeads     int      `json:"n_heads"`
	NKVHeads   int      `json:"n_kv_heads"`
	HeadDim    int      `json:"head_dim"`
	NLayers    int      `json:"n_layers"`
	Causal     bool     `json:"causal"`
	Scale      float64  `json:"scale"`
	LayerTypes []string `json:"layer_types"`
	Mask       map[string]string
	Rope       *struct {
		RotaryDims int            `json:"rotary_dims"`
		Theta      float64        `json:"theta"`
		Style      string         `json:"style"`
		Scaling    map[string]any `json:"scaling"`
		PerLayer   map[string]struct {
			RopeTheta float64 `json:"rope_theta"`
			Scaling   any     `json:"rope_scaling"`
		} `json:"per_layer"`
	} `json:"rope"`
	QKNorm *struct {
		Eps   float64 `json:"eps"`
		Type  string  `json:"type"`
		Where string  `json:"where"`
	} `json:"qk_norm"`
	Sinks any `json:"sinks"`
	MLA   *MLA
	Cases struct {
		Full struct {
			PreNorm *struct {
				Type string  `json:"type"`
				Eps  float64 `json:"eps"`
			} `json:"pre_norm"`
			X string `json:"x"`
		} `json:"full"`
	} `json:"cases"`
}

// effectiveMLA lists the expected keys that are float64 products of the
// factors (SPEC: abs 1e-6); every other key must be bit-exact.
var effectiveMLA = map[string]bool{"q": true, "k": true, "k_nope": true, "v": true}

// TestZooModern extracts every folder of zoo-modern in every form and checks
// every key of the expected projections (the q/k/v/o matrices, biases,
// q_norm/k_norm as effective multipliers, sinks and the MLA factors
// bit-exact; MLA's effective matrices within 1e-6), and the geometry
// against attn.json.
func TestZooModern(t *testing.T) {
	zoo := filepath.Join(testref.SharedDir(t), "reference", "zoo-modern")
	for _, name := range []string{"qwen3", "gemma3", "deepseek_v3", "gpt_oss", "olmo2"} {
		dir := filepath.Join(zoo, name)
		var aj modernAttn
		if err := testref.ReadJSON(filepath.Join(dir, "expected", "attn.json"), &aj); err != nil {
			t.Fatal(err)
		}
		for _, src := range zooSources(t, dir) {
			rel, _ := filepath.Rel(zoo, src.path)
			t.Run(rel, func(t *testing.T) {
				want, err := testref.ReadSafetensors(src.expected)
				if err != nil {
					t.Fatalf("expected file: %v", err)
				}
				m := openModel(t, src.path, FindOptions{})
				checkModernGeometry(t, name, m, aj, src.gguf)
				got := map[string]ExtractedTensor{}
				for _, i := range m.LayerIndices() {
					l, err := m.LoadLayer(i)
					if err != nil {
						t.Fatalf("layer %d: %v", i, err)
					}
					for _, x := range m.Extracted(l, Projections) {
						got[x.Name] = x
					}
				}
				keys := sortedKeys(want)
				if len(got) != len(want) {
					var g []string
					for k := range got {
						g = append(g, k)
					}
					sort.Strings(g)
					t.Errorf("extracted keys %v, want %v", g, keys)
				}
				for _, k := range keys {
					x, ok := got[k]
					if !ok {
						t.Errorf("%s: not extracted", k)
						continue
					}
					w := want[k]
					if fmt.Sprint(x.Shape) != fmt.Sprint(w.Shape) {
						t.Errorf("%s: shape %v, want %v", k, x.Shape, w.Shape)
						continue
					}
					leaf := k[strings.LastIndexByte(k, '.')+1:]
					if name == "deepseek_v3" && effectiveMLA[leaf] {
						wf := w.F32()
						worst := 0.0
						for i := range wf {
							worst = math.Max(worst, math.Abs(float64(x.Data[i])-float64(wf[i])))
						}
						if worst > 1e-6 {
							t.Errorf("%s: max |diff| %g, want ≤ 1e-6", k, worst)
						}
						continue
					}
					compareExact(t, k, x.Data, w)
				}
			})
		}
	}
}

func checkModernGeometry(t *testing.T, name string, m *Model, a modernAttn, isGGUF bool) {
	t.Helper()
	g := m.Geometry()
	eq := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("geometry %s = %v, want %v", what, got, want)
		}
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6*math.Abs(want) {
			t.Errorf("geometry %s = %v, want %v", what, got, want)
		}
	}
	eq("d_model", g.DModel, a.DModel)
	eq("n_heads", g.NHeads, a.NHeads)
	eq("n_kv_heads", g.NKVHeads, a.NKVHeads)
	eq("head_dim", g.HeadDim, a.HeadDim)
	eq("n_layers", g.NLayers, a.NLayers)
	eq("causal", g.Causal, a.Causal)
	eq("pre_norm", g.PreNorm, a.Cases.Full.PreNorm != nil)
	if pn := a.Cases.Full.PreNorm; pn != nil {
		near("norm_eps", g.NormEps, pn.Eps)
		eq("norm", g.Norm, NormRMS)
	}
	if strings.Contains(a.Cases.Full.X, "sqrt(hidden_size)") {
		eq("embedding_scale", g.EmbeddingScale, math.Sqrt(float64(a.DModel)))
		eq("norm_weight_offset", g.NormWeightOffset, 1.0)
	} else {
		eq("embedding_scale", g.EmbeddingScale, 0.0)
	}
	// The score scale: the GGUF of gemma3 cannot carry query_pre_attn_scalar
	// (zoo-modern/README.md), so qkv uses llama.cpp's head_dim^-0.5 and says so.
	scale := g.ScoreScale
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(g.HeadDim))
	}
	wantScale := a.Scale
	if isGGUF && name == "gemma3" {
		wantScale = 1 / math.Sqrt(float64(a.HeadDim))
		if !hasNote(g.Assumptions, "query_pre_attn_scalar") {
			t.Errorf("gemma3 GGUF: the assumed scale is not stated: %+v", g.Assumptions)
		}
	}
	near("scale", scale, wantScale)
	// Q/K norm.
	switch {
	case a.QKNorm == nil:
		eq("qk_norm", g.QKNorm, QKNormNone)
	case strings.Contains(a.QKNorm.Where, "WHOLE"):
		eq("qk_norm", g.QKNorm, QKNormWhole)
		near("qk_norm_eps", g.QKNormEps, a.QKNorm.Eps)
	default:
		eq("qk_norm", g.QKNorm, QKNormPerHead)
		near("qk_norm_eps", g.QKNormEps, a.QKNorm.Eps)
	}
	eq("sinks", g.Sinks, a.Sinks != nil)
	// MLA.
	if a.MLA != nil {
		if g.MLA == nil {
			t.Fatalf("no MLA geometry")
		}
		eq("mla", *g.MLA, *a.MLA)
		eq("v_head_dim", g.ValueHeadDim(), a.MLA.VHeadDim)
		eq("rope_style", g.RopeStyle, RopeInterleavedPairs)
	} else {
		eq("rope_style", g.RopeStyle, "")
	}
	if a.Rope != nil {
		eq("rotary_dims", g.RotaryDims, a.Rope.RotaryDims)
	}
	// Per layer: type, window, theta, scaling.
	types := a.LayerTypes
	if isGGUF && name == "gemma3" {
		// llama.cpp's period 6 (README): every layer of this 3-layer model slides.
		types = []string{LayerSlidingAttention, LayerSlidingAttention, LayerSlidingAttention}
		if !hasNote(g.Assumptions, "sliding_window_pattern") {
			t.Errorf("gemma3 GGUF: the assumed layer pattern is not stated: %+v", g.Assumptions)
		}
	}
	for i := 0; i < a.NLayers; i++ {
		la := g.ForLayer(i)
		wantType := LayerFullAttention
		if types != nil {
			wantType = types[i]
		}
		eq(fmt.Sprintf("layer %d type", i), la.Type, wantType)
		if wantType == LayerSlidingAttention {
			eq(fmt.Sprintf("layer %d window", i), la.Window, 4)
		}
		theta, scaling := 0.0, any(nil)
		if a.Rope != nil {
			theta, scaling = a.Rope.Theta, a.Rope.Scaling
			if pl, ok := a.Rope.PerLayer[fmt.Sprint(i)]; ok {
				theta, scaling = pl.RopeTheta, pl.Scaling
				if s, isString := scaling.(string); isString && strings.HasPrefix(s, "none") {
					scaling = nil
				}
			}
		}
		if isGGUF && name == "gemma3" && i == 1 {
			theta, scaling = 10000, nil // treated as sliding (above)
		}
		near(fmt.Sprintf("layer %d rope_theta", i), la.RopeTheta, theta)
		checkScaling(t, fmt.Sprintf("layer %d rope_scaling", i), la.RopeScaling, scaling)
	}
	if isGGUF && name != "gemma3" && name != "gpt_oss" && len(g.Assumptions) > 0 {
		t.Errorf("unexpected assumptions: %+v", g.Assumptions)
	}
	if len(g.Unsupported) > 0 {
		t.Errorf("unsupported: %+v", g.Unsupported)
	}
}

func hasNote(l []Unsupported, name string) bool {
	for _, u := range l {
		if strings.Contains(u.Name, name) {
			return true
		}
	}
	return false
}

// checkScaling compares a RopeScaling with attn.json's scaling object.
func checkScaling(t *testing.T, what string, got *RopeScaling, want any) {
	t.Helper()
	w, _ := want.(map[string]any)
	if w == nil {
		if got != nil {
			t.Errorf("%s: %+v, want none", what, got)
		}
		return
	}
	if got == nil {
		t.Errorf("%s: none, want %v", what, w)
		return
	}
	if got.Type != w["rope_type"] {
		t.Errorf("%s: type %q, want %v", what, got.Type, w["rope_type"])
	}
	for k, v := range map[string]float64{"factor": got.Factor, "beta_fast": got.BetaFast, "beta_slow": got.BetaSlow,
		"original_max_position_embeddings": float64(got.OriginalMaxPositions), "max_position_embeddings": float64(got.MaxPositions),
		"low_freq_factor": got.LowFreqFactor, "high_freq_factor": got.HighFreqFactor} {
		if x, ok := w[k].(float64); ok && x != v {
			t.Errorf("%s: %s %v, want %v", what, k, v, x)
		}
	}
	if tr, ok := w["truncate"].(bool); ok && (got.Truncate == nil || *got.Truncate != tr) {
		t.Errorf("%s: truncate %v, want %v", what, got.Truncate, tr)
	}
}

// TestLlamaRopeScaling: zoo-modern/llama-rope-scaling's config gives Llama
// 3.1's scaling; its projections are the zoo llama's.
func TestLlamaRopeScaling(t *testing.T) {
	shared := testref.SharedDir(t)
	dir := filepath.Join(shared, "reference", "zoo-modern", "llama-rope-scaling")
	var aj struct {
		RopeTheta float64        `json:"rope_theta"`
		Scaling   map[string]any `json:"rope_scaling"`
		Scale     float64        `json:"scale"`
		HeadDim   int            `json:"head_dim"`
	}
	if err := testref.ReadJSON(filepath.Join(dir, "expected", "attn.json"), &aj); err != nil {
		t.Fatal(err)
	}
	m := openModel(t, filepath.Join(dir, "hf"), FindOptions{})
	g := m.Geometry()
	if g.RopeTheta != aj.RopeTheta || g.HeadDim != aj.HeadDim || g.ScoreScale != 0 || len(g.Unsupported) > 0 {
		t.Errorf("geometry %+v", g)
	}
	checkScaling(t, "rope_scaling", g.RopeScaling, aj.Scaling)
	want, err := testref.ReadSafetensors(filepath.Join(shared, "reference", "zoo", "llama", "expected", "projections.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.LoadLayer(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range m.Extracted(l, Projections) {
		compareExact(t, x.Name, x.Data, want[x.Name])
	}
}
