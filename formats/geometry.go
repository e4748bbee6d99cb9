package formats

// NormKind is the kind of normalisation applied before attention.
type NormKind string

const (
	NormNone      NormKind = "none"
	NormRMS       NormKind = "rmsnorm"
	NormLayerNorm NormKind = "layernorm"
)

// RoPE row orders, as recorded in reports: the layout a matrix's Q/K rows are in.
const (
	RowOrderHF          = "half-split"  // Hugging Face rotate_half: pairs (i, i+rot/2)
	RowOrderInterleaved = "interleaved" // GGUF/Meta: pairs (2i, 2i+1)
	// RowOrderNativePairs: the model itself rotates pairs (2i, 2i+1) (GPT-J,
	// DeepSeek, Llama 4): its Hugging Face rows are reported as stored.
	RowOrderNativePairs = "native pairs (2i, 2i+1)"
)

// Geometry is a model's attention geometry, read from config.json or GGUF
// metadata (or given on the command line).
type Geometry struct {
	Arch       string `json:"arch"`
	DModel     int    `json:"d_model"`
	NLayers    int    `json:"n_layers"`
	NHeads     int    `json:"n_heads"`
	NKVHeads   int    `json:"n_kv_heads"`
	HeadDim    int    `json:"head_dim"`
	VocabSize  int    `json:"vocab_size,omitempty"`
	Causal     bool   `json:"causal"`
	RotaryDims int    `json:"rotary_dims"` // 0: no RoPE
	// RopeTheta is the RoPE base frequency (0 when there is no RoPE).
	RopeTheta float64 `json:"rope_theta,omitempty"`
	ALiBi     bool    `json:"alibi"`
	// PositionEmbeddings: learned absolute position embeddings (GPT-2, BERT).
	PositionEmbeddings bool     `json:"position_embeddings"`
	Norm               NormKind `json:"norm"`     // the pre-attention norm
	NormEps            float64  `json:"norm_eps"` // its epsilon
	// PreNorm is false for post-norm models (BERT): no norm before attention.
	PreNorm bool `json:"pre_norm"`

	// The fields below (see attention.go) are zero for models whose
	// attention is the plain softmax(q·kᵀ/√head_dim)·v above; they are
	// omitted from JSON when zero.

	// VHeadDim is the head dimension of V and W_O's columns when it differs
	// from HeadDim (MLA); 0 means HeadDim.
	VHeadDim int `json:"v_head_dim,omitempty"`
	// RopeStyle is RopeHalfSplit ("" means the same) or RopeInterleavedPairs.
	RopeStyle string `json:"rope_style,omitempty"`
	// RopeScaling applies to full-attention layers (and to sliding layers
	// unless LocalRopeTheta is set); nil: none.
	RopeScaling *RopeScaling `json:"rope_scaling,omitempty"`
	// LocalRopeTheta > 0: sliding-window layers use this base and
	// LocalRopeScaling instead of RopeTheta/RopeScaling (Gemma 2/3).
	LocalRopeTheta   float64      `json:"local_rope_theta,omitempty"`
	LocalRopeScaling *RopeScaling `json:"local_rope_scaling,omitempty"`
	// LayerTypes lists each layer's type (LayerFullAttention or
	// LayerSlidingAttention); nil: every layer is full attention.
	LayerTypes    []string `json:"layer_types,omitempty"`
	SlidingWindow int      `json:"sliding_window,omitempty"`
	// NoRoPELayers lists layers without rotary embedding (Llama 4 NoPE).
	NoRoPELayers []int `json:"no_rope_layers,omitempty"`
	// QKNorm and QKNormEps: the norm on queries and keys (Layer.QNorm/KNorm).
	QKNorm    QKNorm  `json:"qk_norm,omitempty"`
	QKNormEps float64 `json:"qk_norm_eps,omitempty"`
	// QKNormRoPEOnly: the Q/K norm applies only on layers with RoPE (Llama
	// 4); ForLayer says per layer.
	QKNormRoPEOnly bool `json:"qk_norm_rope_only,omitempty"`
	// AttentionChunk is the chunk length of LayerChunkedAttention layers.
	AttentionChunk int `json:"attention_chunk_size,omitempty"`
	// QueryTemperature (Llama 4) scales queries by position on NoRoPELayers.
	QueryTemperature *QueryTemperature `json:"query_temperature,omitempty"`
	// NormWeightOffset is 1 for Gemma's (1 + w) RMSNorms (already folded
	// into every norm weight a Layer holds), 0 otherwise.
	NormWeightOffset float64 `json:"norm_weight_offset,omitempty"`
	// ScoreScale multiplies q·kᵀ; 0 means 1/sqrt(head_dim). ScoreScaleRule
	// says where it comes from ("query_pre_attn_scalar^-0.5", ...).
	ScoreScale     float64 `json:"score_scale,omitempty"`
	ScoreScaleRule string  `json:"score_scale_rule,omitempty"`
	// Softcap > 0: scores become Softcap·tanh(scores/Softcap) before the
	// mask (Gemma 2's attn_logit_softcapping).
	Softcap float64 `json:"attn_logit_softcapping,omitempty"`
	// Sinks: each head has a learned sink logit (Layer.Sinks) that joins the
	// softmax denominator (GPT-OSS).
	Sinks bool `json:"sinks,omitempty"`
	// EmbeddingScale multiplies token embeddings (Gemma: sqrt(d_model)); 0: 1.
	EmbeddingScale float64 `json:"embedding_scale,omitempty"`
	// MLA is set for multi-head latent attention.
	MLA *MLA `json:"mla,omitempty"`
	// Unsupported lists what changes attention and qkv does not model:
	// attn refuses to run, layers and inspect warn.
	Unsupported []Unsupported `json:"unsupported,omitempty"`
	// Assumptions lists settings the file does not carry that qkv filled
	// in (a GGUF without query_pre_attn_scalar): attn runs and states
	// them, layers and inspect show them.
	Assumptions []Unsupported `json:"assumptions,omitempty"`
}

// GroupSize is the number of query heads that share one KV head.
func (g Geometry) GroupSize() int {
	if g.NKVHeads <= 0 {
		return 1
	}
	return g.NHeads / g.NKVHeads
}

// KVHead returns the KV head (group) that query head h reads.
func (g Geometry) KVHead(h int) int { return h / g.GroupSize() }

// Layer holds one attention layer's decoded weights in the convention of
// DESIGN.md: W_Q is [n_heads*head_dim, d_model] with Q/K rows in Hugging Face
// order; W_K and W_V have n_kv_heads blocks of head_dim rows; W_O is
// [d_model, n_heads*head_dim] and head h is its columns [h*hd, (h+1)*hd).
// Biases and norm weights are nil when the model has none.
type Layer struct {
	Index      int
	Q, K, V, O Matrix
	QBias      []float32
	KBias      []float32
	VBias      []float32
	OBias      []float32
	// NormWeight and NormBias belong to the layer's pre-attention norm.
	NormWeight []float32
	NormBias   []float32
	// QNorm and KNorm are the Q/K norm weights (Geometry.QKNorm says how
	// they apply), nil when there are none.
	QNorm, KNorm []float32
	// Sinks holds one sink logit per query head (Geometry.Sinks), or nil.
	Sinks []float32
	// MLA holds the stored factors of a latent-attention layer, or nil.
	MLA *MLALayer
	// LoRA holds, for an adapter, the factors of each projection's update
	// ΔW = Scale·B·A (nil for a model's layers, and no entry for a
	// projection the adapter does not update). LoadLayer also forms ΔW in
	// Q, K, V, O; LoadLayerFactors leaves them empty.
	LoRA map[Projection]*LoRAFactors
}

// Matrix returns the named projection.
func (l *Layer) Matrix(p Projection) Matrix {
	switch p {
	case ProjQ:
		return l.Q
	case ProjK:
		return l.K
	case ProjV:
		return l.V
	}
	return l.O
}

// Bias returns the named projection's bias, nil when there is none.
func (l *Layer) Bias(p Projection) []float32 {
	switch p {
	case ProjQ:
		return l.QBias
	case ProjK:
		return l.KBias
	case ProjV:
		return l.VBias
	}
	return l.OBias
}
