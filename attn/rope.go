package attn

import (
	"fmt"
	"math"

	"github.com/qkvdev/qkv/formats"
)

// RopeFrequencies is the rotary embedding of one layer, as transformers'
// ROPE_INIT_FUNCTIONS compute it for a run of T positions.
type RopeFrequencies struct {
	// InvFreq holds one inverse frequency per rotary pair, in float32 as
	// torch computes it.
	InvFreq []float32
	// AttentionFactor multiplies cos and sin (YaRN, LongRoPE); 1 otherwise.
	AttentionFactor float64
	// Scaling states the scaling that was applied, nil for plain RoPE.
	Scaling *ScalingSettings
}

// ScalingSettings records a rope scaling as it was applied, with
// transformers' defaults filled in.
type ScalingSettings struct {
	Type                 string  `json:"type"`
	Factor               float64 `json:"factor"`
	OriginalMaxPositions int     `json:"original_max_position_embeddings,omitempty"`
	MaxPositions         int     `json:"max_position_embeddings,omitempty"`
	LowFreqFactor        float64 `json:"low_freq_factor,omitempty"`
	HighFreqFactor       float64 `json:"high_freq_factor,omitempty"`
	BetaFast             float64 `json:"beta_fast,omitempty"`
	BetaSlow             float64 `json:"beta_slow,omitempty"`
	Truncate             *bool   `json:"truncate,omitempty"`
	MScale               float64 `json:"mscale,omitempty"`
	MScaleAllDim         float64 `json:"mscale_all_dim,omitempty"`
	// CorrectionRange is YaRN's [low, high] ramp range over the pairs.
	CorrectionRange []float64 `json:"correction_range,omitempty"`
	// SeqLen is the sequence length the frequencies were chosen for
	// (dynamic, longrope): the largest position + 1.
	SeqLen int `json:"seq_len,omitempty"`
	// EffectiveTheta is dynamic NTK's rescaled base.
	EffectiveTheta float64 `json:"effective_theta,omitempty"`
	// ExtFactors names the LongRoPE factor list used ("short_factor" or
	// "long_factor").
	ExtFactors          string `json:"ext_factors,omitempty"`
	AttentionFactorRule string `json:"attention_factor_rule"`
	Formula             string `json:"formula"`
	Note                string `json:"note,omitempty"`
}

// defaultInvFreq returns 1/theta^(2i/rot) for i < rot/2 in float32, the way
// torch evaluates 1.0 / (base ** (arange(0, rot, 2).float() / rot)).
func defaultInvFreq(rot int, theta float64) []float32 {
	inv := make([]float32, rot/2)
	for i := range inv {
		inv[i] = 1 / ropePow(theta, i, rot)
	}
	return inv
}

// ropePow is float32 theta^(2i/rot) with the exponent rounded to float32.
func ropePow(theta float64, i, rot int) float32 {
	e := float32(2*i) / float32(rot)
	return float32(math.Pow(theta, float64(e)))
}

// yarnMScale is YaRN's get_mscale: 0.1·mscale·ln(scale) + 1 for scale > 1.
func yarnMScale(scale, mscale float64) float64 {
	if scale <= 1 {
		return 1
	}
	return 0.1*mscale*math.Log(scale) + 1
}

// RopeFreqs returns the inverse frequencies and attention factor of a
// rotary embedding over rot dimensions with base theta and the given scaling
// (nil: none), for positions 0..seqLen−1. It follows transformers'
// ROPE_INIT_FUNCTIONS (and its dynamic_rope_update for "dynamic" and
// "longrope", which depend on the sequence length). A scaling type it does
// not implement is an *UnsupportedError; missing parameters are errors.
func RopeFreqs(rot int, theta float64, sc *formats.RopeScaling, seqLen int) (RopeFrequencies, error) {
	if rot <= 0 || rot%2 != 0 {
		return RopeFrequencies{}, fmt.Errorf("attn: rotary dims %d must be positive and even", rot)
	}
	if !(theta > 0) || math.IsInf(theta, 0) {
		return RopeFrequencies{}, fmt.Errorf("attn: rope_theta %g must be positive", theta)
	}
	if sc == nil || sc.Type == "" || sc.Type == "default" {
		return RopeFrequencies{InvFreq: defaultInvFreq(rot, theta), AttentionFactor: 1}, nil
	}
	half := rot / 2
	bad := func(format string, args ...any) (RopeFrequencies, error) {
		return RopeFrequencies{}, fmt.Errorf("attn: rope_scaling %q: "+format, append([]any{sc.Type}, args...)...)
	}
	s := &ScalingSettings{Type: sc.Type, Factor: sc.Factor, OriginalMaxPositions: sc.OriginalMaxPositions, MaxPositions: sc.MaxPositions}
	out := RopeFrequencies{AttentionFactor: 1, Scaling: s}
	s.AttentionFactorRule = "1 (none)"
	switch sc.Type {
	case formats.RopeScalingLinear:
		if !(sc.Factor > 0) {
			return bad("factor %g must be positive", sc.Factor)
		}
		out.InvFreq = defaultInvFreq(rot, theta)
		f := float32(sc.Factor)
		for i := range out.InvFreq {
			out.InvFreq[i] /= f
		}
		s.Formula = "inv_freq = (1/theta^(2i/rot)) / factor"

	case formats.RopeScalingDynamic:
		if !(sc.Factor > 0) {
			return bad("factor %g must be positive", sc.Factor)
		}
		maxPos := sc.MaxPositions
		if maxPos <= 0 {
			maxPos = sc.OriginalMaxPositions
			s.Note = "max_position_embeddings not given: original_max_position_embeddings used as the reference length"
		}
		if maxPos <= 0 {
			return bad("needs max_position_embeddings")
		}
		if rot < 4 {
			return bad("needs at least 4 rotary dims (the exponent is dim/(dim−2))")
		}
		L := max(seqLen, maxPos)
		base := theta * math.Pow(sc.Factor*float64(L)/float64(maxPos)-(sc.Factor-1), float64(rot)/float64(rot-2))
		out.InvFreq = defaultInvFreq(rot, base)
		s.MaxPositions, s.SeqLen, s.EffectiveTheta = maxPos, seqLen, base
		s.Formula = "L = max(seq_len, max_position_embeddings); theta' = theta·(factor·L/max_position_embeddings − (factor − 1))^(rot/(rot−2)); inv_freq = 1/theta'^(2i/rot)"

	case formats.RopeScalingYaRN:
		orig := sc.OriginalMaxPositions
		if orig <= 0 {
			orig = sc.MaxPositions
		}
		if orig <= 0 {
			return bad("needs original_max_position_embeddings (or max_position_embeddings)")
		}
		factor := sc.Factor
		if factor == 0 && sc.MaxPositions > 0 && sc.OriginalMaxPositions > 0 {
			factor = float64(sc.MaxPositions) / float64(sc.OriginalMaxPositions)
			s.Note = "factor not given: max_position_embeddings / original_max_position_embeddings"
		} else if sc.MaxPositions > 0 && sc.OriginalMaxPositions > 0 {
			if r := float64(sc.MaxPositions) / float64(sc.OriginalMaxPositions); math.Abs(r-factor) > 1e-9*factor {
				s.Note = fmt.Sprintf("factor %g is used as given (transformers ≥ 5); transformers 4.x used max_position_embeddings / original_max_position_embeddings = %g", factor, r)
			}
		}
		if !(factor > 0) {
			return bad("factor %g must be positive", factor)
		}
		s.Factor, s.OriginalMaxPositions = factor, orig
		bf, bs := sc.BetaFast, sc.BetaSlow
		if bf == 0 {
			bf = 32
		}
		if bs == 0 {
			bs = 1
		}
		truncate := true
		if sc.Truncate != nil {
			truncate = *sc.Truncate
		}
		s.BetaFast, s.BetaSlow, s.Truncate, s.MScale, s.MScaleAllDim = bf, bs, &truncate, sc.MScale, sc.MScaleAllDim
		switch {
		case sc.AttentionFactor > 0:
			out.AttentionFactor = sc.AttentionFactor
			s.AttentionFactorRule = "attention_factor as given"
		case sc.MScale != 0 && sc.MScaleAllDim != 0:
			out.AttentionFactor = yarnMScale(factor, sc.MScale) / yarnMScale(factor, sc.MScaleAllDim)
			s.AttentionFactorRule = "get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim), get_mscale(s, m) = 0.1·m·ln(s) + 1 (1 when s ≤ 1)"
		default:
			out.AttentionFactor = yarnMScale(factor, 1)
			s.AttentionFactorRule = "0.1·ln(factor) + 1 (1 when factor ≤ 1)"
		}
		corr := func(rotations float64) float64 {
			return float64(rot) * math.Log(float64(orig)/(rotations*2*math.Pi)) / (2 * math.Log(theta))
		}
		low, high := corr(bf), corr(bs)
		if truncate {
			low, high = math.Floor(low), math.Ceil(high)
		}
		low, high = max(low, 0), min(high, float64(rot-1))
		s.CorrectionRange = []float64{low, high}
		if low == high {
			high += 0.001
		}
		lo32, span32 := float32(low), float32(high-low)
		out.InvFreq = make([]float32, half)
		f32 := float32(factor)
		for i := range out.InvFreq {
			pos := ropePow(theta, i, rot)
			extrap, interp := 1/pos, 1/(f32*pos)
			ramp := (float32(i) - lo32) / span32
			ramp = min(max(ramp, 0), 1)
			e := 1 - ramp // the share of the extrapolated (unscaled) frequency
			out.InvFreq[i] = float32(interp*(1-e)) + float32(extrap*e)
		}
		s.Formula = "d(r) = rot·ln(orig/(2π·r))/(2·ln theta); [low, high] = [d(beta_fast), d(beta_slow)] (floor/ceil when truncate), clamped to [0, rot−1]; ramp_i = clamp((i − low)/(high − low), 0, 1); inv_freq = (1/theta^(2i/rot))·(1 − ramp_i) + (1/(factor·theta^(2i/rot)))·ramp_i; cos and sin × attention_factor"

	case formats.RopeScalingLongRoPE:
		if len(sc.ShortFactor) != half || len(sc.LongFactor) != half {
			return bad("short_factor and long_factor need rot/2 = %d values (got %d and %d)", half, len(sc.ShortFactor), len(sc.LongFactor))
		}
		orig := sc.OriginalMaxPositions
		if orig <= 0 {
			orig = sc.MaxPositions
		}
		if orig <= 0 {
			return bad("needs original_max_position_embeddings (or max_position_embeddings)")
		}
		factor := sc.Factor
		if factor == 0 {
			factor = 1
			if sc.MaxPositions > 0 && sc.OriginalMaxPositions > 0 {
				factor = float64(sc.MaxPositions) / float64(sc.OriginalMaxPositions)
			}
		} else if sc.MaxPositions > 0 && sc.OriginalMaxPositions > 0 && sc.AttentionFactor == 0 {
			if r := float64(sc.MaxPositions) / float64(sc.OriginalMaxPositions); math.Abs(r-factor) > 1e-9*factor {
				s.Note = fmt.Sprintf("factor %g is used as given (transformers ≥ 5); transformers 4.x used max_position_embeddings / original_max_position_embeddings = %g for the attention factor", factor, r)
			}
		}
		s.Factor, s.OriginalMaxPositions = factor, orig
		switch {
		case sc.AttentionFactor > 0:
			out.AttentionFactor = sc.AttentionFactor
			s.AttentionFactorRule = "attention_factor as given"
		case factor <= 1:
			s.AttentionFactorRule = "1 (factor ≤ 1)"
		case orig <= 1:
			return bad("original_max_position_embeddings %d must exceed 1", orig)
		default:
			out.AttentionFactor = math.Sqrt(1 + math.Log(factor)/math.Log(float64(orig)))
			s.AttentionFactorRule = "sqrt(1 + ln(factor)/ln(original_max_position_embeddings)), factor = max_position_embeddings / original_max_position_embeddings unless given"
		}
		ext := sc.ShortFactor
		s.ExtFactors = "short_factor"
		if seqLen > orig {
			ext, s.ExtFactors = sc.LongFactor, "long_factor"
		}
		s.SeqLen = seqLen
		out.InvFreq = make([]float32, half)
		for i := range out.InvFreq {
			if !(ext[i] > 0) || math.IsInf(ext[i], 0) {
				return bad("%s[%d] = %g must be positive", s.ExtFactors, i, ext[i])
			}
			out.InvFreq[i] = 1 / (float32(ext[i]) * ropePow(theta, i, rot))
		}
		s.Formula = "inv_freq = 1/(ext_i·theta^(2i/rot)), ext = long_factor when seq_len > original_max_position_embeddings, else short_factor; cos and sin × attention_factor"

	case formats.RopeScalingLlama3:
		orig := sc.OriginalMaxPositions
		if !(sc.Factor > 0) || !(sc.LowFreqFactor > 0) || !(sc.HighFreqFactor > sc.LowFreqFactor) || orig <= 0 {
			return bad("needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings (got %g, %g, %g, %d)",
				sc.Factor, sc.LowFreqFactor, sc.HighFreqFactor, orig)
		}
		s.LowFreqFactor, s.HighFreqFactor = sc.LowFreqFactor, sc.HighFreqFactor
		out.InvFreq = defaultInvFreq(rot, theta)
		f, lf, old := float32(sc.Factor), float32(sc.LowFreqFactor), float32(orig)
		span := float32(sc.HighFreqFactor - sc.LowFreqFactor)
		lowWave := float32(float64(orig) / sc.LowFreqFactor)
		highWave := float32(float64(orig) / sc.HighFreqFactor)
		for i, inv := range out.InvFreq {
			wave := float32(2*math.Pi) / inv
			switch {
			case wave > lowWave:
				out.InvFreq[i] = inv / f
			case wave < highWave:
			default:
				smooth := (old/wave - lf) / span
				out.InvFreq[i] = float32((1-smooth)*inv/f) + float32(smooth*inv)
			}
		}
		s.Formula = "wavelen = 2π/inv; inv/factor where wavelen > original/low_freq_factor; inv where wavelen < original/high_freq_factor; otherwise (1 − s)·inv/factor + s·inv with s = (original/wavelen − low_freq_factor)/(high_freq_factor − low_freq_factor)"

	default:
		return RopeFrequencies{}, &UnsupportedError{Items: []formats.Unsupported{{Kind: "config_key", Name: "rope_scaling.rope_type",
			Message: fmt.Sprintf("model uses rope_scaling type %q, which qkv does not implement", sc.Type)}}}
	}
	return out, nil
}

// ropeTable returns cos and sin [T, len(inv)] as Hugging Face computes them
// in float32: angle = float32(pos)·inv_i, then cos and sin each multiplied by
// the attention factor.
func ropeTable(T int, inv []float32, attnFactor float64) (cos, sin []float32) {
	half := len(inv)
	cos = make([]float32, T*half)
	sin = make([]float32, T*half)
	af := float32(attnFactor)
	for p := 0; p < T; p++ {
		for i, f := range inv {
			a := float32(p) * f
			c, s := float32(math.Cos(float64(a))), float32(math.Sin(float64(a)))
			if af != 1 {
				c, s = c*af, s*af
			}
			cos[p*half+i], sin[p*half+i] = c, s
		}
	}
	return cos, sin
}

// applyRotary rotates, in each of n heads of x (rows of width ld, head h
// starting at column h·hd), the rot dimensions starting at off: pairs
// (i, i + rot/2) for the half-split style (rotate_half), (2i, 2i+1) for
// interleaved pairs; pair i turns by the angle of cos/sin column i:
// (a, b) → (a·cos − b·sin, b·cos + a·sin).
func applyRotary(x []float32, T, ld, n, hd, off, rot int, interleaved bool, cos, sin []float32) {
	half := rot / 2
	for p := 0; p < T; p++ {
		c, s := cos[p*half:(p+1)*half], sin[p*half:(p+1)*half]
		for h := 0; h < n; h++ {
			v := x[p*ld+h*hd+off : p*ld+h*hd+off+rot]
			for i := 0; i < half; i++ {
				ia, ib := i, i+half
				if interleaved {
					ia, ib = 2*i, 2*i+1
				}
				a, b := v[ia], v[ib]
				v[ia] = a*c[i] - b*s[i]
				v[ib] = b*c[i] + a*s[i]
			}
		}
	}
}
