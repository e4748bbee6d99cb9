package formats

import (
	"fmt"
	"math"
	"strings"
)

// geoSource records where the geometry came from, for error messages.
type geoSource struct {
	geo   Geometry
	from  string // "config.json", "GGUF metadata", "tensor shapes"
	hasKV bool   // the KV head count was given, not defaulted
	hasHD bool   // head_dim was given explicitly
}

func (s *geoSource) unsupported(kind, name, format string, args ...any) {
	s.geo.Unsupported = append(s.geo.Unsupported, Unsupported{Kind: kind, Name: name, Message: fmt.Sprintf(format, args...)})
}

func (s *geoSource) assume(kind, name, format string, args ...any) {
	s.geo.Assumptions = append(s.geo.Assumptions, Unsupported{Kind: kind, Name: name, Message: fmt.Sprintf(format, args...)})
}

// hfModelType returns config.json's model_type (or one implied by its
// "architectures" class names), looking into text_config for multimodal
// wrappers, and the config object that holds the geometry.
func hfModelType(c cfg) (string, cfg) {
	if c == nil {
		return "", nil
	}
	if !c.has("hidden_size") && !c.has("n_embd") && !c.has("d_model") {
		if tc := c.object("text_config"); tc != nil {
			if tc.str("model_type") == "" && c.str("model_type") != "" {
				tc = copyCfg(tc)
				tc["model_type"] = c.str("model_type")
			}
			c = tc
		}
	}
	if mt := c.str("model_type"); mt != "" {
		return mt, c
	}
	best, bestLen := "", 0
	for _, cls := range c.architectures() {
		if a := registry().byClass[cls]; a != nil {
			return a.ModelTypes[0], c
		}
		for _, a := range archEntries {
			for _, known := range a.Classes {
				p := classPrefix(known)
				if len(p) > bestLen && strings.HasPrefix(cls, p) {
					best, bestLen = a.ModelTypes[0], len(p)
				}
			}
		}
	}
	return best, c
}

func copyCfg(c cfg) cfg {
	out := cfg{}
	for k, v := range c {
		out[k] = v
	}
	return out
}

// classPrefix strips a transformers class name's head ("ForCausalLM",
// "LMHeadModel", "Model"): what every class of the family starts with.
func classPrefix(cls string) string {
	if i := strings.Index(cls, "For"); i > 0 {
		return cls[:i]
	}
	for _, s := range []string{"LMHeadModel", "Model"} {
		if strings.HasSuffix(cls, s) && len(cls) > len(s) {
			return strings.TrimSuffix(cls, s)
		}
	}
	return cls
}

// genericArch describes what qkv assumes of a model type the registry does
// not know: the common decoder (causal, RoPE unless the config says
// otherwise), with the norm kind taken from the config and the tensors.
var genericArch = Arch{Name: "", Norm: ""}

// hfGeometry reads the attention geometry from config.json. stack is the
// layer stack the geometry is for ("model.decoder." selects BART's decoder
// settings). a is a copy of the registry entry (config hooks may refine it),
// or of genericArch.
func hfGeometry(c cfg, modelType string, a *Arch, stack string) (geoSource, error) {
	g := Geometry{Arch: modelType, Causal: !a.Encoder, PreNorm: a.Placement == PreNorm}
	s := geoSource{from: "config.json"}
	if c == nil {
		s.geo = g
		return s, nil
	}
	if err := checkDType(c); err != nil {
		return s, err
	}
	g.DModel, _, _ = c.int("hidden_size", "n_embd", "d_model", "n_embed", "dim")
	layerKeys := []string{"num_hidden_layers", "n_layer", "num_layers", "n_layers", "decoder_layers"}
	headKeys := []string{"num_attention_heads", "n_head", "num_heads", "n_heads", "decoder_attention_heads"}
	if strings.Contains(stack, "encoder") {
		layerKeys = append([]string{"encoder_layers"}, layerKeys...)
		headKeys = append([]string{"encoder_attention_heads"}, headKeys...)
		g.Causal = false
	} else if strings.Contains(stack, "decoder") {
		layerKeys = append([]string{"decoder_layers"}, layerKeys...)
		headKeys = append([]string{"decoder_attention_heads"}, headKeys...)
	}
	g.NLayers, _, _ = c.int(layerKeys...)
	g.NHeads, _, _ = c.int(headKeys...)
	g.VocabSize, _, _ = c.int("vocab_size", "padded_vocab_size")
	g.NKVHeads, _, s.hasKV = c.int("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num")
	if hd, _, ok := c.int("head_dim", "kv_channels"); ok && hd > 0 && !a.MLA {
		g.HeadDim, s.hasHD = hd, true
	} else if g.NHeads > 0 && g.DModel%g.NHeads == 0 {
		g.HeadDim = g.DModel / g.NHeads
	}
	if a.config != nil {
		s.geo = g
		a.config(c, a, &s)
		g = s.geo
	}
	if g.NKVHeads == 0 {
		g.NKVHeads = g.NHeads
	}
	s.geo = g
	if a.MLA {
		if err := readMLA(c, &s); err != nil {
			return s, err
		}
	}
	g = s.geo

	// Norms: the kind from the entry (or, for unknown types, the epsilon's
	// key), the epsilon from the config.
	eps, key, ok, err := c.epsilon("rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps", "norm_epsilon", "layernorm_epsilon", "norm_eps")
	if err != nil {
		return s, err
	}
	if ok {
		g.NormEps = eps
		if a.Norm == "" {
			g.Norm = NormLayerNorm
			if key == "rms_norm_eps" {
				g.Norm = NormRMS
			}
		}
	}
	if a.Norm != "" {
		g.Norm = a.Norm
		if !ok && a.Norm == NormLayerNorm {
			g.NormEps = 1e-5 // nn.LayerNorm's default (BART's config has no epsilon)
		}
	}
	s.geo = g

	// Positions.
	switch a.Position {
	case PosALiBi:
		s.geo.ALiBi = true
	case PosRoPE, PosConfigALiBi:
		if !s.geo.ALiBi && s.geo.HeadDim > 0 {
			if err := hfRope(c, a, &s); err != nil {
				return s, err
			}
		}
	}
	if a.Name == "" {
		hfGenericRope(c, &s)
	}
	g = s.geo
	if !g.PreNorm {
		g.Norm = NormNone
	}

	// What else changes attention.
	g.QKNorm = a.QKNorm
	if a.QKNormSwitch != "" && !c.boolean(a.QKNormSwitch, true) {
		g.QKNorm = QKNormNone
	}
	if g.QKNorm != QKNormNone {
		g.QKNormEps = eps
		g.QKNormRoPEOnly = a.QKNormRoPEOnly
	}
	g.NormWeightOffset = a.NormOffset
	g.Sinks = a.Sinks
	if a.EmbedScale && g.DModel > 0 {
		g.EmbeddingScale = math.Sqrt(float64(g.DModel))
	}
	s.geo = g
	if err := hfScale(c, a, &s); err != nil {
		return s, err
	}
	if a.Softcap {
		if v, ok, err := c.positive("attn_logit_softcapping", ""); err != nil {
			return s, err
		} else if ok {
			s.geo.Softcap = v
		}
	}
	if err := hfLayerTypes(c, a, &s); err != nil {
		return s, err
	}
	for _, kv := range a.NotModeled {
		v, present := c[kv.Key]
		if !present || v == nil {
			continue
		}
		if fmt.Sprint(v) != fmt.Sprint(kv.Value) {
			s.unsupported("config_key", kv.Key, "model sets %s = %v, which qkv does not implement (it models %v)", kv.Key, v, kv.Value)
		}
	}
	if qc := quantConfig(c); qc != nil {
		checkQuantMethod(qc, &s)
	}
	if a.Incomplete != "" {
		s.unsupported("config_key", "model_type", "the %s entry of qkv's architecture registry is incomplete: %s", a.Name, a.Incomplete)
	}
	if a.Name == "" && modelType != "" {
		s.unsupported("config_key", "model_type", "model_type '%s' is not in qkv's architecture registry; its projections are extracted by generic names, but its attention settings are guesses", modelType)
	}
	return s, nil
}

// hfRope reads RoPE: base, partial rotary, scaling, the local base of
// sliding layers, and the rotation style.
func hfRope(c cfg, a *Arch, s *geoSource) error {
	g := &s.geo
	rs, err := readRope(c, a, &g.Unsupported)
	if err != nil {
		return err
	}
	g.RopeTheta = a.RopeThetaDefault
	if g.RopeTheta == 0 {
		g.RopeTheta = 10000
	}
	if rs.global.theta > 0 {
		g.RopeTheta = rs.global.theta
	}
	g.RopeScaling = rs.global.scaling
	g.RotaryDims = g.HeadDim
	rotBase := g.HeadDim
	if a.MLA && g.MLA != nil {
		g.RotaryDims, rotBase = g.MLA.QKRopeHeadDim, g.MLA.QKRopeHeadDim
	}
	if rd, ok, err := c.count("rotary_dim", ""); err != nil {
		return err
	} else if ok {
		g.RotaryDims = rd
	} else if rs.global.partial > 0 {
		g.RotaryDims = int(rs.global.partial * float64(rotBase))
	} else if f, _, ok := c.float("rotary_pct"); ok && f > 0 && f <= 1 {
		g.RotaryDims = int(f * float64(rotBase))
	} else if a.RotaryFraction > 0 {
		g.RotaryDims = int(a.RotaryFraction * float64(rotBase))
	}
	if g.RotaryDims > rotBase || g.RotaryDims%2 != 0 {
		return fmt.Errorf("config.json: %d rotary dimensions do not fit head_dim %d (they must be an even number at most head_dim)", g.RotaryDims, rotBase)
	}
	if a.RopeStyle != "" && g.RopeStyle == "" {
		g.RopeStyle = a.RopeStyle
	}
	if a.LocalRope {
		lt := rs.local.theta
		if lt == 0 {
			lt = 10000 // Gemma 3's default rope_local_base_freq
		}
		g.LocalRopeTheta, g.LocalRopeScaling = lt, rs.local.scaling
	}
	return nil
}

// hfGenericRope is what qkv assumes of a model type the registry does not
// know: rotate_half RoPE when the config gives a rotary setting, none
// otherwise (the rerun refuses such a model anyway; layers shows it).
func hfGenericRope(c cfg, s *geoSource) {
	g := &s.geo
	g.RotaryDims, g.RopeTheta = 0, 0
	rotary := false
	for _, k := range []string{"rope_theta", "rotary_emb_base", "rope_base", "rotary_dim", "rotary_pct", "partial_rotary_factor", "rope_scaling", "rope_parameters"} {
		rotary = rotary || c.has(k)
	}
	if !rotary || g.HeadDim == 0 {
		return
	}
	g.RopeTheta = 10000
	if th, _, ok := c.float("rope_theta", "rotary_emb_base", "rope_base"); ok && th > 0 {
		g.RopeTheta = th
	}
	g.RotaryDims = g.HeadDim
	if rd, _, ok := c.int("rotary_dim"); ok && rd > 0 && rd <= g.HeadDim {
		g.RotaryDims = rd
	} else if f, _, ok := c.float("partial_rotary_factor", "rotary_pct"); ok && f > 0 && f <= 1 {
		g.RotaryDims = int(f * float64(g.HeadDim))
	}
}

// readMLA reads the latent-attention dimensions (DeepSeek V2/V3).
func readMLA(c cfg, s *geoSource) error {
	g := &s.geo
	m := &MLA{}
	var err error
	if c.has("q_lora_rank") {
		if m.QLoraRank, _, err = c.count("q_lora_rank", ""); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		key string
		dst *int
	}{{"kv_lora_rank", &m.KVLoraRank}, {"qk_nope_head_dim", &m.QKNopeHeadDim}, {"qk_rope_head_dim", &m.QKRopeHeadDim}, {"v_head_dim", &m.VHeadDim}} {
		v, ok, err := c.count(f.key, "")
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("config.json has no %s, which multi-head latent attention needs", f.key)
		}
		*f.dst = v
	}
	g.MLA = m
	g.HeadDim, s.hasHD = m.QKNopeHeadDim+m.QKRopeHeadDim, true
	g.VHeadDim = m.VHeadDim
	g.NKVHeads, s.hasKV = g.NHeads, true
	return nil
}

// hfScale settles the score scale.
func hfScale(c cfg, a *Arch, s *geoSource) error {
	g := &s.geo
	switch a.Scale {
	case ScaleQueryPreAttn:
		v, ok, err := c.positive("query_pre_attn_scalar", "")
		if err != nil {
			return err
		}
		if !ok {
			v = 256 // the Gemma 2/3 configuration classes' default
			s.assume("config_key", "query_pre_attn_scalar", "config.json has no query_pre_attn_scalar; qkv uses the configuration class's default 256")
		}
		g.ScoreScale, g.ScoreScaleRule = 1/math.Sqrt(v), fmt.Sprintf("query_pre_attn_scalar^-0.5 (query_pre_attn_scalar %v)", v)
	case ScaleMLA:
		if g.MLA == nil {
			return nil
		}
		scale := 1 / math.Sqrt(float64(g.HeadDim))
		rule := "(qk_nope_head_dim + qk_rope_head_dim)^-0.5"
		if r := g.RopeScaling; r != nil && r.Type == RopeScalingYaRN && r.MScaleAllDim > 0 && r.Factor > 1 {
			m := 0.1*r.MScaleAllDim*math.Log(r.Factor) + 1
			scale *= m * m
			rule += " × mscale² (YaRN: mscale = 0.1·mscale_all_dim·ln(factor) + 1)"
		}
		g.ScoreScale, g.ScoreScaleRule = scale, rule
	}
	return nil
}

// hfLayerTypes settles which layers slide (or are chunked, or have no RoPE)
// from layer_types (transformers 5) and the legacy keys, refusing the two
// when they disagree.
func hfLayerTypes(c cfg, a *Arch, s *geoSource) error {
	g := &s.geo
	n := g.NLayers
	var explicit []string
	if c.has("layer_types") {
		l, ok := c["layer_types"].([]any)
		if !ok || len(l) > 1<<20 {
			return configError("layer_types", "is not a list of strings")
		}
		for _, x := range l {
			t, ok := x.(string)
			if !ok {
				return configError("layer_types", "holds %s, not a string", describeValue(x))
			}
			explicit = append(explicit, t)
		}
		if n > 0 && len(explicit) != n {
			return configError("layer_types", "lists %d layers, but the model has %d", len(explicit), n)
		}
	}
	window, hasWindow, err := c.count("sliding_window", "")
	if err != nil {
		return err
	}
	// The legacy rule, where its keys are present.
	var legacy []string
	legacyKeys := ""
	if n > 0 {
		switch a.Sliding {
		case SlidingAll:
			if hasWindow {
				legacy, legacyKeys = repeatType(n, func(int) bool { return true }), "sliding_window"
			}
		case SlidingQwen:
			if c.has("use_sliding_window") {
				legacyKeys = "use_sliding_window"
				mw, _, _ := c.int("max_window_layers")
				on := c.boolean("use_sliding_window", false) && hasWindow
				legacy = repeatType(n, func(i int) bool { return on && i >= mw })
			}
		case SlidingAlternate:
			legacy = repeatType(n, func(i int) bool { return i%2 == 0 })
		case SlidingPattern:
			p := a.SlidingPattern
			if c.has("sliding_window_pattern") {
				v, _, err := c.count("sliding_window_pattern", "")
				if err != nil {
					return err
				}
				p, legacyKeys = v, "sliding_window_pattern"
			}
			legacy = repeatType(n, func(i int) bool { return (i+1)%p != 0 })
		}
	}
	types := legacy
	switch {
	case explicit != nil && legacyKeys != "" && !sameStrings(explicit, legacy):
		return fmt.Errorf("config.json layer_types (%s) and %s (%s) disagree; qkv cannot tell which layers use a sliding window", shortTypes(explicit), legacyKeys, shortTypes(legacy))
	case explicit != nil:
		types = explicit
	}
	if a.NoPE {
		return llama4Layers(c, a, s, explicit)
	}
	sliding := false
	for _, t := range types {
		switch t {
		case LayerFullAttention:
		case LayerSlidingAttention:
			sliding = true
		default:
			s.unsupported("config_key", "layer_types", "model uses layer type '%s', which qkv does not implement", t)
			return nil
		}
	}
	if !sliding {
		return nil
	}
	if a.Sliding == SlidingNone {
		s.unsupported("config_key", "layer_types", "layer_types makes some layers sliding-window layers, which the %s entry of qkv's registry does not apply", firstNonEmpty(a.Name, g.Arch))
		return nil
	}
	if !hasWindow {
		if a.WindowDefault == 0 {
			return configError("sliding_window", "is not set, but some layers are sliding_attention layers")
		}
		window = a.WindowDefault
		s.assume("config_key", "sliding_window", "config.json has no sliding_window; qkv uses the configuration class's default %d", window)
	}
	g.LayerTypes, g.SlidingWindow = types, window
	return nil
}

// llama4Layers reads Llama 4's NoPE layers (no_rope_layers: 1 = RoPE),
// chunked attention on RoPE layers and query temperature tuning on NoPE
// layers.
func llama4Layers(c cfg, a *Arch, s *geoSource, explicit []string) error {
	g := &s.geo
	n := g.NLayers
	rope := make([]bool, n)
	if c.has("no_rope_layers") {
		l, ok := c["no_rope_layers"].([]any)
		if !ok || len(l) < n {
			return configError("no_rope_layers", "is not a list of %d flags", n)
		}
		for i := 0; i < n; i++ {
			v, ok := anyNum(l[i])
			if !ok || (v != 0 && v != 1) {
				return configError("no_rope_layers", "holds %s, not 0 or 1", describeValue(l[i]))
			}
			rope[i] = v == 1
		}
	} else {
		interval := 4
		if v, ok, err := c.count("no_rope_layer_interval", ""); err != nil {
			return err
		} else if ok {
			interval = v
		}
		for i := range rope {
			rope[i] = (i+1)%interval != 0
		}
	}
	chunk := 8192
	chunkSet := true
	if v, present := c["attention_chunk_size"]; present && v == nil {
		chunkSet = false
	} else if v, ok, err := c.count("attention_chunk_size", ""); err != nil {
		return err
	} else if ok {
		chunk = v
	}
	types := make([]string, n)
	for i := range types {
		g.NoRoPELayers = appendIf(g.NoRoPELayers, !rope[i], i)
		types[i] = LayerFullAttention
		if rope[i] && chunkSet {
			types[i] = LayerChunkedAttention
		}
	}
	if explicit != nil && !sameStrings(explicit, types) {
		return fmt.Errorf("config.json layer_types (%s) and no_rope_layers/attention_chunk_size (%s) disagree", shortTypes(explicit), shortTypes(types))
	}
	if chunkSet {
		g.LayerTypes, g.AttentionChunk = types, chunk
	}
	if c.boolean("attn_temperature_tuning", true) && len(g.NoRoPELayers) > 0 {
		fs, _, err := c.positive("floor_scale", "")
		if err != nil {
			return err
		}
		if fs == 0 {
			fs = 8192
		}
		as, ok, err := c.positive("attn_scale", "")
		if err != nil {
			return err
		}
		if !ok {
			as = 0.1
		}
		g.QueryTemperature = &QueryTemperature{FloorScale: fs, AttnScale: as}
	}
	return nil
}

func appendIf(l []int, cond bool, v int) []int {
	if cond {
		return append(l, v)
	}
	return l
}

func repeatType(n int, sliding func(int) bool) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = LayerFullAttention
		if sliding(i) {
			out[i] = LayerSlidingAttention
		}
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// shortTypes abbreviates a layer-type list for messages: "S F S".
func shortTypes(l []string) string {
	var b strings.Builder
	for i, t := range l {
		if i == 12 {
			fmt.Fprintf(&b, " … (%d layers)", len(l))
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		switch t {
		case LayerFullAttention:
			b.WriteString("full")
		case LayerSlidingAttention:
			b.WriteString("sliding")
		default:
			b.WriteString(t)
		}
	}
	return b.String()
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// weightQuantMethods are quantization_config.quant_method values whose
// stored weights qkv decodes exactly: 8-bit weights times their scale
// tensors (scales.go), and GPT-OSS's MXFP4 experts (forward.go). Activation
// quantization at run time (FP8 inference kernels) is not part of the
// weights and not modeled.
var weightQuantMethods = map[string]bool{"fp8": true, "fbgemm_fp8": true, "compressed-tensors": true, "mxfp4": true}

// checkQuantMethod reports a quantization qkv does not decode: its
// tensors are read as stored, so every statistic would describe the packed
// integers, not the weights.
func checkQuantMethod(qc cfg, s *geoSource) {
	m := qc.str("quant_method")
	switch {
	case m == "":
		s.unsupported("config_key", "quantization_config", "config.json has a quantization_config without quant_method; qkv cannot tell how the weights are stored")
	case !weightQuantMethods[m]:
		s.unsupported("config_key", "quantization_config.quant_method", "model is quantized with %s, whose stored tensors qkv does not dequantize: the extracted matrices would not be the model's weights", m)
	case m == "compressed-tensors":
		if f := qc.str("format"); f != "" && f != "float-quantized" && f != "int-quantized" && f != "naive-quantized" && f != "dense" {
			s.unsupported("config_key", "quantization_config.format", "compressed-tensors format %q (packed weights) is not decoded by qkv", f)
		}
	}
}
