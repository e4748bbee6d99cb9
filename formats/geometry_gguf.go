package formats

import (
	"fmt"
	"math"

	"github.com/qkvdev/qkv/formats/gguf"
)

// ggufMeta reads an architecture's GGUF metadata with the checks every value
// from a file needs; errors name the key.
type ggufMeta struct {
	c      *Checkpoint
	f      *gguf.File
	prefix string // "llama."
}

func (m ggufMeta) lookup(key string) (*gguf.KV, bool) { return m.f.Lookup(m.prefix + key) }

// values returns an array's elements, decoding a lazy array (one too long
// to decode while parsing) from the file.
func (m ggufMeta) values(kv *gguf.KV) ([]any, error) {
	if l, ok := kv.Value.([]any); ok {
		return l, nil
	}
	if kv.Type != gguf.Array {
		return nil, nil
	}
	if kv.Count > 1<<20 {
		return nil, fmt.Errorf("%s is an array of %d elements, more than a per-layer list can have", kv.Key, kv.Count)
	}
	return m.c.MetaArray(kv, 0, int(kv.Count))
}

// count returns a count key (a scalar, or a per-layer array whose entries
// are all equal).
func (m ggufMeta) count(key string) (int, bool, error) {
	kv, ok := m.lookup(key)
	if !ok {
		return 0, false, nil
	}
	n, ok := kv.Uint()
	if !ok && kv.Type == gguf.Array {
		l, err := m.values(kv)
		if err != nil {
			return 0, false, err
		}
		if len(l) > 0 {
			// Per-layer counts (OpenELM and friends): accept them when equal.
			first, ok1 := anyUint(l[0])
			for _, x := range l {
				if v, ok2 := anyUint(x); !ok2 || v != first {
					return 0, false, fmt.Errorf("%s%s varies per layer, which is not supported", m.prefix, key)
				}
			}
			n, ok = first, ok1
		}
	}
	if !ok || n >= 1<<31 {
		return 0, false, fmt.Errorf("%s%s is not a usable count (%s)", m.prefix, key, describeKV(kv))
	}
	return int(n), true, nil
}

// positive returns a finite number > 0.
func (m ggufMeta) positive(key string) (float64, bool, error) {
	kv, ok := m.lookup(key)
	if !ok {
		return 0, false, nil
	}
	v, ok := kv.Float()
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return 0, false, fmt.Errorf("%s%s is %s, which is not a positive finite number", m.prefix, key, describeKV(kv))
	}
	return v, true, nil
}

// epsilon returns a norm epsilon: finite, ≥ 0 and below 1.
func (m ggufMeta) epsilon(key string) (float64, bool, error) {
	kv, ok := m.lookup(key)
	if !ok {
		return 0, false, nil
	}
	v, ok := kv.Float()
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v >= 1 {
		return 0, false, fmt.Errorf("%s%s is %s, which is not a usable norm epsilon", m.prefix, key, describeKV(kv))
	}
	return v, true, nil
}

func describeKV(kv *gguf.KV) string {
	switch {
	case kv.Type == gguf.Array:
		return fmt.Sprintf("an array of %d %s", kv.Count, kv.ElemType)
	case kv.Value == nil:
		return kv.Type.String()
	}
	if s, ok := kv.Value.(string); ok {
		return fmt.Sprintf("the string %q", s)
	}
	return fmt.Sprintf("%v", kv.Value)
}

func anyUint(x any) (uint64, bool) {
	kv := gguf.KV{Value: x}
	return kv.Uint()
}

// ggufGeometry reads the attention geometry from GGUF metadata. a is a copy
// of the registry entry, or of genericArch for an unknown architecture.
func ggufGeometry(c *Checkpoint, arch string, a *Arch) (geoSource, error) {
	s := geoSource{from: "GGUF metadata"}
	m := ggufMeta{c: c, f: c.GGUF(), prefix: arch + "."}
	g := Geometry{Arch: arch, Causal: !a.Encoder, PreNorm: a.Placement == PreNorm}
	var err error
	for _, x := range []struct {
		key string
		dst *int
		ok  *bool
	}{{"embedding_length", &g.DModel, nil}, {"block_count", &g.NLayers, nil}, {"attention.head_count", &g.NHeads, nil},
		{"attention.head_count_kv", &g.NKVHeads, &s.hasKV}} {
		var ok bool
		if *x.dst, ok, err = m.count(x.key); err != nil {
			return s, err
		}
		if x.ok != nil {
			*x.ok = ok
		}
	}
	if g.NKVHeads == 0 {
		g.NKVHeads = g.NHeads
	}
	if hd, ok, err := m.count("attention.key_length"); err != nil {
		return s, err
	} else if ok && hd > 0 {
		g.HeadDim, s.hasHD = hd, true
	} else if g.NHeads > 0 && g.DModel%g.NHeads == 0 {
		g.HeadDim = g.DModel / g.NHeads
	}
	if vd, ok, err := m.count("attention.value_length"); err != nil {
		return s, err
	} else if ok && vd > 0 && vd != g.HeadDim && !a.MLA {
		s.unsupported("metadata_key", m.prefix+"attention.value_length", "value heads of %d dimensions differ from key heads of %d, which qkv does not implement for this architecture", vd, g.HeadDim)
	}
	if kv, ok := c.GGUF().Lookup("tokenizer.ggml.tokens"); ok && kv.Count < 1<<40 {
		g.VocabSize = int(kv.Count)
	}
	if kv, ok := m.lookup("attention.causal"); ok {
		if b, ok := kv.Bool(); ok {
			g.Causal = b
		}
	}
	s.geo = g
	if a.MLA {
		if err := ggufMLA(m, &s); err != nil {
			return s, err
		}
	}

	// Norm.
	if e, ok, err := m.epsilon("attention.layer_norm_rms_epsilon"); err != nil {
		return s, err
	} else if ok {
		s.geo.Norm, s.geo.NormEps = NormRMS, e
	} else if e, ok, err := m.epsilon("attention.layer_norm_epsilon"); err != nil {
		return s, err
	} else if ok {
		s.geo.Norm, s.geo.NormEps = NormLayerNorm, e
	}
	if a.Norm != "" {
		s.geo.Norm = a.Norm
	}
	eps := s.geo.NormEps
	if !s.geo.PreNorm {
		s.geo.Norm = NormNone
	}

	// Positions.
	switch {
	case a.Position == PosALiBi || (a.Position == PosConfigALiBi && ggufALiBi(m)):
		s.geo.ALiBi = true
	case a.Position == PosRoPE || a.Position == PosConfigALiBi:
		if err := ggufRope(m, a, &s); err != nil {
			return s, err
		}
	}

	// What else changes attention.
	g2 := &s.geo
	g2.QKNorm = a.QKNorm
	if g2.QKNorm != QKNormNone {
		g2.QKNormEps = eps
		g2.QKNormRoPEOnly = a.QKNormRoPEOnly
	}
	g2.NormWeightOffset = a.NormOffset
	g2.Sinks = a.Sinks
	if a.EmbedScale && g2.DModel > 0 {
		g2.EmbeddingScale = math.Sqrt(float64(g2.DModel))
	}
	if a.Softcap {
		if v, ok, err := m.positive("attn_logit_softcapping"); err != nil {
			return s, err
		} else if ok {
			g2.Softcap = v
		}
	} else if _, ok := m.lookup("attn_logit_softcapping"); ok {
		s.unsupported("metadata_key", m.prefix+"attn_logit_softcapping", "model caps attention logits (%sattn_logit_softcapping), which the %s entry of qkv's registry does not apply", m.prefix, arch)
	}
	if err := ggufScale(m, a, &s); err != nil {
		return s, err
	}
	if err := ggufLayerTypes(m, a, &s); err != nil {
		return s, err
	}
	for _, k := range []string{"attention.clamp_kqv", "attention.max_alibi_bias"} {
		if kv, ok := m.lookup(k); ok {
			if v, _ := kv.Float(); k == "attention.max_alibi_bias" && v == 8 {
				continue // ALiBi's standard slopes
			}
			s.unsupported("metadata_key", m.prefix+k, "model sets %s%s = %s, which qkv does not implement", m.prefix, k, describeKV(kv))
		}
	}
	for _, t := range []string{"rope_factors_long.weight", "rope_factors_short.weight"} {
		if c.Tensor(t) != nil {
			s.unsupported("tensor", t, "model scales RoPE frequencies with tensor %s (LongRoPE), which qkv does not implement for GGUF files", t)
		}
	}
	if a.Incomplete != "" {
		s.unsupported("metadata_key", "general.architecture", "the %s entry of qkv's architecture registry is incomplete: %s", a.Name, a.Incomplete)
	}
	if a.Name == "" {
		s.unsupported("metadata_key", "general.architecture", "GGUF architecture '%s' is not in qkv's architecture registry; Q/K rows are taken as stored and the rerun would assume causal attention with RoPE", arch)
	}
	return s, nil
}

// ggufALiBi: MPT and Falcon GGUFs use ALiBi when the converter wrote a
// max_alibi_bias.
func ggufALiBi(m ggufMeta) bool {
	_, ok := m.lookup("attention.max_alibi_bias")
	return ok
}

// ggufMLA reads the latent-attention dimensions: llama.cpp writes the MLA
// view as multi-query (head_count_kv 1, key_length = kv_lora_rank + rope)
// and the per-head sizes in key_length_mla / value_length_mla (older files:
// key_length / value_length are the per-head sizes).
func ggufMLA(m ggufMeta, s *geoSource) error {
	g := &s.geo
	ml := &MLA{}
	var err error
	if ml.QLoraRank, _, err = m.count("attention.q_lora_rank"); err != nil {
		return err
	}
	var ok bool
	if ml.KVLoraRank, ok, err = m.count("attention.kv_lora_rank"); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%sattention.kv_lora_rank is missing; multi-head latent attention needs it", m.prefix)
	}
	if ml.QKRopeHeadDim, ok, err = m.count("rope.dimension_count"); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%srope.dimension_count is missing; multi-head latent attention needs it", m.prefix)
	}
	kl, okK, err := m.count("attention.key_length_mla")
	if err != nil {
		return err
	}
	vl, okV, err := m.count("attention.value_length_mla")
	if err != nil {
		return err
	}
	if !okK {
		kl, okK, err = m.count("attention.key_length")
		if err != nil {
			return err
		}
	}
	if !okV {
		vl, okV, err = m.count("attention.value_length")
		if err != nil {
			return err
		}
	}
	if !okK || !okV || kl <= ml.QKRopeHeadDim || vl == 0 {
		return fmt.Errorf("%sattention.key_length_mla/value_length_mla (%d, %d) do not give the latent-attention head sizes", m.prefix, kl, vl)
	}
	ml.QKNopeHeadDim, ml.VHeadDim = kl-ml.QKRopeHeadDim, vl
	g.MLA = ml
	g.HeadDim, s.hasHD = kl, true
	g.VHeadDim = vl
	g.NKVHeads, s.hasKV = g.NHeads, true
	return nil
}

// ggufRopeTypes maps rope.scaling.type values to the scaling qkv models.
var ggufRopeTypes = map[string]string{"none": "", "linear": RopeScalingLinear, "yarn": RopeScalingYaRN}

func ggufRope(m ggufMeta, a *Arch, s *geoSource) error {
	g := &s.geo
	if g.HeadDim <= 0 {
		return nil
	}
	rotBase := g.HeadDim
	if g.MLA != nil {
		rotBase = g.MLA.QKRopeHeadDim
	}
	g.RotaryDims = rotBase
	if rd, ok, err := m.count("rope.dimension_count"); err != nil {
		return err
	} else if ok {
		if rd == 0 || rd > rotBase || rd%2 != 0 {
			return fmt.Errorf("%srope.dimension_count is %d, which does not fit head_dim %d (it must be even and at most head_dim)", m.prefix, rd, rotBase)
		}
		g.RotaryDims = rd
	}
	g.RopeTheta = 10000
	if th, ok, err := m.positive("rope.freq_base"); err != nil {
		return err
	} else if ok {
		g.RopeTheta = th
	}
	if a.RopeStyle != "" {
		g.RopeStyle = a.RopeStyle
	}
	// Scaling.
	if kv, ok := m.lookup("rope.scaling.type"); ok {
		t, _ := kv.String()
		kind, known := ggufRopeTypes[t]
		switch {
		case !known:
			s.unsupported("metadata_key", m.prefix+"rope.scaling.type", "model uses rope scaling type '%s', which qkv does not implement", t)
		case kind != "":
			sc := &RopeScaling{Type: kind}
			var err error
			if sc.Factor, _, err = m.positive("rope.scaling.factor"); err != nil {
				return err
			}
			if sc.Factor == 0 {
				return fmt.Errorf("%srope.scaling.factor is missing: rope scaling type '%s' needs it", m.prefix, t)
			}
			if sc.OriginalMaxPositions, _, err = m.count("rope.scaling.original_context_length"); err != nil {
				return err
			}
			if sc.MaxPositions, _, err = m.count("context_length"); err != nil {
				return err
			}
			for _, f := range []struct {
				key string
				dst *float64
			}{{"rope.scaling.yarn_beta_fast", &sc.BetaFast}, {"rope.scaling.yarn_beta_slow", &sc.BetaSlow}, {"rope.scaling.attn_factor", &sc.AttentionFactor}} {
				if *f.dst, _, err = m.positive(f.key); err != nil {
					return err
				}
			}
			if lm, ok, err := m.positive("rope.scaling.yarn_log_multiplier"); err != nil {
				return err
			} else if ok {
				// The converter writes 0.1·mscale_all_dim; mscale itself is not written.
				sc.MScaleAllDim, sc.MScale = lm/0.1, lm/0.1
				s.assume("metadata_key", m.prefix+"rope.scaling.yarn_log_multiplier", "the GGUF does not carry YaRN's mscale; qkv assumes mscale = mscale_all_dim = %g (DeepSeek's published configs)", lm/0.1)
			}
			if a.Name == "gpt_oss" && kind == RopeScalingYaRN {
				f := false
				sc.Truncate = &f
				s.assume("metadata_key", m.prefix+"rope.scaling.type", "the GGUF does not carry YaRN's truncate; qkv uses false, as GPT-OSS's config.json sets it")
			}
			g.RopeScaling = sc
		}
	}
	if t := m.c.Tensor("rope_freqs.weight"); t != nil {
		ff, err := ropeFreqFactors(m.c, t, g.RotaryDims)
		if err != nil {
			return err
		}
		if g.RopeScaling != nil {
			s.unsupported("tensor", t.Name, "model has both %srope.scaling.type and tensor %s, which qkv does not combine", m.prefix, t.Name)
		} else {
			g.RopeScaling = &RopeScaling{Type: RopeScalingFreqFactors, FreqFactors: ff}
		}
	}
	if a.LocalRope {
		g.LocalRopeTheta = 10000
		if th, ok, err := m.positive("rope.freq_base_swa"); err != nil {
			return err
		} else if ok {
			g.LocalRopeTheta = th
		} else {
			s.assume("metadata_key", m.prefix+"rope.freq_base_swa", "the GGUF has no rope.freq_base_swa; sliding layers use base 10000 (llama.cpp's default)")
		}
	} else if _, ok := m.lookup("rope.freq_base_swa"); ok {
		s.unsupported("metadata_key", m.prefix+"rope.freq_base_swa", "model gives sliding layers their own RoPE base (%srope.freq_base_swa), which the %s entry of qkv's registry does not apply", m.prefix, g.Arch)
	}
	return nil
}

// ropeFreqFactors decodes llama.cpp's rope_freqs tensor (Llama 3.1's RoPE
// scaling as one divisor per rotary frequency).
func ropeFreqFactors(c *Checkpoint, t *Tensor, rot int) ([]float64, error) {
	if len(t.Shape) != 1 || int(t.Shape[0]) != rot/2 {
		return nil, &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("has shape %v, expected [%d] (one factor per rotary frequency)", t.Shape, rot/2)}
	}
	v, err := c.DecodeNew(t)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(v))
	for i, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
			return nil, &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("factor %d is %v, not a positive number", i, x)}
		}
		out[i] = f
	}
	return out, nil
}

// ggufScale: attention.scale where the file gives it; Gemma's rules, which
// the GGUF cannot carry, stated as what llama.cpp assumes.
func ggufScale(m ggufMeta, a *Arch, s *geoSource) error {
	g := &s.geo
	if v, ok, err := m.positive("attention.scale"); err != nil {
		return err
	} else if ok {
		g.ScoreScale, g.ScoreScaleRule = v, m.prefix+"attention.scale"
		return nil
	}
	switch a.Scale {
	case ScaleQueryPreAttn:
		d := g.HeadDim
		rule := "head_dim^-0.5"
		if (a.Name == "gemma2" && g.NLayers == 46) || (a.Name == "gemma3" && g.NLayers == 62) {
			if g.NHeads > 0 && g.DModel%g.NHeads == 0 {
				d, rule = g.DModel/g.NHeads, "(d_model / n_heads)^-0.5"
			}
		}
		if d > 0 {
			g.ScoreScale, g.ScoreScaleRule = 1/math.Sqrt(float64(d)), rule+" (llama.cpp's rule: the GGUF has no query_pre_attn_scalar)"
			s.assume("metadata_key", "query_pre_attn_scalar", "the GGUF does not carry query_pre_attn_scalar; qkv scales scores by %s as llama.cpp does, which matches the released %s models but may differ from this model's config.json", rule, a.Name)
		}
	case ScaleMLA:
		if g.MLA == nil || g.HeadDim <= 0 {
			return nil
		}
		scale := 1 / math.Sqrt(float64(g.HeadDim))
		rule := "(qk_nope_head_dim + qk_rope_head_dim)^-0.5"
		if r := g.RopeScaling; r != nil && r.Type == RopeScalingYaRN && r.MScaleAllDim > 0 && r.Factor > 1 {
			mm := 0.1*r.MScaleAllDim*math.Log(r.Factor) + 1
			scale *= mm * mm
			rule += " × mscale² (YaRN)"
		}
		g.ScoreScale, g.ScoreScaleRule = scale, rule
	}
	return nil
}

// ggufLayerTypes settles sliding and chunked layers: the window from the
// metadata, the pattern from attention.sliding_window_pattern where the
// file has it, otherwise llama.cpp's rule for the architecture (stated).
func ggufLayerTypes(m ggufMeta, a *Arch, s *geoSource) error {
	g := &s.geo
	n := g.NLayers
	window, hasWindow, err := m.count("attention.sliding_window")
	if err != nil {
		return err
	}
	hasWindow = hasWindow && window > 0 // 0: no window (Phi-3 converters write it)
	if a.NoPE {
		if n <= 0 {
			return nil
		}
		types := make([]string, n)
		for i := range types {
			types[i] = LayerChunkedAttention
			if (i+1)%4 == 0 {
				types[i] = LayerFullAttention
				g.NoRoPELayers = append(g.NoRoPELayers, i)
			}
		}
		g.LayerTypes, g.AttentionChunk = types, 8192
		g.QueryTemperature = &QueryTemperature{FloorScale: 8192, AttnScale: 0.1}
		if e, _, _ := m.count("expert_count"); e == 128 {
			g.QKNorm, g.QKNormEps, g.QKNormRoPEOnly = QKNormNone, 0, false
		}
		s.assume("metadata_key", "general.architecture", "the GGUF carries no NoPE layer pattern, attention chunk size, query temperature or QK-norm switch; qkv follows llama.cpp: every 4th layer without RoPE, chunks of 8192 on the others, temperature floor 8192 scale 0.1, L2 Q/K norm unless the model has 128 experts")
		return nil
	}
	if a.Sliding == SlidingNone {
		if hasWindow {
			s.unsupported("metadata_key", m.prefix+"attention.sliding_window", "model sets a sliding window (%sattention.sliding_window = %d), which the %s entry of qkv's registry does not apply", m.prefix, window, g.Arch)
		}
		return nil
	}
	if !hasWindow || n <= 0 {
		return nil
	}
	var types []string
	if kv, ok := m.lookup("attention.sliding_window_pattern"); ok {
		if p, ok := kv.Uint(); ok && p > 0 && p < 1<<31 {
			types = repeatType(n, func(i int) bool { return (i+1)%int(p) != 0 })
		} else {
			l, err := m.values(kv)
			if err != nil {
				return err
			}
			if len(l) != n {
				return fmt.Errorf("%sattention.sliding_window_pattern is %s, not one flag per layer (%d)", m.prefix, describeKV(kv), n)
			}
			types = make([]string, n)
			for i, x := range l {
				b, ok := x.(bool)
				if !ok {
					return fmt.Errorf("%sattention.sliding_window_pattern holds %v, not a bool", m.prefix, x)
				}
				types[i] = LayerFullAttention
				if b {
					types[i] = LayerSlidingAttention
				}
			}
		}
	} else {
		switch a.Sliding {
		case SlidingAll:
			types = repeatType(n, func(int) bool { return true })
		case SlidingAlternate:
			types = repeatType(n, func(i int) bool { return i%2 == 0 })
			if a.Name != "gemma2" {
				s.assume("metadata_key", m.prefix+"attention.sliding_window_pattern", "the GGUF carries no sliding-window layer pattern; qkv follows llama.cpp: even layers slide")
			}
		case SlidingPattern:
			p := a.SlidingPattern
			types = repeatType(n, func(i int) bool { return (i+1)%p != 0 })
			s.assume("metadata_key", m.prefix+"attention.sliding_window_pattern", "the GGUF carries no sliding-window layer pattern; qkv follows llama.cpp: every %dth layer is global, the others slide (config.json's sliding_window_pattern may differ)", p)
		case SlidingQwen:
			return nil
		}
	}
	g.LayerTypes, g.SlidingWindow = types, window
	return nil
}
