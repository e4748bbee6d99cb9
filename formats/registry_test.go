package formats

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/safetensors"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestRegistryEntries: every entry says what it is and what it is verified
// against, and its names and GGUF names resolve to it.
func TestRegistryEntries(t *testing.T) {
	names := map[string]bool{}
	for _, a := range Architectures() {
		if a.Name == "" || a.Summary == "" || a.Verified == "" || len(a.ModelTypes)+len(a.GGUF) == 0 {
			t.Errorf("entry %+v lacks a name, summary, verification or any type", a.Name)
		}
		if names[a.Name] {
			t.Errorf("entry %s twice", a.Name)
		}
		names[a.Name] = true
		for _, mt := range a.ModelTypes {
			if LookupArch(mt, false) != a {
				t.Errorf("%s: model type %s resolves elsewhere", a.Name, mt)
			}
		}
		for _, g := range a.GGUF {
			if LookupArch(g, true) != a {
				t.Errorf("%s: GGUF %s resolves elsewhere", a.Name, g)
			}
		}
		if hfTables()[a].module == "" {
			t.Errorf("%s: no attention module in its names", a.Name)
		}
	}
}

// TestREADMEArchitectures: the README's architecture table lists exactly
// the registry's entries.
func TestREADMEArchitectures(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "<!-- architectures -->")
	j := strings.Index(s, "<!-- /architectures -->")
	if i < 0 || j < i {
		t.Fatal("README.md has no <!-- architectures --> table")
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9_]+)` \\|")
	var got []string
	for _, m := range row.FindAllStringSubmatch(s[i:j], -1) {
		got = append(got, m[1])
	}
	var want []string
	for _, a := range Architectures() {
		want = append(want, a.Name)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("README architectures %v\nregistry               %v", got, want)
	}
	// The example entry is the registry's own, word for word.
	ex := regexp.MustCompile("(?s)Adding an architecture is one entry.*?```go\n(.*?)```").FindStringSubmatch(s)
	src, err := os.ReadFile("registry_entries.go")
	if err != nil || ex == nil {
		t.Fatalf("README example: %v", err)
	}
	squash := func(x string) string { return strings.Join(strings.Fields(x), " ") }
	if !strings.Contains(squash(string(src)), squash(strings.TrimSuffix(strings.TrimSpace(ex[1]), ","))) {
		t.Errorf("the README's example entry is not in registry_entries.go:\n%s", ex[1])
	}
}

// TestModernFixtures: the real checkpoints transformers wrote (Qwen3 and
// Llama 3.1 by transformers 5.11 with rope_parameters beside the legacy
// keys, Gemma 3 by transformers 4.51 with an extra non-HF "a2d" block)
// open and extract without a warning, with the geometry their configs say;
// norm weights are checked against an independent read of the file.
func TestModernFixtures(t *testing.T) {
	fx := filepath.Join(testref.SharedDir(t), "fixtures", "safetensors")
	tests := []struct {
		dir   string
		check func(t *testing.T, g Geometry)
	}{
		{"qwen3-tiny-ferrl", func(t *testing.T, g Geometry) {
			if g.QKNorm != QKNormPerHead || g.RopeTheta != 1e6 || g.RopeScaling != nil || g.LayerTypes != nil || g.HeadDim != 8 {
				t.Errorf("geometry %+v", g)
			}
		}},
		{"llama31-rope-tiny-ferrl", func(t *testing.T, g Geometry) {
			s := g.RopeScaling
			if g.RopeTheta != 5e5 || s == nil || s.Type != RopeScalingLlama3 || s.Factor != 8 || s.LowFreqFactor != 1 ||
				s.HighFreqFactor != 4 || s.OriginalMaxPositions != 16 || s.MaxPositions != 64 {
				t.Errorf("geometry %+v, scaling %+v", g, s)
			}
		}},
		{"gemma3-tiny-mlx-dllm", func(t *testing.T, g Geometry) {
			want := []string{"sliding_attention", "sliding_attention", "full_attention", "sliding_attention", "sliding_attention", "full_attention"}
			if fmt.Sprint(g.LayerTypes) != fmt.Sprint(want) || g.SlidingWindow != 4 || g.LocalRopeTheta != 1e4 || g.RopeTheta != 1e6 ||
				g.ScoreScale != 1/math.Sqrt(8) || g.EmbeddingScale != 4 || g.NormWeightOffset != 1 || g.QKNorm != QKNormPerHead {
				t.Errorf("geometry %+v", g)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			dir := filepath.Join(fx, tc.dir)
			m := openModel(t, dir, FindOptions{})
			g := m.Geometry()
			if len(g.Unsupported) > 0 || len(g.Assumptions) > 0 {
				t.Errorf("warnings on a real file: %+v %+v", g.Unsupported, g.Assumptions)
			}
			tc.check(t, g)
			raw, err := testref.ReadSafetensors(filepath.Join(dir, "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range m.LayerIndices() {
				l, err := m.LoadLayer(i)
				if err != nil {
					t.Fatal(err)
				}
				pre := fmt.Sprintf("model.layers.%d.", i)
				compareExact(t, "q", l.Q.Data, raw[pre+"self_attn.q_proj.weight"])
				compareExact(t, "o", l.O.Data, raw[pre+"self_attn.o_proj.weight"])
				for _, x := range []struct {
					got  []float32
					name string
				}{{l.NormWeight, "input_layernorm.weight"}, {l.QNorm, "self_attn.q_norm.weight"}, {l.KNorm, "self_attn.k_norm.weight"}} {
					w, ok := raw[pre+x.name]
					if !ok {
						if x.got != nil {
							t.Errorf("%s: extracted a norm the file lacks", x.name)
						}
						continue
					}
					// Gemma's norms multiply by 1 + w: the effective multiplier, in float32.
					want := w.F32()
					for k := range want {
						want[k] += float32(g.NormWeightOffset)
					}
					compareExact(t, x.name, x.got, testref.Tensor{F64: f64(want)})
				}
			}
		})
	}
}

// tinyLlama writes a one-layer Llama-layout model (d 8, 2 heads of 4, one
// KV head) with the given config and extra tensors.
func tinyLlamaDir(t *testing.T, config string, extra ...safetensors.WriteTensor) string {
	t.Helper()
	ones := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	ts := []safetensors.WriteTensor{
		safetensors.F32Tensor("model.layers.0.self_attn.q_proj.weight", []int64{8, 8}, labelled(8, 8, func(r int) float32 { return float32(r) })),
		safetensors.F32Tensor("model.layers.0.self_attn.k_proj.weight", []int64{4, 8}, labelled(4, 8, func(r int) float32 { return float32(r) })),
		safetensors.F32Tensor("model.layers.0.self_attn.v_proj.weight", []int64{4, 8}, labelled(4, 8, func(r int) float32 { return float32(r) })),
		safetensors.F32Tensor("model.layers.0.self_attn.o_proj.weight", []int64{8, 8}, labelled(8, 8, func(r int) float32 { return float32(r) })),
		safetensors.F32Tensor("model.layers.0.input_layernorm.weight", []int64{8}, ones(8)),
		safetensors.F32Tensor("model.embed_tokens.weight", []int64{4, 8}, make([]float32, 32)),
	}
	return writeModel(t, config, append(ts, extra...))
}

const tinyLlamaConfig = `{"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1, "num_hidden_layers": 1, "rms_norm_eps": 1e-5%s}`

// TestUnsupportedReported: what changes attention and qkv does not model is
// listed in Geometry.Unsupported (and Describe's warnings), one sentence
// naming it.
func TestUnsupportedReported(t *testing.T) {
	norm := safetensors.F32Tensor("model.layers.0.self_attn.q_layernorm.weight", []int64{8}, make([]float32, 8))
	outside := safetensors.F32Tensor("model.layers.0.pre_attn_norm.weight", []int64{8}, make([]float32, 8))
	tests := []struct {
		name, config string
		extra        []safetensors.WriteTensor
		key, message string
	}{
		{"unknown norm in the attention block", "", []safetensors.WriteTensor{norm}, "model.layers.N.self_attn.q_layernorm.weight", "inside the attention block"},
		{"unknown norm beside attention", "", []safetensors.WriteTensor{outside}, "model.layers.N.pre_attn_norm.weight", "a norm the llama layout does not have"},
		{"unknown rope type", `, "rope_scaling": {"rope_type": "foo", "factor": 2}`, nil, "rope_scaling.rope_type", "model uses rope_scaling type 'foo', which qkv does not implement"},
		{"unknown rope type (transformers 5)", `, "rope_parameters": {"rope_type": "foo", "rope_theta": 10000}`, nil, "rope_parameters.rope_type", "model uses rope_parameters type 'foo'"},
		{"sliding layers on llama", `, "layer_types": ["sliding_attention"], "sliding_window": 4`, nil, "layer_types", "sliding-window layers"},
		{"unknown layer type", `, "layer_types": ["linear_attention"]`, nil, "layer_types", "layer type 'linear_attention'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := openModel(t, tinyLlamaDir(t, fmt.Sprintf(tinyLlamaConfig, tc.config), tc.extra...), FindOptions{})
			rep := m.Describe()
			found := false
			for _, w := range rep.Warnings {
				if w.Name == tc.key && strings.Contains(w.Message, tc.message) && w.Severity == "unsupported" {
					found = true
				}
			}
			if !found || len(m.Geo.Unsupported) != 1 {
				t.Errorf("warnings %+v, want %s: %s", rep.Warnings, tc.key, tc.message)
			}
		})
	}
	// Without anything planted: no warning.
	m := openModel(t, tinyLlamaDir(t, fmt.Sprintf(tinyLlamaConfig, "")), FindOptions{})
	if len(m.Describe().Warnings) != 0 {
		t.Errorf("clean model warns: %+v", m.Describe().Warnings)
	}
}

// TestConfigGenerations: transformers 5 (rope_parameters, layer_types,
// dtype) and transformers 4 (rope_theta, rope_scaling,
// sliding_window_pattern, torch_dtype) are both read; where both forms are
// present they must agree, and a disagreement is refused naming both keys.
func TestConfigGenerations(t *testing.T) {
	const gemma = `{"model_type": "gemma3_text", "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4, "num_hidden_layers": 3, "rms_norm_eps": 1e-6, "sliding_window": 2, "query_pre_attn_scalar": 4%s}`
	tests := []struct {
		name, config string
		ok           func(g Geometry) bool
		err          []string // the refusal names these keys
	}{
		{"v5 rope_parameters", fmt.Sprintf(tinyLlamaConfig, `, "rope_parameters": {"rope_type": "linear", "factor": 4, "rope_theta": 500000}`),
			func(g Geometry) bool {
				return g.RopeTheta == 5e5 && g.RopeScaling.Type == "linear" && g.RopeScaling.Factor == 4
			}, nil},
		{"v4 legacy keys", fmt.Sprintf(tinyLlamaConfig, `, "rope_scaling": {"type": "linear", "factor": 4}, "rope_theta": 500000`),
			func(g Geometry) bool {
				return g.RopeTheta == 5e5 && g.RopeScaling.Type == "linear" && g.RopeScaling.Factor == 4
			}, nil},
		{"both, agreeing", fmt.Sprintf(tinyLlamaConfig, `, "rope_parameters": {"rope_type": "linear", "factor": 4, "rope_theta": 500000}, "rope_scaling": {"rope_type": "linear", "factor": 4}, "rope_theta": 500000, "dtype": "float32", "torch_dtype": "float32"`),
			func(g Geometry) bool { return g.RopeTheta == 5e5 && g.RopeScaling.Factor == 4 }, nil},
		{"theta disagrees", fmt.Sprintf(tinyLlamaConfig, `, "rope_parameters": {"rope_type": "default", "rope_theta": 500000}, "rope_theta": 10000`),
			nil, []string{"rope_parameters", "rope_theta"}},
		{"scaling disagrees", fmt.Sprintf(tinyLlamaConfig, `, "rope_parameters": {"rope_type": "linear", "factor": 4, "rope_theta": 10000}, "rope_scaling": {"rope_type": "linear", "factor": 2}`),
			nil, []string{"rope_parameters", "rope_scaling"}},
		{"scaling only in v5", fmt.Sprintf(tinyLlamaConfig, `, "rope_parameters": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1, "high_freq_factor": 4, "original_max_position_embeddings": 16, "rope_theta": 10000}, "rope_scaling": null, "rope_theta": 10000`),
			nil, []string{"rope_parameters", "rope_scaling"}},
		{"dtype disagrees", fmt.Sprintf(tinyLlamaConfig, `, "dtype": "bfloat16", "torch_dtype": "float32"`), nil, []string{"dtype", "torch_dtype"}},
		{"v5 nested rope_parameters", fmt.Sprintf(gemma, `, "layer_types": ["sliding_attention", "full_attention", "sliding_attention"], "rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 8, "rope_theta": 1000000}, "sliding_attention": {"rope_type": "default", "rope_theta": 10000}}`),
			func(g Geometry) bool {
				return g.RopeTheta == 1e6 && g.RopeScaling.Factor == 8 && g.LocalRopeTheta == 1e4 && g.LocalRopeScaling == nil && g.LayerTypes[1] == LayerFullAttention
			}, nil},
		{"v4 gemma3 keys", fmt.Sprintf(gemma, `, "sliding_window_pattern": 2, "rope_theta": 1000000, "rope_local_base_freq": 10000, "rope_scaling": {"rope_type": "linear", "factor": 8}`),
			func(g Geometry) bool {
				return g.RopeTheta == 1e6 && g.RopeScaling.Factor == 8 && g.LocalRopeTheta == 1e4 && fmt.Sprint(g.LayerTypes) == "[sliding_attention full_attention sliding_attention]"
			}, nil},
		{"layer_types disagree with sliding_window_pattern", fmt.Sprintf(gemma, `, "sliding_window_pattern": 3, "layer_types": ["sliding_attention", "full_attention", "sliding_attention"]`),
			nil, []string{"layer_types", "sliding_window_pattern"}},
		{"local theta disagrees", fmt.Sprintf(gemma, `, "rope_local_base_freq": 20000, "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": 1000000}, "sliding_attention": {"rope_type": "default", "rope_theta": 10000}}`),
			nil, []string{"rope_parameters.sliding_attention.rope_theta", "rope_local_base_freq"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ts := []safetensors.WriteTensor{
				safetensors.F32Tensor("model.layers.0.self_attn.q_proj.weight", []int64{8, 8}, make([]float32, 64)),
				safetensors.F32Tensor("model.layers.0.self_attn.k_proj.weight", []int64{4, 8}, make([]float32, 32)),
				safetensors.F32Tensor("model.layers.0.self_attn.v_proj.weight", []int64{4, 8}, make([]float32, 32)),
				safetensors.F32Tensor("model.layers.0.self_attn.o_proj.weight", []int64{8, 8}, make([]float32, 64)),
			}
			if strings.Contains(tc.config, "gemma3") {
				ts = append(ts, safetensors.F32Tensor("model.layers.0.self_attn.q_norm.weight", []int64{4}, make([]float32, 4)),
					safetensors.F32Tensor("model.layers.0.self_attn.k_norm.weight", []int64{4}, make([]float32, 4)))
			}
			writeST(t, filepath.Join(dir, "model.safetensors"), ts)
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(tc.config), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			m, err := FindModel(c, FindOptions{})
			if tc.err != nil {
				var fe *Error
				if !errors.As(err, &fe) {
					t.Fatalf("want a refusal (*Error), got %v", err)
				}
				for _, k := range tc.err {
					if !strings.Contains(err.Error(), k) {
						t.Errorf("refusal does not name %s: %v", k, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if g := m.Geometry(); !tc.ok(g) || len(g.Unsupported) > 0 {
				t.Errorf("geometry %+v (scaling %+v)", g, g.RopeScaling)
			}
		})
	}
}

// ggufModel writes a one-layer GGUF of an architecture (d 8, 2 heads of 4,
// one KV head) with extra metadata and tensors.
func ggufModel(t *testing.T, arch string, kvs []gguf.KV, extra ...string) string {
	t.Helper()
	u32 := func(k string, v uint32) gguf.KV { return gguf.KV{Key: arch + "." + k, Type: gguf.Uint32, Value: v} }
	mat := func(name string, in, out uint64) gguf.WriterTensor {
		b := make([]byte, 4*in*out)
		for i := uint64(0); i < in*out; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(i%7)-3))
		}
		dims := []uint64{in, out}
		if out == 1 {
			dims = []uint64{in}
		}
		return gguf.WriterTensor{Name: name, Dims: dims, Type: dtype.F32, Data: b}
	}
	base := []gguf.KV{
		{Key: "general.architecture", Type: gguf.String, Value: arch},
		u32("embedding_length", 8), u32("block_count", 1), u32("attention.head_count", 2), u32("attention.head_count_kv", 1),
	}
	for _, kv := range kvs {
		replaced := false
		for i := range base {
			if base[i].Key == kv.Key {
				base[i], replaced = kv, true
			}
		}
		if !replaced {
			base = append(base, kv)
		}
	}
	w := &gguf.Writer{KVs: base, Tensors: []gguf.WriterTensor{
		mat("blk.0.attn_q.weight", 8, 8), mat("blk.0.attn_k.weight", 8, 4),
		mat("blk.0.attn_v.weight", 8, 4), mat("blk.0.attn_output.weight", 8, 8), mat("blk.0.attn_norm.weight", 8, 1),
	}}
	for _, e := range extra {
		w.Tensors = append(w.Tensors, mat(e, 8, 1))
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGGUFMetadataChecks: GGUF values that change attention are checked
// (one-line errors naming the key) or reported as unsupported.
func TestGGUFMetadataChecks(t *testing.T) {
	f32 := func(k string, v float32) gguf.KV { return gguf.KV{Key: "llama." + k, Type: gguf.Float32, Value: v} }
	u32 := func(k string, v uint32) gguf.KV { return gguf.KV{Key: "llama." + k, Type: gguf.Uint32, Value: v} }
	tests := []struct {
		name  string
		kvs   []gguf.KV
		extra []string
		err   string // refused with this (naming the key)
		warn  string // or listed as unsupported under this name
	}{
		{"rope dims 2^31", []gguf.KV{u32("rope.dimension_count", 1<<31)}, nil, "llama.rope.dimension_count", ""},
		{"rope dims odd", []gguf.KV{u32("rope.dimension_count", 3)}, nil, "llama.rope.dimension_count is 3", ""},
		{"freq_base -1", []gguf.KV{f32("rope.freq_base", -1)}, nil, "llama.rope.freq_base is -1", ""},
		{"epsilon NaN", []gguf.KV{f32("attention.layer_norm_rms_epsilon", float32(math.NaN()))}, nil, "llama.attention.layer_norm_rms_epsilon is NaN", ""},
		{"unknown rope scaling", []gguf.KV{{Key: "llama.rope.scaling.type", Type: gguf.String, Value: "foo"}, f32("rope.scaling.factor", 2)}, nil, "", "llama.rope.scaling.type"},
		{"planted attention tensor", nil, []string{"blk.0.attn_foo_norm.weight"}, "", "blk.N.attn_foo_norm.weight"},
		{"Q norm llama lacks", nil, []string{"blk.0.attn_q_norm.weight"}, "", "blk.N.attn_q_norm.weight"},
		{"softcap on llama", []gguf.KV{f32("attn_logit_softcapping", 50)}, nil, "", "llama.attn_logit_softcapping"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(ggufModel(t, "llama", tc.kvs, tc.extra...), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			m, err := FindModel(c, FindOptions{})
			if tc.err != "" {
				var fe *Error
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
					t.Errorf("error %v, want one line naming %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Geo.Unsupported) != 1 || m.Geo.Unsupported[0].Name != tc.warn {
				t.Errorf("unsupported %+v, want %s", m.Geo.Unsupported, tc.warn)
			}
		})
	}
}

// TestLazyMetadataArray: a per-layer metadata array too long to decode while
// parsing (a lazy array) is decoded where the geometry needs it.
func TestLazyMetadataArray(t *testing.T) {
	kv := make([]uint32, 100) // more than gguf.DefaultLazyArrayMax
	for i := range kv {
		kv[i] = 1
	}
	p := ggufModel(t, "llama", []gguf.KV{{Key: "llama.attention.head_count_kv", Type: gguf.Array, ElemType: gguf.Uint32, Value: kv}})
	c, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if kv, _ := c.GGUF().Lookup("llama.attention.head_count_kv"); kv == nil || !kv.Lazy {
		t.Fatalf("the array is not lazy: %+v", kv)
	}
	m, err := FindModel(c, FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Geo.NKVHeads != 1 {
		t.Errorf("n_kv_heads %d", m.Geo.NKVHeads)
	}
}

// TestConfigValues: config.json values that change attention are checked
// and refused with one line naming the key.
func TestConfigValues(t *testing.T) {
	for _, tc := range []struct{ extra, want string }{
		{`, "rope_theta": -1`, "config.json rope_theta is -1, which is not positive"},
		{`, "rope_theta": "big"`, `config.json rope_theta is the string "big", not a number`},
		{`, "partial_rotary_factor": 2`, "config.json partial_rotary_factor is 2, more than 1"},
		{`, "rope_scaling": {"rope_type": "linear"}`, "config.json rope_scaling.factor is missing"},
		{`, "rope_scaling": {"rope_type": "linear", "factor": -2}`, "config.json rope_scaling.factor is -2, which is not positive"},
		{`, "rope_parameters": {"rope_type": "yarn", "factor": 4, "original_max_position_embeddings": 2147483648}`, "config.json rope_parameters.original_max_position_embeddings is 2147483648, which is not a usable count"},
		{`, "rms_norm_eps": -1`, "config.json rms_norm_eps is -1, which is not a usable norm epsilon"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			dir := tinyLlamaDir(t, fmt.Sprintf(tinyLlamaConfig, tc.extra)) // a repeated key: the last one counts
			c, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = FindModel(c, FindOptions{})
			var fe *Error
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line containing %q", err, tc.want)
			}
		})
	}
}

// TestGGUFRopeFreqs: llama.cpp writes Llama 3.1's scaling into GGUF files as
// the rope_freqs tensor (one divisor per rotary frequency); it is read into
// the geometry, and a tensor of the wrong length is refused naming it.
func TestGGUFRopeFreqs(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{{2, ""}, {3, "expected [2]"}} {
		p := ggufModel(t, "llama", nil)
		c0, err := Open(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		w := &gguf.Writer{KVs: nil}
		for _, kv := range c0.GGUF().KVs {
			w.KVs = append(w.KVs, kv)
		}
		for _, ti := range c0.Tensors {
			b, _ := c0.DecodeNew(ti)
			raw := make([]byte, 4*len(b))
			for i, v := range b {
				binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
			}
			dims := make([]uint64, len(ti.Shape))
			for i, d := range ti.Shape {
				dims[len(dims)-1-i] = uint64(d)
			}
			w.Tensors = append(w.Tensors, gguf.WriterTensor{Name: ti.Name, Dims: dims, Type: dtype.F32, Data: raw})
		}
		c0.Close()
		ff := make([]byte, 4*tc.n)
		for i := uint64(0); i < tc.n; i++ {
			binary.LittleEndian.PutUint32(ff[4*i:], math.Float32bits(float32(1+7*i)))
		}
		w.Tensors = append(w.Tensors, gguf.WriterTensor{Name: "rope_freqs.weight", Dims: []uint64{tc.n}, Type: dtype.F32, Data: ff})
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "f.gguf")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := FindModel(c, FindOptions{})
		c.Close()
		if tc.want != "" {
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rope_freqs.weight") {
				t.Errorf("error %v, want %q naming rope_freqs.weight", err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		s := m.Geo.RopeScaling
		if s == nil || s.Type != RopeScalingFreqFactors || fmt.Sprint(s.FreqFactors) != "[1 8]" || len(m.Geo.Unsupported) > 0 {
			t.Errorf("rope scaling %+v", s)
		}
	}
}
