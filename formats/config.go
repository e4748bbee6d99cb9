package formats

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
)

// cfg wraps a config.json object (numbers are json.Number).
type cfg map[string]any

func (c cfg) has(key string) bool {
	v, ok := c[key]
	return ok && v != nil
}

func (c cfg) str(key string) string {
	s, _ := c[key].(string)
	return s
}

// num returns a number (json.Number, float64 or int) as float64.
func (c cfg) num(key string) (float64, bool) {
	f, ok := anyNum(c[key])
	return f, ok && !math.IsNaN(f) && !math.IsInf(f, 0)
}

func anyNum(v any) (float64, bool) {
	switch v := v.(type) {
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			// Out of float64 range: ParseFloat returns ±Inf with the error.
			if math.IsInf(f, 0) {
				return f, true
			}
			return 0, false
		}
		return f, true
	case float64:
		return v, true
	case int:
		return float64(v), true
	}
	return 0, false
}

// int returns the first of keys that holds a non-negative integer that fits
// comfortably in an int.
func (c cfg) int(keys ...string) (int, string, bool) {
	for _, k := range keys {
		f, ok := c.num(k)
		if ok && f >= 0 && f == math.Trunc(f) && f < 1<<40 {
			return int(f), k, true
		}
	}
	return 0, "", false
}

func (c cfg) float(keys ...string) (float64, string, bool) {
	for _, k := range keys {
		if f, ok := c.num(k); ok {
			return f, k, true
		}
	}
	return 0, "", false
}

func (c cfg) boolean(key string, def bool) bool {
	if b, ok := c[key].(bool); ok {
		return b
	}
	return def
}

func (c cfg) object(key string) cfg {
	m, _ := c[key].(map[string]any)
	return cfg(m)
}

// architectures returns config.json's "architectures" list.
func (c cfg) architectures() []string {
	l, _ := c["architectures"].([]any)
	var out []string
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// sortedKeys returns m's keys in order (for deterministic output).
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mulFits multiplies non-negative ints, reporting overflow past limit.
func mulFits(limit int64, xs ...int) (int, bool) {
	p := int64(1)
	for _, x := range xs {
		if x < 0 {
			return 0, false
		}
		if x != 0 && p > limit/int64(x) {
			return 0, false
		}
		p *= int64(x)
	}
	return int(p), true
}

// ---- checked values: a key that is present must hold a usable value ----

// configError is a config value qkv refuses, naming the key.
func configError(key, format string, args ...any) error {
	return fmt.Errorf("config.json %s %s", key, fmt.Sprintf(format, args...))
}

// positive returns a key's value when it is a finite number > 0; ok is false
// when the key is absent or null, err when it holds anything else.
func (c cfg) positive(key, where string) (float64, bool, error) {
	v, present := c[key]
	if !present || v == nil {
		return 0, false, nil
	}
	f, isNum := anyNum(v)
	switch {
	case !isNum:
		return 0, false, configError(where+key, "is %s, not a number", describeValue(v))
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0, false, configError(where+key, "is %v, which is not a finite number", v)
	case f <= 0:
		return 0, false, configError(where+key, "is %v, which is not positive", v)
	}
	return f, true, nil
}

// count returns a key's value when it is a positive integer below 2^31.
func (c cfg) count(key, where string) (int, bool, error) {
	f, ok, err := c.positive(key, where)
	if !ok || err != nil {
		return 0, ok, err
	}
	if f != math.Trunc(f) || f >= 1<<31 {
		return 0, false, configError(where+key, "is %v, which is not a usable count", c[key])
	}
	return int(f), true, nil
}

// epsilon returns a norm epsilon: a finite number ≥ 0.
func (c cfg) epsilon(keys ...string) (float64, string, bool, error) {
	for _, k := range keys {
		v, present := c[k]
		if !present || v == nil {
			continue
		}
		f, isNum := anyNum(v)
		if !isNum || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f >= 1 {
			return 0, k, false, configError(k, "is %s, which is not a usable norm epsilon", describeValue(v))
		}
		return f, k, true, nil
	}
	return 0, "", false, nil
}

func describeValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case bool:
		return fmt.Sprint(v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprint(v)
}

// ---- RoPE parameters in both config generations ----

// ropeBlock is one set of rotary parameters: transformers 5's
// rope_parameters (or one of its per-layer-type entries), or transformers
// 4's rope_theta + rope_scaling.
type ropeBlock struct {
	theta    float64 // 0: not given
	scaling  *RopeScaling
	partial  float64 // partial_rotary_factor, 0: not given
	typeName string  // as written ("default", "llama3", ...)
}

// knownRopeTypes maps rope_type values to the scaling type qkv models;
// "default" means no scaling.
var knownRopeTypes = map[string]string{
	"default": "", "linear": RopeScalingLinear, "dynamic": RopeScalingDynamic, "yarn": RopeScalingYaRN,
	"longrope": RopeScalingLongRoPE, "llama3": RopeScalingLlama3,
	"su": RopeScalingLongRoPE, // Phi-3's first name for LongRoPE
}

// parseRope reads one rope block object. maxPos is the model's
// max_position_embeddings (0 when not given).
func parseRope(o cfg, where string, maxPos int, u *[]Unsupported) (ropeBlock, error) {
	var b ropeBlock
	if o == nil {
		return b, nil
	}
	var err error
	if b.theta, _, err = o.positive("rope_theta", where); err != nil {
		return b, err
	}
	if b.partial, _, err = o.positive("partial_rotary_factor", where); err != nil {
		return b, err
	}
	if b.partial > 1 {
		return b, configError(where+"partial_rotary_factor", "is %v, more than 1", b.partial)
	}
	t := o.str("rope_type")
	if t == "" {
		t = o.str("type")
	}
	if t == "" {
		t = "default"
	}
	b.typeName = t
	kind, known := knownRopeTypes[t]
	if !known {
		*u = append(*u, Unsupported{Kind: "config_key", Name: where + "rope_type",
			Message: fmt.Sprintf("model uses %s type '%s', which qkv does not implement", strings.TrimSuffix(where, "."), t)})
		return b, nil
	}
	if kind == "" {
		return b, nil
	}
	s := &RopeScaling{Type: kind, MaxPositions: maxPos}
	for _, f := range []struct {
		key string
		dst *float64
	}{{"factor", &s.Factor}, {"low_freq_factor", &s.LowFreqFactor}, {"high_freq_factor", &s.HighFreqFactor},
		{"beta_fast", &s.BetaFast}, {"beta_slow", &s.BetaSlow}, {"attention_factor", &s.AttentionFactor},
		{"mscale", &s.MScale}, {"mscale_all_dim", &s.MScaleAllDim}} {
		if *f.dst, _, err = o.positive(f.key, where); err != nil {
			return b, err
		}
	}
	if s.OriginalMaxPositions, _, err = o.count("original_max_position_embeddings", where); err != nil {
		return b, err
	}
	if v, ok := o["truncate"].(bool); ok {
		s.Truncate = &v
	}
	for _, f := range []struct {
		key string
		dst *[]float64
	}{{"short_factor", &s.ShortFactor}, {"long_factor", &s.LongFactor}} {
		if !o.has(f.key) {
			continue
		}
		l, ok := o[f.key].([]any)
		if !ok || len(l) > 1<<16 {
			return b, configError(where+f.key, "is not a list of numbers")
		}
		for _, x := range l {
			v, ok := anyNum(x)
			if !ok || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
				return b, configError(where+f.key, "holds %s, which is not a positive number", describeValue(x))
			}
			*f.dst = append(*f.dst, v)
		}
	}
	if s.Factor == 0 && kind != RopeScalingLongRoPE {
		return b, configError(where+"factor", "is missing: rope_type '%s' needs it", t)
	}
	b.scaling = s
	return b, nil
}

// sameRope reports whether two blocks describe the same rotary embedding
// (theta and partial factor compared where both give them).
func sameRope(a, b ropeBlock) bool {
	if a.theta != 0 && b.theta != 0 && a.theta != b.theta {
		return false
	}
	if a.partial != 0 && b.partial != 0 && a.partial != b.partial {
		return false
	}
	return reflect.DeepEqual(a.scaling, b.scaling)
}

// ropeSettings is what the two config generations say about RoPE: the
// global (full-attention) block and, for models with a local base, the
// sliding-layer block.
type ropeSettings struct {
	global, local ropeBlock
	hasLocal      bool
}

// readRope reads rope_parameters (transformers 5: flat, or keyed by layer
// type) and the legacy keys (rope_theta, rope_scaling, partial_rotary_factor,
// rope_local_base_freq), and refuses a config whose two forms disagree.
func readRope(c cfg, a *Arch, u *[]Unsupported) (ropeSettings, error) {
	var rs ropeSettings
	maxPos, _, _ := c.int("max_position_embeddings")
	if mp, ok, err := c.count("max_position_embeddings", ""); err == nil && ok {
		maxPos = mp
	}

	// transformers 4.
	var legacy ropeBlock
	var err error
	if legacy, err = parseRope(c.object("rope_scaling"), "rope_scaling.", maxPos, u); err != nil {
		return rs, err
	}
	if legacy.theta != 0 && c.has("rope_theta") {
		// rope_scaling.rope_theta (a transformers 5 mirror) must equal rope_theta.
		if th, _ := c.num("rope_theta"); th != legacy.theta {
			return rs, fmt.Errorf("config.json rope_scaling.rope_theta (%v) and rope_theta (%v) disagree", legacy.theta, c["rope_theta"])
		}
	}
	if th, ok, err := c.positive("rope_theta", ""); err != nil {
		return rs, err
	} else if ok {
		legacy.theta = th
	} else if th, k, ok := c.float("rotary_emb_base", "rope_base"); ok {
		if th <= 0 {
			return rs, configError(k, "is %v, which is not positive", th)
		}
		legacy.theta = th
	}
	if p, ok, err := c.positive("partial_rotary_factor", ""); err != nil {
		return rs, err
	} else if ok {
		if p > 1 {
			return rs, configError("partial_rotary_factor", "is %v, more than 1", p)
		}
		legacy.partial = p
	}
	legacyLocal := ropeBlock{}
	hasLegacyLocal := false
	if a.LocalRope {
		if th, ok, err := c.positive("rope_local_base_freq", ""); err != nil {
			return rs, err
		} else if ok {
			legacyLocal.theta, hasLegacyLocal = th, true
		}
	}
	hasLegacy := c.has("rope_theta") || c.has("rope_scaling") || c.has("rotary_emb_base") || c.has("rope_base")

	// Phi-3 keeps original_max_position_embeddings at the top level, where
	// transformers' LongRoPE and YaRN read it when the block does not say.
	if om, ok, err := c.count("original_max_position_embeddings", ""); err != nil {
		return rs, err
	} else if ok && legacy.scaling != nil && legacy.scaling.OriginalMaxPositions == 0 {
		legacy.scaling.OriginalMaxPositions = om
	}

	// transformers 5.
	rp := c.object("rope_parameters")
	if c.has("rope_parameters") && rp == nil {
		return rs, configError("rope_parameters", "is %s, not an object", describeValue(c["rope_parameters"]))
	}
	nested := false
	for _, k := range []string{LayerFullAttention, LayerSlidingAttention, "chunked_attention"} {
		if rp.has(k) {
			nested = true
		}
	}
	switch {
	case rp == nil:
		rs.global = legacy
		rs.local, rs.hasLocal = legacyLocal, hasLegacyLocal
	case !nested:
		b, err := parseRope(rp, "rope_parameters.", maxPos, u)
		if err != nil {
			return rs, err
		}
		if hasLegacy && !sameRope(b, legacy) {
			return rs, fmt.Errorf("config.json rope_parameters (%s) and the legacy rope_theta/rope_scaling (%s) disagree; qkv cannot tell which the model uses", describeRope(b), describeRope(legacy))
		}
		if b.theta == 0 {
			b.theta = legacy.theta
		}
		if b.partial == 0 {
			b.partial = legacy.partial
		} else if legacy.partial != 0 && legacy.partial != b.partial {
			return rs, fmt.Errorf("config.json rope_parameters.partial_rotary_factor (%v) and partial_rotary_factor (%v) disagree", b.partial, legacy.partial)
		}
		rs.global = b
		rs.local, rs.hasLocal = legacyLocal, hasLegacyLocal
	default:
		for _, k := range sortedKeys(rp) {
			if k != LayerFullAttention && k != LayerSlidingAttention {
				*u = append(*u, Unsupported{Kind: "config_key", Name: "rope_parameters." + k,
					Message: fmt.Sprintf("model gives rotary parameters for layer type '%s', which qkv does not implement", k)})
			}
		}
		g, err := parseRope(rp.object(LayerFullAttention), "rope_parameters.full_attention.", maxPos, u)
		if err != nil {
			return rs, err
		}
		if hasLegacy && !sameRope(g, legacy) {
			return rs, fmt.Errorf("config.json rope_parameters.full_attention (%s) and the legacy rope_theta/rope_scaling (%s) disagree; qkv cannot tell which the model uses", describeRope(g), describeRope(legacy))
		}
		if g.theta == 0 {
			g.theta = legacy.theta
		}
		rs.global = g
		if rp.has(LayerSlidingAttention) {
			l, err := parseRope(rp.object(LayerSlidingAttention), "rope_parameters.sliding_attention.", maxPos, u)
			if err != nil {
				return rs, err
			}
			if hasLegacyLocal && l.theta != 0 && l.theta != legacyLocal.theta {
				return rs, fmt.Errorf("config.json rope_parameters.sliding_attention.rope_theta (%v) and rope_local_base_freq (%v) disagree", l.theta, legacyLocal.theta)
			}
			if l.theta == 0 {
				l.theta = legacyLocal.theta
			}
			rs.local, rs.hasLocal = l, true
		} else {
			rs.local, rs.hasLocal = legacyLocal, hasLegacyLocal
		}
	}
	return rs, nil
}

func describeRope(b ropeBlock) string {
	var parts []string
	if b.theta != 0 {
		parts = append(parts, fmt.Sprintf("theta %v", b.theta))
	}
	if b.scaling == nil {
		parts = append(parts, "no scaling")
	} else {
		parts = append(parts, fmt.Sprintf("%s factor %v", b.scaling.Type, b.scaling.Factor))
	}
	if b.partial != 0 {
		parts = append(parts, fmt.Sprintf("partial_rotary_factor %v", b.partial))
	}
	return strings.Join(parts, ", ")
}

// checkDType refuses a config whose dtype (transformers 5) and torch_dtype
// (transformers 4) disagree.
func checkDType(c cfg) error {
	if c.has("dtype") && c.has("torch_dtype") {
		a, b := fmt.Sprint(c["dtype"]), fmt.Sprint(c["torch_dtype"])
		if strings.TrimPrefix(a, "torch.") != strings.TrimPrefix(b, "torch.") {
			return fmt.Errorf("config.json dtype (%s) and torch_dtype (%s) disagree", a, b)
		}
	}
	return nil
}
