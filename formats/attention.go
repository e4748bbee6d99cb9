package formats

// This file is the contract between finding a model (the architecture
// registry fills these fields) and rerunning its attention (package attn
// reads them). Every setting that changes what a layer's attention computes
// is stated here; a setting qkv reads but does not model goes into
// Geometry.Unsupported, so that attn refuses and layers/inspect warn rather
// than print a confident wrong answer.
//
// Conventions:
//   - Norm weights handed out in a Layer (NormWeight, QNorm, KNorm, MLA's
//     latent norms) are the effective multipliers: for Gemma's (1 + w) norms
//     the 1 is added on extraction from Hugging Face files (llama.cpp's
//     converter already stores 1 + w), and Geometry.NormWeightOffset says so.
//   - Q/K rows are in Hugging Face order. RopeStyle says which dimensions
//     the Hugging Face model rotates together in that order.

// QKNorm is the normalisation applied to queries and keys after the
// projection and before RoPE.
type QKNorm string

const (
	// QKNormNone: no Q/K norm (the zero value).
	QKNormNone QKNorm = ""
	// QKNormPerHead: RMSNorm over each head's head_dim values with one
	// weight vector [head_dim] shared by all heads (Qwen3, Gemma 3).
	QKNormPerHead QKNorm = "per_head_rms"
	// QKNormWhole: RMSNorm over the whole projection output of a token
	// (one mean over all heads), weight [n_heads·head_dim] for Q and
	// [n_kv_heads·head_dim] for K (OLMo 2).
	QKNormWhole QKNorm = "whole_rms"
	// QKNormL2: L2 normalisation of each head, no weight (Llama 4):
	// x·rsqrt(mean(x²) + eps).
	QKNormL2 QKNorm = "l2"
)

// RoPE styles: which dimensions of a head (in Hugging Face row order) rotate
// together.
const (
	// RopeHalfSplit: rotate_half, pairs (i, i + rotary_dims/2) (Llama,
	// Qwen, Gemma, GPT-NeoX ...). The zero value means this style.
	RopeHalfSplit = "half-split"
	// RopeInterleavedPairs: pairs (2i, 2i+1) in the Hugging Face rows
	// themselves (GPT-J rotate_every_two, DeepSeek's rope_interleave).
	RopeInterleavedPairs = "interleaved-pairs"
)

// Rope scaling types, as config.json's rope_type names them.
const (
	RopeScalingLinear   = "linear"
	RopeScalingDynamic  = "dynamic"
	RopeScalingYaRN     = "yarn"
	RopeScalingLongRoPE = "longrope"
	RopeScalingLlama3   = "llama3"
	// RopeScalingFreqFactors: inv_freq[i] is divided by FreqFactors[i]
	// (llama.cpp's rope_freqs tensor, how GGUF files carry Llama 3.1's
	// scaling).
	RopeScalingFreqFactors = "freq_factors"
)

// RopeScaling is a rope_scaling / rope_parameters block (transformers'
// ROPE_INIT_FUNCTIONS), with the parameters each type reads. Zero values are
// "not given": the rerun applies transformers' defaults and reports them.
type RopeScaling struct {
	Type   string  `json:"type"`
	Factor float64 `json:"factor,omitempty"`
	// OriginalMaxPositions is original_max_position_embeddings (llama3,
	// yarn, longrope, dynamic).
	OriginalMaxPositions int `json:"original_max_position_embeddings,omitempty"`
	// MaxPositions is the model's max_position_embeddings (dynamic, longrope).
	MaxPositions int `json:"max_position_embeddings,omitempty"`
	// Llama 3.1.
	LowFreqFactor  float64 `json:"low_freq_factor,omitempty"`
	HighFreqFactor float64 `json:"high_freq_factor,omitempty"`
	// YaRN (and DeepSeek's variant).
	BetaFast        float64 `json:"beta_fast,omitempty"`
	BetaSlow        float64 `json:"beta_slow,omitempty"`
	AttentionFactor float64 `json:"attention_factor,omitempty"` // cos/sin multiplier; 0: derived
	MScale          float64 `json:"mscale,omitempty"`
	MScaleAllDim    float64 `json:"mscale_all_dim,omitempty"`
	// Truncate is YaRN's truncate (nil: not given, transformers' default true).
	Truncate *bool `json:"truncate,omitempty"`
	// LongRoPE.
	ShortFactor []float64 `json:"short_factor,omitempty"`
	LongFactor  []float64 `json:"long_factor,omitempty"`
	// FreqFactors (RopeScalingFreqFactors): one divisor per rotary frequency.
	FreqFactors []float64 `json:"freq_factors,omitempty"`
}

// QueryTemperature is Llama 4's attention temperature tuning: on layers
// without RoPE, queries at position p are multiplied by
// log(floor((p + 1) / FloorScale) + 1) · AttnScale + 1 (exactly 1 for
// p + 1 < FloorScale).
type QueryTemperature struct {
	FloorScale float64 `json:"floor_scale"`
	AttnScale  float64 `json:"attn_scale"`
}

// MLA is the geometry of multi-head latent attention (DeepSeek V2/V3). With
// MLA, Geometry.HeadDim is qk_nope_head_dim + qk_rope_head_dim (the score
// dimension), Geometry.VHeadDim is v_head_dim, n_kv_heads = n_heads, and a
// Layer's Q, K, V are the effective per-head matrices defined in
// ../shared/reference/zoo-modern/deepseek_v3/README.md (K's head h is
// [k_nope_h; the shared k_rope rows]).
type MLA struct {
	QLoraRank     int `json:"q_lora_rank"` // 0: q_proj is stored directly
	KVLoraRank    int `json:"kv_lora_rank"`
	QKNopeHeadDim int `json:"qk_nope_head_dim"`
	QKRopeHeadDim int `json:"qk_rope_head_dim"`
	VHeadDim      int `json:"v_head_dim"`
}

// Unsupported names one thing in a checkpoint that changes attention and
// that qkv does not model.
type Unsupported struct {
	// Kind is "config_key", "metadata_key" or "tensor".
	Kind string `json:"kind"`
	// Name is the key or tensor name (for a value: "rope_scaling.rope_type").
	Name string `json:"name"`
	// Message is one sentence for people: what it is and what qkv does not do.
	Message string `json:"message"`
}

// Layer types, as transformers' layer_types names them.
const (
	LayerFullAttention    = "full_attention"
	LayerSlidingAttention = "sliding_attention"
	// LayerChunkedAttention (Llama 4): query i sees keys j ≤ i in its own
	// chunk, floor(j / Chunk) == floor(i / Chunk).
	LayerChunkedAttention = "chunked_attention"
)

// LayerAttention is the attention of one layer where it differs between
// layers: the mask window and the rotary embedding.
type LayerAttention struct {
	// Type is LayerFullAttention, LayerSlidingAttention or
	// LayerChunkedAttention.
	Type string `json:"type"`
	// Window (sliding layers): query i sees keys j with i − Window < j ≤ i.
	Window int `json:"window,omitempty"`
	// Chunk (chunked layers): the chunk length.
	Chunk int `json:"chunk,omitempty"`
	// QKNorm is the layer's Q/K norm (Geometry.QKNorm, except on Llama 4's
	// NoPE layers, which have none).
	QKNorm QKNorm `json:"qk_norm,omitempty"`
	// Temperature is set on layers whose queries are scaled by position
	// (Llama 4's NoPE layers).
	Temperature *QueryTemperature `json:"query_temperature,omitempty"`
	// RoPE is false for a layer without rotary embedding (Llama 4's NoPE
	// layers, or a model without RoPE).
	RoPE        bool         `json:"rope"`
	RopeTheta   float64      `json:"rope_theta,omitempty"`
	RopeScaling *RopeScaling `json:"rope_scaling,omitempty"`
}

// ForLayer returns the attention settings of layer i (an index into the
// model's layers as reported; out-of-range layers get the global settings).
func (g Geometry) ForLayer(i int) LayerAttention {
	la := LayerAttention{Type: LayerFullAttention, RoPE: g.RotaryDims > 0, RopeTheta: g.RopeTheta, RopeScaling: g.RopeScaling, QKNorm: g.QKNorm}
	if i >= 0 && i < len(g.LayerTypes) {
		switch g.LayerTypes[i] {
		case LayerSlidingAttention:
			la.Type, la.Window = LayerSlidingAttention, g.SlidingWindow
			if g.LocalRopeTheta > 0 {
				la.RopeTheta, la.RopeScaling = g.LocalRopeTheta, g.LocalRopeScaling
			}
		case LayerChunkedAttention:
			la.Type, la.Chunk = LayerChunkedAttention, g.AttentionChunk
		}
	}
	for _, n := range g.NoRoPELayers {
		if n == i {
			la.RoPE, la.RopeTheta, la.RopeScaling = false, 0, nil
			la.Temperature = g.QueryTemperature
			if g.QKNormRoPEOnly {
				la.QKNorm = QKNormNone
			}
		}
	}
	if !la.RoPE {
		la.RopeTheta, la.RopeScaling = 0, nil
	}
	return la
}

// ValueHeadDim returns the head dimension of V and of W_O's column blocks.
func (g Geometry) ValueHeadDim() int {
	if g.VHeadDim > 0 {
		return g.VHeadDim
	}
	return g.HeadDim
}

// MLALayer holds the stored factors of one latent-attention layer, in the
// DESIGN.md orientation (rows = output features). Layer.Q/K/V hold the
// effective matrices built from them; attn computes from the factors.
type MLALayer struct {
	QA      Matrix    // q_a_proj [q_lora_rank, d_model]; empty when QLoraRank = 0
	QANorm  []float32 // q_a_layernorm (effective multiplier)
	QB      Matrix    // q_b_proj [n_heads·(nope+rope), q_lora_rank], or q_proj [.., d_model] when QLoraRank = 0
	KVA     Matrix    // kv_a_proj_with_mqa [kv_lora_rank + rope, d_model]
	KVANorm []float32 // kv_a_layernorm (effective multiplier)
	KVB     Matrix    // kv_b_proj [n_heads·(nope+v), kv_lora_rank]
}
