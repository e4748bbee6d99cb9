package check

import (
	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
)

// Facts are what one pass over a checkpoint found, before any rule says
// what is a problem: the checkpoint's outline (whether it opened, its
// model's geometry, which tensor each layer reads), each tensor's value
// counts, and the statistics of the attention matrices. Rules are
// evaluated against facts alone, so a sharded run's parts — each with the
// facts of its own tensors and layers — merge into the facts of the whole
// run, and from them into the same result.
type Facts struct {
	Path string `json:"path"`
	// Open says why the checkpoint could not be opened; Find why its
	// attention layers could not be found.
	Open *ErrFact `json:"open_error,omitempty"`
	Find *ErrFact `json:"find_error,omitempty"`
	// Model is the model's outline, when its layers were found.
	Model *ModelFacts `json:"model,omitempty"`
	// TensorCount is the number of tensors of the checkpoint; Tensors the
	// facts of those this run counted (all of them, but for a part), in
	// the checkpoint's order.
	TensorCount int           `json:"tensor_count"`
	Tensors     []TensorFacts `json:"tensors"`
	// HeadsUnknown and HeadsNoFit say why per-head statistics were not
	// computed (head counts unknown, or not fitting the matrices).
	HeadsUnknown string   `json:"heads_unknown,omitempty"`
	HeadsNoFit   *ErrFact `json:"heads_no_fit,omitempty"`
	// Stats are the attention matrices' statistics; StatsErr says why
	// there are none (a layer that could not be loaded).
	Stats    *inspect.Report `json:"stats,omitempty"`
	StatsErr *ErrFact        `json:"stats_error,omitempty"`
}

// ErrFact is an error as a problem states it: the tensor it names and
// its message (file names relative to the checkpoint).
type ErrFact struct {
	Tensor  string `json:"tensor,omitempty"`
	Message string `json:"message"`
	// NoAttention: the checkpoint has no attention layers at all.
	NoAttention bool `json:"no_attention,omitempty"`
}

// ModelFacts outline the model the attention checks look at.
type ModelFacts struct {
	Layers  int `json:"layers"`
	Heads   int `json:"heads"`
	KVHeads int `json:"kv_heads"`
	HeadDim int `json:"head_dim"`
	DModel  int `json:"d_model"`
	// Unmodelled are what the checkpoint holds that qkv does not model
	// (Geometry.Unsupported: a model type outside the registry, a config
	// key, a tensor): check warns of each, as layers and inspect do.
	Unmodelled []formats.Unsupported `json:"unmodelled,omitempty"`
	// LayerTensors name, per layer, the stored tensor of each projection
	// and every tensor the layer reads (so that a problem of one of them
	// carries the layer).
	LayerTensors []LayerTensors `json:"layer_tensors"`
}

// LayerTensors are one layer's tensors.
type LayerTensors struct {
	Index int `json:"index"`
	// Proj maps q, k, v, o to the stored tensor a problem of the matrix
	// names (a LoRA update's B factor).
	Proj    map[string]string `json:"proj"`
	Tensors []string          `json:"tensors"`
}

// TensorFacts are one tensor's value counts.
type TensorFacts struct {
	Index     int     `json:"index"` // in the checkpoint's tensors
	Name      string  `json:"name"`
	DType     string  `json:"dtype"`
	Shape     []int64 `json:"shape"`
	Elements  int64   `json:"elements"`
	RowLen    int64   `json:"row_len"`
	BlockSize int     `json:"block_size"`
	Decodable bool    `json:"decodable"`
	Quantized bool    `json:"quantized"`
	// Scanned: the values were decoded and counted; Err says why they
	// could not be.
	Scanned      bool   `json:"scanned"`
	Err          string `json:"error,omitempty"`
	NaN          int64  `json:"nan"`
	Inf          int64  `json:"inf"`
	ZeroRows     int64  `json:"zero_rows"`
	FirstZeroRow int64  `json:"first_zero_row"`
	AllZero      bool   `json:"all_zero"`
	// BadScales counts blocks of a quantized tensor whose scale is NaN or
	// Inf; ScaleErr says why they could not be counted.
	BadScales int64  `json:"bad_scales,omitempty"`
	ScaleErr  string `json:"scale_error,omitempty"`
	// viaLayer: counted while its layer was analysed (not by the scan).
	viaLayer bool
}
