package formats

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// role is what a tensor is to a layer.
type role int

const (
	roleNone role = iota
	roleQ
	roleK
	roleV
	roleO
	roleQKV  // fused Q, K and V
	roleNorm // the norm whose output attention reads
	roleCross
	roleQNorm
	roleKNorm
	roleSinks
	roleQA
	roleQANorm
	roleQB
	roleKVA
	roleKVANorm
	roleKVB
	roleKB
	roleVB
	// Outside attention: known, not extracted.
	rolePostAttnNorm
	roleFFNNorm
	rolePostFFNNorm
	roleMLP
	roleOther
	roleIgnore
	// roleUnknown: in a layer, but not a name of the architecture.
	roleUnknown
)

// attention reports whether the role belongs to the attention block.
func (r role) attention() bool {
	return r >= roleQ && r <= roleVB && r != roleCross
}

var roleNames = map[role]string{
	roleQ: "W_Q", roleK: "W_K", roleV: "W_V", roleO: "W_O", roleQKV: "fused QKV", roleNorm: "attention norm",
	roleQNorm: "Q norm", roleKNorm: "K norm", roleSinks: "attention sinks", roleQA: "q_a_proj",
	roleQANorm: "q_a_layernorm", roleQB: "q_b_proj", roleKVA: "kv_a_proj_with_mqa", roleKVANorm: "kv_a_layernorm",
	roleKVB: "kv_b_proj", roleKB: "k_b", roleVB: "v_b",
}

// match is one tensor classified by name.
type match struct {
	t      *Tensor
	stack  string // the name prefix before the layer list ("model.", "model.decoder.", "")
	layer  int    // the layer number in the name
	role   role
	bias   bool   // a bias (or a norm's bias) rather than a weight
	leaf   string // the module name (q_proj, c_attn, attn_qkv, ...)
	module string // the attention module (self_attn, attention.self, ...)
	rest   string // the name after the layer number
}

// Hugging Face layer names: PREFIX(layers|layer|h|blocks).N.REST.
var hfLayerRe = lazyRegexp(`^(.*?)(?:layers|layer|h|blocks)\.(\d+)\.(.+)$`)

// llama.cpp layer names.
var ggufLayerRe = lazyRegexp(`^blk\.(\d+)\.(.+)$`)

// expertDigits matches a path segment that is a number (an expert index).
var expertDigits = lazyRegexp(`(^|\.)\d+(\.|$)`)

// ggufNames are llama.cpp's tensor names (the same for every architecture)
// by role.
var ggufNames = map[string]role{
	"attn_q": roleQ, "attn_k": roleK, "attn_v": roleV, "attn_output": roleO, "attn_qkv": roleQKV,
	"attn_norm": roleNorm, "attn_q_norm": roleQNorm, "attn_k_norm": roleKNorm, "attn_sinks": roleSinks,
	"attn_q_a": roleQA, "attn_q_a_norm": roleQANorm, "attn_q_b": roleQB, "attn_kv_a_mqa": roleKVA,
	"attn_kv_a_norm": roleKVANorm, "attn_kv_b": roleKVB, "attn_k_b": roleKB, "attn_v_b": roleVB,
	"post_attention_norm": rolePostAttnNorm, "attn_output_norm": rolePostAttnNorm,
	"ffn_norm": roleFFNNorm, "attn_norm_2": roleFFNNorm, "post_ffw_norm": rolePostFFNNorm, "layer_output_norm": rolePostFFNNorm,
	"ffn_gate": roleMLP, "ffn_up": roleMLP, "ffn_down": roleMLP, "ffn_gate_inp": roleMLP,
	"ffn_gate_exps": roleMLP, "ffn_up_exps": roleMLP, "ffn_down_exps": roleMLP, "ffn_gate_up_exps": roleMLP,
	"ffn_gate_shexp": roleMLP, "ffn_up_shexp": roleMLP, "ffn_down_shexp": roleMLP, "ffn_gate_inp_shexp": roleMLP,
	"exp_probs_b": roleMLP, "ffn_gate.N": roleMLP, "ffn_up.N": roleMLP, "ffn_down.N": roleMLP,
	"attn_rot_embd": roleIgnore,
}

// hfTable is an entry's Hugging Face layer names by role.
type hfTable struct {
	names  map[string]role
	cross  string
	module string // the attention module prefix ("self_attn.")
}

// hfTables are the registry's tensor names by role, per architecture,
// built on first use (not at start-up).
var hfTables = sync.OnceValue(func() map[*Arch]*hfTable {
	tables := map[*Arch]*hfTable{}
	for _, a := range archEntries {
		t := &hfTable{names: map[string]role{}}
		n := a.HF
		for _, x := range []struct {
			s string
			r role
		}{{n.Q, roleQ}, {n.K, roleK}, {n.V, roleV}, {n.O, roleO}, {n.QKV, roleQKV}, {n.AttnNorm, roleNorm},
			{n.QNorm, roleQNorm}, {n.KNorm, roleKNorm}, {n.Sinks, roleSinks}, {n.QA, roleQA}, {n.QANorm, roleQANorm},
			{n.QB, roleQB}, {n.KVA, roleKVA}, {n.KVANorm, roleKVANorm}, {n.KVB, roleKVB},
			{n.PostAttnNorm, rolePostAttnNorm}, {n.FFNNorm, roleFFNNorm}, {n.PostFFNNorm, rolePostFFNNorm},
			{n.Gate, roleMLP}, {n.Up, roleMLP}, {n.Down, roleMLP}, {n.GateUp, roleMLP}, {n.Router, roleMLP},
			{n.Experts, roleMLP}, {n.Shared, roleMLP}, {n.Other, roleOther}, {n.Ignore, roleIgnore}} {
			for _, name := range alternatives(x.s) {
				if prev, dup := t.names[name]; dup && prev != x.r {
					panic(fmt.Sprintf("registry: %s: %q has two roles", a.Name, name))
				}
				t.names[name] = x.r
			}
		}
		t.cross = n.Cross
		for _, s := range []string{n.O, n.Q, n.QKV, n.QA} {
			if s = firstAlt(s); s != "" {
				if i := strings.LastIndexByte(s, '.'); i > 0 {
					t.module = s[:i+1]
					break
				}
			}
		}
		tables[a] = t
	}
	return tables
})

func firstAlt(s string) string {
	if i := strings.IndexByte(s, '|'); i >= 0 {
		return s[:i]
	}
	return s
}

// splitParam splits "x.weight" / "x.bias" into the module and whether it is a
// bias; a name without either suffix is a parameter of its own.
func splitParam(rest string) (string, bool) {
	switch {
	case strings.HasSuffix(rest, ".weight"):
		return strings.TrimSuffix(rest, ".weight"), false
	case strings.HasSuffix(rest, ".bias"):
		return strings.TrimSuffix(rest, ".bias"), true
	}
	return rest, false
}

// classify sorts a checkpoint's tensors by role: with the architecture's
// own names when the registry knows it, by generic patterns otherwise.
func classify(c *Checkpoint, a *Arch) []match {
	var out []match
	for _, t := range c.Tensors {
		var m match
		var ok bool
		switch {
		case c.Format == FormatGGUF:
			m, ok = classifyGGUF(t.Name)
		case a != nil:
			m, ok = classifyHF(hfTables()[a], t.Name)
		default:
			m, ok = classifyName(c.Format, t.Name)
		}
		if ok {
			m.t = t
			out = append(out, m)
		}
	}
	return out
}

func classifyGGUF(name string) (match, bool) {
	s := ggufLayerRe().FindStringSubmatch(name)
	if s == nil {
		return match{}, false
	}
	n, err := strconv.Atoi(s[1])
	if err != nil {
		return match{}, false
	}
	base, bias := splitParam(s[2])
	r, ok := ggufNames[expertDigits().ReplaceAllString(base, "${1}N${2}")]
	if !ok {
		r = roleUnknown
	}
	return match{layer: n, role: r, bias: bias, leaf: base, rest: s[2]}, true
}

func classifyHF(t *hfTable, name string) (match, bool) {
	s := hfLayerRe().FindStringSubmatch(name)
	if s == nil {
		return match{}, false
	}
	n, err := strconv.Atoi(s[2])
	if err != nil {
		return match{}, false
	}
	rest := s[3]
	m := match{stack: s[1], layer: n, rest: rest, module: strings.TrimSuffix(t.module, ".")}
	base, bias := splitParam(rest)
	m.bias = bias
	m.leaf = base[strings.LastIndexByte(base, '.')+1:]
	if t.cross != "" && strings.HasPrefix(rest, t.cross+".") {
		m.role = roleCross
		return m, true
	}
	if r, ok := t.names[base]; ok {
		m.role = r
		return m, true
	}
	if r, ok := t.names[expertDigits().ReplaceAllString(base, "${1}N${2}")]; ok {
		m.role = r
		return m, true
	}
	m.role = roleUnknown
	return m, true
}

// ---- generic patterns, for architectures the registry does not know ----

// Hugging Face names: PREFIX(layers|layer|h|blocks).N.MODULE.LEAF.(weight|bias).
var hfAttnRe = lazyRegexp(`^(.*?)(?:layers|layer|h|blocks)\.(\d+)\.(self_attn|self_attention|attention\.self|attention\.output|attn\.attention|attention|attn|mixer)\.([A-Za-z_]+)\.(weight|bias)$`)

// Pre-attention norms of Hugging Face models.
var hfNormRe = lazyRegexp(`^(.*?)(?:layers|layer|h|blocks)\.(\d+)\.(input_layernorm|ln_1|ln_attn|attention_norm|self_attn_layer_norm|norm_1)\.(weight|bias)$`)

// Cross-attention modules (BART's encoder_attn), listed but not extracted.
var hfCrossRe = lazyRegexp(`^(.*?)(?:layers|layer|h|blocks)\.(\d+)\.(encoder_attn|crossattention|cross_attn)\.([A-Za-z_.]+)\.(weight|bias)$`)

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

// classifyName classifies by generic patterns: any architecture's common
// attention names (used for unknown model types and LoRA adapters).
func classifyName(f Format, name string) (match, bool) {
	if f == FormatGGUF {
		m, ok := classifyGGUF(name)
		return m, ok && m.role != roleUnknown
	}
	if s := hfAttnRe().FindStringSubmatch(name); s != nil {
		r := hfLeafRole(s[3], s[4])
		n, err := strconv.Atoi(s[2])
		if r != roleNone && err == nil {
			return match{stack: s[1], layer: n, role: r, bias: s[5] == "bias", leaf: s[4], module: s[3]}, true
		}
	}
	if s := hfNormRe().FindStringSubmatch(name); s != nil {
		n, err := strconv.Atoi(s[2])
		if err == nil {
			return match{stack: s[1], layer: n, role: roleNorm, bias: s[4] == "bias", leaf: s[3]}, true
		}
	}
	if s := hfCrossRe().FindStringSubmatch(name); s != nil {
		n, err := strconv.Atoi(s[2])
		if err == nil {
			return match{stack: s[1], layer: n, role: roleCross, bias: s[5] == "bias", leaf: s[4], module: s[3]}, true
		}
	}
	return match{}, false
}

var digitsRe = lazyRegexp(`\d+`)

// namePatterns returns the checkpoint's tensor names with digit runs replaced
// by N, deduplicated, in first-seen order, at most max of them, and the
// total number of distinct patterns.
func namePatterns(c *Checkpoint, max int) ([]string, int) {
	seen := map[string]bool{}
	var out []string
	for _, t := range c.Tensors {
		p := digitsRe().ReplaceAllString(t.Name, "N")
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
// how to map them by hand. none: no known architecture says where the
// attention should be either, so as far as qkv can tell there is none (the
// error wraps ErrNoAttention).
func unknownLayoutError(c *Checkpoint, arch, why string, none bool) error {
	pats, total := namePatterns(c, 15)
	var b strings.Builder
	if arch != "" {
		fmt.Fprintf(&b, "architecture %q: ", arch)
	}
	b.WriteString(why)
	fmt.Fprintf(&b, ". Tensor name patterns seen (digits as N, %d of %d): %s; %s", len(pats), total, quoteJoin(pats, len(pats)), mapHelp)
	if none {
		return &Error{File: c.Path, Offset: -1, Err: noAttentionf("%s", b.String())}
	}
	return &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("%s", b.String())}
}

// lazyRegexp compiles expr on first use, so that start-up compiles no
// expression a command does not need.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
