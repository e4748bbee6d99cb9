package htmlreport

// Data is everything a report shows. Every string in it may come from a
// checkpoint (tensor names, architecture names, token strings) and is
// treated as untrusted: Render escapes it and makes control and bidi
// characters visible.
//
// Numbers that are not known are NaN (math.NaN()); counts that are not
// known are −1. FromInspect fills everything an inspect.Report holds (ESD
// fits when it was made with them); the optional parts (composition
// scores, attention patterns) are added by the caller.
type Data struct {
	// Title is the page title and heading; "" gives "qkv report: <Source>".
	Title string
	// Source names the checkpoint (its path as given).
	Source string
	// Generator names the program that wrote the report ("qkv v0.3.0");
	// "" leaves it out. There is no timestamp: the output is deterministic.
	Generator string
	Model     Model
	// Notes are caveats shown under the model summary (settings, estimated
	// values, unsupported attention features).
	Notes    []string
	Findings []Finding
	// Layers hold each analysed layer's matrices, in the order shown.
	Layers []Layer
	// Heads are layer × head heatmaps (norms, effective ranks, circuits).
	Heads []HeadMap
	// Composition holds head-composition scores, one entry per variant
	// ("raw", "ln_folded"); nil or empty leaves the section out.
	Composition []Composition
	// Attention holds attention patterns for one input; nil leaves the
	// section out.
	Attention *Attention
}

// Model is the summary of the model's geometry.
type Model struct {
	Arch     string
	DModel   int
	NLayers  int
	NHeads   int
	NKVHeads int
	HeadDim  int
	// Facts are further rows of the summary table, in order.
	Facts []Fact
}

// Fact is one name/value row of a table.
type Fact struct{ Name, Value string }

// Finding is one problem found in the weights.
type Finding struct {
	Kind string // "dead_head", "outlier_norm", "alpha_low", …
	// Layer is the layer index, −1 when the finding is not about one layer.
	Layer int
	// Matrix is "q", "k", "v", "o" or "" (whole layer or model).
	Matrix string
	// Head is the head index, −1 for a whole-matrix finding.
	Head    int
	Message string
}

// Layer is one analysed layer.
type Layer struct {
	Index int
	// Matrices in display order (q, k, v, o); absent projections left out.
	Matrices []Matrix
}

// Matrix is one projection of one layer.
type Matrix struct {
	Name  string // "q", "k", "v" or "o"
	Shape [2]int // [rows, cols]
	// SV holds the singular values, descending; nil when not computed.
	// The ESD plot uses λ = σ² of these values.
	SV []float64
	// Whole-matrix statistics for the layer table (NaN: not known).
	Fro, SpectralNorm, EffectiveRank, StableRank float64
	Rank                                         int // −1: not known
	// Flags are shown beside the statistics ("estimated", "nan", …).
	Flags []string
	// ESD is the power-law fit of the eigenvalues λ = σ²; nil: not fitted.
	ESD *ESD
}

// ESD is a WeightWatcher-style power-law fit of the empirical spectral
// density of λ = σ².
type ESD struct {
	// Status is "success" or "failed"; a failed fit draws no line and shows
	// no α.
	Status string
	// Reason says why a fit failed (shown in the caption); optional.
	Reason string
	Alpha  float64 // fitted exponent α of p(λ) ∝ λ^−α on [XMin, XMax]
	XMin   float64 // λ where the fitted tail starts
	XMax   float64 // largest λ of the tail (λ_max)
	D      float64 // Kolmogorov–Smirnov distance of the fit
	Sigma  float64 // standard error of α; NaN: not known
	// AlphaWeighted is α̂ = α·log10 λ_max; NaN: not known.
	AlphaWeighted float64
	NumSpikes     int    // eigenvalues in the tail (λ ≥ XMin); −1: not known
	Warning       string // "over-trained", "under-trained" or ""
}

// HeadMap is one layer × head heatmap.
type HeadMap struct {
	// Group collects maps under one heading ("Norms", "Effective ranks", …).
	Group string
	Title string // "W_Q heads: Frobenius norm"
	// Caption says what a cell is; optional.
	Caption string
	// ColName names the columns: "head" or "KV head".
	ColName string
	// Layers[i] is the layer index of row i.
	Layers []int
	// Values[i][h] is row i's value for head h; NaN: no value. Rows may
	// have different lengths (missing cells are drawn as no value).
	Values [][]float64
}

// Composition holds the Q-, K- and V-composition scores of one variant,
// each indexed [l1][h1][l2][h2] over layers × heads × layers × heads;
// entries with l2 ≤ l1 are not drawn.
type Composition struct {
	Name    string // "raw" or "ln_folded"
	Q, K, V [][][][]float64
	// Layers[l] is the layer index of position l; nil means 0, 1, 2, ….
	Layers []int
	// Baseline is the mean score of random matrices of this size
	// (≈ 1/√d_model); NaN: not known.
	Baseline float64
}

// Attention holds attention patterns of one input.
type Attention struct {
	// Input describes the input ("tokens 1,5,9", "random T=16 seed 1").
	Input string
	// Tokens labels the T positions; nil shows position numbers.
	Tokens []string
	Layers []AttentionLayer
}

// AttentionLayer holds one layer's probabilities, as attn.Result.Probs:
// Probs[h][i][j] is head h's probability of query i attending to key j.
type AttentionLayer struct {
	Index int
	Probs [][][]float32
}
