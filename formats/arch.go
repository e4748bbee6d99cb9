package formats

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// role is what a tensor is to a layer's attention.
type role int

const (
	roleNone role = iota
	roleQ
	roleK
	roleV
	roleO
	roleQKV  // fused Q, K and V
	roleNorm // the pre-attention norm
	roleCross
)

// match is one tensor classified by name.
type match struct {
	t      *Tensor
	stack  string // the name prefix before the layer list ("model.", "model.decoder.", "")
	layer  int    // the layer number in the name
	role   role
	bias   bool   // a bias (or a norm's bias) rather than a weight
	leaf   string // the module name (q_proj, c_attn, attn_qkv, ...)
	module string // the attention module (self_attn, attention.self, ...)
}

// Hugging Face names: PREFIX(layers|layer|h|blocks).N.MODULE.LEAF.(weight|bias).
var hfAttnRe = regexp.MustCompile(`^(.*?)(?:layers|layer|h|blocks)\.(\d+)\.(self_attn|self_attention|attention\.self|attention\.output|attn\.attention|attention|attn|mixer)\.([A-Za-z_]+)\.(weight|bias)$`)

// Pre-attention norms of Hugging Face models.
var hfNormRe = regexp.MustCompile(`^(.*?)(?:layers|layer|h|blocks)\.(\d+)\.(input_layernorm|ln_1|ln_attn|attention_norm|self_attn_layer_norm|norm_1)\.(weight|bias)$`)

// Cross-attention modules (BART's encoder_attn), listed but not extracted.
var hfCrossRe = regexp.MustCompile(`^(.*?)(?:layers|layer|h|blocks)\.(\d+)\.(encoder_attn|crossattention|cross_attn)\.([A-Za-z_.]+)\.(weight|bias)$`)

// llama.cpp names.
var ggufAttnRe = regexp.MustCompile(`^blk\.(\d+)\.(attn_q|attn_k|attn_v|attn_output|attn_qkv|attn_norm)\.(weight|bias)$`)

// hfLeafRole maps a Hugging Face attention leaf module to its role.
func hfLeafRole(module, leaf string) role {
	switch leaf {
	case "q_proj", "query", "q", "q_lin":
		return roleQ
	case "k_proj", "key", "k", "k_lin":
		return roleK
	case "v_proj", "value", "v", "v_lin":
		return roleV
	case "o_proj", "out_proj", "c_proj", "o", "out_lin":
		return roleO
	case "dense":
		if module != "attention.self" {
			return roleO
		}
	case "qkv_proj", "query_key_value", "c_attn", "Wqkv", "W_pack":
		return roleQKV
	}
	return roleNone
}

func ggufLeafRole(leaf string) role {
	switch leaf {
	case "attn_q":
		return roleQ
	case "attn_k":
		return roleK
	case "attn_v":
		return roleV
	case "attn_output":
		return roleO
	case "attn_qkv":
		return roleQKV
	case "attn_norm":
		return roleNorm
	}
	return roleNone
}

// classify sorts a checkpoint's tensors into attention matches.
func classify(c *Checkpoint) []match {
	var out []match
	for _, t := range c.Tensors {
		if m, ok := classifyName(c.Format, t.Name); ok {
			m.t = t
			out = append(out, m)
		}
	}
	return out
}

func classifyName(f Format, name string) (match, bool) {
	if f == FormatGGUF {
		s := ggufAttnRe.FindStringSubmatch(name)
		if s == nil {
			return match{}, false
		}
		n, err := strconv.Atoi(s[1])
		if err != nil {
			return match{}, false
		}
		return match{layer: n, role: ggufLeafRole(s[2]), bias: s[3] == "bias", leaf: s[2]}, true
	}
	if s := hfAttnRe.FindStringSubmatch(name); s != nil {
		r := hfLeafRole(s[3], s[4])
		n, err := strconv.Atoi(s[2])
		if r != roleNone && err == nil {
			return match{stack: s[1], layer: n, role: r, bias: s[5] == "bias", leaf: s[4], module: s[3]}, true
		}
	}
	if s := hfNormRe.FindStringSubmatch(name); s != nil {
		n, err := strconv.Atoi(s[2])
		if err == nil {
			return match{stack: s[1], layer: n, role: roleNorm, bias: s[4] == "bias", leaf: s[3]}, true
		}
	}
	if s := hfCrossRe.FindStringSubmatch(name); s != nil {
		n, err := strconv.Atoi(s[2])
		if err == nil {
			return match{stack: s[1], layer: n, role: roleCross, bias: s[5] == "bias", leaf: s[4], module: s[3]}, true
		}
	}
	return match{}, false
}

var digitsRe = regexp.MustCompile(`\d+`)

// namePatterns returns the checkpoint's tensor names with digit runs replaced
// by N, deduplicated, in first-seen order, at most max of them, and the
// total number of distinct patterns.
func namePatterns(c *Checkpoint, max int) ([]string, int) {
	seen := map[string]bool{}
	var out []string
	for _, t := range c.Tensors {
		p := digitsRe.ReplaceAllString(t.Name, "N")
		if seen[p] {
			continue
		}
		seen[p] = true
		if len(out) < max {
			out = append(out, p)
		}
	}
	return out, len(seen)
}

// mapHelp is the guidance for models whose layout this package does not know.
const mapHelp = "map them with --map q=REGEX,k=REGEX,v=REGEX,o=REGEX (each regular expression matches one projection's weight tensor names, its first capture group is the layer number, e.g. q='^blocks\\.(\\d+)\\.attn\\.wq\\.weight$'), and give the geometry with --n-heads N (and --n-kv-heads N, --head-dim N) when config.json or the GGUF metadata does not"

// unknownLayoutError explains that no attention tensors were recognised and
// how to map them by hand.
func unknownLayoutError(c *Checkpoint, arch, why string) error {
	pats, total := namePatterns(c, 15)
	var b strings.Builder
	if arch != "" {
		fmt.Fprintf(&b, "architecture %q: ", arch)
	}
	b.WriteString(why)
	fmt.Fprintf(&b, ". Tensor name patterns seen (digits as N, %d of %d): %s; %s", len(pats), total, strings.Join(pats, ", "), mapHelp)
	return &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("%s", b.String())}
}

// ---- config.json and GGUF metadata access ----

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
	switch v := c[key].(type) {
	case json.Number:
		f, err := v.Float64()
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
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
