package formats

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// FindOptions tune FindModel.
type FindOptions struct {
	// Map names the weight tensors of projections by regular expression
	// (--map q=REGEX,...); the first capture group is the layer number, and
	// an expression without one names a single tensor, as layer 0. Mapped
	// projections replace what the architecture table finds. When no
	// expression has a capture group, the model is just the tensors they
	// name (single-tensor mode, see FindModel).
	Map map[Projection]*regexp.Regexp
	// Geometry overrides from the command line (0: from config/metadata).
	NHeads, NKVHeads, HeadDim int
	// LoRAScale overrides an adapter's scale (0: the rule its config implies).
	LoRAScale float64
	// Base is an adapter's base model (a folder or its config.json), for the
	// head counts a fused update's split needs; "" looks beside the adapter
	// and in the Hugging Face cache.
	Base string
}

// Model is a checkpoint with its attention layers located.
type Model struct {
	Checkpoint *Checkpoint
	Geo        Geometry
	Layers     []LayerSource
	IsAdapter  bool
	// Adapter describes a LoRA adapter, nil for models.
	Adapter *AdapterInfo
	// OtherStacks lists layer stacks that were found but not chosen (a
	// vision tower beside a language model, for example).
	OtherStacks []string

	// arch is a copy of the registry entry (config hooks refine it), or of
	// genericArch; archName is the model_type or GGUF architecture.
	arch     Arch
	entry    *Arch
	archName string
	byIndex  map[int]int
	emb      embeddingSource
	// single: every --map expression names one tensor (no capture group);
	// the model is those tensors as layer 0.
	single bool
}

// Geometry returns the model's attention geometry.
func (m *Model) Geometry() Geometry { return m.Geo }

// Arch returns the model's registry entry, nil when the registry does not
// know its architecture (or for adapters).
func (m *Model) Arch() *Arch {
	if m.arch.Name == "" {
		return nil
	}
	a := m.arch
	return &a
}

// LayerIndices returns the layer indices in order.
func (m *Model) LayerIndices() []int {
	out := make([]int, len(m.Layers))
	for i := range m.Layers {
		out[i] = m.Layers[i].Index
	}
	return out
}

// Layer returns the source of layer index i, nil when there is none.
func (m *Model) Layer(i int) *LayerSource {
	k, ok := m.byIndex[i]
	if !ok {
		return nil
	}
	return &m.Layers[k]
}

// HeadsKnown reports whether per-head views are possible, and if not an
// error that says which flags give the head counts.
func (m *Model) HeadsKnown() error {
	if m.Geo.NHeads > 0 && m.Geo.NKVHeads > 0 && m.Geo.HeadDim > 0 {
		return nil
	}
	what := "this model's"
	if m.IsAdapter {
		what = "the adapter's base model"
	}
	return &Error{File: m.Checkpoint.Path, Offset: -1, Err: fmt.Errorf("%s head counts are unknown; per-head views need --n-heads N (and --n-kv-heads N, --head-dim N for grouped-query attention)", what)}
}

// FindModel locates every layer's attention projections, reads the geometry
// from config.json or GGUF metadata (overridden by opts), and checks every
// tensor's shape against it. Checkpoints whose layout is unknown give an
// *Error that lists their tensor-name patterns and how to map them.
//
// Single-tensor mode: when every opts.Map expression lacks a capture group,
// the model is only the tensors they name, as the projections of layer 0,
// stored [out, in] and taken as they are (no architecture's rules: no
// transposition, RoPE un-permutation or fused split). Any 2-D tensor of any
// file can be inspected this way. Head counts come from opts alone (the
// configuration's describe the file's model, not necessarily the tensor):
// without them the geometry has none and HeadsKnown says so, so the whole
// matrices are analysed and per-head views are refused.
func FindModel(c *Checkpoint, opts FindOptions) (*Model, error) {
	if opts.NHeads < 0 || opts.NKVHeads < 0 || opts.HeadDim < 0 {
		return nil, errors.New("head counts and head_dim must be positive")
	}
	if len(c.Tensors) == 0 {
		return nil, &Error{File: c.Path, Offset: -1, Err: noAttentionf("the checkpoint holds no tensors (a vocabulary-only or metadata-only file), so there are no attention layers")}
	}
	if isAdapter(c) {
		return findAdapter(c, opts)
	}
	m := &Model{Checkpoint: c, arch: genericArch}

	var geo geoSource
	var conf cfg
	var known *Arch
	switch c.Format {
	case FormatGGUF:
		gf := c.GGUF()
		if kv, ok := gf.Lookup("general.architecture"); ok {
			m.archName, _ = kv.String()
		}
		if m.archName == "" {
			return nil, &Error{File: c.Path, Offset: -1, Err: noAttentionf("the GGUF metadata has no general.architecture")}
		}
		if known = LookupArch(m.archName, true); known != nil {
			m.arch, m.entry = *known, known
		}
		var err error
		if geo, err = ggufGeometry(c, m.archName, &m.arch); err != nil {
			return nil, &Error{File: c.Path, Offset: -1, Err: err}
		}
	default:
		m.archName, conf = hfModelType(cfg(c.Config))
		if m.archName == "" {
			m.archName = inferModelType(c)
		}
		if known = LookupArch(m.archName, false); known != nil {
			m.arch, m.entry = *known, known
		}
	}

	m.single = singleTensorMap(opts.Map)
	if m.single {
		// The named tensors alone: no table, no configuration geometry.
		known, m.arch, m.entry = nil, genericArch, nil
		geo = geoSource{geo: Geometry{Arch: m.archName, Norm: NormNone}, from: "the shape of the tensor named by --map"}
	}
	var matches []match
	if !m.single {
		matches = classify(c, known)
	}
	stacks := chooseStacks(matches)
	m.OtherStacks = stacks.others
	if c.Format != FormatGGUF && !m.single {
		// BART-style encoder/decoder: the geometry keys depend on the stack.
		last := ""
		if n := len(stacks.chosen); n > 0 {
			last = stacks.chosen[n-1]
		}
		var err error
		if geo, err = hfGeometry(conf, m.archName, &m.arch, last); err != nil {
			return nil, &Error{File: firstNonEmpty(c.ConfigPath, c.Path), Offset: -1, Err: err}
		}
		if conf == nil {
			geo.from = "tensor shapes (no config.json)"
			geo.geo = Geometry{Arch: m.archName, Causal: !m.arch.Encoder, PreNorm: m.arch.Placement == PreNorm}
			if m.arch.Name == "" && m.archName != "" {
				geo.unsupported("config_key", "model_type", "model_type '%s' (inferred from tensor names) is not in qkv's architecture registry", m.archName)
			}
		}
	}
	if err := applyOverrides(&geo, opts); err != nil {
		return nil, err
	}
	m.Geo = geo.geo

	mapped, err := mappedMatches(c, opts.Map)
	if err != nil {
		return nil, err
	}
	if len(stacks.chosen) == 0 && len(mapped) == 0 {
		why := "found no attention projections (W_Q, W_K, W_V, W_O) under any tensor name this tool knows"
		if known != nil {
			why = fmt.Sprintf("found no attention projections under the tensor names of the %s layout", known.Name)
		}
		return nil, unknownLayoutError(c, m.archName, why, known == nil)
	}
	if len(stacks.chosen) == 0 {
		stacks.chosen = []string{""}
	}

	if err := m.buildLayers(matches, mapped, stacks.chosen, &geo); err != nil {
		return nil, err
	}
	if geo.geo.Norm == NormNone {
		geo.geo.NormEps = 0
	}
	m.Geo = geo.geo
	if m.single {
		return m, nil
	}
	m.findEmbeddings(stacks.chosen)
	m.Geo.PositionEmbeddings = m.emb.positions != nil
	if t := m.emb.tokens; m.Geo.VocabSize == 0 && t != nil && len(t.Shape) == 2 {
		m.Geo.VocabSize = int(t.Shape[0])
	}
	return m, nil
}

// inferModelType guesses the model type of a config-less safetensors file
// from tensor names that only one architecture uses.
func inferModelType(c *Checkpoint) string {
	for _, t := range c.Tensors {
		switch {
		case strings.HasSuffix(t.Name, ".attn.c_attn.weight"):
			return "gpt2"
		case strings.HasSuffix(t.Name, ".self_attn.qkv_proj.weight"):
			return "phi3"
		}
	}
	return ""
}

func applyOverrides(g *geoSource, opts FindOptions) error {
	if g.geo.MLA != nil && (opts.NHeads > 0 || opts.NKVHeads > 0 || opts.HeadDim > 0) {
		return errors.New("--n-heads, --n-kv-heads and --head-dim cannot override a latent-attention (MLA) geometry")
	}
	if opts.NHeads > 0 {
		g.geo.NHeads = opts.NHeads
		if !g.hasKV {
			g.geo.NKVHeads = opts.NHeads
		}
		if !g.hasHD {
			g.geo.HeadDim = 0 // re-derived from the tensors
		}
	}
	if opts.NKVHeads > 0 {
		g.geo.NKVHeads, g.hasKV = opts.NKVHeads, true
	}
	if opts.HeadDim > 0 {
		g.geo.HeadDim, g.hasHD = opts.HeadDim, true
	}
	if g.geo.NHeads > 0 && g.geo.NKVHeads == 0 {
		g.geo.NKVHeads = g.geo.NHeads
	}
	return nil
}

// stackChoice is the layer stacks FindModel extracts.
type stackChoice struct {
	chosen []string
	others []string
}

// projectionRole: the roles that make a layer stack an attention stack.
func projectionRole(r role) bool {
	return r >= roleQ && r <= roleQKV || r == roleQA || r == roleQB || r == roleKVA || r == roleKVB
}

// chooseStacks picks the layer stacks whose attention is the model's: both
// halves of an encoder/decoder pair, otherwise the stack with the most
// attention tensors.
func chooseStacks(ms []match) stackChoice {
	count := map[string]int{}
	for _, m := range ms {
		if projectionRole(m.role) {
			count[m.stack]++
		}
	}
	names := sortedKeys(count)
	if len(names) == 0 {
		return stackChoice{}
	}
	if len(names) == 2 {
		enc, dec := names[0], names[1]
		if strings.Contains(dec, "encoder") {
			enc, dec = dec, enc
		}
		if strings.Contains(enc, "encoder") && strings.Contains(dec, "decoder") &&
			strings.TrimSuffix(strings.TrimSuffix(enc, "encoder."), "encoder") == strings.TrimSuffix(strings.TrimSuffix(dec, "decoder."), "decoder") {
			return stackChoice{chosen: []string{enc, dec}}
		}
	}
	best := names[0]
	for _, n := range names[1:] {
		if count[n] > count[best] {
			best = n
		}
	}
	var others []string
	for _, n := range names {
		if n != best {
			others = append(others, n)
		}
	}
	return stackChoice{chosen: []string{best}, others: others}
}

// singleTensorMap reports whether mp is single-tensor mode: at least one
// expression, none with a capture group.
func singleTensorMap(mp map[Projection]*regexp.Regexp) bool {
	n := 0
	for _, re := range mp {
		if re == nil {
			continue
		}
		if re.NumSubexp() > 0 {
			return false
		}
		n++
	}
	return n > 0
}

// mappedMatches applies --map regular expressions to every tensor name. An
// expression without a capture group names one weight (and its bias), as
// layer 0.
func mappedMatches(c *Checkpoint, mp map[Projection]*regexp.Regexp) ([]match, error) {
	var out []match
	for _, p := range Projections {
		re := mp[p]
		if re == nil {
			continue
		}
		found := false
		var weights []string
		for _, t := range c.Tensors {
			s := re.FindStringSubmatch(t.Name)
			if s == nil {
				continue
			}
			n := 0
			if re.NumSubexp() > 0 {
				var err error
				n, err = strconv.Atoi(s[1])
				if err != nil || n < 0 {
					return nil, &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("--map %s=%s: the first capture group %q is not a layer number", p, re, s[1])}
				}
			}
			found = true
			bias := strings.HasSuffix(t.Name, "bias") || len(t.Shape) == 1
			if !bias {
				weights = append(weights, t.Name)
			}
			out = append(out, match{t: t, stack: "\x00map", layer: n, role: projRole(p), bias: bias, leaf: "--map " + string(p)})
		}
		if re.NumSubexp() == 0 && len(weights) > 1 {
			return nil, &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("--map %s=%s has no capture group, so it names one tensor (as layer 0), but it matches %d: %s; anchor it (^NAME$) or give a capture group for the layer number", p, re, len(weights), quoteJoin(weights, 5))}
		}
		if !found {
			pats, _ := namePatterns(c, 15)
			return nil, &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("--map %s=%s matches no tensor; tensor name patterns (digits as N): %s", p, re, strings.Join(pats, ", "))}
		}
	}
	return out, nil
}

func projRole(p Projection) role {
	switch p {
	case ProjQ:
		return roleQ
	case ProjK:
		return roleK
	case ProjV:
		return roleV
	}
	return roleO
}

func roleProj(r role) Projection {
	switch r {
	case roleQ:
		return ProjQ
	case roleK:
		return ProjK
	case roleV:
		return ProjV
	}
	return ProjO
}

// layerTensors gathers one layer's classified tensors.
type layerTensors struct {
	w, b   map[role]*match
	cross  []string
	mapped map[Projection]bool
	number int
	stack  string
}

func (m *Model) buildLayers(ms, mapped []match, stacks []string, geo *geoSource) error {
	c := m.Checkpoint
	chosen := map[string]int{}
	for i, s := range stacks {
		chosen[s] = i
	}
	per := make([]map[int]*layerTensors, len(stacks))
	for i := range per {
		per[i] = map[int]*layerTensors{}
	}
	get := func(si, n int) *layerTensors {
		lt := per[si][n]
		if lt == nil {
			lt = &layerTensors{w: map[role]*match{}, b: map[role]*match{}, mapped: map[Projection]bool{}, number: n, stack: stacks[si]}
			per[si][n] = lt
		}
		return lt
	}
	flagged := map[string]bool{}
	for i := range ms {
		mt := &ms[i]
		si, ok := chosen[mt.stack]
		if !ok {
			continue
		}
		if mt.role == roleCross {
			if !mt.bias {
				lt := get(si, mt.layer)
				lt.cross = append(lt.cross, mt.t.Name)
			}
			continue
		}
		if why := m.notConsumed(mt); why != "" {
			pat := digitsRe().ReplaceAllString(mt.t.Name, "N")
			if !flagged[pat] {
				flagged[pat] = true
				geo.unsupported("tensor", pat, "tensor %s %s; qkv does not apply it, so the extracted matrices or the rerun may differ from the model", pat, why)
			}
			continue
		}
		if !mt.role.attention() {
			continue
		}
		lt := get(si, mt.layer)
		dst := lt.w
		if mt.bias {
			dst = lt.b
		}
		if prev := dst[mt.role]; prev != nil {
			return &Error{File: c.Path, Tensor: mt.t.Name, Offset: -1, Err: fmt.Errorf("layer %d has two candidate tensors for the same role (also %q)", mt.layer, prev.t.Name)}
		}
		dst[mt.role] = mt
	}
	// Mapped tensors go into the last chosen stack and replace what was found.
	for i := range mapped {
		mt := &mapped[i]
		lt := get(len(stacks)-1, mt.layer)
		p := roleProj(mt.role)
		if !lt.mapped[p] {
			lt.mapped[p] = true
			delete(lt.w, mt.role)
			delete(lt.b, mt.role)
		}
		dst := lt.w
		if mt.bias {
			dst = lt.b
		}
		if prev := dst[mt.role]; prev != nil {
			return &Error{File: c.Path, Tensor: mt.t.Name, Offset: -1, Err: fmt.Errorf("--map %s matches two tensors for layer %d (also %q)", p, mt.layer, prev.t.Name)}
		}
		dst[mt.role] = mt
	}

	// Derive missing geometry from the first layer's shapes.
	if err := m.completeGeometry(per, geo); err != nil {
		return err
	}

	offset := 0
	for si := range stacks {
		maxN := -1
		for _, n := range sortedInts(per[si]) {
			lt := per[si][n]
			if len(lt.w) == 0 && len(lt.b) == 0 {
				continue // cross-attention only
			}
			ls, err := m.layerSource(lt, geo)
			if err != nil {
				return err
			}
			if ls == nil {
				continue
			}
			ls.Index = offset + n
			m.Layers = append(m.Layers, *ls)
			maxN = n
		}
		offset += maxN + 1
	}
	if len(m.Layers) == 0 {
		return unknownLayoutError(c, m.archName, "found no layer with an attention projection", false)
	}
	m.byIndex = map[int]int{}
	for i := range m.Layers {
		m.byIndex[m.Layers[i].Index] = i
	}
	if len(stacks) == 1 && geo.geo.NLayers == 0 {
		geo.geo.NLayers = len(m.Layers)
	}
	if len(stacks) > 1 {
		geo.geo.NLayers = len(m.Layers)
	}
	return nil
}

// notConsumed says why a tensor of a layer is one the architecture's rule
// does not use although it may change attention ("" when it is fine): an
// unknown tensor inside the attention block, an unknown norm, or (GGUF) an
// attention tensor the architecture does not have.
func (m *Model) notConsumed(mt *match) string {
	if m.entry == nil || mt.stack == "\x00map" || mt.t.scaleFor != nil {
		return "" // an attached weight scale is applied on decoding
	}
	a := &m.arch
	switch {
	case mt.role == roleUnknown:
		inAttn := strings.HasPrefix(mt.rest, "attn_") || strings.HasPrefix(mt.rest, "attn.")
		if mod := hfTables()[m.entry].module; mod != "" && m.Checkpoint.Format != FormatGGUF {
			inAttn = strings.HasPrefix(mt.rest, mod)
		}
		if inAttn {
			return fmt.Sprintf("is inside the attention block but not part of the %s layout", a.Name)
		}
		if strings.Contains(strings.ToLower(mt.rest), "norm") {
			return fmt.Sprintf("is a norm the %s layout does not have", a.Name)
		}
	case mt.role.attention() && !a.hasRole(mt.role):
		return fmt.Sprintf("is a %s, which the %s layout does not have", roleNames[mt.role], a.Name)
	}
	return ""
}

// completeGeometry fills d_model, head counts and head_dim from tensor
// shapes where config/metadata left them out, and refuses to guess heads.
func (m *Model) completeGeometry(per []map[int]*layerTensors, geo *geoSource) error {
	g := &geo.geo
	var first *layerTensors
	for si := range per {
		for _, n := range sortedInts(per[si]) {
			lt := per[si][n]
			if len(lt.w) > 0 {
				first = lt
				break
			}
		}
		if first != nil {
			break
		}
	}
	if first == nil {
		return nil
	}
	// Stored [out, in] of a weight, honouring Conv1D.
	dims := func(mt *match) (int, int, bool) {
		if mt == nil || len(mt.t.Shape) != 2 {
			return 0, 0, false
		}
		out, in := int(mt.t.Shape[0]), int(mt.t.Shape[1])
		if m.conv1D(mt) {
			out, in = in, out
		}
		return out, in, true
	}
	if g.DModel == 0 {
		for _, r := range []role{roleQ, roleK, roleV, roleQKV, roleQA, roleKVA} {
			if _, in, ok := dims(first.w[r]); ok {
				g.DModel = in
				break
			}
		}
		if g.DModel == 0 {
			if out, _, ok := dims(first.w[roleO]); ok {
				g.DModel = out
			}
		}
	}
	if g.NHeads == 0 && m.single {
		// Single-tensor mode without --n-heads: whole matrices only.
		g.NKVHeads, g.HeadDim = 0, 0
		return nil
	}
	if g.NHeads == 0 {
		return &Error{File: m.Checkpoint.Path, Offset: -1, Err: fmt.Errorf("the number of attention heads is unknown (%s gives none); pass --n-heads N (and --n-kv-heads N, --head-dim N for grouped-query attention)", geo.from)}
	}
	if g.NKVHeads == 0 {
		g.NKVHeads = g.NHeads
	}
	if g.HeadDim == 0 {
		if out, _, ok := dims(first.w[roleQ]); ok && out%g.NHeads == 0 {
			g.HeadDim = out / g.NHeads
		} else if out, _, ok := dims(first.w[roleQKV]); ok && out%(g.NHeads+2*g.NKVHeads) == 0 {
			g.HeadDim = out / (g.NHeads + 2*g.NKVHeads)
		} else if _, in, ok := dims(first.w[roleO]); ok && in%g.NHeads == 0 {
			g.HeadDim = in / g.NHeads
		} else if g.DModel%g.NHeads == 0 {
			g.HeadDim = g.DModel / g.NHeads
		}
	}
	if g.HeadDim == 0 {
		return &Error{File: m.Checkpoint.Path, Offset: -1, Err: fmt.Errorf("head_dim cannot be derived from the tensor shapes with %d heads (from %s); check --n-heads, or pass --head-dim N", g.NHeads, geo.from)}
	}
	if g.NKVHeads > g.NHeads || g.NHeads%g.NKVHeads != 0 {
		return &Error{File: m.Checkpoint.Path, Offset: -1, Err: fmt.Errorf("n_heads %d is not a multiple of n_kv_heads %d (from %s); fix with --n-heads/--n-kv-heads", g.NHeads, g.NKVHeads, geo.from)}
	}
	if g.RotaryDims > g.HeadDim {
		g.RotaryDims = g.HeadDim
	}
	return nil
}

func sortedInts[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// conv1D reports whether a matched tensor is stored [in, out].
func (m *Model) conv1D(mt *match) bool {
	return m.arch.Conv1D && m.Checkpoint.Format != FormatGGUF && (mt.role == roleQKV || mt.role == roleO)
}

// fused is the layout of this model's fused QKV tensors.
func (m *Model) fused() FusedLayout {
	if m.Checkpoint.Format == FormatGGUF {
		return FusedContig // llama.cpp's graph reads attn_qkv as q|k|v for every architecture
	}
	return m.arch.Fused
}

// permuted reports whether Q/K rows are in llama.cpp's permuted order.
func (m *Model) permuted() bool {
	return m.Checkpoint.Format == FormatGGUF && m.arch.GGUFPermuted
}
