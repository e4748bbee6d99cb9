package formats

// Projection names one of a layer's attention matrices.
type Projection string

const (
	ProjQ Projection = "q"
	ProjK Projection = "k"
	ProjV Projection = "v"
	ProjO Projection = "o"
)

// Projections lists the four projections in their canonical order.
var Projections = []Projection{ProjQ, ProjK, ProjV, ProjO}

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
