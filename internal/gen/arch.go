package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"

	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/safetensors"
)

// Tiny models of the architectures without a reference folder, written by
// the rules of transformers' modeling code (Hugging Face form) and of
// llama.cpp's converter (GGUF form), into testdata/arch/<name>/hf and
// testdata/arch/<name>/<name>.gguf. The formats tests read them back and
// check each rule against values they compute from the stored tensors.

// archModel is one tiny model: its config and its tensors in Hugging Face
// names and layout, and how the converter writes its GGUF (nil: none).
type archModel struct {
	name    string
	config  map[string]any
	tensors []named
	gguf    *archGGUF
}

// archGGUF is the converter's view of a model.
type archGGUF struct {
	arch string
	kvs  []gguf.KV
	// name maps a Hugging Face name to the GGUF name ("" drops it);
	// convert rewrites the data (the converter's +1 on Gemma norms, the
	// split of kv_b); both default to identity.
	name    func(hf string) string
	convert func(hf string, n named) []named
}

type archRNG struct{ r *rand.Rand }

func (a archRNG) mat(rows, cols int, std float64) []float32 {
	v := make([]float32, rows*cols)
	for i := range v {
		v[i] = float32(a.r.NormFloat64() * std)
	}
	return v
}

func (a archRNG) norm(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1 + float32(a.r.NormFloat64()*0.2)
	}
	return v
}

// archBuilder collects a model's tensors.
type archBuilder struct {
	archRNG
	ts []named
}

func (b *archBuilder) add(name string, data []float32, shape ...int64) {
	b.ts = append(b.ts, named{name, shape, data})
}

func (b *archBuilder) linear(name string, out, in int) {
	b.add(name+".weight", b.mat(out, in, 0.2), int64(out), int64(in))
}

func (b *archBuilder) vec(name string, n int) {
	b.add(name+".weight", b.norm(n), int64(n))
}

// attention adds q/k/v/o_proj (llama layout) of one layer.
func (b *archBuilder) attention(p string, d, nh, nkv, hd int) {
	b.linear(p+"self_attn.q_proj", nh*hd, d)
	b.linear(p+"self_attn.k_proj", nkv*hd, d)
	b.linear(p+"self_attn.v_proj", nkv*hd, d)
	b.linear(p+"self_attn.o_proj", d, nh*hd)
}

func (b *archBuilder) gatedMLP(p string, d, ff int) {
	b.linear(p+"gate_proj", ff, d)
	b.linear(p+"up_proj", ff, d)
	b.linear(p+"down_proj", d, ff)
}

// llamaGGUFName maps the llama-family names every converter shares.
func llamaGGUFName(hf string) string {
	global := map[string]string{"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
	if g, ok := global[hf]; ok {
		return g
	}
	var l int
	var rest string
	if _, err := fmt.Sscanf(hf, "model.layers.%d.%s", &l, &rest); err != nil {
		return ""
	}
	m := map[string]string{
		"input_layernorm.weight": "attn_norm", "self_attn.q_proj.weight": "attn_q", "self_attn.k_proj.weight": "attn_k",
		"self_attn.v_proj.weight": "attn_v", "self_attn.o_proj.weight": "attn_output", "self_attn.q_norm.weight": "attn_q_norm",
		"self_attn.k_norm.weight": "attn_k_norm", "post_attention_layernorm.weight": "ffn_norm",
		"mlp.gate_proj.weight": "ffn_gate", "mlp.up_proj.weight": "ffn_up", "mlp.down_proj.weight": "ffn_down",
		"self_attn.q_a_proj.weight": "attn_q_a", "self_attn.q_a_layernorm.weight": "attn_q_a_norm", "self_attn.q_b_proj.weight": "attn_q_b",
		"self_attn.kv_a_proj_with_mqa.weight": "attn_kv_a_mqa", "self_attn.kv_a_layernorm.weight": "attn_kv_a_norm",
		"self_attn.kv_b_proj.weight": "attn_kv_b", "mlp.gate.weight": "ffn_gate_inp",
		"mlp.shared_experts.gate_proj.weight": "ffn_gate_shexp", "mlp.shared_experts.up_proj.weight": "ffn_up_shexp",
		"mlp.shared_experts.down_proj.weight": "ffn_down_shexp",
		"feed_forward.gate_proj.weight":       "ffn_gate", "feed_forward.up_proj.weight": "ffn_up", "feed_forward.down_proj.weight": "ffn_down",
		"feed_forward.router.weight": "ffn_gate_inp", "feed_forward.shared_expert.gate_proj.weight": "ffn_gate_shexp",
		"feed_forward.shared_expert.up_proj.weight": "ffn_up_shexp", "feed_forward.shared_expert.down_proj.weight": "ffn_down_shexp",
		"block_sparse_moe.gate.weight": "ffn_gate_inp",
		// Gemma 2/3: norms on both sides of attention and MLP.
		"pre_feedforward_layernorm.weight": "ffn_norm", "post_feedforward_layernorm.weight": "post_ffw_norm",
	}
	g, ok := m[rest]
	if !ok {
		return ""
	}
	return fmt.Sprintf("blk.%d.%s.weight", l, g)
}

func archConfig(base map[string]any, extra map[string]any) map[string]any {
	out := map[string]any{"hidden_act": "silu", "initializer_range": 0.02, "max_position_embeddings": 64, "vocab_size": 32,
		"bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32", "transformers_version": "4.51.3", "use_cache": true}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// archModels returns every tiny model.
func archModels() []*archModel {
	const d, nh, nkv, vocab = 16, 4, 2, 32
	var out []*archModel
	newB := func(seed uint64) *archBuilder { return &archBuilder{archRNG: archRNG{rand.New(rand.NewPCG(seed, 7))}} }
	llamaKVs := func(arch string, layers, hd int, eps, theta float32, extra ...gguf.KV) []gguf.KV {
		u32 := func(k string, v uint32) gguf.KV { return gguf.KV{Key: arch + "." + k, Type: gguf.Uint32, Value: v} }
		return append([]gguf.KV{
			u32("context_length", 64), u32("embedding_length", d), u32("block_count", uint32(layers)),
			u32("attention.head_count", nh), u32("attention.head_count_kv", nkv),
			u32("attention.key_length", uint32(hd)), u32("attention.value_length", uint32(hd)),
			{Key: arch + ".attention.layer_norm_rms_epsilon", Type: gguf.Float32, Value: eps},
			{Key: arch + ".rope.freq_base", Type: gguf.Float32, Value: theta},
		}, extra...)
	}

	// Mistral: the Llama layout, a sliding window on every layer.
	{
		b := newB(3101)
		hd, layers := 4, 2
		b.add("model.embed_tokens.weight", b.mat(vocab, d, 0.5), vocab, d)
		for l := 0; l < layers; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			b.vec(p+"input_layernorm", d)
			b.attention(p, d, nh, nkv, hd)
			b.vec(p+"post_attention_layernorm", d)
			b.gatedMLP(p+"mlp.", d, 32)
		}
		b.vec("model.norm", d)
		b.linear("lm_head", vocab, d)
		out = append(out, &archModel{name: "mistral", tensors: b.ts, config: archConfig(map[string]any{
			"architectures": []string{"MistralForCausalLM"}, "model_type": "mistral", "hidden_size": d, "intermediate_size": 32,
			"num_attention_heads": nh, "num_key_value_heads": nkv, "head_dim": hd, "num_hidden_layers": layers,
			"rms_norm_eps": 1e-5, "rope_theta": 1e6, "sliding_window": 3, "tie_word_embeddings": false,
		}, nil)})
	}

	// Mixtral: Mistral attention, a mixture of experts.
	{
		b := newB(3102)
		hd, layers, experts, ff := 4, 2, 2, 8
		b.add("model.embed_tokens.weight", b.mat(vocab, d, 0.5), vocab, d)
		for l := 0; l < layers; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			b.vec(p+"input_layernorm", d)
			b.attention(p, d, nh, nkv, hd)
			b.vec(p+"post_attention_layernorm", d)
			b.linear(p+"block_sparse_moe.gate", experts, d)
			for e := 0; e < experts; e++ {
				q := fmt.Sprintf("%sblock_sparse_moe.experts.%d.", p, e)
				b.linear(q+"w1", ff, d)
				b.linear(q+"w2", d, ff)
				b.linear(q+"w3", ff, d)
			}
		}
		b.vec("model.norm", d)
		b.linear("lm_head", vocab, d)
		out = append(out, &archModel{name: "mixtral", tensors: b.ts, config: archConfig(map[string]any{
			"architectures": []string{"MixtralForCausalLM"}, "model_type": "mixtral", "hidden_size": d, "intermediate_size": ff,
			"num_attention_heads": nh, "num_key_value_heads": nkv, "head_dim": hd, "num_hidden_layers": layers,
			"num_local_experts": experts, "num_experts_per_tok": 1, "rms_norm_eps": 1e-5, "rope_theta": 1e6,
			"sliding_window": nil, "tie_word_embeddings": false,
		}, nil), gguf: &archGGUF{arch: "llama", kvs: append(llamaKVs("llama", layers, hd, 1e-5, 1e6),
			gguf.KV{Key: "llama.expert_count", Type: gguf.Uint32, Value: uint32(experts)},
			gguf.KV{Key: "llama.expert_used_count", Type: gguf.Uint32, Value: uint32(1)},
			gguf.KV{Key: "llama.rope.dimension_count", Type: gguf.Uint32, Value: uint32(hd)}),
			convert: func(hf string, n named) []named {
				// llama.cpp's LlamaModel permutes Q/K rows for its RoPE and
				// stacks the experts (w1 gate, w3 up, w2 down).
				switch {
				case strings.HasSuffix(hf, "self_attn.q_proj.weight"):
					n.data = permuteRoPE(n.data, nh, hd, d)
				case strings.HasSuffix(hf, "self_attn.k_proj.weight"):
					n.data = permuteRoPE(n.data, nkv, hd, d)
				}
				return mixtralStack(hf, n)
			},
		}})
	}

	// Qwen3-MoE: Qwen3 attention (per-head q_norm/k_norm), experts.
	{
		b := newB(3103)
		hd, layers, experts, ff := 8, 2, 2, 8
		b.add("model.embed_tokens.weight", b.mat(vocab, d, 0.5), vocab, d)
		for l := 0; l < layers; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			b.vec(p+"input_layernorm", d)
			b.attention(p, d, nh, nkv, hd)
			b.vec(p+"self_attn.q_norm", hd)
			b.vec(p+"self_attn.k_norm", hd)
			b.vec(p+"post_attention_layernorm", d)
			b.linear(p+"mlp.gate", experts, d)
			for e := 0; e < experts; e++ {
				b.gatedMLP(fmt.Sprintf("%smlp.experts.%d.", p, e), d, ff)
			}
		}
		b.vec("model.norm", d)
		b.linear("lm_head", vocab, d)
		out = append(out, &archModel{name: "qwen3_moe", tensors: b.ts, config: archConfig(map[string]any{
			"architectures": []string{"Qwen3MoeForCausalLM"}, "model_type": "qwen3_moe", "hidden_size": d, "intermediate_size": 32,
			"moe_intermediate_size": ff, "num_attention_heads": nh, "num_key_value_heads": nkv, "head_dim": hd, "num_hidden_layers": layers,
			"num_experts": experts, "num_experts_per_tok": 1, "decoder_sparse_step": 1, "mlp_only_layers": []int{},
			"rms_norm_eps": 1e-6, "rope_theta": 1e6, "sliding_window": nil, "use_sliding_window": false, "max_window_layers": layers,
			"tie_word_embeddings": false,
		}, nil), gguf: &archGGUF{arch: "qwen3moe", kvs: append(llamaKVs("qwen3moe", layers, hd, 1e-6, 1e6),
			gguf.KV{Key: "qwen3moe.expert_count", Type: gguf.Uint32, Value: uint32(experts)},
			gguf.KV{Key: "qwen3moe.expert_used_count", Type: gguf.Uint32, Value: uint32(1)}),
			convert: stackExperts(experts, "mlp.experts.%d.%s_proj.weight", map[string]string{"gate": "ffn_gate_exps", "up": "ffn_up_exps", "down": "ffn_down_exps"}),
		}})
	}

	// Gemma and Gemma 2: (1 + w) norms (the converter stores 1 + w),
	// embeddings × sqrt(d), tied; Gemma 2 adds norms after attention and
	// MLP, softcapping, query_pre_attn_scalar and alternating windows.
	for _, v := range []struct {
		name  string
		seed  uint64
		gemma int
	}{{"gemma", 3104, 1}, {"gemma2", 3105, 2}} {
		b := newB(v.seed)
		hd, layers := 8, 2
		b.add("model.embed_tokens.weight", b.mat(vocab, d, 0.5), vocab, d)
		for l := 0; l < layers; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			// Gemma stores w with 1 + w applied: draw w around 0.
			b.add(p+"input_layernorm.weight", b.mat(1, d, 0.2), d)
			b.attention(p, d, nh, nkv, hd)
			if v.gemma == 1 {
				b.add(p+"post_attention_layernorm.weight", b.mat(1, d, 0.2), d)
			} else {
				for _, n := range []string{"post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"} {
					b.add(p+n+".weight", b.mat(1, d, 0.2), d)
				}
			}
			b.gatedMLP(p+"mlp.", d, 32)
		}
		b.add("model.norm.weight", b.mat(1, d, 0.2), d)
		cfg := map[string]any{
			"architectures": []string{map[int]string{1: "GemmaForCausalLM", 2: "Gemma2ForCausalLM"}[v.gemma]}, "model_type": v.name,
			"hidden_size": d, "intermediate_size": 32, "num_attention_heads": nh, "num_key_value_heads": nkv, "head_dim": hd,
			"num_hidden_layers": layers, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_activation": "gelu_pytorch_tanh",
			"hidden_act": "gelu_pytorch_tanh", "tie_word_embeddings": true, "attention_bias": false,
		}
		kvs := llamaKVs(v.name, layers, hd, 1e-6, 10000)
		if v.gemma == 2 {
			cfg["query_pre_attn_scalar"] = 6
			cfg["attn_logit_softcapping"] = 50.0
			cfg["final_logit_softcapping"] = 30.0
			cfg["sliding_window"] = 3
			kvs = append(kvs, gguf.KV{Key: "gemma2.attn_logit_softcapping", Type: gguf.Float32, Value: float32(50)},
				gguf.KV{Key: "gemma2.final_logit_softcapping", Type: gguf.Float32, Value: float32(30)},
				gguf.KV{Key: "gemma2.attention.sliding_window", Type: gguf.Uint32, Value: uint32(3)})
		}
		out = append(out, &archModel{name: v.name, tensors: b.ts, config: archConfig(cfg, nil), gguf: &archGGUF{arch: v.name, kvs: kvs,
			name: func(hf string) string {
				if v.gemma == 2 && strings.HasSuffix(hf, "post_attention_layernorm.weight") {
					return strings.Replace(llamaGGUFName(hf), "ffn_norm", "post_attention_norm", 1)
				}
				return llamaGGUFName(hf)
			},
			convert: func(hf string, n named) []named {
				if strings.HasSuffix(hf, "norm.weight") {
					v := make([]float32, len(n.data))
					for i, x := range n.data {
						v[i] = x + 1 // the converter's norm shift, in float32
					}
					n.data = v
				}
				return []named{n}
			},
		}})
	}

	// Llama 4 (text): NoPE every 4th layer, chunked attention on the others,
	// L2 Q/K norm on RoPE layers, RoPE on interleaved pairs (no permutation
	// in the GGUF), MoE on odd layers with a shared expert.
	{
		b := newB(3106)
		hd, layers, experts, ff := 4, 4, 2, 8
		b.add("model.embed_tokens.weight", b.mat(vocab, d, 0.5), vocab, d)
		for l := 0; l < layers; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			b.vec(p+"input_layernorm", d)
			b.attention(p, d, nh, nkv, hd)
			b.vec(p+"post_attention_layernorm", d)
			if l%2 == 1 {
				b.linear(p+"feed_forward.router", experts, d)
				b.add(p+"feed_forward.experts.gate_up_proj", b.mat(experts*d, 2*ff, 0.2), int64(experts), d, int64(2*ff))
				b.add(p+"feed_forward.experts.down_proj", b.mat(experts*ff, d, 0.2), int64(experts), int64(ff), d)
				b.gatedMLP(p+"feed_forward.shared_expert.", d, ff)
			} else {
				b.gatedMLP(p+"feed_forward.", d, 32)
			}
		}
		b.vec("model.norm", d)
		b.linear("lm_head", vocab, d)
		out = append(out, &archModel{name: "llama4", tensors: b.ts, config: archConfig(map[string]any{
			"architectures": []string{"Llama4ForCausalLM"}, "model_type": "llama4_text", "hidden_size": d, "intermediate_size": ff,
			"intermediate_size_mlp": 32, "num_attention_heads": nh, "num_key_value_heads": nkv, "head_dim": hd, "num_hidden_layers": layers,
			"num_local_experts": experts, "num_experts_per_tok": 1, "interleave_moe_layer_step": 2, "rms_norm_eps": 1e-5,
			"rope_theta": 500000.0, "rope_scaling": nil, "no_rope_layer_interval": 4, "attention_chunk_size": 8, "use_qk_norm": true,
			"attn_temperature_tuning": true, "floor_scale": 8192, "attn_scale": 0.1, "tie_word_embeddings": false,
		}, nil), gguf: &archGGUF{arch: "llama4", kvs: append(llamaKVs("llama4", layers, hd, 1e-5, 500000),
			gguf.KV{Key: "llama4.expert_count", Type: gguf.Uint32, Value: uint32(experts)},
			gguf.KV{Key: "llama4.interleave_moe_layer_step", Type: gguf.Uint32, Value: uint32(2)},
			gguf.KV{Key: "llama4.rope.dimension_count", Type: gguf.Uint32, Value: uint32(hd)}),
			convert: llama4Experts(experts, d, ff),
		}})
	}

	// DeepSeek V2 without q_lora (q_proj stored directly, as V2-Lite): MLA
	// with kv_b_proj; layer 0 dense, layer 1 MoE with shared experts. The
	// GGUF is the older converter's form (attn_q, attn_kv_b, key_length =
	// nope + rope).
	{
		b := newB(3107)
		layers, kvr, nope, rope, vd, experts, ff := 2, 8, 4, 4, 4, 2, 8
		b.add("model.embed_tokens.weight", b.mat(vocab, d, 0.5), vocab, d)
		for l := 0; l < layers; l++ {
			p := fmt.Sprintf("model.layers.%d.", l)
			b.vec(p+"input_layernorm", d)
			b.linear(p+"self_attn.q_proj", nh*(nope+rope), d)
			b.linear(p+"self_attn.kv_a_proj_with_mqa", kvr+rope, d)
			b.vec(p+"self_attn.kv_a_layernorm", kvr)
			b.linear(p+"self_attn.kv_b_proj", nh*(nope+vd), kvr)
			b.linear(p+"self_attn.o_proj", d, nh*vd)
			b.vec(p+"post_attention_layernorm", d)
			if l == 0 {
				b.gatedMLP(p+"mlp.", d, 32)
			} else {
				b.linear(p+"mlp.gate", experts, d)
				for e := 0; e < experts; e++ {
					b.gatedMLP(fmt.Sprintf("%smlp.experts.%d.", p, e), d, ff)
				}
				b.gatedMLP(p+"mlp.shared_experts.", d, ff)
			}
		}
		b.vec("model.norm", d)
		b.linear("lm_head", vocab, d)
		u32 := func(k string, v int) gguf.KV {
			return gguf.KV{Key: "deepseek2." + k, Type: gguf.Uint32, Value: uint32(v)}
		}
		out = append(out, &archModel{name: "deepseek_v2", tensors: b.ts, config: archConfig(map[string]any{
			"architectures": []string{"DeepseekV2ForCausalLM"}, "model_type": "deepseek_v2", "hidden_size": d, "intermediate_size": 32,
			"moe_intermediate_size": ff, "num_attention_heads": nh, "num_key_value_heads": nh, "num_hidden_layers": layers,
			"q_lora_rank": nil, "kv_lora_rank": kvr, "qk_nope_head_dim": nope, "qk_rope_head_dim": rope, "v_head_dim": vd,
			"first_k_dense_replace": 1, "n_routed_experts": experts, "n_shared_experts": 1, "num_experts_per_tok": 1,
			"rms_norm_eps": 1e-6, "rope_theta": 10000.0, "rope_scaling": nil, "tie_word_embeddings": false,
		}, nil), gguf: &archGGUF{arch: "deepseek2", kvs: []gguf.KV{
			u32("context_length", 64), u32("embedding_length", d), u32("block_count", layers), u32("attention.head_count", nh),
			u32("attention.head_count_kv", nh), u32("attention.key_length", nope+rope), u32("attention.value_length", vd),
			u32("attention.kv_lora_rank", kvr), u32("rope.dimension_count", rope), u32("leading_dense_block_count", 1),
			u32("expert_count", experts), u32("expert_shared_count", 1),
			{Key: "deepseek2.attention.layer_norm_rms_epsilon", Type: gguf.Float32, Value: float32(1e-6)},
			{Key: "deepseek2.rope.freq_base", Type: gguf.Float32, Value: float32(10000)},
		}, convert: stackExperts(experts, "mlp.experts.%d.%s_proj.weight", map[string]string{"gate": "ffn_gate_exps", "up": "ffn_up_exps", "down": "ffn_down_exps"}),
		}})
	}
	return out
}

// mixtralStack stacks Mixtral's per-expert w1/w3/w2 into the GGUF's expert tensors.
var mixtralStack = stackExperts(2, "block_sparse_moe.experts.%d.%s.weight", map[string]string{"w1": "ffn_gate_exps", "w3": "ffn_up_exps", "w2": "ffn_down_exps"})

// llama4Experts splits Llama 4's fused expert gate_up_proj [E, d, 2ff] into
// gate and up [E, ff, d] and transposes down_proj [E, ff, d] to [E, d, ff],
// as llama.cpp's converter does.
func llama4Experts(experts, d, ff int) func(string, named) []named {
	return func(hf string, n named) []named {
		var l int
		var rest string
		if _, err := fmt.Sscanf(hf, "model.layers.%d.%s", &l, &rest); err != nil {
			return []named{n}
		}
		blk := func(s string) string { return fmt.Sprintf("blk.%d.%s.weight", l, s) }
		switch rest {
		case "feed_forward.experts.gate_up_proj":
			gate, up := make([]float32, experts*ff*d), make([]float32, experts*ff*d)
			for e := 0; e < experts; e++ {
				for i := 0; i < d; i++ {
					for j := 0; j < ff; j++ {
						gate[(e*ff+j)*d+i] = n.data[(e*d+i)*2*ff+j]
						up[(e*ff+j)*d+i] = n.data[(e*d+i)*2*ff+ff+j]
					}
				}
			}
			shape := []int64{int64(experts), int64(ff), int64(d)}
			return []named{{blk("ffn_gate_exps"), shape, gate}, {blk("ffn_up_exps"), shape, up}}
		case "feed_forward.experts.down_proj":
			down := make([]float32, experts*d*ff)
			for e := 0; e < experts; e++ {
				for j := 0; j < ff; j++ {
					for i := 0; i < d; i++ {
						down[(e*d+i)*ff+j] = n.data[(e*ff+j)*d+i]
					}
				}
			}
			return []named{{blk("ffn_down_exps"), []int64{int64(experts), int64(d), int64(ff)}, down}}
		}
		return []named{n}
	}
}

// stackExperts returns a converter that stacks per-expert matrices into
// one [experts, ...] tensor, as llama.cpp's converters do; the name
// function must drop the per-expert names (llamaGGUFName does).
func stackExperts(experts int, pattern string, to map[string]string) func(string, named) []named {
	pending := map[string][]named{}
	return func(hf string, n named) []named {
		var l, e int
		var rest string
		if _, err := fmt.Sscanf(hf, "model.layers.%d.%s", &l, &rest); err != nil {
			return []named{n}
		}
		for kind, ggufName := range to {
			for e = 0; e < experts; e++ {
				if rest != fmt.Sprintf(pattern, e, kind) {
					continue
				}
				key := fmt.Sprintf("blk.%d.%s.weight", l, ggufName)
				pending[key] = append(pending[key], n)
				if len(pending[key]) < experts {
					return nil
				}
				parts := pending[key]
				var data []float32
				for _, p := range parts {
					data = append(data, p.data...)
				}
				shape := append([]int64{int64(experts)}, parts[0].shape...)
				return []named{{key, shape, data}}
			}
		}
		return []named{n}
	}
}

// writeArch writes one tiny model's Hugging Face folder and GGUF file.
func (g *gen) writeArch(m *archModel) {
	dir := filepath.Join(g.root, "arch", m.name)
	var ts []safetensors.WriteTensor
	sorted := append([]named(nil), m.tensors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, n := range sorted {
		ts = append(ts, f32Tensor(n))
	}
	g.write(filepath.Join(dir, "hf", "model.safetensors"), st(ts, [][2]string{{"format", "pt"}}))
	cfg, _ := json.MarshalIndent(m.config, "", "  ")
	g.write(filepath.Join(dir, "hf", "config.json"), append(cfg, '\n'))
	if m.gguf == nil {
		return
	}
	c := m.gguf
	name, convert := c.name, c.convert
	if name == nil {
		name = llamaGGUFName
	}
	if convert == nil {
		convert = func(_ string, n named) []named { return []named{n} }
	}
	var wts []gguf.WriterTensor
	for _, n := range m.tensors {
		for _, x := range convert(n.name, n) {
			gn := x.name
			if !strings.HasPrefix(gn, "blk.") {
				gn = name(x.name)
			}
			if gn == "" {
				continue
			}
			dims := make([]uint64, len(x.shape))
			for i, s := range x.shape {
				dims[len(x.shape)-1-i] = uint64(s)
			}
			var buf bytes.Buffer
			for _, v := range x.data {
				binary.Write(&buf, binary.LittleEndian, math.Float32bits(v))
			}
			wts = append(wts, gguf.WriterTensor{Name: gn, Dims: dims, Type: dtype.F32, Data: buf.Bytes()})
		}
	}
	kvs := append([]gguf.KV{{Key: "general.architecture", Type: gguf.String, Value: c.arch},
		{Key: "general.name", Type: gguf.String, Value: "qkv tiny " + m.name}}, c.kvs...)
	g.gguf(filepath.Join(dir, m.name+".gguf"), &gguf.Writer{Version: 3, Alignment: 32, KVs: kvs, Tensors: wts})
}
