package attn

import (
	"errors"
	"fmt"
	"math"

	"github.com/qkvdev/qkv/formats"
)

// Schema is the "schema" field of the JSON document.
const Schema = "qkv.attn/v1"

// MaxLogitDefinition says what HeadMetrics.MaxLogit measures.
const MaxLogitDefinition = "max over unmasked (i, j) of q_i·k_j·scale (after the logit softcap where the model has one), plus the ALiBi bias slope_h·(j−i) where the model uses ALiBi, before softmax; a learned sink logit is not included"

// ALiBiBiasDefinition says how the ALiBi bias is added. Hugging Face BLOOM
// adds slope_h·j; the per-row shift −slope_h·i does not change the softmax,
// and keeps the logits (and so MaxLogit) independent of T.
const ALiBiBiasDefinition = "scores[h,i,j] += slope_h*(j-i) before the causal mask (softmax-equivalent to Hugging Face BLOOM's slope_h*j)"

// SinksDefinition says how learned attention sinks enter the softmax.
const SinksDefinition = "per head h a learned logit sinks[h] joins every row's softmax as an extra column with no value vector (after scaling and masking, before the max subtraction) and is dropped afterwards: the probabilities of a row sum to 1 − the sink's share"

// SoftcapDefinition says how attention logits are capped.
const SoftcapDefinition = "scores = softcap·tanh(scores/softcap) after scaling, before the mask (Gemma 2's attn_logit_softcapping)"

// mlaLatentNormEps is the epsilon of MLA's q_a_layernorm and
// kv_a_layernorm: Hugging Face constructs them with DeepseekV3RMSNorm's
// default, not with rms_norm_eps.
const mlaLatentNormEps = 1e-6

// causalBlock is the row block of the causal score and context products:
// smaller blocks skip more of the masked triangle but repack more.
const causalBlock = 48

// maxCells bounds T·T·n_heads (the probabilities Run keeps, 4 bytes each)
// and T·d of a random input, so a bad request cannot allocate without limit.
const maxCells = 1 << 28

// Options changes how Run computes a layer.
type Options struct {
	// Causal overrides the geometry's causal mask when non-nil.
	Causal *bool
	// NoNorm skips the pre-attention norm: x is fed to the projections as is.
	NoNorm bool
	// Input describes where x came from; it is copied into Settings.
	Input InputInfo
	// Probs, when its capacity suffices, holds the result's probabilities
	// instead of a new allocation: a caller that writes each layer and
	// forgets it passes the previous result's (Result.ProbsBuffer), so that
	// memory holds one layer's probabilities, not two.
	Probs []float32
}

// InputInfo records how the input x was made, for reports.
type InputInfo struct {
	// Kind is "random", "user" or "tokens".
	Kind string `json:"kind"`
	// Generator names the random generator for Kind "random".
	Generator string `json:"generator,omitempty"`
	// Seed is set for Kind "random" (a pointer so that seed 0 is written).
	Seed *uint64 `json:"seed,omitempty"`
	// Scale multiplies the standard normal draws for Kind "random".
	Scale    float64  `json:"scale,omitempty"`
	TokenIDs []int    `json:"token_ids,omitempty"`
	Tokens   []string `json:"tokens,omitempty"`
}

// RoPESettings records the rotary embedding applied to q and k.
type RoPESettings struct {
	RotaryDims int     `json:"rotary_dims"`
	Theta      float64 `json:"theta"`
	// Style is formats.RopeHalfSplit (rotate_half: pairs (i, i + rot/2)) or
	// formats.RopeInterleavedPairs (pairs (2i, 2i+1)); Pairs says it in words.
	Style string `json:"style"`
	Pairs string `json:"pairs"`
	// Dims says which dimensions of a head rotate.
	Dims string `json:"dims"`
	// RowOrder is the pairing of the rows as the matrices hold them:
	// formats.RowOrderHF for Style half-split, formats.RowOrderInterleaved
	// for interleaved pairs.
	RowOrder  string `json:"row_order"`
	Positions string `json:"positions"`
	// InvFreq is the formula; InvFreqValues the float32 values used, one per
	// rotary pair.
	InvFreq       string    `json:"inv_freq"`
	InvFreqValues []float64 `json:"inv_freq_values"`
	// AttentionFactor multiplies cos and sin (YaRN, LongRoPE), 1 otherwise.
	AttentionFactor float64 `json:"attention_factor"`
	// Scaling is the rope scaling as applied, null for plain RoPE.
	Scaling *ScalingSettings `json:"scaling"`
}

// QKNormSettings records the norm applied to queries and keys.
type QKNormSettings struct {
	Kind    formats.QKNorm `json:"kind"`
	Eps     float64        `json:"eps"`
	Over    string         `json:"over"`
	Where   string         `json:"where"`
	Formula string         `json:"formula"`
}

// MLASettings records a multi-head latent attention computation.
type MLASettings struct {
	QLoraRank     int     `json:"q_lora_rank"`
	KVLoraRank    int     `json:"kv_lora_rank"`
	QKNopeHeadDim int     `json:"qk_nope_head_dim"`
	QKRopeHeadDim int     `json:"qk_rope_head_dim"`
	VHeadDim      int     `json:"v_head_dim"`
	LatentNormEps float64 `json:"latent_norm_eps"`
	Computation   string  `json:"computation"`
}

// LayerAttention is the part of the settings that can differ between layers:
// the mask and the rotary embedding.
type LayerAttention struct {
	LayerType     string        `json:"layer_type"`
	SlidingWindow int           `json:"sliding_window,omitempty"`
	Mask          string        `json:"mask"`
	RoPE          *RoPESettings `json:"rope"`
}

// Settings records every choice Run made, for the JSON document.
type Settings struct {
	Arch     string `json:"arch"`
	T        int    `json:"seq_len"`
	DModel   int    `json:"d_model"`
	NHeads   int    `json:"n_heads"`
	NKVHeads int    `json:"n_kv_heads"`
	HeadDim  int    `json:"head_dim"`
	// VHeadDim is the head dimension of v and of W_O's column blocks.
	VHeadDim int `json:"v_head_dim"`
	// KVHeadForHead[h] is the KV head query head h reads: h / (n_heads /
	// n_kv_heads).
	KVHeadForHead []int   `json:"kv_head_for_head"`
	Causal        bool    `json:"causal"`
	Scale         float64 `json:"scale"`
	ScaleFormula  string  `json:"scale_formula"`
	PreNorm       string  `json:"pre_norm"` // "none", "rmsnorm" or "layernorm"
	NormEps       float64 `json:"norm_eps,omitempty"`
	// NormWeightOffset is 1 for Gemma's (1 + w) norms: the weights used
	// already include it.
	NormWeightOffset float64         `json:"norm_weight_offset"`
	QKNorm           *QKNormSettings `json:"qk_norm"`
	// The layer's mask and rotary embedding (see LayerAttention). In a
	// Document they stay here when every layer shares them; otherwise
	// PerLayer says so and each layer carries its own.
	LayerType     string        `json:"layer_type,omitempty"`
	SlidingWindow int           `json:"sliding_window,omitempty"`
	Mask          string        `json:"mask,omitempty"`
	RoPE          *RoPESettings `json:"rope"`
	PerLayer      string        `json:"per_layer,omitempty"`
	ALiBiSlopes   []float64     `json:"alibi_slopes,omitempty"`
	ALiBiBias     string        `json:"alibi_bias,omitempty"`
	// Softcap is attn_logit_softcapping (0: none), see SoftcapDefinition.
	Softcap        float64 `json:"attn_logit_softcapping"`
	SoftcapFormula string  `json:"softcap_formula,omitempty"`
	// Sinks is true when each head has a learned sink logit (SinksDefinition).
	Sinks        bool   `json:"sinks"`
	SinksFormula string `json:"sinks_formula,omitempty"`
	// EmbeddingScale multiplies token embeddings when the input is built from
	// tokens (Gemma: sqrt(d_model)); 1 when the model does not scale them.
	EmbeddingScale float64      `json:"embedding_scale"`
	MLA            *MLASettings `json:"mla,omitempty"`
	MaxLogit       string       `json:"max_logit"`
	Precision      string       `json:"precision"`
	Input          InputInfo    `json:"input"`
}

// attention returns the per-layer part of s.
func (s Settings) attention() LayerAttention {
	return LayerAttention{LayerType: s.LayerType, SlidingWindow: s.SlidingWindow, Mask: s.Mask, RoPE: s.RoPE}
}

// HeadMetrics summarises one head's attention pattern. Means are over query
// positions i (rows); masked positions have probability zero.
type HeadMetrics struct {
	Head int `json:"head"`
	// KVHead is the KV head the head reads (Settings.KVHeadForHead[Head]).
	KVHead int `json:"kv_head"`
	// Entropy is the mean over rows of −Σ_j p_ij·ln p_ij, in nats (with
	// learned sinks, the sink's share is a term of the sum).
	Entropy float64 `json:"entropy"`
	// MaxProb is the mean over rows of max_j p_ij.
	MaxProb float64 `json:"max_prob"`
	// SinkMass is the mean over rows of p_i0 (attention to position 0).
	SinkMass float64 `json:"sink_mass"`
	// PrevToken is the mean over rows i ≥ 1 of p_i,i−1 (NaN when T < 2).
	PrevToken float64 `json:"prev_token"`
	// Diagonal is the mean over rows of p_ii.
	Diagonal float64 `json:"diagonal"`
	// MaxLogit is the largest pre-softmax logit; see MaxLogitDefinition.
	MaxLogit float64 `json:"max_logit"`
	// LearnedSink is, for models with learned sinks, the mean over rows of
	// 1 − Σ_j p_ij: the probability the head's sink logit absorbs. nil for
	// models without sinks.
	LearnedSink *float64 `json:"learned_sink_mass,omitempty"`
	// Induction is the induction score (InductionDefinition), set only for
	// a repeated random sequence (InductionScores).
	Induction *float64 `json:"induction_score,omitempty"`
}

// Result is one layer's rerun.
type Result struct {
	Layer    int
	Settings Settings
	// Probs[h][i][j] is head h's probability of query i attending to key j.
	// All rows share one backing array.
	Probs [][][]float32
	// Out is concat_h(ctx_h)·W_Oᵀ + b_O, [T, d_model].
	Out   formats.Matrix
	Heads []HeadMetrics
	// NonFiniteProbs and NonFiniteOut count NaN and ±Inf values (from NaN or
	// Inf in the weights or the input); the metrics of a head with any are NaN.
	NonFiniteProbs int
	NonFiniteOut   int
	probs          []float32 // Probs' backing array
}

// ProbsBuffer returns the memory holding the result's probabilities, for
// Options.Probs of the next run once the result is no longer used.
func (r *Result) ProbsBuffer() []float32 { return r.probs }

// ALiBiSlopes returns BLOOM's ALiBi slopes for n heads: with
// closest = 2^floor(log2 n), slopes_h = (2^(−8/closest))^(h+1) for
// h < closest, followed by (2^(−4/closest))^(1, 3, 5, …) for the remaining
// n − closest heads.
func ALiBiSlopes(n int) []float64 {
	if n <= 0 {
		return nil
	}
	closest := 1
	for closest*2 <= n {
		closest *= 2
	}
	out := make([]float64, 0, n)
	base := math.Pow(2, -8/float64(closest))
	for i := 1; i <= closest; i++ {
		out = append(out, math.Pow(base, float64(i)))
	}
	extra := math.Pow(2, -4/float64(closest))
	for i := 0; i < n-closest; i++ {
		out = append(out, math.Pow(extra, float64(2*i+1)))
	}
	return out
}

// shape is one matrix's expected shape, for check.
type shape struct {
	name       string
	m          formats.Matrix
	rows, cols int
}

// vec is one vector's expected length (nil allowed unless required).
type vec struct {
	name     string
	v        []float32
	n        int
	required bool
}

func checkShapes(layer int, shapes []shape, vecs []vec) error {
	for _, s := range shapes {
		if s.m.Rows != s.rows || s.m.Cols != s.cols || len(s.m.Data) != s.rows*s.cols {
			return fmt.Errorf("attn: layer %d: %s is [%d, %d] with %d values, want [%d, %d]",
				layer, s.name, s.m.Rows, s.m.Cols, len(s.m.Data), s.rows, s.cols)
		}
	}
	for _, b := range vecs {
		if b.v == nil && b.required {
			return fmt.Errorf("attn: layer %d: %s is missing (want %d values)", layer, b.name, b.n)
		}
		if b.v != nil && len(b.v) != b.n {
			return fmt.Errorf("attn: layer %d: %s has %d values, want %d", layer, b.name, len(b.v), b.n)
		}
	}
	return nil
}

func finiteNonNeg(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }

// check validates the geometry, the layer's shapes and x against each other.
func check(g formats.Geometry, l *formats.Layer, x formats.Matrix, useNorm bool) error {
	if g.DModel <= 0 || g.NHeads <= 0 || g.HeadDim <= 0 || g.VHeadDim < 0 {
		return fmt.Errorf("attn: geometry needs positive d_model, n_heads and head_dim (got %d, %d, %d)", g.DModel, g.NHeads, g.HeadDim)
	}
	kv := g.NKVHeads
	if kv <= 0 || g.NHeads%kv != 0 {
		return fmt.Errorf("attn: n_heads %d is not a multiple of n_kv_heads %d", g.NHeads, kv)
	}
	if g.RotaryDims < 0 || g.RotaryDims > g.HeadDim || g.RotaryDims%2 != 0 {
		return fmt.Errorf("attn: rotary_dims %d must be even and at most head_dim %d", g.RotaryDims, g.HeadDim)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"score_scale", g.ScoreScale}, {"attn_logit_softcapping", g.Softcap}, {"qk_norm_eps", g.QKNormEps},
		{"norm_eps", g.NormEps}, {"embedding_scale", g.EmbeddingScale}} {
		if !finiteNonNeg(f.v) {
			return fmt.Errorf("attn: %s %g must be finite and not negative", f.name, f.v)
		}
	}
	if l == nil {
		return errors.New("attn: no layer")
	}
	la := g.ForLayer(l.Index)
	if la.Type == formats.LayerSlidingAttention && la.Window <= 0 {
		return fmt.Errorf("attn: layer %d is a sliding-window layer, but the window is %d", l.Index, la.Window)
	}
	if la.RoPE && !(la.RopeTheta > 0) {
		return fmt.Errorf("attn: layer %d: rope_theta %g must be positive", l.Index, la.RopeTheta)
	}
	hd, vhd := g.HeadDim, g.ValueHeadDim()
	qd, kvd, vd := g.NHeads*hd, kv*hd, kv*vhd
	shapes := []shape{{"W_O", l.O, g.DModel, g.NHeads * vhd}, {"x", x, x.Rows, g.DModel}}
	vecs := []vec{{"b_O", l.OBias, g.DModel, false}}
	if g.MLA == nil {
		if l.MLA != nil {
			return fmt.Errorf("attn: layer %d has latent-attention factors, but the geometry has no MLA", l.Index)
		}
		shapes = append(shapes, shape{"W_Q", l.Q, qd, g.DModel}, shape{"W_K", l.K, kvd, g.DModel}, shape{"W_V", l.V, vd, g.DModel})
		vecs = append(vecs, vec{"b_Q", l.QBias, qd, false}, vec{"b_K", l.KBias, kvd, false}, vec{"b_V", l.VBias, vd, false})
	} else if err := checkMLA(g, l); err != nil {
		return err
	}
	switch g.QKNorm {
	case formats.QKNormPerHead:
		vecs = append(vecs, vec{"q_norm weight", l.QNorm, hd, true}, vec{"k_norm weight", l.KNorm, hd, true})
	case formats.QKNormWhole:
		vecs = append(vecs, vec{"q_norm weight", l.QNorm, qd, true}, vec{"k_norm weight", l.KNorm, kvd, true})
	default:
		if l.QNorm != nil || l.KNorm != nil {
			return fmt.Errorf("attn: layer %d has Q/K norm weights, but the geometry's Q/K norm is %q", l.Index, g.QKNorm)
		}
	}
	if g.Sinks {
		vecs = append(vecs, vec{"sinks", l.Sinks, g.NHeads, true})
	} else if l.Sinks != nil {
		return fmt.Errorf("attn: layer %d has sink logits, but the geometry has no sinks", l.Index)
	}
	if useNorm {
		vecs = append(vecs, vec{"pre-norm weight", l.NormWeight, g.DModel, true}, vec{"norm bias", l.NormBias, g.DModel, false})
	}
	if err := checkShapes(l.Index, shapes, vecs); err != nil {
		return err
	}
	if x.Rows <= 0 {
		return errors.New("attn: the input has no positions (T = 0)")
	}
	if uint64(x.Rows)*uint64(x.Rows)*uint64(g.NHeads) > maxCells {
		return fmt.Errorf("attn: T = %d with %d heads needs more than %d probabilities (1 GiB); use a shorter input", x.Rows, g.NHeads, maxCells)
	}
	return nil
}

// scoreScale returns the factor on q·kᵀ and its formula: the geometry's
// ScoreScale, or 1/sqrt(head_dim), times DeepSeek's mscale² when MLA runs
// with a YaRN mscale_all_dim (Hugging Face DeepseekV3Attention).
func scoreScale(g formats.Geometry) (float64, string) {
	if g.ScoreScale > 0 {
		rule := g.ScoreScaleRule
		if rule == "" {
			rule = "given by the model's configuration"
		}
		return g.ScoreScale, rule
	}
	s, rule := 1/math.Sqrt(float64(g.HeadDim)), "1/sqrt(head_dim)"
	if sc := g.RopeScaling; g.MLA != nil && sc != nil && sc.Type == formats.RopeScalingYaRN && sc.MScaleAllDim != 0 {
		m := yarnMScale(sc.Factor, sc.MScaleAllDim)
		s *= m * m
		rule = fmt.Sprintf("(qk_nope_head_dim + qk_rope_head_dim)^-0.5 · mscale², mscale = 0.1·mscale_all_dim·ln(factor) + 1 = %g (DeepSeek YaRN)", m)
	}
	return s, rule
}

// ropeDescription fills a RoPESettings for freqs over rot dims.
func ropeDescription(g formats.Geometry, la formats.LayerAttention, rot, T int, f RopeFrequencies) *RoPESettings {
	rs := &RoPESettings{RotaryDims: rot, Theta: la.RopeTheta, Style: formats.RopeHalfSplit,
		Pairs: "(i, i + rotary_dims/2): Hugging Face rotate_half", Dims: "the first rotary_dims of each head",
		RowOrder: formats.RowOrderHF, Positions: fmt.Sprintf("0..%d", T-1),
		InvFreq:         "1/theta^(arange(0, rotary_dims, 2)/rotary_dims), in float32",
		AttentionFactor: f.AttentionFactor, Scaling: f.Scaling}
	if g.RopeStyle == formats.RopeInterleavedPairs {
		rs.Style, rs.Pairs = formats.RopeInterleavedPairs, "(2i, 2i+1) in the Hugging Face rows (GPT-J rotate_every_two, DeepSeek rope_interleave)"
		rs.RowOrder = formats.RowOrderInterleaved
	}
	if g.MLA != nil {
		rs.Dims = "the last qk_rope_head_dim dims of each query head and the one rope key shared by all heads (rows kv_lora_rank.. of kv_a_proj_with_mqa)"
	}
	if f.Scaling != nil {
		rs.InvFreq = fmt.Sprintf("rope_scaling %s (see scaling.formula), in float32", f.Scaling.Type)
	}
	for _, v := range f.InvFreq {
		rs.InvFreqValues = append(rs.InvFreqValues, float64(v))
	}
	return rs
}

// settings fills the Settings for a run of layer la.
func settings(g formats.Geometry, la formats.LayerAttention, T int, causal, useNorm bool, in InputInfo) Settings {
	scale, rule := scoreScale(g)
	s := Settings{
		Arch: g.Arch, T: T, DModel: g.DModel, NHeads: g.NHeads, NKVHeads: g.NKVHeads,
		HeadDim: g.HeadDim, VHeadDim: g.ValueHeadDim(), KVHeadForHead: kvHeads(g.NHeads, g.NKVHeads), Causal: causal,
		Scale: float64(float32(scale)), ScaleFormula: rule,
		PreNorm:          string(formats.NormNone),
		NormWeightOffset: g.NormWeightOffset,
		LayerType:        la.Type,
		Softcap:          g.Softcap,
		Sinks:            g.Sinks,
		EmbeddingScale:   1,
		MaxLogit:         MaxLogitDefinition,
		Precision:        "float32 values; matrix products accumulate in float32, norms and softmax sums in float64",
		Input:            in,
	}
	if g.EmbeddingScale > 0 {
		s.EmbeddingScale = g.EmbeddingScale
	}
	if useNorm {
		s.PreNorm = string(g.Norm)
		s.NormEps = g.NormEps
	}
	switch {
	case la.Type == formats.LayerSlidingAttention && causal:
		s.SlidingWindow = la.Window
		s.Mask = fmt.Sprintf("causal sliding window: query i sees keys j with i − %d < j ≤ i", la.Window)
	case la.Type == formats.LayerSlidingAttention:
		s.SlidingWindow = la.Window
		s.Mask = fmt.Sprintf("bidirectional sliding window: query i sees keys j with |i − j| < %d", la.Window)
	case causal:
		s.Mask = "causal: query i sees keys j ≤ i"
	default:
		s.Mask = "none: every query sees every key"
	}
	if g.QKNorm != formats.QKNormNone {
		qs := &QKNormSettings{Kind: g.QKNorm, Eps: g.QKNormEps, Where: "after the projection (and bias), before RoPE",
			Formula: "x·rsqrt(mean(x²) + eps)·w"}
		switch g.QKNorm {
		case formats.QKNormPerHead:
			qs.Over = "each head's head_dim values, one weight [head_dim] shared by all heads"
		case formats.QKNormWhole:
			qs.Over = "the whole projection output of a token (n_heads·head_dim for q, n_kv_heads·head_dim for k)"
		case formats.QKNormL2:
			qs.Over = "each head's head_dim values, no weight"
			qs.Formula = "x·rsqrt(mean(x²) + eps)"
			qs.Where = "after RoPE, on layers with RoPE only (Hugging Face Llama4TextL2Norm)"
		}
		s.QKNorm = qs
	}
	if g.Softcap > 0 {
		s.SoftcapFormula = SoftcapDefinition
	}
	if g.Sinks {
		s.SinksFormula = SinksDefinition
	}
	if g.ALiBi {
		s.ALiBiSlopes = ALiBiSlopes(g.NHeads)
		s.ALiBiBias = ALiBiBiasDefinition
	}
	if m := g.MLA; m != nil {
		s.MLA = &MLASettings{QLoraRank: m.QLoraRank, KVLoraRank: m.KVLoraRank, QKNopeHeadDim: m.QKNopeHeadDim,
			QKRopeHeadDim: m.QKRopeHeadDim, VHeadDim: m.VHeadDim, LatentNormEps: mlaLatentNormEps,
			Computation: "exact, from the stored factors (Hugging Face DeepseekV3Attention, eager): " +
				"q = q_b(RMSNorm(q_a(x))) (q_proj(x) when q_lora_rank = 0); c = kv_a_proj_with_mqa(x); " +
				"[k_nope; v] = kv_b(RMSNorm(c[:kv_lora_rank])); k_rope = c[kv_lora_rank:] shared by all heads; " +
				"k_h = [k_nope_h; rope(k_rope)], q_h = [q_nope_h; rope(q_rope_h)]"}
	}
	return s
}

// rowRule is how one head turns dot products into probabilities.
type rowRule struct {
	scale   float32
	softcap float32 // 0: none
	alibi   bool
	slope   float32
	causal  bool
	window  int // 0: none
	sink    float32
	hasSink bool
}

// rowRange returns the keys [lo, hi) that query i may see.
func (r rowRule) rowRange(i, T int) (lo, hi int) {
	hi = T
	if r.causal {
		hi = i + 1
	}
	if r.window > 0 {
		lo = max(0, i-r.window+1)
		if !r.causal {
			hi = min(T, i+r.window)
		}
	}
	return lo, hi
}

// Run reruns attention for layer l on x [T, d_model], as the Hugging Face
// implementation computes it in float32 (eager attention):
//
//	xn = norm(x)                      (pre-norm, unless NoNorm or the model has none)
//	q = xn·W_Qᵀ + b_Q, k, v likewise  (MLA: from the latent factors, see MLASettings)
//	q, k = QKNorm(q), QKNorm(k)       (per head or whole projection, before RoPE)
//	RoPE on q and k                   (the layer's theta and scaling; half-split or interleaved pairs)
//	s_h = q_h·k_gᵀ·scale              (g = h / (n_heads/n_kv_heads); scale = ScoreScale or 1/sqrt(head_dim))
//	s_h = softcap·tanh(s_h/softcap)   (where the model caps logits)
//	+ ALiBi; mask: causal, sliding window (i − W < j ≤ i) on sliding layers
//	p_h = softmax(s_h) per row        (with a learned sink logit as an extra column where the model has sinks)
//	out = concat_h(p_h·v_g)·W_Oᵀ + b_O
//
// The norm is RMSNorm x·rsqrt(mean(x²)+eps)·w or LayerNorm
// (x−mean)/sqrt(var+eps)·w + b, with the layer's NormWeight/NormBias (the
// effective multipliers: Gemma's 1 + w) and the geometry's NormEps. It is
// applied when g.PreNorm is set and g.Norm is not "none". n_kv_heads = 0
// means n_heads. ALiBi adds slope_h·(j−i) (see ALiBiBiasDefinition).
//
// A geometry with settings Run does not implement (g.Unsupported, or a value
// it does not know) is refused with an *UnsupportedError (see
// CheckSupported). Run returns an error, never panics, on inconsistent shapes.
func Run(g formats.Geometry, l *formats.Layer, x formats.Matrix, opt Options) (*Result, error) {
	if err := CheckSupported(g); err != nil {
		return nil, err
	}
	if g.NKVHeads == 0 {
		g.NKVHeads = g.NHeads // as Geometry.GroupSize reads it: no grouping
	}
	useNorm := usesNorm(g, opt)
	if useNorm && g.Norm != formats.NormRMS && g.Norm != formats.NormLayerNorm {
		return nil, fmt.Errorf("attn: unknown norm kind %q", g.Norm)
	}
	if err := check(g, l, x, useNorm); err != nil {
		return nil, err
	}
	causal := causalFor(g, opt)
	T, hd, vhd, nh, nkv := x.Rows, g.HeadDim, g.ValueHeadDim(), g.NHeads, g.NKVHeads
	la := g.ForLayer(l.Index)
	st, f, err := layerSettings(g, l.Index, T, causal, useNorm, opt.Input)
	if err != nil {
		return nil, err
	}
	res := &Result{Layer: l.Index, Settings: st}

	// The rotary embedding of this layer.
	rot := ropeDims(g)
	var cos, sin []float32
	if f != nil {
		cos, sin = ropeTable(T, f.InvFreq, f.AttentionFactor)
	}
	interleaved := g.RopeStyle == formats.RopeInterleavedPairs

	xn := x
	if useNorm {
		xn = formats.NewMatrix(T, g.DModel)
		if g.Norm == formats.NormRMS {
			rmsNorm(xn.Data, x.Data, l.NormWeight, g.DModel, g.NormEps)
		} else {
			layerNorm(xn.Data, x.Data, l.NormWeight, l.NormBias, g.DModel, g.NormEps)
		}
	}

	var q, k, v formats.Matrix
	if g.MLA != nil {
		q, k, v = mlaProject(g, l, xn, cos, sin, interleaved)
	} else {
		xp := packMatrixA(xn.Data, xn.Cols, T, g.DModel, true)
		q = linearPacked(xp, l.Q, l.QBias)
		k = linearPacked(xp, l.K, l.KBias)
		v = linearPacked(xp, l.V, l.VBias)
		switch g.QKNorm {
		case formats.QKNormPerHead:
			rmsNorm(q.Data, q.Data, l.QNorm, hd, g.QKNormEps)
			rmsNorm(k.Data, k.Data, l.KNorm, hd, g.QKNormEps)
		case formats.QKNormWhole:
			rmsNorm(q.Data, q.Data, l.QNorm, nh*hd, g.QKNormEps)
			rmsNorm(k.Data, k.Data, l.KNorm, nkv*hd, g.QKNormEps)
		}
		if cos != nil {
			applyRotary(q.Data, T, q.Cols, nh, hd, 0, rot, interleaved, cos, sin)
			applyRotary(k.Data, T, k.Cols, nkv, hd, 0, rot, interleaved, cos, sin)
			if g.QKNorm == formats.QKNormL2 {
				rmsNorm(q.Data, q.Data, nil, hd, g.QKNormEps)
				rmsNorm(k.Data, k.Data, nil, hd, g.QKNormEps)
			}
		}
	}

	rule := rowRule{scale: float32(res.Settings.Scale), softcap: float32(g.Softcap), alibi: g.ALiBi, causal: causal, hasSink: g.Sinks}
	if la.Type == formats.LayerSlidingAttention {
		rule.window = la.Window
	}
	var slopes []float64
	if g.ALiBi {
		slopes = ALiBiSlopes(nh)
	}
	qd, kvd, vd := q.Cols, k.Cols, v.Cols
	probs := opt.Probs
	if cap(probs) >= nh*T*T {
		probs = probs[:nh*T*T]
	} else {
		probs = make([]float32, nh*T*T)
	}
	res.probs = probs
	ctx := formats.NewMatrix(T, nh*vhd)
	res.Heads = make([]HeadMetrics, nh)
	badProbs := make([]int, nh)
	group := nh / nkv
	// Each KV group's k (as op(B) = kᵀ) and v are packed once for all the
	// query heads that read them.
	kp, vp := make([]packedB, nkv), make([]packedB, nkv)
	parallelFor(nkv, func(kg int) {
		kp[kg] = packMatrixB(k.Data[kg*hd:], kvd, true, T, hd)
		vp[kg] = packMatrixB(v.Data[kg*vhd:], vd, false, vhd, T)
	}, true)
	// Causal rows need only keys j ≤ i: blocks of rows [i0, i1) compute
	// columns [0, i1) of the scores and use depth [0, i1) of p·v.
	rb := T
	if causal {
		rb = causalBlock
	}
	parallelFor(nh, func(h int) {
		kg := h / group
		p := probs[h*T*T : (h+1)*T*T]
		// scores = q_h·k_gᵀ, written into p and then replaced by probabilities.
		for i0 := 0; i0 < T; i0 += rb {
			i1 := min(T, i0+rb)
			kn := T
			if causal {
				kn = i1
			}
			qa := packMatrixA(q.Data[i0*qd+h*hd:], qd, i1-i0, hd, false)
			gemmPP(qa, kp[kg], kn, p[i0*T:], T)
		}
		r := rule
		if slopes != nil {
			r.slope = float32(slopes[h])
		}
		if r.hasSink {
			r.sink = l.Sinks[h]
		}
		maxLogit, entropy, sinkMass := softmaxRows(p, T, r)
		for i0 := 0; i0 < T; i0 += rb {
			i1 := min(T, i0+rb)
			kn := T
			if causal {
				kn = i1
			}
			pa := packMatrixA(p[i0*T:], T, i1-i0, kn, false)
			gemmPP(pa, vp[kg], vhd, ctx.Data[i0*ctx.Cols+h*vhd:], ctx.Cols)
		}
		res.Heads[h], badProbs[h] = headMetrics(h, p, T, maxLogit, entropy)
		res.Heads[h].KVHead = kg
		if r.hasSink {
			if badProbs[h] > 0 {
				sinkMass = math.NaN()
			}
			res.Heads[h].LearnedSink = &sinkMass
		}
	}, true)

	res.Out = linear(ctx, l.O, l.OBias)
	res.Probs = make([][][]float32, nh)
	for h := range res.Probs {
		rows := make([][]float32, T)
		for i := range rows {
			rows[i] = probs[(h*T+i)*T : (h*T+i+1)*T : (h*T+i+1)*T]
		}
		res.Probs[h] = rows
	}
	for _, n := range badProbs {
		res.NonFiniteProbs += n
	}
	res.NonFiniteOut = countNonFinite(res.Out.Data)
	return res, nil
}

// usesNorm reports whether Run applies the pre-attention norm.
func usesNorm(g formats.Geometry, opt Options) bool {
	return g.PreNorm && g.Norm != formats.NormNone && g.Norm != "" && !opt.NoNorm
}

// causalFor is the mask Run applies: the geometry's, unless opt overrides it.
func causalFor(g formats.Geometry, opt Options) bool {
	if opt.Causal != nil {
		return *opt.Causal
	}
	return g.Causal
}

// ropeDims is how many dimensions of a head rotate (MLA: its rope part).
func ropeDims(g formats.Geometry) int {
	if g.MLA != nil {
		return g.MLA.QKRopeHeadDim
	}
	return g.RotaryDims
}

// layerSettings returns the settings of a run of layer on T positions and
// the layer's rotary frequencies (nil when it has no RoPE).
func layerSettings(g formats.Geometry, layer, T int, causal, useNorm bool, in InputInfo) (Settings, *RopeFrequencies, error) {
	la := g.ForLayer(layer)
	s := settings(g, la, T, causal, useNorm, in)
	rot := ropeDims(g)
	if !la.RoPE || rot <= 0 {
		return s, nil, nil
	}
	f, err := RopeFreqs(rot, la.RopeTheta, la.RopeScaling, T)
	if err != nil {
		return s, nil, err
	}
	s.RoPE = ropeDescription(g, la, rot, T, f)
	return s, &f, nil
}

// LayerSettings returns the Settings Run records for layer on an input of
// T positions with opt — the mask, the rotary embedding and every other
// choice — without running it, so that a streamed document can state them
// before its layers run.
func LayerSettings(g formats.Geometry, layer, T int, opt Options) (Settings, error) {
	if g.NKVHeads == 0 {
		g.NKVHeads = g.NHeads
	}
	s, _, err := layerSettings(g, layer, T, causalFor(g, opt), usesNorm(g, opt), opt.Input)
	return s, err
}

// kvHeads returns the KV head of each of n query heads (n_kv KV heads; 0
// means n).
func kvHeads(n, nkv int) []int {
	if nkv <= 0 || n%nkv != 0 {
		nkv = n
	}
	out := make([]int, n)
	for h := range out {
		out[h] = h / (n / nkv)
	}
	return out
}

// linear returns x·Wᵀ + b.
func linear(x, w formats.Matrix, b []float32) formats.Matrix {
	return linearPacked(packMatrixA(x.Data, x.Cols, x.Rows, x.Cols, true), w, b)
}

// linearPacked returns x·Wᵀ + b for a packed x.
func linearPacked(x packedA, w formats.Matrix, b []float32) formats.Matrix {
	out := formats.NewMatrix(x.m, w.Rows)
	gemmPacked(x, true, w.Rows, w.Data, w.Cols, out.Data, out.Cols, true)
	if b != nil {
		for i := 0; i < out.Rows; i++ {
			row := out.Row(i)
			for j := range row {
				row[j] += b[j]
			}
		}
	}
	return out
}

// rmsNorm writes x·rsqrt(mean(x²)+eps)·w per row of width d; a nil w is
// all ones.
func rmsNorm(dst, x, w []float32, d int, eps float64) {
	for r := 0; r+d <= len(x); r += d {
		row := x[r : r+d]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		inv := float32(1 / math.Sqrt(ss/float64(d)+eps))
		out := dst[r : r+d]
		if w == nil {
			for j, v := range row {
				out[j] = v * inv
			}
			continue
		}
		for j, v := range row {
			out[j] = v * inv * w[j]
		}
	}
}

// layerNorm writes (x−mean)/sqrt(var+eps)·w + b per row of width d, with the
// biased variance; b may be nil.
func layerNorm(dst, x, w, b []float32, d int, eps float64) {
	for r := 0; r+d <= len(x); r += d {
		row := x[r : r+d]
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		mean := sum / float64(d)
		var ss float64
		for _, v := range row {
			dv := float64(v) - mean
			ss += dv * dv
		}
		inv := 1 / math.Sqrt(ss/float64(d)+eps)
		out := dst[r : r+d]
		for j, v := range row {
			y := float32((float64(v) - mean) * inv)
			y *= w[j]
			if b != nil {
				y += b[j]
			}
			out[j] = y
		}
	}
}

// softmaxRows turns the raw dot products in p [T, T] into probabilities in
// place, by the rule r: scale, softcap, ALiBi bias, mask (outside
// rowRange), a learned sink column where there is one, then a
// max-subtracted softmax per row. It returns the largest unmasked logit
// (without the sink), the mean row entropy and the mean sink share. The
// entropy comes from the logits as ln Z − Σ_j e_j·(s_j − m)/Z with
// e_j = exp(s_j − m), Z = Σ_j e_j (the sink a term of both sums), one
// logarithm per row.
func softmaxRows(p []float32, T int, r rowRule) (maxLogit, entropy, sinkMass float64) {
	maxLogit = math.Inf(-1)
	scale, softcap, slope := r.scale, r.softcap, r.slope
	for i := 0; i < T; i++ {
		full := p[i*T : (i+1)*T]
		lo, hi := r.rowRange(i, T)
		row := full[lo:hi]
		// One pass per step keeps calls (tanh) out of the common loop.
		for j, v := range row {
			row[j] = v * scale
		}
		if softcap > 0 {
			for j, v := range row {
				row[j] = float32(math.Tanh(float64(v/softcap))) * softcap
			}
		}
		if r.alibi {
			for j := range row {
				row[j] += slope * float32(lo+j-i)
			}
		}
		m := float32(math.Inf(-1))
		nan := false
		for _, s := range row {
			if s > m {
				m = s
			}
			if s != s {
				nan = true
			}
		}
		if nan {
			maxLogit = math.NaN()
		} else if float64(m) > maxLogit {
			maxLogit = float64(m)
		}
		if r.hasSink && r.sink > m {
			m = r.sink
		}
		sum, sumED := expRow(row, m)
		var eSink float64
		if r.hasSink {
			d := float64(r.sink - m)
			eSink = expNonPositive(d)
			sum += eSink
			sumED += eSink * d
		}
		inv := 1 / sum
		for j, v := range row {
			row[j] = float32(float64(v) * inv)
		}
		clear(full[:lo])
		clear(full[hi:])
		entropy += math.Log(sum) - sumED*inv
		sinkMass += eSink * inv
	}
	return maxLogit, entropy / float64(T), sinkMass / float64(T)
}

// expRow replaces each v of row by e = exp(v − m) and returns Σ e and
// Σ e·(v − m). It is its own function so that the loop around the call keeps
// few values live (softmaxRows' many would be reloaded at every iteration).
func expRow(row []float32, m float32) (sum, sumED float64) {
	for j, v := range row {
		d := float64(v - m)
		e := expNonPositive(d)
		row[j] = float32(e)
		sum += e
		sumED += e * d
	}
	return sum, sumED
}

// expNonPositive is exp(x) for x ≤ 0 (NaN passes through), to about 1e-9
// relative error: x = n·ln2 + r with |r| ≤ ln2/2, a degree-8 Taylor
// polynomial for e^r, and n applied to the exponent bits. Below −104 the
// result would round to zero in float32 anyway.
func expNonPositive(x float64) float64 {
	if !(x >= -104) {
		if x != x {
			return x
		}
		return 0
	}
	const (
		log2e = 1.4426950408889634
		ln2hi = 6.93147180369123816490e-01
		ln2lo = 1.90821492927058770002e-10
	)
	// x·log2e − 0.5 < 0, and conversion truncates toward zero: n is
	// x·log2e rounded to nearest (ties upward), without a call to Floor.
	n := float64(int64(x*log2e - 0.5))
	r := x - n*ln2hi - n*ln2lo
	q := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040+r*(1.0/40320))))))))
	return q * math.Float64frombits(uint64(int64(n)+1023)<<52)
}

// headMetrics computes the pattern metrics of one head's probabilities and
// counts their non-finite values; entropy comes from softmaxRows.
func headMetrics(h int, p []float32, T int, maxLogit, entropy float64) (HeadMetrics, int) {
	var maxp, sink, diag, prev float64
	bad := 0
	for i := 0; i < T; i++ {
		row := p[i*T : (i+1)*T]
		var m float32
		for _, v := range row {
			if v > m {
				m = v
			}
			if v != v || v-v != 0 {
				bad++
			}
		}
		maxp += float64(m)
		sink += float64(row[0])
		diag += float64(row[i])
		if i > 0 {
			prev += float64(row[i-1])
		}
	}
	n := float64(T)
	hm := HeadMetrics{Head: h, Entropy: entropy, MaxProb: maxp / n, SinkMass: sink / n,
		Diagonal: diag / n, PrevToken: math.NaN(), MaxLogit: maxLogit}
	if T > 1 {
		hm.PrevToken = prev / float64(T-1)
	}
	if bad > 0 {
		nan := math.NaN()
		hm.Entropy, hm.MaxProb, hm.SinkMass, hm.Diagonal, hm.PrevToken = nan, nan, nan, nan, nan
	}
	return hm, bad
}

func countNonFinite(x []float32) int {
	n := 0
	for _, v := range x {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			n++
		}
	}
	return n
}
