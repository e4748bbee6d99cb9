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
const MaxLogitDefinition = "max over unmasked (i, j) of q_i·k_j·scale, plus the ALiBi bias slope_h·(j−i) where the model uses ALiBi, before softmax"

// ALiBiBiasDefinition says how the ALiBi bias is added. Hugging Face BLOOM
// adds slope_h·j; the per-row shift −slope_h·i does not change the softmax,
// and keeps the logits (and so MaxLogit) independent of T.
const ALiBiBiasDefinition = "scores[h,i,j] += slope_h*(j-i) before the causal mask (softmax-equivalent to Hugging Face BLOOM's slope_h*j)"

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
	// Style is always Hugging Face rotate_half on the HF ("half-split") row
	// order, over the first RotaryDims of each head.
	Style     string `json:"style"`
	RowOrder  string `json:"row_order"`
	Positions string `json:"positions"`
	InvFreq   string `json:"inv_freq"`
}

// Settings records every choice Run made, for the JSON document.
type Settings struct {
	Arch         string        `json:"arch"`
	T            int           `json:"seq_len"`
	DModel       int           `json:"d_model"`
	NHeads       int           `json:"n_heads"`
	NKVHeads     int           `json:"n_kv_heads"`
	HeadDim      int           `json:"head_dim"`
	KVHeadRule   string        `json:"kv_head_for_head"`
	Causal       bool          `json:"causal"`
	Scale        float64       `json:"scale"`
	ScaleFormula string        `json:"scale_formula"`
	PreNorm      string        `json:"pre_norm"` // "none", "rmsnorm" or "layernorm"
	NormEps      float64       `json:"norm_eps,omitempty"`
	RoPE         *RoPESettings `json:"rope"`
	ALiBiSlopes  []float64     `json:"alibi_slopes,omitempty"`
	ALiBiBias    string        `json:"alibi_bias,omitempty"`
	MaxLogit     string        `json:"max_logit"`
	Precision    string        `json:"precision"`
	Input        InputInfo     `json:"input"`
}

// HeadMetrics summarises one head's attention pattern. Means are over query
// positions i (rows); masked positions have probability zero.
type HeadMetrics struct {
	Head int `json:"head"`
	// Entropy is the mean over rows of −Σ_j p_ij·ln p_ij, in nats.
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
}

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

// check validates the geometry, the layer's shapes and x against each other.
func check(g formats.Geometry, l *formats.Layer, x formats.Matrix, useNorm bool) error {
	if g.DModel <= 0 || g.NHeads <= 0 || g.HeadDim <= 0 {
		return fmt.Errorf("attn: geometry needs positive d_model, n_heads and head_dim (got %d, %d, %d)", g.DModel, g.NHeads, g.HeadDim)
	}
	kv := g.NKVHeads
	if kv <= 0 || g.NHeads%kv != 0 {
		return fmt.Errorf("attn: n_heads %d is not a multiple of n_kv_heads %d", g.NHeads, kv)
	}
	if g.RotaryDims < 0 || g.RotaryDims > g.HeadDim || g.RotaryDims%2 != 0 {
		return fmt.Errorf("attn: rotary_dims %d must be even and at most head_dim %d", g.RotaryDims, g.HeadDim)
	}
	if g.RotaryDims > 0 && !(g.RopeTheta > 0) {
		return fmt.Errorf("attn: rope_theta %g must be positive", g.RopeTheta)
	}
	if l == nil {
		return errors.New("attn: no layer")
	}
	qd, kvd := g.NHeads*g.HeadDim, kv*g.HeadDim
	shapes := []struct {
		name       string
		m          formats.Matrix
		rows, cols int
	}{
		{"W_Q", l.Q, qd, g.DModel}, {"W_K", l.K, kvd, g.DModel},
		{"W_V", l.V, kvd, g.DModel}, {"W_O", l.O, g.DModel, qd},
		{"x", x, x.Rows, g.DModel},
	}
	for _, s := range shapes {
		if s.m.Rows != s.rows || s.m.Cols != s.cols || len(s.m.Data) != s.rows*s.cols {
			return fmt.Errorf("attn: layer %d: %s is [%d, %d] with %d values, want [%d, %d]",
				l.Index, s.name, s.m.Rows, s.m.Cols, len(s.m.Data), s.rows, s.cols)
		}
	}
	biases := []struct {
		name string
		b    []float32
		n    int
	}{{"b_Q", l.QBias, qd}, {"b_K", l.KBias, kvd}, {"b_V", l.VBias, kvd}, {"b_O", l.OBias, g.DModel}}
	if useNorm {
		biases = append(biases, struct {
			name string
			b    []float32
			n    int
		}{"norm bias", l.NormBias, g.DModel})
		if len(l.NormWeight) != g.DModel {
			return fmt.Errorf("attn: layer %d: pre-norm weight has %d values, want d_model = %d", l.Index, len(l.NormWeight), g.DModel)
		}
	}
	for _, b := range biases {
		if b.b != nil && len(b.b) != b.n {
			return fmt.Errorf("attn: layer %d: %s has %d values, want %d", l.Index, b.name, len(b.b), b.n)
		}
	}
	if x.Rows <= 0 {
		return errors.New("attn: the input has no positions (T = 0)")
	}
	if uint64(x.Rows)*uint64(x.Rows)*uint64(g.NHeads) > maxCells {
		return fmt.Errorf("attn: T = %d with %d heads needs more than %d probabilities (1 GiB); use a shorter input", x.Rows, g.NHeads, maxCells)
	}
	return nil
}

// settings fills the Settings for a run.
func settings(g formats.Geometry, T int, causal, useNorm bool, in InputInfo) Settings {
	s := Settings{
		Arch: g.Arch, T: T, DModel: g.DModel, NHeads: g.NHeads, NKVHeads: g.NKVHeads,
		HeadDim: g.HeadDim, KVHeadRule: "g = h / (n_heads / n_kv_heads)", Causal: causal,
		Scale: float64(float32(1 / math.Sqrt(float64(g.HeadDim)))), ScaleFormula: "1/sqrt(head_dim)",
		PreNorm:   string(formats.NormNone),
		MaxLogit:  MaxLogitDefinition,
		Precision: "float32 values; matrix products accumulate in float32, norms and softmax sums in float64",
		Input:     in,
	}
	if useNorm {
		s.PreNorm = string(g.Norm)
		s.NormEps = g.NormEps
	}
	if g.RotaryDims > 0 {
		s.RoPE = &RoPESettings{
			RotaryDims: g.RotaryDims, Theta: g.RopeTheta,
			Style:     "Hugging Face rotate_half on the first rotary_dims of each head",
			RowOrder:  formats.RowOrderHF,
			Positions: fmt.Sprintf("0..%d", T-1),
			InvFreq:   "1/theta^(arange(0, rotary_dims, 2)/rotary_dims), in float32",
		}
	}
	if g.ALiBi {
		s.ALiBiSlopes = ALiBiSlopes(g.NHeads)
		s.ALiBiBias = ALiBiBiasDefinition
	}
	return s
}

// Run reruns attention for layer l on x [T, d_model]:
//
//	xn = norm(x)                      (pre-norm, unless NoNorm or the model has none)
//	q = xn·W_Qᵀ + b_Q, k, v likewise
//	RoPE on q and k                   (Hugging Face rotate_half, positions 0..T−1)
//	s_h = q_h·k_gᵀ/sqrt(head_dim)     (g = h / (n_heads/n_kv_heads); + ALiBi)
//	p_h = softmax(s_h) per row        (causal: keys j > i get probability 0)
//	out = concat_h(p_h·v_g)·W_Oᵀ + b_O
//
// The norm is RMSNorm x·rsqrt(mean(x²)+eps)·w or LayerNorm
// (x−mean)/sqrt(var+eps)·w + b, with the layer's NormWeight/NormBias and the
// geometry's NormEps. It is applied when g.PreNorm is set and g.Norm is not
// "none". n_kv_heads = 0 means n_heads. ALiBi adds slope_h·(j−i) (see
// ALiBiBiasDefinition). Run returns an error, never panics, on inconsistent
// shapes.
func Run(g formats.Geometry, l *formats.Layer, x formats.Matrix, opt Options) (*Result, error) {
	if g.NKVHeads == 0 {
		g.NKVHeads = g.NHeads // as Geometry.GroupSize reads it: no grouping
	}
	useNorm := g.PreNorm && g.Norm != formats.NormNone && g.Norm != "" && !opt.NoNorm
	if useNorm && g.Norm != formats.NormRMS && g.Norm != formats.NormLayerNorm {
		return nil, fmt.Errorf("attn: unknown norm kind %q", g.Norm)
	}
	if err := check(g, l, x, useNorm); err != nil {
		return nil, err
	}
	causal := g.Causal
	if opt.Causal != nil {
		causal = *opt.Causal
	}
	T, hd, nh, nkv := x.Rows, g.HeadDim, g.NHeads, g.NKVHeads
	qd, kvd := nh*hd, nkv*hd
	res := &Result{Layer: l.Index, Settings: settings(g, T, causal, useNorm, opt.Input)}

	xn := x
	if useNorm {
		xn = formats.NewMatrix(T, g.DModel)
		if g.Norm == formats.NormRMS {
			rmsNorm(xn.Data, x.Data, l.NormWeight, g.DModel, g.NormEps)
		} else {
			layerNorm(xn.Data, x.Data, l.NormWeight, l.NormBias, g.DModel, g.NormEps)
		}
	}

	xp := packMatrixA(xn.Data, xn.Cols, T, g.DModel, true)
	q := linearPacked(xp, l.Q, l.QBias)
	k := linearPacked(xp, l.K, l.KBias)
	v := linearPacked(xp, l.V, l.VBias)
	if g.RotaryDims > 0 {
		cos, sin := ropeTables(T, g.RotaryDims, g.RopeTheta)
		applyRoPE(q.Data, T, nh, hd, g.RotaryDims, cos, sin)
		applyRoPE(k.Data, T, nkv, hd, g.RotaryDims, cos, sin)
	}

	var slopes []float32
	if g.ALiBi {
		for _, s := range ALiBiSlopes(nh) {
			slopes = append(slopes, float32(s))
		}
	}
	scale := float32(res.Settings.Scale)
	probs := make([]float32, nh*T*T)
	ctx := formats.NewMatrix(T, qd)
	res.Heads = make([]HeadMetrics, nh)
	badProbs := make([]int, nh)
	group := nh / nkv
	// Each KV group's k (as op(B) = kᵀ) and v are packed once for all the
	// query heads that read them.
	kp, vp := make([]packedB, nkv), make([]packedB, nkv)
	parallelFor(nkv, func(kg int) {
		kp[kg] = packMatrixB(k.Data[kg*hd:], kvd, true, T, hd)
		vp[kg] = packMatrixB(v.Data[kg*hd:], kvd, false, hd, T)
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
		var slope float32
		if slopes != nil {
			slope = slopes[h]
		}
		maxLogit, entropy := softmaxRows(p, T, scale, slope, slopes != nil, causal)
		for i0 := 0; i0 < T; i0 += rb {
			i1 := min(T, i0+rb)
			kn := T
			if causal {
				kn = i1
			}
			pa := packMatrixA(p[i0*T:], T, i1-i0, kn, false)
			gemmPP(pa, vp[kg], hd, ctx.Data[i0*qd+h*hd:], qd)
		}
		res.Heads[h], badProbs[h] = headMetrics(h, p, T, maxLogit, entropy)
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

// rmsNorm writes x·rsqrt(mean(x²)+eps)·w per row of width d.
func rmsNorm(dst, x, w []float32, d int, eps float64) {
	for r := 0; r+d <= len(x); r += d {
		row := x[r : r+d]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		inv := float32(1 / math.Sqrt(ss/float64(d)+eps))
		out := dst[r : r+d]
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

// ropeTables returns cos and sin [T, rot/2] as Hugging Face computes them in
// float32: inv_freq_i = 1/theta^(2i/rot), angle = float32(pos)·inv_freq_i.
func ropeTables(T, rot int, theta float64) (cos, sin []float32) {
	half := rot / 2
	inv := make([]float32, half)
	for i := range inv {
		e := float32(2*i) / float32(rot)
		inv[i] = 1 / float32(math.Pow(theta, float64(e)))
	}
	cos = make([]float32, T*half)
	sin = make([]float32, T*half)
	for p := 0; p < T; p++ {
		for i, f := range inv {
			a := float32(p) * f
			cos[p*half+i] = float32(math.Cos(float64(a)))
			sin[p*half+i] = float32(math.Sin(float64(a)))
		}
	}
	return cos, sin
}

// applyRoPE rotates the first rot values of each of n heads in x [T, n·hd]:
// out = x·cos + rotate_half(x)·sin with rotate_half(x) = (−x2, x1).
func applyRoPE(x []float32, T, n, hd, rot int, cos, sin []float32) {
	half := rot / 2
	w := n * hd
	for p := 0; p < T; p++ {
		c, s := cos[p*half:(p+1)*half], sin[p*half:(p+1)*half]
		for h := 0; h < n; h++ {
			v := x[p*w+h*hd : p*w+h*hd+rot]
			for i := 0; i < half; i++ {
				x1, x2 := v[i], v[i+half]
				v[i] = x1*c[i] - x2*s[i]
				v[i+half] = x2*c[i] + x1*s[i]
			}
		}
	}
}

// softmaxRows turns the raw dot products in p [T, T] into probabilities in
// place: scale, ALiBi bias, causal mask, then a max-subtracted softmax per
// row. It returns the largest unmasked logit and the mean row entropy,
// computed from the logits as ln Z − Σ_j e_j·(s_j − m)/Z with
// e_j = exp(s_j − m), Z = Σ_j e_j (one logarithm per row).
func softmaxRows(p []float32, T int, scale, slope float32, alibi, causal bool) (maxLogit, entropy float64) {
	maxLogit = math.Inf(-1)
	for i := 0; i < T; i++ {
		row := p[i*T : (i+1)*T]
		n := T
		if causal {
			n = i + 1
		}
		row, rest := row[:n], row[n:]
		m := float32(math.Inf(-1))
		nan := false
		for j, v := range row {
			s := v * scale
			if alibi {
				s += slope * float32(j-i)
			}
			row[j] = s
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
		var sum, sumED float64
		for j, v := range row {
			d := float64(v - m)
			e := expNonPositive(d)
			row[j] = float32(e)
			sum += e
			sumED += e * d
		}
		inv := 1 / sum
		for j, v := range row {
			row[j] = float32(float64(v) * inv)
		}
		clear(rest)
		entropy += math.Log(sum) - sumED*inv
	}
	return maxLogit, entropy / float64(T)
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
