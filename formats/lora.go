package formats

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
)

// AdapterInfo describes a LoRA adapter.
type AdapterInfo struct {
	Kind      string  `json:"kind"` // "peft" or "mlx"
	BaseModel string  `json:"base_model,omitempty"`
	Rank      int     `json:"rank"`
	Alpha     float64 `json:"alpha,omitempty"`
	Scale     float64 `json:"scale"`
	// ScaleRule says how Scale was derived ("lora_alpha / r", ...).
	ScaleRule string `json:"scale_rule"`
	// BaseConfig is the base model's config.json qkv read (beside the
	// adapter, --base, or the Hugging Face cache), "" when none.
	BaseConfig string `json:"base_config,omitempty"`
}

// An expanded update ΔW = B·A has out·in elements from r·(out+in) stored
// ones, so a tiny file could ask for gigabytes. Expansion is allowed up to
// maxLoRAExpansion times the factors' size (real adapters: r = 8 on a
// 4096-wide model expands 256×) and never beyond maxLoRAElements (ΔW of a
// 16384-wide model).
const (
	maxLoRAExpansion = 4096
	maxLoRAElements  = 1 << 28
)

// LoRASource is a LoRA update ΔW = Scale · B · A of one projection.
type LoRASource struct {
	A, B *Tensor
	// MLX: A is stored as lora_a [in, r] and B as lora_b [r, out] (the
	// transposes of PEFT's lora_A [r, in] and lora_B [out, r]).
	MLX   bool
	Rank  int
	Scale float64
}

var (
	peftLoRARe = lazyRegexp(`^(.*)\.lora_([AB])(?:\.[A-Za-z0-9_-]+)?\.weight$`)
	mlxLoRARe  = lazyRegexp(`^(.*)\.lora_([ab])$`)
)

// isAdapter reports whether the checkpoint is a LoRA adapter.
func isAdapter(c *Checkpoint) bool {
	if c.Format != FormatSafetensors {
		return false
	}
	for _, t := range c.Tensors {
		if peftLoRARe().MatchString(t.Name) || mlxLoRARe().MatchString(t.Name) {
			return true
		}
	}
	return false
}

// loraPair is one module's A and B.
type loraPair struct {
	m    match
	a, b *Tensor
	mlx  bool
}

// findAdapter builds a Model whose projections are LoRA updates.
func findAdapter(c *Checkpoint, opts FindOptions) (*Model, error) {
	m := &Model{Checkpoint: c, IsAdapter: true}
	ac := cfg(c.AdapterConfig)
	pairs := map[string]*loraPair{}
	var order []string
	var ignored []string
	for _, t := range c.Tensors {
		var module, which string
		mlx := false
		if s := peftLoRARe().FindStringSubmatch(t.Name); s != nil {
			module, which = s[1], strings.ToLower(s[2])
		} else if s := mlxLoRARe().FindStringSubmatch(t.Name); s != nil {
			module, which, mlx = s[1], s[2], true
		} else {
			continue
		}
		inner := strings.TrimPrefix(module, "base_model.model.")
		mt, ok := classifyName(FormatSafetensors, inner+".weight")
		if !ok || mt.role < roleQ || mt.role > roleQKV {
			ignored = append(ignored, module)
			continue
		}
		p := pairs[module]
		if p == nil {
			p = &loraPair{m: mt, mlx: mlx}
			pairs[module] = p
			order = append(order, module)
		}
		mt.t = t
		if which == "a" {
			p.a = t
		} else {
			p.b = t
		}
	}
	if len(pairs) == 0 {
		why := "a LoRA adapter, but none of its lora_A/lora_B (lora_a/lora_b) tensors belongs to an attention projection this tool knows"
		if len(ignored) > 0 {
			why += fmt.Sprintf(" (it adapts %s)", strings.Join(dedupe(ignored, 5), ", "))
		}
		return nil, unknownLayoutError(c, "", why, false)
	}

	if err := checkAdapterKind(c, ac); err != nil {
		return nil, err
	}
	info := &AdapterInfo{Kind: "peft"}
	for _, mod := range order {
		if pairs[mod].mlx {
			info.Kind = "mlx"
		}
	}
	info.BaseModel = firstNonEmpty(ac.str("base_model_name_or_path"), ac.str("model"))

	// Shapes and ranks.
	dModel := 0
	matches := make([]match, 0, len(order))
	for _, mod := range order {
		p := pairs[mod]
		if p.a == nil || p.b == nil {
			have := p.a
			if have == nil {
				have = p.b
			}
			return nil, &Error{File: c.Path, Tensor: have.Name, Offset: -1, Err: errors.New("LoRA module has only one of its two factors (A and B)")}
		}
		if len(p.a.Shape) != 2 || len(p.b.Shape) != 2 {
			return nil, &Error{File: c.Path, Tensor: p.a.Name, Offset: -1, Err: fmt.Errorf("LoRA factors must be 2-D (A %v, B %v)", p.a.Shape, p.b.Shape)}
		}
		out, in, ra, rb := p.b.Shape[0], p.a.Shape[1], p.a.Shape[0], p.b.Shape[1]
		if p.mlx {
			out, in, ra, rb = p.b.Shape[1], p.a.Shape[0], p.a.Shape[1], p.b.Shape[0]
		}
		if ra != rb || ra < 1 || ra > 1<<20 {
			return nil, &Error{File: c.Path, Tensor: p.b.Name, Offset: -1, Err: fmt.Errorf("LoRA ranks disagree or are implausible: A %v, B %v", p.a.Shape, p.b.Shape)}
		}
		if out < 1 || in < 1 || out*in > maxLoRAElements || float64(out)*float64(in) > maxLoRAExpansion*float64(ra)*float64(out+in) {
			return nil, &Error{File: c.Path, Tensor: p.b.Name, Offset: -1, Err: fmt.Errorf("the LoRA update would be [%d, %d] from rank-%d factors: more than this tool expands (at most %d× the factors' size and %d elements)", out, in, ra, maxLoRAExpansion, maxLoRAElements)}
		}
		if dModel == 0 && p.m.role != roleO {
			dModel = int(in)
		}
		mt := p.m
		mt.t = p.a
		matches = append(matches, mt)
	}
	// Every update must agree on d_model: the input of W_Q/W_K/W_V and the
	// output of W_O.
	for _, mod := range order {
		p := pairs[mod]
		out, in := p.b.Shape[0], p.a.Shape[1]
		if p.mlx {
			out, in = p.b.Shape[1], p.a.Shape[0]
		}
		d := in
		if p.m.role == roleO {
			d = out
		}
		if dModel != 0 && int(d) != dModel {
			return nil, &Error{File: c.Path, Tensor: p.a.Name, Offset: -1, Err: fmt.Errorf("LoRA update [%d, %d] does not fit d_model %d of the other updates", out, in, dModel)}
		}
	}

	// The config's numbers, checked against the factors.
	ranks := map[string]int{}
	for _, mod := range order {
		p := pairs[mod]
		r := p.a.Shape[0]
		if p.mlx {
			r = p.a.Shape[1]
		}
		ranks[mod] = int(r)
	}
	if err := checkAdapterConfig(c, ac, ranks); err != nil {
		return nil, err
	}

	// Scale.
	scaleFor, err := loraScale(c, ac, info)
	if err != nil {
		return nil, err
	}
	if opts.LoRAScale != 0 {
		if math.IsNaN(opts.LoRAScale) || math.IsInf(opts.LoRAScale, 0) || opts.LoRAScale < 0 {
			return nil, fmt.Errorf("--lora-scale %v is not a finite positive number", opts.LoRAScale)
		}
		fixed := opts.LoRAScale
		scaleFor = func(string, int) (float64, string) { return fixed, "--lora-scale" }
	}

	// Geometry: what the adapter and flags give.
	g, base, err := adapterBase(c, info, opts, dModel)
	if err != nil {
		return nil, err
	}
	if opts.NHeads > 0 {
		g.NHeads = opts.NHeads
		g.NKVHeads = 0
	}
	if opts.NKVHeads > 0 {
		g.NKVHeads = opts.NKVHeads
	}
	if opts.HeadDim > 0 {
		g.HeadDim = opts.HeadDim
	}
	stacks := chooseStacks(matches)
	m.OtherStacks = stacks.others
	chosen := map[string]bool{}
	for _, s := range stacks.chosen {
		chosen[s] = true
	}
	layers := map[string]map[int]*LayerSource{}
	maxLayer := -1
	for _, mod := range order {
		p := pairs[mod]
		if !chosen[p.m.stack] {
			continue
		}
		ra := p.a.Shape[0]
		out, in := p.b.Shape[0], p.a.Shape[1]
		if p.mlx {
			ra, out, in = p.a.Shape[1], p.b.Shape[1], p.a.Shape[0]
		}
		scale, rule := scaleFor(mod, int(ra))
		if info.ScaleRule == "" {
			info.Rank, info.Scale, info.ScaleRule = int(ra), scale, rule
		}
		byN := layers[p.m.stack]
		if byN == nil {
			byN = map[int]*LayerSource{}
			layers[p.m.stack] = byN
		}
		ls := byN[p.m.layer]
		if ls == nil {
			ls = &LayerSource{Stack: p.m.stack, Number: p.m.layer}
			byN[p.m.layer] = ls
		}
		src := &LoRASource{A: p.a, B: p.b, MLX: p.mlx, Rank: int(ra), Scale: scale}
		if p.m.role == roleQKV {
			if err := splitFusedLoRA(c, ls, p, src, int(out), int(in), &g, base); err != nil {
				return nil, err
			}
			maxLayer = max(maxLayer, p.m.layer)
			continue
		}
		proj := roleProj(p.m.role)
		if ls.Proj(proj) != nil {
			return nil, &Error{File: c.Path, Tensor: p.a.Name, Offset: -1, Err: fmt.Errorf("layer %d has two LoRA updates for %s", p.m.layer, proj)}
		}
		ls.setProj(proj, &ProjSource{Out: int(out), In: int(in), LoRA: src})
		maxLayer = max(maxLayer, p.m.layer)
	}
	offset := 0
	for _, s := range stacks.chosen {
		nums := sortedInts(layers[s])
		for _, n := range nums {
			ls := layers[s][n]
			ls.Index = offset + n
			m.Layers = append(m.Layers, *ls)
		}
		if len(nums) > 0 {
			offset += nums[len(nums)-1] + 1
		}
	}
	m.byIndex = map[int]int{}
	for i := range m.Layers {
		m.byIndex[m.Layers[i].Index] = i
	}
	if g.NLayers == 0 {
		g.NLayers = maxLayer + 1 // at least this many: the highest adapted layer
	}

	// Head geometry from the update shapes when the head count is known.
	if g.NHeads > 0 {
		for _, ls := range m.Layers {
			if g.HeadDim == 0 && ls.Q != nil && ls.Q.Out%g.NHeads == 0 {
				g.HeadDim = ls.Q.Out / g.NHeads
			}
			if g.HeadDim == 0 && ls.O != nil && ls.O.In%g.NHeads == 0 {
				g.HeadDim = ls.O.In / g.NHeads
			}
		}
		if g.HeadDim == 0 && g.DModel%g.NHeads == 0 {
			g.HeadDim = g.DModel / g.NHeads
		}
		if g.HeadDim == 0 && len(m.Layers) > 0 {
			return nil, &Error{File: c.Path, Offset: -1, Err: fmt.Errorf(
				"%d heads divide neither the LoRA updates' rows nor d_model %d, so no head_dim fits; check --n-heads, or give --head-dim", g.NHeads, g.DModel)}
		}
		if g.NKVHeads == 0 {
			for _, ls := range m.Layers {
				for _, ps := range []*ProjSource{ls.K, ls.V} {
					if ps != nil && g.NKVHeads == 0 && ps.Out%g.HeadDim == 0 {
						g.NKVHeads = ps.Out / g.HeadDim
					}
				}
			}
			if g.NKVHeads == 0 {
				g.NKVHeads = g.NHeads
			}
		}
		// Check every update against it.
		for _, ls := range m.Layers {
			want := map[Projection][2]int{
				ProjQ: {g.NHeads * g.HeadDim, g.DModel}, ProjK: {g.NKVHeads * g.HeadDim, g.DModel},
				ProjV: {g.NKVHeads * g.HeadDim, g.DModel}, ProjO: {g.DModel, g.NHeads * g.HeadDim}}
			for _, p := range Projections {
				ps := ls.Proj(p)
				if ps != nil && [2]int{ps.Out, ps.In} != want[p] {
					return nil, &Error{File: c.Path, Tensor: ps.LoRA.B.Name, Offset: -1, Err: fmt.Errorf(
						"the LoRA update of W_%s is [%d, %d] but %d heads, %d KV heads and head_dim %d need [%d, %d]; check --n-heads, --n-kv-heads and --head-dim",
						strings.ToUpper(string(p)), ps.Out, ps.In, g.NHeads, g.NKVHeads, g.HeadDim, want[p][0], want[p][1])}
				}
			}
		}
	} else {
		g.NKVHeads, g.HeadDim = 0, 0
	}
	adapterExtras(c, ac, &g)
	m.Geo = g
	m.Adapter = info
	return m, nil
}

// checkAdapterKind refuses adapters whose update is not scale·B·A: another
// PEFT method (AdaLoRA's B·(A ⊙ E)/r, LoHa, LoKr, IA³, …), DoRA (PEFT's
// use_dora, MLX's fine_tune_type "dora": W' = m ⊙ (W + sBA)/‖W + sBA‖,
// which needs the base weights), and a LoRA projection whose whole weight
// the adapter also replaces (modules_to_save).
func checkAdapterKind(c *Checkpoint, ac cfg) error {
	file := firstNonEmpty(c.AdapterConfigPath, c.Path)
	fail := func(tensor, format string, args ...any) error {
		return &Error{File: file, Tensor: tensor, Offset: -1, Err: fmt.Errorf(format, args...)}
	}
	if pt := ac.str("peft_type"); pt != "" && !strings.EqualFold(pt, "LORA") {
		return fail("", "adapter_config.json peft_type is %q: qkv reads LoRA adapters only (the %s update is not scale·B·A)", pt, pt)
	}
	if ac.boolean("use_dora", false) {
		return fail("", "adapter_config.json sets use_dora: a DoRA update m·(W + s·B·A)/‖W + s·B·A‖ − W needs the base weights and the magnitude vectors, which qkv does not model (its ΔW = s·B·A would be wrong)")
	}
	if ft := ac.str("fine_tune_type"); ft != "" && ft != "lora" {
		return fail("", "adapter_config.json fine_tune_type is %q: qkv reads LoRA adapters only", ft)
	}
	for _, t := range c.Tensors {
		n := t.Name
		switch {
		case strings.Contains(n, "lora_magnitude_vector"):
			return fail(n, "is a DoRA magnitude vector: a DoRA update needs the base weights, which qkv does not model (its ΔW = s·B·A would be wrong)")
		case strings.Contains(n, ".lora_E.") || strings.HasSuffix(n, ".lora_E"):
			return fail(n, "is an AdaLoRA singular-value vector: the update is B·(A ⊙ E)·scale/ranknum, not scale·B·A, which qkv does not model")
		case strings.HasSuffix(n, ".m") && c.Tensor(strings.TrimSuffix(n, ".m")+".lora_a") != nil:
			return fail(n, "is an MLX DoRA magnitude vector: a DoRA update needs the base weights, which qkv does not model")
		}
	}
	return nil
}

// adapterExtras reports what an adapter trains besides the low-rank
// updates qkv analyses — biases (bias "all"/"lora_only", lora_bias) and
// whole modules (modules_to_save) — and refuses nothing: ΔW = s·B·A is
// still exact, but it is not everything the adapter changes. A whole
// attention projection among them replaces that projection, so its ΔW is
// not the update: that is reported as such.
func adapterExtras(c *Checkpoint, ac cfg, g *Geometry) {
	seen := map[string]bool{}
	for _, t := range c.Tensors {
		if peftLoRARe().MatchString(t.Name) || mlxLoRARe().MatchString(t.Name) {
			continue
		}
		pat := digitsRe().ReplaceAllString(t.Name, "N")
		if seen[pat] {
			continue
		}
		seen[pat] = true
		inner := strings.TrimPrefix(t.Name, "base_model.model.")
		inner = strings.Replace(inner, ".modules_to_save.default.", ".", 1)
		msg := fmt.Sprintf("the adapter also holds %s, which qkv does not apply: the updates it reports are the low-rank ΔW = s·B·A only", pat)
		switch mt, ok := classifyName(FormatSafetensors, inner); {
		case strings.Contains(t.Name, ".lora_B.") && strings.HasSuffix(t.Name, ".bias"):
			msg = fmt.Sprintf("the adapter's LoRA updates carry biases (%s, lora_bias), which qkv does not apply: the updates it reports are ΔW = s·B·A without them", pat)
		case ok && mt.role >= roleQ && mt.role <= roleQKV && !mt.bias:
			msg = fmt.Sprintf("the adapter replaces the whole projection %s (modules_to_save): the model's new weight is that tensor, not the base weight plus the reported ΔW = s·B·A", pat)
		case ok && mt.role >= roleQ && mt.role <= roleQKV:
			msg = fmt.Sprintf("the adapter trains the projection bias %s (bias = %q), which qkv does not apply: the updates it reports are the weights' ΔW = s·B·A only", pat, ac.str("bias"))
		}
		g.Unsupported = append(g.Unsupported, Unsupported{Kind: "tensor", Name: pat, Message: msg})
	}
}

// loraScale returns a function giving each module's scale and how it was
// derived.
func loraScale(c *Checkpoint, ac cfg, info *AdapterInfo) (func(module string, r int) (float64, string), error) {
	if ac == nil {
		return func(string, int) (float64, string) { return 1, "no adapter_config.json: scale 1 assumed" }, nil
	}
	if lp := ac.object("lora_parameters"); lp != nil || info.Kind == "mlx" {
		// MLX-LM: y = x W^T + s · (x lora_a) lora_b. From 2024-01-25 to
		// 2024-06-01 mlx_lm's LoRALinear computed s = scale · alpha / rank
		// and its configs carried lora_parameters.alpha; later ones dropped
		// alpha and use s = scale.
		s, _, hasS := lp.float("scale")
		a, _, hasA := lp.float("alpha")
		switch {
		case hasS && hasA:
			info.Alpha = a
			return func(_ string, r int) (float64, string) {
				return s * a / float64(r), "lora_parameters.scale × alpha / rank: a config with lora_parameters.alpha comes from MLX-LM of 2024-01-25 to 2024-06-01, which trained with that scale (--lora-scale overrides)"
			}, nil
		case hasS:
			rule := "lora_parameters.scale (MLX-LM after 2024-06-01: no alpha)"
			if ac.has("lora_layers") {
				rule = "lora_parameters.scale: the config has the old lora_layers key but no alpha, and MLX-LM wrote alpha into every config while it used it, so the scale applies as is (--lora-scale overrides)"
			}
			return func(string, int) (float64, string) { return s, rule }, nil
		case hasA:
			info.Alpha = a
			return func(_ string, r int) (float64, string) {
				return a / float64(r), "lora_parameters.alpha / rank (no scale given)"
			}, nil
		}
		return func(string, int) (float64, string) {
			return 1, "lora_parameters has no scale or alpha: scale 1 assumed"
		}, nil
	}
	// PEFT.
	alpha, _, ok := ac.float("lora_alpha")
	if !ok && ac.has("lora_alpha") {
		return nil, &Error{File: firstNonEmpty(c.AdapterConfigPath, c.Path), Offset: -1, Err: fmt.Errorf("adapter_config.json lora_alpha is %s, which is not a finite number", describeValue(ac["lora_alpha"]))}
	}
	if !ok {
		return nil, &Error{File: firstNonEmpty(c.AdapterConfigPath, c.Path), Offset: -1, Err: errors.New("adapter_config.json has no lora_alpha, so the LoRA scale is unknown")}
	}
	info.Alpha = alpha
	rs := ac.boolean("use_rslora", false)
	type pat struct {
		re  *regexp.Regexp
		key string
		v   float64
	}
	var alphas []pat
	if ap := ac.object("alpha_pattern"); ap != nil {
		for _, k := range sortedKeys(ap) {
			v, ok := ap.num(k)
			re, err := regexp.Compile(`^(.*\.)?` + k + `$`)
			if ok && err == nil {
				alphas = append(alphas, pat{re, k, v})
			}
		}
	}
	return func(module string, r int) (float64, string) {
		a, src := alpha, "lora_alpha"
		name := strings.TrimPrefix(module, "base_model.model.")
		for _, p := range alphas {
			if p.re.MatchString(name) {
				a, src = p.v, fmt.Sprintf("alpha_pattern[%q] (%g)", p.key, p.v)
				break
			}
		}
		if rs {
			return a / math.Sqrt(float64(r)), src + " / sqrt(r) (use_rslora)"
		}
		return a / float64(r), src + " / r"
	}, nil
}

// checkAdapterConfig refuses adapter_config.json numbers that cannot be a
// LoRA's: a rank (PEFT r, MLX lora_parameters.rank) that is not a positive
// integer or disagrees with the factors' rank (PEFT's rank_pattern aside),
// and a non-finite alpha or scale. Errors name the key.
func checkAdapterConfig(c *Checkpoint, ac cfg, ranks map[string]int) error {
	if ac == nil {
		return nil
	}
	file := firstNonEmpty(c.AdapterConfigPath, c.Path)
	fail := func(format string, args ...any) error {
		return &Error{File: file, Offset: -1, Err: fmt.Errorf(format, args...)}
	}
	lp := ac.object("lora_parameters")
	for _, x := range []struct {
		o    cfg
		key  string
		name string
	}{{ac, "lora_alpha", "lora_alpha"}, {lp, "alpha", "lora_parameters.alpha"}, {lp, "scale", "lora_parameters.scale"}} {
		if !x.o.has(x.key) {
			continue
		}
		if _, ok := x.o.num(x.key); !ok {
			return fail("adapter_config.json %s is %s, which is not a finite number", x.name, describeValue(x.o[x.key]))
		}
	}
	for _, x := range []struct {
		o    cfg
		key  string
		name string
	}{{ac, "r", "r"}, {lp, "rank", "lora_parameters.rank"}} {
		if !x.o.has(x.key) {
			continue
		}
		f, ok := anyNum(x.o[x.key])
		if !ok || f != math.Trunc(f) || f < 1 || f >= 1<<31 {
			return fail("adapter_config.json %s is %s, which is not a positive rank", x.name, describeValue(x.o[x.key]))
		}
		if x.key == "r" && ac.object("rank_pattern") != nil && len(ac.object("rank_pattern")) > 0 {
			continue // per-module ranks
		}
		for _, mod := range sortedKeys(ranks) {
			if ranks[mod] != int(f) {
				return fail("adapter_config.json %s is %d, but the factors of %s have rank %d", x.name, int(f), mod, ranks[mod])
			}
		}
	}
	return nil
}

// guessArch names the architecture family a base model name suggests, ""
// when it suggests none.
func guessArch(name string) string {
	n := strings.ToLower(name)
	for _, x := range []struct{ sub, arch string }{
		{"llama", "llama"}, {"mixtral", "mixtral"}, {"mistral", "mistral"}, {"qwen3", "qwen3"}, {"qwen2", "qwen2"}, {"qwen", "qwen2"},
		{"phi-3", "phi3"}, {"phi3", "phi3"}, {"phi-4", "phi3"}, {"gemma", "gemma"}, {"falcon", "falcon"}, {"gpt2", "gpt2"},
		{"bloom", "bloom"}, {"pythia", "gpt_neox"}, {"gpt-neox", "gpt_neox"}, {"gpt_neox", "gpt_neox"},
	} {
		if strings.Contains(n, x.sub) {
			return x.arch
		}
	}
	return ""
}

func dedupe(s []string, n int) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		p := digitsRe().ReplaceAllString(x, "N")
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	if len(out) > n {
		out = append(out[:n], "...")
	}
	return out
}

// LoRAFactors are the factors of one projection's LoRA update ΔW =
// Scale·B·A, decoded to float32 in PEFT's orientation whatever the storage:
// A is [r, in] and B is [out, r] (MLX's lora_a [in, r] and lora_b [r, out]
// transposed), B holding only the projection's rows of a fused update's
// split, in the projection's order. ΔW itself is [out, in] in the
// DESIGN.md convention.
type LoRAFactors struct {
	A, B  Matrix
	Scale float64
}

// Check reports whether A and B are the factors of one update and Scale is
// finite.
func (f *LoRAFactors) Check() error {
	a, b := f.A, f.B
	switch {
	case a.Rows < 0 || a.Cols < 0 || len(a.Data) != a.Rows*a.Cols:
		return fmt.Errorf("LoRA A: %d values for shape [%d, %d]", len(a.Data), a.Rows, a.Cols)
	case b.Rows < 0 || b.Cols < 0 || len(b.Data) != b.Rows*b.Cols:
		return fmt.Errorf("LoRA B: %d values for shape [%d, %d]", len(b.Data), b.Rows, b.Cols)
	case b.Cols != a.Rows:
		return fmt.Errorf("LoRA B [%d, %d] and A [%d, %d] disagree on the rank", b.Rows, b.Cols, a.Rows, a.Cols)
	case math.IsNaN(f.Scale) || math.IsInf(f.Scale, 0):
		return fmt.Errorf("LoRA scale %v", f.Scale)
	}
	return nil
}

// DeltaRows writes rows [r0, r1) of ΔW = Scale·B·A into dst (row-major,
// (r1−r0)·in values): each entry is Σ_k B[o,k]·A[k,i] summed in float64 in
// the order of k, times Scale, rounded to float32 — the one definition of
// ΔW's values, which `extract` writes and inspect's element statistics
// read. acc is scratch of at least in values (nil: allocated). The factors
// must have passed Check, and 0 ≤ r0 ≤ r1 ≤ out. Cost: 2·r·in flops per row.
func (f *LoRAFactors) DeltaRows(r0, r1 int, dst []float32, acc []float64) {
	r, in := f.A.Rows, f.A.Cols
	if len(acc) < in {
		acc = make([]float64, in)
	}
	acc = acc[:in]
	for o := r0; o < r1; o++ {
		clear(acc)
		brow := f.B.Data[o*r : (o+1)*r]
		for k, bk := range brow {
			b := float64(bk)
			ak := f.A.Data[k*in : (k+1)*in]
			for i, v := range ak {
				acc[i] += b * float64(v)
			}
		}
		row := dst[(o-r0)*in : (o-r0+1)*in]
		for i, v := range acc {
			row[i] = float32(f.Scale * v)
		}
	}
}

// Delta forms ΔW = Scale·B·A as an [out, in] Matrix (DeltaRows of every
// row).
func (f *LoRAFactors) Delta() (Matrix, error) {
	if err := f.Check(); err != nil {
		return Matrix{}, err
	}
	out := NewMatrix(f.B.Rows, f.A.Cols)
	f.DeltaRows(0, out.Rows, out.Data, nil)
	return out, nil
}

// loraFactors decodes one projection's factors into PEFT's orientation,
// B's rows selected by ps.Rows (a fused update's split).
func (m *Model) loraFactors(ps *ProjSource) (*LoRAFactors, error) {
	c := m.Checkpoint
	l := ps.LoRA
	a, err := c.DecodeNew(l.A)
	if err != nil {
		return nil, err
	}
	b, err := c.DecodeNew(l.B)
	if err != nil {
		return nil, err
	}
	r, out, in := l.Rank, ps.Out, ps.In
	fullOut := len(b) / max(r, 1) // B's rows; ps.Rows picks some (a fused update's split)
	if r < 1 || len(a) != r*in || len(b) != r*fullOut {
		return nil, &Error{File: c.Path, Tensor: l.B.Name, Offset: -1, Err: fmt.Errorf("LoRA factors of %d and %d values do not fit rank %d, %d inputs", len(a), len(b), r, in)}
	}
	f := &LoRAFactors{A: Matrix{Rows: r, Cols: in, Data: a}, B: NewMatrix(out, r), Scale: l.Scale}
	if l.MLX {
		// lora_a [in, r] → A [r, in].
		at := make([]float32, len(a))
		for i := 0; i < in; i++ {
			for k := 0; k < r; k++ {
				at[k*in+i] = a[i*r+k]
			}
		}
		f.A.Data = at
	}
	for o := 0; o < out; o++ {
		src := o
		if ps.Rows != nil {
			src = ps.Rows[o]
		}
		if src < 0 || src >= fullOut {
			return nil, &Error{File: c.Path, Tensor: l.B.Name, Offset: -1, Err: fmt.Errorf("row %d of the LoRA update is outside B's %d rows", src, fullOut)}
		}
		dst := f.B.Row(o)
		if l.MLX {
			// lora_b [r, out]: B[o, k] = lora_b[k, o].
			for k := range dst {
				dst[k] = b[k*fullOut+src]
			}
		} else {
			copy(dst, b[src*r:(src+1)*r])
		}
	}
	return f, nil
}
