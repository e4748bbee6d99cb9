package formats

// The registry's entries. Facts come from each architecture's transformers
// modeling and configuration code and llama.cpp's converter; Verified says
// what each entry is tested against (../shared/reference, ../shared/fixtures,
// or the tiny models internal/gen writes from the same rules).

// llamaNames are the tensor names of LlamaForCausalLM, which most decoder
// families share.
func llamaNames() Names {
	return Names{
		Q: "self_attn.q_proj", K: "self_attn.k_proj", V: "self_attn.v_proj", O: "self_attn.o_proj",
		AttnNorm: "input_layernorm", FFNNorm: "post_attention_layernorm",
		Gate: "mlp.gate_proj", Up: "mlp.up_proj", Down: "mlp.down_proj",
		Ignore: "self_attn.rotary_emb.inv_freq",
		Embed:  "embed_tokens", FinalNorm: "norm", LMHead: "lm_head",
	}
}

// with returns n changed by f (entries derive their names from a family's).
func with(n Names, f func(*Names)) Names {
	f(&n)
	return n
}

// gemma2Names: Gemma 2/3 wrap attention and MLP in norms on both sides.
func gemma2Names() Names {
	return with(llamaNames(), func(n *Names) {
		n.PostAttnNorm, n.FFNNorm, n.PostFFNNorm = "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"
	})
}

// llamaEntry is the Llama model with its rules; Mistral, Mixtral and others
// start from it.
var llamaEntry = Arch{
	Name: "llama", ModelTypes: []string{"llama"}, Classes: []string{"LlamaForCausalLM", "LlamaModel"}, GGUF: []string{"llama"},
	Summary:  "q/k/v/o_proj, GQA, RMSNorm, RoPE (rotate_half) with every rope_scaling type (Llama 3.1's llama3, linear, dynamic, YaRN, LongRoPE); GGUF Q/K rows un-permuted, Llama 3.1's rope_freqs read",
	Verified: "zoo/llama (hf, hf-sharded, f32/f16/Q8_0/Q6_K/Q4_K_M and split GGUFs), zoo-modern/llama-rope-scaling, fixtures llama31-rope-tiny-ferrl, stories260k v1/v3, llama2-tiny-random",
	HF:       llamaNames(), GGUFPermuted: true, Norm: NormRMS, MLP: MLPGated, Activation: "silu",
}

var archEntries = []*Arch{
	&llamaEntry,
	func() *Arch {
		a := llamaEntry
		a.Name, a.ModelTypes, a.Classes, a.GGUF = "mistral", []string{"mistral"}, []string{"MistralForCausalLM"}, []string{"mistral"}
		a.Summary = "the Llama layout with a sliding window on every layer when sliding_window is set"
		a.Verified = "rule from modeling_mistral.py; tiny model from internal/gen (testdata/arch/mistral)"
		a.Sliding = SlidingAll
		return &a
	}(),
	func() *Arch {
		a := llamaEntry
		a.Name, a.ModelTypes, a.Classes, a.GGUF = "mixtral", []string{"mixtral"}, []string{"MixtralForCausalLM"}, nil
		a.Summary = "Mistral attention with a mixture of experts (block_sparse_moe, listed not analysed); GGUF files say llama"
		a.Verified = "rule from modeling_mixtral.py; tiny model from internal/gen (testdata/arch/mixtral)"
		a.Sliding, a.MLP = SlidingAll, MLPMoE
		a.HF = with(llamaNames(), func(n *Names) {
			n.Gate, n.Up, n.Down = "", "", ""
			n.Router = "block_sparse_moe.gate"
			n.Experts = "block_sparse_moe.experts.N.w1|block_sparse_moe.experts.N.w2|block_sparse_moe.experts.N.w3"
		})
		return &a
	}(),
	{
		Name: "qwen2", ModelTypes: []string{"qwen2"}, Classes: []string{"Qwen2ForCausalLM"}, GGUF: []string{"qwen2"},
		Summary:  "q/k/v biases, explicit head_dim, sliding window on layers ≥ max_window_layers when use_sliding_window",
		Verified: "zoo/qwen2 (hf BF16, f32/bf16/Q8_0/Q4_K_M GGUFs)",
		HF:       llamaNames(), Norm: NormRMS, MLP: MLPGated, Activation: "silu", Sliding: SlidingQwen,
	},
	{
		Name: "qwen3", ModelTypes: []string{"qwen3"}, Classes: []string{"Qwen3ForCausalLM"}, GGUF: []string{"qwen3"},
		Summary:  "Qwen2 attention with a per-head RMSNorm on Q and K (q_norm/k_norm, before RoPE), no biases",
		Verified: "zoo-modern/qwen3 (hf, f32/f16/Q8_0/Q4_K_M GGUFs), fixture qwen3-tiny-ferrl (transformers 5.11)",
		HF:       with(llamaNames(), func(n *Names) { n.QNorm, n.KNorm = "self_attn.q_norm", "self_attn.k_norm" }),
		Norm:     NormRMS, QKNorm: QKNormPerHead, MLP: MLPGated, Activation: "silu", Sliding: SlidingQwen,
	},
	{
		Name: "qwen3_moe", ModelTypes: []string{"qwen3_moe"}, Classes: []string{"Qwen3MoeForCausalLM"}, GGUF: []string{"qwen3moe"},
		Summary:  "Qwen3 attention with a mixture of experts (mlp.experts, listed not analysed)",
		Verified: "rule from modeling_qwen3_moe.py; tiny model from internal/gen (testdata/arch/qwen3_moe)",
		HF: with(llamaNames(), func(n *Names) {
			n.QNorm, n.KNorm = "self_attn.q_norm", "self_attn.k_norm"
			n.Router, n.Experts = "mlp.gate", "mlp.experts.N.gate_proj|mlp.experts.N.up_proj|mlp.experts.N.down_proj"
		}),
		Norm: NormRMS, QKNorm: QKNormPerHead, MLP: MLPMoE, Activation: "silu", Sliding: SlidingQwen,
	},
	{
		Name: "phi3", ModelTypes: []string{"phi3"}, Classes: []string{"Phi3ForCausalLM"}, GGUF: []string{"phi3"},
		Summary:  "fused qkv_proj (q, k, v row blocks) and gate_up_proj, partial rotary, LongRoPE, sliding window on every layer when set (Phi-3, Phi-4)",
		Verified: "zoo/phi3 (hf F16, f32/f16/Q8_0/Q4_K_M GGUFs)",
		HF: with(llamaNames(), func(n *Names) {
			n.Q, n.K, n.V, n.QKV = "", "", "", "self_attn.qkv_proj"
			n.Gate, n.Up, n.GateUp = "", "", "mlp.gate_up_proj"
		}),
		Fused: FusedContig, Norm: NormRMS, MLP: MLPGated, Activation: "silu", Sliding: SlidingAll,
	},
	{
		Name: "gpt2", ModelTypes: []string{"gpt2"}, Classes: []string{"GPT2LMHeadModel", "GPT2Model"}, GGUF: []string{"gpt2"},
		Summary:  "fused c_attn stored [in, out] (Conv1D, transposed on extraction), biases, learned positions, LayerNorm",
		Verified: "zoo/gpt2 (hf, f32/f16/Q8_0/Q4_K_M GGUFs), fixtures gpt2-tiny-random, gpt2-capp-4l",
		HF: Names{
			QKV: "attn.c_attn", O: "attn.c_proj", AttnNorm: "ln_1", FFNNorm: "ln_2",
			Up: "mlp.c_fc", Down: "mlp.c_proj", Ignore: "attn.bias|attn.masked_bias",
			Embed: "wte", PosEmbed: "wpe", FinalNorm: "ln_f",
		},
		Fused: FusedContig, Conv1D: true, Position: PosLearned, Norm: NormLayerNorm, MLP: MLPPlain, Activation: "gelu_new",
		TiedDefault: true,
		NotModeled:  []KeyValue{{"scale_attn_by_inverse_layer_idx", false}, {"scale_attn_weights", true}},
	},
	{
		Name: "gpt_bigcode", ModelTypes: []string{"gpt_bigcode"}, Classes: []string{"GPTBigCodeForCausalLM"}, GGUF: []string{"starcoder"},
		Summary:  "GPT-2 layout with nn.Linear weights and multi-query c_attn (StarCoder)",
		Verified: "rule from modeling_gpt_bigcode.py; independent numpy float64 forward reference on a tiny multi-query model (attn/testdata/forward/gpt_bigcode, checked by attn TestForwardModern); HF only, no GGUF reference",
		HF: Names{
			QKV: "attn.c_attn", O: "attn.c_proj", AttnNorm: "ln_1", FFNNorm: "ln_2",
			Up: "mlp.c_fc", Down: "mlp.c_proj", Embed: "wte", PosEmbed: "wpe", FinalNorm: "ln_f",
		},
		Fused: FusedContig, Position: PosLearned, Norm: NormLayerNorm, MLP: MLPPlain, Activation: "gelu_pytorch_tanh",
		TiedDefault: true,
		config: func(c cfg, a *Arch, s *geoSource) {
			if c.boolean("multi_query", true) {
				s.geo.NKVHeads, s.hasKV = 1, true
			}
		},
	},
	{
		Name: "gpt_neox", ModelTypes: []string{"gpt_neox"}, Classes: []string{"GPTNeoXForCausalLM"}, GGUF: []string{"gptneox"},
		Summary:  "fused query_key_value interleaved per head, partial rotary (rotary_pct), parallel residual",
		Verified: "zoo/gpt_neox (hf, f32/f16/Q8_0/Q4_K_M GGUFs)",
		HF: Names{
			QKV: "attention.query_key_value", O: "attention.dense", AttnNorm: "input_layernorm", FFNNorm: "post_attention_layernorm",
			Up: "mlp.dense_h_to_4h", Down: "mlp.dense_4h_to_h",
			Ignore: "attention.rotary_emb.inv_freq|attention.bias|attention.masked_bias",
			Embed:  "embed_in", FinalNorm: "final_layer_norm", LMHead: "embed_out",
		},
		Fused: FusedPerHead, RotaryFraction: 0.25, Norm: NormLayerNorm, MLP: MLPPlain, Activation: "gelu",
		ParallelResidual: true, ParallelSwitch: "use_parallel_residual",
	},
	{
		Name: "bloom", ModelTypes: []string{"bloom"}, Classes: []string{"BloomForCausalLM", "BloomModel"}, GGUF: []string{"bloom"},
		Summary:  "fused query_key_value interleaved per head, biases, ALiBi, embedding LayerNorm",
		Verified: "zoo/bloom (hf F16, f32/f16/Q8_0/Q4_K_M GGUFs)",
		HF: Names{
			QKV: "self_attention.query_key_value", O: "self_attention.dense", AttnNorm: "input_layernorm", FFNNorm: "post_attention_layernorm",
			Up: "mlp.dense_h_to_4h", Down: "mlp.dense_4h_to_h",
			Embed: "word_embeddings", EmbedNorm: "word_embeddings_layernorm", FinalNorm: "ln_f",
		},
		Fused: FusedPerHead, Position: PosALiBi, Norm: NormLayerNorm, MLP: MLPPlain, Activation: "bloom_gelu", TiedDefault: true,
	},
	{
		Name: "falcon", ModelTypes: []string{"falcon", "RefinedWeb", "RefinedWebModel"}, Classes: []string{"FalconForCausalLM"}, GGUF: []string{"falcon"},
		Summary:  "fused query_key_value in Falcon's multi-query, per-head or grouped (new_decoder_architecture) layout; RoPE or ALiBi; parallel attention",
		Verified: "zoo/falcon (multi-query; hf F16, f32/f16/Q8_0/Q4_K_M GGUFs); per-head and grouped layouts on synthetic tensors",
		HF: Names{
			QKV: "self_attention.query_key_value", O: "self_attention.dense",
			AttnNorm: "input_layernorm|ln_attn", FFNNorm: "post_attention_layernorm|ln_mlp",
			Up: "mlp.dense_h_to_4h", Down: "mlp.dense_4h_to_h", Ignore: "self_attention.maybe_rotary.inv_freq|self_attention.rotary_emb.inv_freq",
			Embed: "word_embeddings", FinalNorm: "ln_f",
		},
		Position: PosConfigALiBi, Norm: NormLayerNorm, MLP: MLPPlain, Activation: "gelu", TiedDefault: true,
		ParallelResidual: true, ParallelSwitch: "parallel_attn",
		config: falconConfig,
	},
	{
		Name: "bert", ModelTypes: []string{"bert", "roberta", "xlm-roberta", "camembert"}, Classes: []string{"BertModel", "BertForMaskedLM", "RobertaModel", "RobertaForMaskedLM", "XLMRobertaModel"},
		GGUF:     []string{"bert"},
		Summary:  "encoder (bidirectional): query/key/value with biases, post-LayerNorm, learned positions and token types (also RoBERTa, XLM-R, CamemBERT)",
		Verified: "zoo/bert (hf, f32/f16/Q8_0/Q4_K_M GGUFs)",
		HF: Names{
			Q: "attention.self.query", K: "attention.self.key", V: "attention.self.value", O: "attention.output.dense",
			PostAttnNorm: "attention.output.LayerNorm", Up: "intermediate.dense", Down: "output.dense", PostFFNNorm: "output.LayerNorm",
			Ignore: "attention.self.position_ids",
			Embed:  "embeddings.word_embeddings", PosEmbed: "embeddings.position_embeddings",
			TokenTypes: "embeddings.token_type_embeddings", EmbedNorm: "embeddings.LayerNorm",
		},
		Encoder: true, Position: PosLearned, Norm: NormLayerNorm, Placement: PostNorm, MLP: MLPPlain, Activation: "gelu",
		NotModeled: []KeyValue{{"position_embedding_type", "absolute"}},
	},
	{
		Name: "bart", ModelTypes: []string{"bart", "marian", "blenderbot-small"}, Classes: []string{"BartForConditionalGeneration", "BartModel", "MarianMTModel"},
		Summary:  "encoder-decoder: self_attn with biases and post-LayerNorm; cross-attention (encoder_attn) listed, not extracted",
		Verified: "fixture bart-tiny-random; encoder+decoder stacks on synthetic tensors",
		HF: Names{
			Q: "self_attn.q_proj", K: "self_attn.k_proj", V: "self_attn.v_proj", O: "self_attn.out_proj",
			PostAttnNorm: "self_attn_layer_norm", Cross: "encoder_attn", Other: "encoder_attn_layer_norm",
			Up: "fc1", Down: "fc2", PostFFNNorm: "final_layer_norm",
			Embed: "embed_tokens|shared", PosEmbed: "embed_positions", EmbedNorm: "layernorm_embedding", LMHead: "lm_head",
		},
		Position: PosLearned, Norm: NormLayerNorm, Placement: PostNorm, MLP: MLPPlain, Activation: "gelu", TiedDefault: true,
	},
	{
		Name: "mbart", ModelTypes: []string{"mbart"}, Classes: []string{"MBartForConditionalGeneration"},
		Summary:  "BART with pre-LayerNorm (self_attn_layer_norm before attention)",
		Verified: "rule from modeling_mbart.py (no reference file)",
		HF: Names{
			Q: "self_attn.q_proj", K: "self_attn.k_proj", V: "self_attn.v_proj", O: "self_attn.out_proj",
			AttnNorm: "self_attn_layer_norm", Cross: "encoder_attn", Other: "encoder_attn_layer_norm",
			Up: "fc1", Down: "fc2", FFNNorm: "final_layer_norm",
			Embed: "embed_tokens|shared", PosEmbed: "embed_positions", EmbedNorm: "layernorm_embedding", FinalNorm: "layer_norm", LMHead: "lm_head",
		},
		Position: PosLearned, Norm: NormLayerNorm, MLP: MLPPlain, Activation: "gelu", TiedDefault: true,
	},
	{
		Name: "opt", ModelTypes: []string{"opt"}, Classes: []string{"OPTForCausalLM"},
		Summary:  "q/k/v/out_proj with biases, pre-LayerNorm, learned positions (offset 2)",
		Verified: "rule from modeling_opt.py; independent numpy float64 forward reference on a tiny pre-LayerNorm model (attn/testdata/forward/opt, checked by attn TestForwardModern)",
		HF: Names{
			Q: "self_attn.q_proj", K: "self_attn.k_proj", V: "self_attn.v_proj", O: "self_attn.out_proj",
			AttnNorm: "self_attn_layer_norm", FFNNorm: "final_layer_norm", Up: "fc1", Down: "fc2",
			Embed: "embed_tokens", PosEmbed: "embed_positions", FinalNorm: "final_layer_norm", LMHead: "lm_head",
		},
		Position: PosLearned, Norm: NormLayerNorm, MLP: MLPPlain, Activation: "relu", TiedDefault: true,
		NotModeled: []KeyValue{{"do_layer_norm_before", true}},
	},
	{
		Name: "gptj", ModelTypes: []string{"gptj"}, Classes: []string{"GPTJForCausalLM"}, GGUF: []string{"gptj"},
		Summary:  "q/k/v/out_proj, partial rotary on interleaved pairs (rotary_dim), parallel residual",
		Verified: "rule from modeling_gptj.py; independent numpy float64 forward reference on a tiny model with rotary_dim 4 of 8 (attn/testdata/forward/gptj, checked by attn TestForwardModern); HF only, no GGUF reference",
		HF: Names{
			Q: "attn.q_proj", K: "attn.k_proj", V: "attn.v_proj", O: "attn.out_proj", AttnNorm: "ln_1",
			Up: "mlp.fc_in", Down: "mlp.fc_out", Ignore: "attn.bias|attn.masked_bias",
			Embed: "wte", FinalNorm: "ln_f", LMHead: "lm_head",
		},
		RopeStyle: RopeInterleavedPairs, Norm: NormLayerNorm, MLP: MLPPlain, Activation: "gelu_new", ParallelResidual: true,
	},
	{
		Name: "mpt", ModelTypes: []string{"mpt"}, Classes: []string{"MptForCausalLM"}, GGUF: []string{"mpt"},
		Summary:    "fused Wqkv (q, k, v row blocks), ALiBi when attn_config.alibi",
		Verified:   "rule from modeling_mpt.py (no reference file)",
		Incomplete: "MPT's alibi_bias_max, clip_qkv, qk_ln and softmax_scale are not modeled",
		HF: Names{
			QKV: "attn.Wqkv", O: "attn.out_proj", AttnNorm: "norm_1", FFNNorm: "norm_2",
			Up: "ffn.up_proj", Down: "ffn.down_proj", Embed: "wte", FinalNorm: "norm_f",
		},
		Fused: FusedContig, Position: PosConfigALiBi, Norm: NormLayerNorm, MLP: MLPPlain, Activation: "gelu", TiedDefault: true,
		config: func(c cfg, a *Arch, s *geoSource) {
			s.geo.ALiBi = c.object("attn_config").boolean("alibi", false)
		},
	},
	{
		Name: "baichuan", ModelTypes: []string{"baichuan"}, Classes: []string{"BaichuanForCausalLM", "BaiChuanForCausalLM"}, GGUF: []string{"baichuan"},
		Summary:    "Llama layout with a fused W_pack (q, k, v row blocks)",
		Verified:   "rule from Baichuan's modeling code and llama.cpp's converter (no reference file)",
		Incomplete: "Baichuan 13B uses ALiBi under the same model type; the rerun cannot tell",
		HF:         with(llamaNames(), func(n *Names) { n.Q, n.K, n.V, n.QKV = "", "", "", "self_attn.W_pack" }),
		Fused:      FusedContig, GGUFPermuted: true, Norm: NormRMS, MLP: MLPGated, Activation: "silu",
	},
	{
		Name: "chatglm", ModelTypes: []string{"chatglm"}, Classes: []string{"ChatGLMModel", "ChatGLMForConditionalGeneration"}, GGUF: []string{"chatglm"},
		Summary:    "fused query_key_value (q, k, v row blocks, multi_query_group_num KV heads)",
		Verified:   "rule from ChatGLM2's modeling code (no reference file)",
		Incomplete: "GLM's rotary embedding (half of each head, interleaved pairs) is not verified",
		HF: Names{
			QKV: "self_attention.query_key_value", O: "self_attention.dense", AttnNorm: "input_layernorm", FFNNorm: "post_attention_layernorm",
			GateUp: "mlp.dense_h_to_4h", Down: "mlp.dense_4h_to_h", Ignore: "self_attention.rotary_emb.inv_freq",
			Embed: "embedding.word_embeddings", FinalNorm: "final_layernorm", LMHead: "output_layer",
		},
		Fused: FusedContig, Norm: NormRMS, RopeStyle: RopeInterleavedPairs, RotaryFraction: 0.5, MLP: MLPGated, Activation: "silu",
		config: func(c cfg, a *Arch, s *geoSource) {
			if !c.boolean("multi_query_attention", false) {
				s.geo.NKVHeads, s.hasKV = s.geo.NHeads, true
			}
		},
	},
	llamaVariant("granite", "granite", "granitemoe", "attention_multiplier, embedding_multiplier and residual_multiplier are not modeled"),
	llamaVariant("minicpm", "minicpm", "", "scale_emb and scale_depth are not modeled"),
	llamaVariant("internlm2", "internlm2", "", "InternLM2's fused wqkv layout is not described; only GGUF files are read"),
	llamaVariant("xverse", "xverse", "", "the rerun settings are not verified"),
	llamaVariant("olmo", "olmo", "", "OLMo's non-parametric LayerNorm and clip_qkv are not modeled"),
	llamaVariant("deci", "deci", "", "DeciLM's variable per-layer head counts are not modeled"),
	{
		Name: "gemma", ModelTypes: []string{"gemma"}, Classes: []string{"GemmaForCausalLM"}, GGUF: []string{"gemma"},
		Summary:  "Llama layout with (1 + w) RMSNorms and embeddings × sqrt(d_model), GELU MLP, tied embeddings",
		Verified: "rule from modeling_gemma.py and llama.cpp's converter; tiny model from internal/gen (testdata/arch/gemma, HF and GGUF)",
		HF:       llamaNames(), Norm: NormRMS, NormOffset: 1, EmbedScale: true, MLP: MLPGated, Activation: "gelu_pytorch_tanh", TiedDefault: true,
	},
	{
		Name: "gemma2", ModelTypes: []string{"gemma2"}, Classes: []string{"Gemma2ForCausalLM"}, GGUF: []string{"gemma2"},
		Summary:  "Gemma with norms after attention and MLP, logit softcapping, query_pre_attn_scalar, sliding window on even layers",
		Verified: "rule from modeling_gemma2.py and llama.cpp's converter; tiny model from internal/gen (testdata/arch/gemma2, HF and GGUF)",
		HF:       gemma2Names(), Norm: NormRMS, NormOffset: 1, EmbedScale: true, MLP: MLPGated, Activation: "gelu_pytorch_tanh", TiedDefault: true,
		Scale: ScaleQueryPreAttn, Softcap: true, Sliding: SlidingAlternate, WindowDefault: 4096,
	},
	{
		Name: "gemma3", ModelTypes: []string{"gemma3_text", "gemma3"}, Classes: []string{"Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"}, GGUF: []string{"gemma3"},
		Summary:  "Gemma 2 with per-head (1 + w) q_norm/k_norm, local/global RoPE bases (rope_local_base_freq), sliding_window_pattern or layer_types (text model; gemma3 wrappers read text_config)",
		Verified: "zoo-modern/gemma3 (hf, f32/f16/Q8_0/Q4_K_M GGUFs), fixture gemma3-tiny-mlx-dllm (transformers 4.51)",
		HF:       with(gemma2Names(), func(n *Names) { n.QNorm, n.KNorm = "self_attn.q_norm", "self_attn.k_norm" }),
		Norm:     NormRMS, NormOffset: 1, EmbedScale: true, MLP: MLPGated, Activation: "gelu_pytorch_tanh", TiedDefault: true,
		QKNorm: QKNormPerHead, Scale: ScaleQueryPreAttn, Softcap: true, Sliding: SlidingPattern, SlidingPattern: 6, WindowDefault: 4096,
		LocalRope: true, RopeThetaDefault: 1e6,
		NotModeled: []KeyValue{{"use_bidirectional_attention", false}},
	},
	{
		Name: "olmo2", ModelTypes: []string{"olmo2"}, Classes: []string{"Olmo2ForCausalLM"}, GGUF: []string{"olmo2"},
		Summary:  "q_norm/k_norm over the whole projection, norms after attention and MLP (none before attention)",
		Verified: "zoo-modern/olmo2 (hf, f32/f16/Q8_0/Q4_K_M GGUFs)",
		HF: with(llamaNames(), func(n *Names) {
			n.QNorm, n.KNorm = "self_attn.q_norm", "self_attn.k_norm"
			n.AttnNorm, n.FFNNorm = "", ""
			n.PostAttnNorm, n.PostFFNNorm = "post_attention_layernorm", "post_feedforward_layernorm"
		}),
		Norm: NormRMS, Placement: SubPostNorm, QKNorm: QKNormWhole, MLP: MLPGated, Activation: "silu",
	},
	{
		Name: "gpt_oss", ModelTypes: []string{"gpt_oss"}, Classes: []string{"GptOssForCausalLM"}, GGUF: []string{"gpt-oss"},
		Summary:  "q/k/v/o with biases, per-head attention sinks, alternating sliding/full layers, YaRN; mixture of experts listed, not analysed",
		Verified: "zoo-modern/gpt_oss (hf, f32/f16/Q8_0/Q4_K_M GGUFs)",
		HF: with(llamaNames(), func(n *Names) {
			n.Sinks = "self_attn.sinks"
			n.Gate, n.Up, n.Down = "", "", ""
			n.Router = "mlp.router"
			n.Experts = "mlp.experts.gate_up_proj|mlp.experts.gate_up_proj_bias|mlp.experts.down_proj|mlp.experts.down_proj_bias|" +
				"mlp.experts.gate_up_proj_blocks|mlp.experts.gate_up_proj_scales|mlp.experts.down_proj_blocks|mlp.experts.down_proj_scales"
		}),
		Norm: NormRMS, Sinks: true, Sliding: SlidingAlternate, WindowDefault: 128, MLP: MLPMoE, Activation: "swiglu (clamped)", RopeThetaDefault: 150000,
	},
	{
		Name: "deepseek", ModelTypes: []string{"deepseek_v2", "deepseek_v3"}, Classes: []string{"DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM"}, GGUF: []string{"deepseek2"},
		Summary:  "multi-head latent attention (q_a/q_b, kv_a_proj_with_mqa/kv_b; effective per-head Q, K, V from the factors), RoPE on interleaved pairs of qk_rope_head_dim, YaRN mscale; experts listed, not analysed (DeepSeek V2, V3, R1)",
		Verified: "zoo-modern/deepseek_v3 (hf, f32/f16/Q8_0/Q4_K_M GGUFs); V2's q_proj form on a tiny model from internal/gen (testdata/arch/deepseek_v2)",
		HF: with(llamaNames(), func(n *Names) {
			n.K, n.V = "", ""
			n.QA, n.QANorm, n.QB = "self_attn.q_a_proj", "self_attn.q_a_layernorm", "self_attn.q_b_proj"
			n.KVA, n.KVANorm, n.KVB = "self_attn.kv_a_proj_with_mqa", "self_attn.kv_a_layernorm", "self_attn.kv_b_proj"
			n.Router = "mlp.gate|mlp.gate.e_score_correction_bias"
			n.Experts = "mlp.experts.N.gate_proj|mlp.experts.N.up_proj|mlp.experts.N.down_proj"
			n.Shared = "mlp.shared_experts.gate_proj|mlp.shared_experts.up_proj|mlp.shared_experts.down_proj"
		}),
		Norm: NormRMS, MLA: true, RopeStyle: RopeInterleavedPairs, Scale: ScaleMLA, MLP: MLPMoE, Activation: "silu",
		config: func(c cfg, a *Arch, s *geoSource) {
			// V3's rope_interleave (default true) de-interleaves before
			// rotate_half: pairs (2i, 2i+1); false rotates halves. V2 always
			// rotates interleaved pairs (complex multiplication).
			if c.str("model_type") == "deepseek_v3" && !c.boolean("rope_interleave", true) {
				s.geo.RopeStyle = RopeHalfSplit
			}
		},
	},
	{
		Name: "llama4", ModelTypes: []string{"llama4_text", "llama4"}, Classes: []string{"Llama4ForCausalLM", "Llama4ForConditionalGeneration"}, GGUF: []string{"llama4"},
		Summary:  "text model: RoPE on interleaved pairs with chunked attention, NoPE layers (no_rope_layers) with full attention and query temperature tuning, L2 Q/K norm on RoPE layers; experts listed, not analysed",
		Verified: "rule from modeling_llama4.py and llama.cpp's converter; tiny model from internal/gen (testdata/arch/llama4, HF and GGUF)",
		HF: with(llamaNames(), func(n *Names) {
			n.Gate, n.Up, n.Down = "feed_forward.gate_proj", "feed_forward.up_proj", "feed_forward.down_proj"
			n.Router = "feed_forward.router"
			n.Experts = "feed_forward.experts.gate_up_proj|feed_forward.experts.down_proj"
			n.Shared = "feed_forward.shared_expert.gate_proj|feed_forward.shared_expert.up_proj|feed_forward.shared_expert.down_proj"
		}),
		Norm: NormRMS, QKNorm: QKNormL2, QKNormSwitch: "use_qk_norm", QKNormRoPEOnly: true, NoPE: true, Chunked: true,
		RopeStyle: RopeInterleavedPairs, RopeThetaDefault: 500000, MLP: MLPMoE, Activation: "silu",
	},
}

// llamaVariant is an entry kept for the facts extraction needs (llama.cpp
// permutes their Q/K rows like Llama's) whose other settings qkv does not
// model.
func llamaVariant(name, modelType, ggufAlso, incomplete string) *Arch {
	a := llamaEntry
	a.Name, a.ModelTypes, a.Classes, a.GGUF = name, []string{modelType}, nil, []string{modelType}
	if ggufAlso != "" {
		a.ModelTypes = append(a.ModelTypes, ggufAlso)
		a.GGUF = append(a.GGUF, ggufAlso)
	}
	a.Summary = "Llama layout; GGUF Q/K rows un-permuted as llama.cpp's converter permuted them"
	a.Verified = "llama.cpp's converter (permutation only; no reference file)"
	a.Incomplete = incomplete
	return &a
}

// falconConfig applies Hugging Face Falcon's rules: the fused layout and the
// KV head count follow new_decoder_architecture and multi_query, and ALiBi
// replaces RoPE when alibi is set.
func falconConfig(c cfg, a *Arch, s *geoSource) {
	mt := c.str("model_type")
	newArch := c.boolean("new_decoder_architecture", mt == "RefinedWeb") // RW-40B's own type
	switch {
	case newArch:
		a.Fused = FusedGrouped
	case c.boolean("multi_query", true):
		a.Fused = FusedContig // [q heads; k; v] with one KV head
	default:
		a.Fused = FusedPerHead
	}
	// Hugging Face reads num_kv_heads only for the new architecture or
	// without multi-query; multi-query has one KV head whatever it says.
	if newArch || !c.boolean("multi_query", true) {
		s.geo.NKVHeads, _, s.hasKV = c.int("num_kv_heads", "n_head_kv")
	} else {
		s.geo.NKVHeads, s.hasKV = 1, true
	}
	s.geo.ALiBi = c.boolean("alibi", false)
}
