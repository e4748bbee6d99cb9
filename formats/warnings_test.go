package formats

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/safetensors"
	"github.com/qkvdev/qkv/internal/testref"
)

// Small Hugging Face models (d_model 8, 2 heads of 4, one layer) of the
// architectures whose registry entries list NotModeled keys or are
// Incomplete; config is the JSON object's extra members (", ..." or "").
func gpt2Dir(t *testing.T, config string) string {
	return writeModel(t, `{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 8, "n_head": 2, "n_layer": 1, "layer_norm_epsilon": 1e-5`+config+`}`,
		[]safetensors.WriteTensor{
			// Conv1D: [in, out].
			safetensors.F32Tensor("transformer.h.0.attn.c_attn.weight", []int64{8, 24}, labelled(8, 24, func(r int) float32 { return float32(r) })),
			safetensors.F32Tensor("transformer.h.0.attn.c_attn.bias", []int64{24}, make([]float32, 24)),
			safetensors.F32Tensor("transformer.h.0.attn.c_proj.weight", []int64{8, 8}, labelled(8, 8, func(r int) float32 { return float32(r) })),
			safetensors.F32Tensor("transformer.h.0.attn.c_proj.bias", []int64{8}, make([]float32, 8)),
			safetensors.F32Tensor("transformer.h.0.ln_1.weight", []int64{8}, labelled(1, 8, func(int) float32 { return 1 })),
			safetensors.F32Tensor("transformer.h.0.ln_1.bias", []int64{8}, make([]float32, 8)),
		})
}

func bertDir(t *testing.T, config string) string {
	var ts []safetensors.WriteTensor
	for _, n := range []string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"} {
		ts = append(ts,
			safetensors.F32Tensor("encoder.layer.0."+n+".weight", []int64{8, 8}, labelled(8, 8, func(r int) float32 { return float32(r) })),
			safetensors.F32Tensor("encoder.layer.0."+n+".bias", []int64{8}, make([]float32, 8)))
	}
	ts = append(ts,
		safetensors.F32Tensor("encoder.layer.0.attention.output.LayerNorm.weight", []int64{8}, labelled(1, 8, func(int) float32 { return 1 })),
		safetensors.F32Tensor("encoder.layer.0.attention.output.LayerNorm.bias", []int64{8}, make([]float32, 8)))
	return writeModel(t, `{"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1, "layer_norm_eps": 1e-12`+config+`}`, ts)
}

func gemma3Dir(t *testing.T, config string) string {
	return writeModel(t, `{"model_type": "gemma3_text", "architectures": ["Gemma3ForCausalLM"], "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4, "num_hidden_layers": 1, "rms_norm_eps": 1e-6, "sliding_window": 2, "query_pre_attn_scalar": 4`+config+`}`,
		[]safetensors.WriteTensor{
			safetensors.F32Tensor("model.layers.0.self_attn.q_proj.weight", []int64{8, 8}, labelled(8, 8, func(r int) float32 { return float32(r) })),
			safetensors.F32Tensor("model.layers.0.self_attn.k_proj.weight", []int64{4, 8}, labelled(4, 8, func(r int) float32 { return float32(r) })),
			safetensors.F32Tensor("model.layers.0.self_attn.v_proj.weight", []int64{4, 8}, labelled(4, 8, func(r int) float32 { return float32(r) })),
			safetensors.F32Tensor("model.layers.0.self_attn.o_proj.weight", []int64{8, 8}, labelled(8, 8, func(r int) float32 { return float32(r) })),
			safetensors.F32Tensor("model.layers.0.self_attn.q_norm.weight", []int64{4}, make([]float32, 4)),
			safetensors.F32Tensor("model.layers.0.self_attn.k_norm.weight", []int64{4}, make([]float32, 4)),
		})
}

func mptDir(t *testing.T, config string) string {
	return writeModel(t, `{"model_type": "mpt", "architectures": ["MptForCausalLM"], "d_model": 8, "n_heads": 2, "n_layers": 1, "attn_config": {"alibi": true}`+config+`}`,
		[]safetensors.WriteTensor{
			safetensors.F32Tensor("transformer.blocks.0.attn.Wqkv.weight", []int64{24, 8}, labelled(24, 8, func(r int) float32 { return float32(r) })),
			safetensors.F32Tensor("transformer.blocks.0.attn.out_proj.weight", []int64{8, 8}, labelled(8, 8, func(r int) float32 { return float32(r) })),
			safetensors.F32Tensor("transformer.blocks.0.norm_1.weight", []int64{8}, labelled(1, 8, func(int) float32 { return 1 })),
		})
}

// optDir is the OPT model of attn's forward references with its config
// edited.
func optDir(t *testing.T, edit func(map[string]any)) string {
	return copyModel(t, filepath.Join(testref.RepoRoot(), "attn", "testdata", "forward", "opt"), edit)
}

// TestConfigWarnings: a config key a registry entry lists as NotModeled,
// set to anything but the value qkv models, an Incomplete entry, and a
// model_type the registry does not know are each listed in
// Geometry.Unsupported (and Describe's warnings) under the key's name; the
// modeled value, or the key absent, warns of nothing.
func TestConfigWarnings(t *testing.T) {
	tests := []struct {
		name, arch string
		dir        func(t *testing.T) string
		key        string // the one unsupported item's name; "" for none
		message    []string
	}{
		{"gpt2 scale_attn_by_inverse_layer_idx true", "gpt2", func(t *testing.T) string {
			return gpt2Dir(t, `, "scale_attn_by_inverse_layer_idx": true`)
		}, "scale_attn_by_inverse_layer_idx", []string{"scale_attn_by_inverse_layer_idx = true", "does not implement"}},
		{"gpt2 scale_attn_weights false", "gpt2", func(t *testing.T) string {
			return gpt2Dir(t, `, "scale_attn_weights": false`)
		}, "scale_attn_weights", []string{"scale_attn_weights = false", "does not implement"}},
		{"gpt2 with the modeled values", "gpt2", func(t *testing.T) string {
			return gpt2Dir(t, `, "scale_attn_by_inverse_layer_idx": false, "scale_attn_weights": true`)
		}, "", nil},
		{"gpt2 without the keys", "gpt2", func(t *testing.T) string { return gpt2Dir(t, "") }, "", nil},
		{"gpt2 keys null", "gpt2", func(t *testing.T) string {
			return gpt2Dir(t, `, "scale_attn_by_inverse_layer_idx": null`)
		}, "", nil},
		{"bert relative_key positions", "bert", func(t *testing.T) string {
			return bertDir(t, `, "position_embedding_type": "relative_key"`)
		}, "position_embedding_type", []string{"position_embedding_type = relative_key", "it models absolute"}},
		{"bert relative_key_query positions", "bert", func(t *testing.T) string {
			return bertDir(t, `, "position_embedding_type": "relative_key_query"`)
		}, "position_embedding_type", []string{"relative_key_query"}},
		{"bert absolute positions", "bert", func(t *testing.T) string {
			return bertDir(t, `, "position_embedding_type": "absolute"`)
		}, "", nil},
		{"opt post-LayerNorm (OPT-350m)", "opt", func(t *testing.T) string {
			return optDir(t, func(c map[string]any) { c["do_layer_norm_before"] = false })
		}, "do_layer_norm_before", []string{"do_layer_norm_before = false"}},
		{"opt pre-LayerNorm", "opt", func(t *testing.T) string {
			return optDir(t, func(c map[string]any) { c["do_layer_norm_before"] = true })
		}, "", nil},
		{"gemma3 bidirectional attention", "gemma3", func(t *testing.T) string {
			return gemma3Dir(t, `, "use_bidirectional_attention": true`)
		}, "use_bidirectional_attention", []string{"use_bidirectional_attention = true"}},
		{"gemma3 causal attention", "gemma3", func(t *testing.T) string {
			return gemma3Dir(t, `, "use_bidirectional_attention": false`)
		}, "", nil},
		{"mpt (incomplete entry)", "mpt", func(t *testing.T) string { return mptDir(t, "") },
			"model_type", []string{"the mpt entry", "incomplete", "clip_qkv"}},
		{"granite (incomplete entry)", "granite", func(t *testing.T) string {
			return tinyLlamaDir(t, `{"model_type": "granite", "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1, "num_hidden_layers": 1, "rms_norm_eps": 1e-5}`)
		}, "model_type", []string{"the granite entry", "incomplete", "attention_multiplier"}},
		{"model_type the registry does not know", "", func(t *testing.T) string {
			return tinyLlamaDir(t, `{"model_type": "qkvtest_unknown", "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1, "num_hidden_layers": 1, "rms_norm_eps": 1e-5}`)
		}, "model_type", []string{"'qkvtest_unknown'", "not in qkv's architecture registry"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := openModel(t, tc.dir(t), FindOptions{})
			g := m.Geometry()
			if got := entryName(g.Arch, false); got != tc.arch {
				t.Fatalf("opened as %q (registry entry %q), want entry %q", g.Arch, got, tc.arch)
			}
			checkOneWarning(t, g.Unsupported, m.Describe().Warnings, "config_key", tc.key, tc.message)
		})
	}
}

// entryName is the registry entry of a geometry's Arch ("" for none).
func entryName(arch string, gguf bool) string {
	if a := LookupArch(arch, gguf); a != nil {
		return a.Name
	}
	return ""
}

// checkOneWarning: unsupported holds exactly the one item named key (kind
// kind, its message holding every string of message), or nothing when key
// is empty; Describe's warnings list it as "unsupported".
func checkOneWarning(t *testing.T, unsupported []Unsupported, warnings []Warning, kind, key string, message []string) {
	t.Helper()
	if key == "" {
		if len(unsupported) != 0 || len(warnings) != 0 {
			t.Errorf("warns %+v (describe %+v), want nothing", unsupported, warnings)
		}
		return
	}
	if len(unsupported) != 1 {
		t.Fatalf("unsupported %+v, want one item named %s", unsupported, key)
	}
	u := unsupported[0]
	if u.Kind != kind || u.Name != key {
		t.Errorf("unsupported %s %q, want %s %q", u.Kind, u.Name, kind, key)
	}
	for _, s := range message {
		if !strings.Contains(u.Message, s) {
			t.Errorf("message %q does not say %q", u.Message, s)
		}
	}
	if !slices.ContainsFunc(warnings, func(w Warning) bool { return w.Severity == "unsupported" && w.Unsupported == u }) {
		t.Errorf("describe warnings %+v do not list %+v", warnings, u)
	}
}

// TestNotModeledCovered: every NotModeled key of the registry has a case in
// TestConfigWarnings, so that a key added to an entry gets its test.
func TestNotModeledCovered(t *testing.T) {
	covered := map[string]bool{
		"gpt2 scale_attn_by_inverse_layer_idx": true, "gpt2 scale_attn_weights": true,
		"bert position_embedding_type": true, "opt do_layer_norm_before": true,
		"gemma3 use_bidirectional_attention": true,
	}
	n := 0
	for _, a := range Architectures() {
		for _, kv := range a.NotModeled {
			n++
			if k := a.Name + " " + kv.Key; !covered[k] {
				t.Errorf("%s: NotModeled key %s (modeled value %v) has no case in TestConfigWarnings", a.Name, kv.Key, kv.Value)
			}
		}
	}
	if n != len(covered) {
		t.Errorf("the registry lists %d NotModeled keys, the test covers %d", n, len(covered))
	}
}

// TestIncompleteWarned: every Incomplete registry entry warns, naming the
// entry and what it lacks — in a Hugging Face folder for the entries with
// Llama's tensor names, and in a GGUF for every entry with a GGUF name; an
// architecture name the registry does not know warns too.
func TestIncompleteWarned(t *testing.T) {
	llamaQ := llamaNames().Q
	n := 0
	for _, a := range Architectures() {
		if a.Incomplete == "" {
			continue
		}
		n++
		if a.HF.Q == llamaQ && a.HF.QKV == "" && len(a.ModelTypes) > 0 {
			t.Run(a.Name+"/hf", func(t *testing.T) {
				m := openModel(t, tinyLlamaDir(t, fmt.Sprintf(`{"model_type": %q, "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1, "num_hidden_layers": 1, "rms_norm_eps": 1e-5}`, a.ModelTypes[0])), FindOptions{})
				if got := entryName(m.Geometry().Arch, false); got != a.Name {
					t.Fatalf("opened as %q (registry entry %q)", m.Geometry().Arch, got)
				}
				checkOneWarning(t, m.Geometry().Unsupported, m.Describe().Warnings, "config_key", "model_type",
					[]string{"the " + a.Name + " entry", "incomplete", a.Incomplete})
			})
		}
		for _, arch := range a.GGUF {
			t.Run(a.Name+"/gguf "+arch, func(t *testing.T) {
				m := openModel(t, ggufModel(t, arch, nil), FindOptions{})
				if got := entryName(m.Geometry().Arch, true); got != a.Name {
					t.Fatalf("opened as %q (registry entry %q)", m.Geometry().Arch, got)
				}
				checkOneWarning(t, m.Geometry().Unsupported, m.Describe().Warnings, "metadata_key", "general.architecture",
					[]string{"the " + a.Name + " entry", "incomplete", a.Incomplete})
			})
		}
	}
	if n < 2 {
		t.Errorf("%d incomplete entries; the registry has had mpt, granite and others", n)
	}
	t.Run("unknown GGUF architecture", func(t *testing.T) {
		m := openModel(t, ggufModel(t, "qkvtestunknown", nil), FindOptions{})
		checkOneWarning(t, m.Geometry().Unsupported, m.Describe().Warnings, "metadata_key", "general.architecture",
			[]string{"'qkvtestunknown'", "not in qkv's architecture registry"})
	})
}
