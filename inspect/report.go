package inspect

import (
	"io"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/inspect/esd"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/termui"
)

// Schema names the JSON document's format.
const Schema = "qkv.inspect/v1"

// Float is a float64 that is written to JSON as null when it is NaN or
// ±Inf (termui.Float, the one NaN-as-null encoding); undefined statistics
// are held as NaN.
type Float = termui.Float

// Flags that a Stats value may carry.
const (
	FlagNaN             = "nan"              // the block holds NaN values
	FlagInf             = "inf"              // the block holds ±Inf values
	FlagSpectrumSkipped = "spectrum_skipped" // singular values not computed (non-finite input)
	FlagSingular        = "singular"         // sv[last] = 0: condition is null
	FlagEstimated       = "estimated"        // fast mode: spectral stats from Lanczos
	// FlagTailApprox: the singular values below the rank threshold came from
	// the Gram route and are approximate (condition is null); see the
	// package documentation.
	FlagTailApprox = "sv_tail_approximate"
	// FlagESDZero: with Options.ESD, every singular value of the matrix is
	// zero, so it has no heavy-tail metrics (no esd object).
	FlagESDZero = "esd_zero_matrix"
)

// Stats are the statistics of one matrix or head block (see the package
// documentation for their definitions). Undefined values are NaN (null in
// JSON) and the reason is in Flags.
type Stats struct {
	Shape     [2]int `json:"shape"`
	Fro       Float  `json:"fro"`
	MaxAbs    Float  `json:"max_abs"`
	Mean      Float  `json:"mean"`
	Std       Float  `json:"std"`
	NaNCount  int    `json:"nan_count"`
	InfCount  int    `json:"inf_count"`
	ZeroCount int    `json:"zero_count"`
	// SV is every singular value, descending; in JSON only with Options.Spectrum.
	SV           []float64 `json:"sv,omitempty"`
	SpectralNorm Float     `json:"spectral_norm"`
	// SpectralNormBounds brackets SpectralNorm in fast mode.
	SpectralNormBounds *[2]Float `json:"spectral_norm_bounds,omitempty"`
	Rank               *int      `json:"rank"`
	EffectiveRank      Float     `json:"effective_rank"`
	// EffectiveRankBounds brackets EffectiveRank in fast mode.
	EffectiveRankBounds *[2]Float `json:"effective_rank_bounds,omitempty"`
	StableRank          Float     `json:"stable_rank"`
	Condition           Float     `json:"condition"`
	// Method says how the singular values were found: "gram" (eigenvalues of
	// the float64 Gram matrix), "svd" (direct), "lanczos" (fast mode) or "".
	Method string   `json:"method,omitempty"`
	Flags  []string `json:"flags,omitempty"`

	// spark is a short log-scale summary of the spectrum for rendering; it is
	// kept even when SV is dropped from the report.
	spark []float64
}

// Block names the rows or columns of a matrix that a head occupies.
type Block struct {
	Rows    *[2]int `json:"rows,omitempty"`
	Columns *[2]int `json:"columns,omitempty"`
}

// HeadStats are the statistics of one head block.
type HeadStats struct {
	Head int `json:"head"`
	// KVHead is the K/V group the head reads or is: h / (n_heads /
	// n_kv_heads) for a query head (q, o), the head itself for a block of
	// k or v. Report.WriteJSON fills it from the geometry; nil when the
	// head counts are not known.
	KVHead *int  `json:"kv_head,omitempty"`
	Block  Block `json:"block"`
	Stats
}

// HeadPair is the most similar pair of head blocks of one matrix.
type HeadPair struct {
	A      int   `json:"a"`
	B      int   `json:"b"`
	Cosine Float `json:"cosine"`
}

// MatrixReport holds one projection's statistics and, with Options.Heads,
// its head blocks.
type MatrixReport struct {
	Stats
	// RankBound, for latent attention's effective q, k and v, is the rank
	// the latent dimension allows (formats.ProjReport.RankBound); 0 otherwise.
	RankBound int `json:"rank_bound,omitempty"`
	// ESD holds the heavy-tail metrics of the whole matrix (Options.ESD;
	// see the package documentation); nil without the option, for a
	// matrix whose spectrum was not computed, and for an all-zero one
	// (flag "esd_zero_matrix").
	ESD         *esd.Result `json:"esd,omitempty"`
	Heads       []HeadStats `json:"heads,omitempty"`
	MostSimilar *HeadPair   `json:"most_similar_heads,omitempty"`
}

// FactorReport is one stored factor of a latent-attention layer (q_a, q_b,
// kv_a, kv_b: the matrices its effective q, k and v are built from).
type FactorReport struct {
	Name string `json:"name"`
	Stats
}

// CircuitStats summarise a d_model × d_model circuit of one query head.
type CircuitStats struct {
	SpectralNorm  Float `json:"spectral_norm"`
	EffectiveRank Float `json:"effective_rank"`
}

// Circuit holds query head Head's QK and OV circuits with KV group KVHead.
type Circuit struct {
	Head   int          `json:"head"`
	KVHead int          `json:"kv_head"`
	QK     CircuitStats `json:"qk"`
	OV     CircuitStats `json:"ov"`
}

// LayerReport is one layer's result.
type LayerReport struct {
	Index    int           `json:"index"`
	Q        *MatrixReport `json:"q"`
	K        *MatrixReport `json:"k"`
	V        *MatrixReport `json:"v"`
	O        *MatrixReport `json:"o"`
	Circuits []Circuit     `json:"circuits,omitempty"`
	// Factors are a latent-attention layer's stored factors (q, k and v are
	// then the effective matrices); nil for other layers.
	Factors []FactorReport `json:"factors,omitempty"`
}

// Matrix returns the named projection's report (nil when absent).
func (l *LayerReport) Matrix(p formats.Projection) *MatrixReport {
	switch p {
	case formats.ProjQ:
		return l.Q
	case formats.ProjK:
		return l.K
	case formats.ProjV:
		return l.V
	case formats.ProjO:
		return l.O
	}
	return nil
}

// Adapter describes the LoRA adapter a report is of: formats.AdapterInfo,
// with its JSON names as `qkv layers` writes them (kind, base_model, rank,
// alpha, scale, scale_rule, base_config), and the ranks and scales the
// report's updates have when they are not all one (PEFT's rank_pattern and
// alpha_pattern give modules their own; AdapterInfo's are the first
// module's).
type Adapter struct {
	formats.AdapterInfo
	// Ranks and Scales are every distinct rank and scale of the updates in
	// the report, ascending, when there is more than one; nil otherwise.
	Ranks  []int     `json:"ranks,omitempty"`
	Scales []float64 `json:"scales,omitempty"`
}

// Finding kinds.
const (
	KindNaN            = "nan"
	KindInf            = "inf"
	KindDeadHead       = "dead_head"
	KindRankCollapsed  = "rank_collapsed"
	KindDuplicateHeads = "duplicate_heads"
	KindOutlierNorm    = "outlier_norm"
	// KindAlphaLow and KindAlphaHigh (Options.ESD): a matrix's fitted
	// power-law exponent α is below Thresholds.AlphaLow (WeightWatcher's
	// "over-trained") or above Thresholds.AlphaHigh ("under-trained").
	KindAlphaLow  = "alpha_low"
	KindAlphaHigh = "alpha_high"
)

// Finding is one problem found in the weights.
type Finding struct {
	Kind   string `json:"kind"`
	Layer  int    `json:"layer"`
	Matrix string `json:"matrix"`
	// Head is nil for whole-matrix findings.
	Head *int `json:"head,omitempty"`
	// OtherHead is the second head of a duplicate_heads finding.
	OtherHead *int   `json:"other_head,omitempty"`
	Value     Float  `json:"value"`
	Threshold Float  `json:"threshold"`
	Message   string `json:"message"`
}

// Settings records the options a report was made with.
type Settings struct {
	Mode     string `json:"mode"` // "full" or "fast"
	Heads    bool   `json:"heads"`
	Spectrum bool   `json:"spectrum"`
	// ESD: every matrix has its heavy-tail metrics (Options.ESD).
	ESD bool `json:"esd,omitempty"`
	// RankTol is the absolute rank tolerance, null for the default rule.
	RankTol Float      `json:"rank_tol"`
	Thresh  Thresholds `json:"thresholds"`
}

// Report is the whole result of Run, or with Options.Part one part of a
// sharded run (Schema is then SchemaPartial, Partial says which part, and
// Findings hold only those that depend on one layer).
type Report struct {
	Schema string `json:"schema"`
	// Source, QKV and IO are the provenance blocks of every qkv report:
	// the checkpoint (formats.SourceInfo), the qkv build, and for a remote
	// input what reading it cost. The command fills them; nil leaves them
	// out.
	Source  *formats.SourceInfo `json:"source,omitempty"`
	QKV     *buildinfo.Info     `json:"qkv,omitempty"`
	IO      *source.IO          `json:"io,omitempty"`
	Partial *Partial            `json:"partial,omitempty"`
	Model   formats.Geometry    `json:"model"`
	// Adapter is set when the checkpoint is a LoRA adapter: every matrix
	// of the report is then an update ΔW = scale·B·A, not a weight of the
	// model. Nil (left out of JSON) for a model.
	Adapter  *Adapter      `json:"adapter,omitempty"`
	Settings Settings      `json:"settings"`
	Layers   []LayerReport `json:"layers"`
	Findings []Finding     `json:"findings"`
}

// WriteJSON writes the report as one indented JSON document. A partial
// report carries its spectra's sparkline summaries (Partial.Sparks), which
// a whole report keeps out of its JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	if r.Partial != nil {
		r.Partial.Sparks = collectSparks(r.Layers)
	}
	r.fillKVHeads()
	return termui.WriteJSON(w, r)
}

// fillKVHeads sets every head block's KVHead from the geometry.
func (r *Report) fillKVHeads() {
	h, kv := r.Model.NHeads, r.Model.NKVHeads
	if h <= 0 || kv <= 0 || h%kv != 0 {
		return
	}
	for i := range r.Layers {
		l := &r.Layers[i]
		for _, p := range formats.Projections {
			m := l.Matrix(p)
			if m == nil {
				continue
			}
			for k := range m.Heads {
				g := m.Heads[k].Head
				if p == formats.ProjQ || p == formats.ProjO {
					g /= h / kv
				}
				m.Heads[k].KVHead = &g
			}
		}
	}
}

// DropHeads removes the per-head statistics, circuits and most-similar pairs
// from the report while keeping the findings derived from them, so a report
// computed with Options.Heads can be shown without its per-head detail.
// Options.DropHeads gives the same report without holding the detail of
// every layer until the end.
func (r *Report) DropHeads() {
	r.Settings.Heads = false
	for i := range r.Layers {
		r.Layers[i].dropHeads()
	}
}

func (l *LayerReport) dropHeads() {
	l.Circuits = nil
	for _, m := range []*MatrixReport{l.Q, l.K, l.V, l.O} {
		if m != nil {
			m.Heads, m.MostSimilar = nil, nil
		}
	}
}
