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
	// (--map q=REGEX,...); the first capture group is the layer number.
	// Mapped projections replace what the architecture table finds.
	Map map[Projection]*regexp.Regexp
	// Geometry overrides from the command line (0: from config/metadata).
	NHeads, NKVHeads, HeadDim int
}

// ProjSource says where one projection of one layer comes from and how it is
// extracted into the DESIGN.md convention.
type ProjSource struct {
	Tensor *Tensor // the stored weight; nil for a LoRA update
	Bias   *Tensor // nil when the projection has no bias
	// Rows lists, for each output row in Hugging Face order, the row of the
	// stored weight (in its [out, in] orientation) it comes from; nil means
	// all rows in order. Fused splits and RoPE un-permutation live here.
	Rows []int
	// Transposed: the weight is stored [in, out] (GPT-2 Conv1D).
	Transposed bool
	Fused      bool
	// Permuted: the stored Q/K rows are in llama.cpp's interleaved RoPE order
	// and Rows undoes it.
	Permuted bool
	// Split describes the fused layout, "" when not fused.
	Split string
	// Out, In is the extracted matrix's shape.
	Out, In int
	// LoRA is set for adapters: the projection is scale·B·A.
	LoRA *LoRASource
}

// LayerSource is one attention layer's tensors.
type LayerSource struct {
	Index  int    // the layer index used by LoadLayer and reports
	Stack  string // the tensor-name prefix of the layer list ("model.", "model.decoder.", "")
	Number int    // the layer number within its stack's tensor names
	// Q, K, V, O are nil when the checkpoint lacks the projection (LoRA
	// adapters that target only some of them).
	Q, K, V, O *ProjSource
	// The pre-attention norm, nil when there is none.
	NormWeight, NormBias *Tensor
	// CrossAttention lists cross-attention tensors (BART's encoder_attn),
	// which are not this layer's self-attention and are not extracted.
	CrossAttention []string
}

// Proj returns the named projection's source.
func (l *LayerSource) Proj(p Projection) *ProjSource {
	switch p {
	case ProjQ:
		return l.Q
	case ProjK:
		return l.K
	case ProjV:
		return l.V
	}
	return l.O
}

func (l *LayerSource) setProj(p Projection, s *ProjSource) {
	switch p {
	case ProjQ:
		l.Q = s
	case ProjK:
		l.K = s
	case ProjV:
		l.V = s
	default:
		l.O = s
	}
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

	arch    archInfo
	byIndex map[int]int
	emb     embeddingSource
}

// Geometry returns the model's attention geometry.
func (m *Model) Geometry() Geometry { return m.Geo }

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
func FindModel(c *Checkpoint, opts FindOptions) (*Model, error) {
	if opts.NHeads < 0 || opts.NKVHeads < 0 || opts.HeadDim < 0 {
		return nil, errors.New("head counts and head_dim must be positive")
	}
	if len(c.Tensors) == 0 {
		return nil, &Error{File: c.Path, Offset: -1, Err: errors.New("the checkpoint holds no tensors (a vocabulary-only or metadata-only file), so there are no attention layers")}
	}
	if isAdapter(c) {
		return findAdapter(c, opts)
	}
	m := &Model{Checkpoint: c}

	var geo geoSource
	modelType := ""
	var conf cfg
	switch c.Format {
	case FormatGGUF:
		gf := c.GGUF()
		arch := ""
		if kv, ok := gf.Lookup("general.architecture"); ok {
			arch, _ = kv.String()
		}
		if arch == "" {
			return nil, &Error{File: c.Path, Offset: -1, Err: errors.New("the GGUF metadata has no general.architecture")}
		}
		m.arch = ggufArch(arch)
		var err error
		if geo, err = ggufGeometry(gf, m.arch); err != nil {
			return nil, &Error{File: c.Path, Offset: -1, Err: err}
		}
	default:
		modelType, conf = hfModelType(cfg(c.Config))
		if modelType == "" {
			modelType = inferModelType(c)
		}
		m.arch = hfArch(modelType, conf)
	}

	matches := classify(c)
	stacks := chooseStacks(matches)
	m.OtherStacks = stacks.others
	if c.Format != FormatGGUF {
		// BART-style encoder/decoder: the geometry keys depend on the stack.
		last := ""
		if n := len(stacks.chosen); n > 0 {
			last = stacks.chosen[n-1]
		}
		geo = hfGeometry(conf, modelType, m.arch, last)
		if conf == nil {
			geo.from = "tensor shapes (no config.json)"
			geo.geo = Geometry{Arch: modelType, Causal: m.arch.causal, PreNorm: m.arch.preNorm}
		}
	}
	applyOverrides(&geo, opts)
	m.Geo = geo.geo

	mapped, err := mappedMatches(c, opts.Map)
	if err != nil {
		return nil, err
	}
	if len(stacks.chosen) == 0 && len(mapped) == 0 {
		why := "found no attention projections (W_Q, W_K, W_V, W_O) under any tensor name this tool knows"
		return nil, unknownLayoutError(c, firstNonEmpty(modelType, m.arch.name), why)
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
	m.findEmbeddings(stacks.chosen)
	m.Geo.PositionEmbeddings = m.emb.positions != nil
	if t := m.emb.tokens; m.Geo.VocabSize == 0 && t != nil && len(t.Shape) == 2 {
		m.Geo.VocabSize = int(t.Shape[0])
	}
	return m, nil
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
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

func applyOverrides(g *geoSource, opts FindOptions) {
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
}

// stackChoice is the layer stacks FindModel extracts.
type stackChoice struct {
	chosen []string
	others []string
}

// chooseStacks picks the layer stacks whose attention is the model's: both
// halves of an encoder/decoder pair, otherwise the stack with the most
// attention tensors.
func chooseStacks(ms []match) stackChoice {
	count := map[string]int{}
	for _, m := range ms {
		if m.role >= roleQ && m.role <= roleQKV {
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

// mappedMatches applies --map regular expressions to every tensor name.
func mappedMatches(c *Checkpoint, mp map[Projection]*regexp.Regexp) ([]match, error) {
	var out []match
	for _, p := range Projections {
		re := mp[p]
		if re == nil {
			continue
		}
		if re.NumSubexp() < 1 {
			return nil, &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("--map %s=%s has no capture group for the layer number", p, re)}
		}
		found := false
		for _, t := range c.Tensors {
			s := re.FindStringSubmatch(t.Name)
			if s == nil {
				continue
			}
			n, err := strconv.Atoi(s[1])
			if err != nil || n < 0 {
				return nil, &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("--map %s=%s: the first capture group %q is not a layer number", p, re, s[1])}
			}
			found = true
			bias := strings.HasSuffix(t.Name, "bias") || len(t.Shape) == 1
			out = append(out, match{t: t, stack: "\x00map", layer: n, role: projRole(p), bias: bias, leaf: "--map " + string(p)})
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
	if err := m.completeGeometry(per, stacks, geo); err != nil {
		return err
	}

	offset := 0
	for si := range stacks {
		nums := make([]int, 0, len(per[si]))
		for n := range per[si] {
			nums = append(nums, n)
		}
		sort.Ints(nums)
		maxN := -1
		for _, n := range nums {
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
		return unknownLayoutError(c, m.arch.name, "found no layer with an attention projection")
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

// completeGeometry fills d_model, head counts and head_dim from tensor
// shapes where config/metadata left them out, and refuses to guess heads.
func (m *Model) completeGeometry(per []map[int]*layerTensors, stacks []string, geo *geoSource) error {
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
		for _, r := range []role{roleQ, roleK, roleV, roleQKV} {
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
	return m.arch.conv1D && (mt.leaf == "c_attn" || mt.leaf == "c_proj")
}

// layerSource turns one layer's tensors into projection sources, checking
// every shape against the geometry.
func (m *Model) layerSource(lt *layerTensors, geo *geoSource) (*LayerSource, error) {
	c := m.Checkpoint
	g := geo.geo
	ls := &LayerSource{Stack: lt.stack, Number: lt.number, CrossAttention: lt.cross}
	if ls.Stack == "\x00map" {
		ls.Stack = ""
	}
	limit := int64(1) << 40
	qRows, ok1 := mulFits(limit, g.NHeads, g.HeadDim)
	kvRows, ok2 := mulFits(limit, g.NKVHeads, g.HeadDim)
	if !ok1 || !ok2 {
		return nil, &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("geometry too large: %d heads × head_dim %d", g.NHeads, g.HeadDim)}
	}
	want := map[Projection][2]int{ProjQ: {qRows, g.DModel}, ProjK: {kvRows, g.DModel}, ProjV: {kvRows, g.DModel}, ProjO: {g.DModel, qRows}}
	shapeErr := func(t *Tensor, what string, got, exp [2]int) error {
		return &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf(
			"%s has shape [%d, %d] (out, in) but the geometry (%s: d_model %d, %d heads, %d KV heads, head_dim %d) needs [%d, %d]; if the geometry is wrong, give it with --n-heads, --n-kv-heads and --head-dim",
			what, got[0], got[1], geo.from, g.DModel, g.NHeads, g.NKVHeads, g.HeadDim, exp[0], exp[1])}
	}
	storedDims := func(mt *match) ([2]int, error) {
		t := mt.t
		if len(t.Shape) != 2 {
			return [2]int{}, &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("a projection weight must be 2-D, this one has shape %v", t.Shape)}
		}
		d := [2]int{int(t.Shape[0]), int(t.Shape[1])}
		if m.conv1D(mt) {
			d[0], d[1] = d[1], d[0]
		}
		return d, nil
	}
	checkBias := func(b *match, n int) error {
		if b == nil {
			return nil
		}
		if len(b.t.Shape) != 1 || int(b.t.Shape[0]) != n {
			return &Error{File: c.Path, Tensor: b.t.Name, Offset: -1, Err: fmt.Errorf("bias has shape %v, expected [%d]", b.t.Shape, n)}
		}
		return nil
	}

	// Separate projections.
	for _, p := range Projections {
		r := projRole(p)
		w := lt.w[r]
		if w == nil {
			if b := lt.b[r]; b != nil && lt.w[roleQKV] == nil {
				return nil, &Error{File: c.Path, Tensor: b.t.Name, Offset: -1, Err: fmt.Errorf("layer %d has this bias but no %s weight", lt.number, p)}
			}
			continue
		}
		d, err := storedDims(w)
		if err != nil {
			return nil, err
		}
		if d != want[p] {
			return nil, shapeErr(w.t, "W_"+strings.ToUpper(string(p)), d, want[p])
		}
		ps := &ProjSource{Tensor: w.t, Transposed: m.conv1D(w), Out: d[0], In: d[1]}
		if b := lt.b[r]; b != nil {
			if err := checkBias(b, d[0]); err != nil {
				return nil, err
			}
			ps.Bias = b.t
		}
		if (p == ProjQ || p == ProjK) && m.arch.permuted {
			heads := g.NHeads
			if p == ProjK {
				heads = g.NKVHeads
			}
			rows, err := unpermuteRows(nil, heads, g.HeadDim, d[0])
			if err != nil {
				return nil, &Error{File: c.Path, Tensor: w.t.Name, Offset: -1, Err: err}
			}
			ps.Rows, ps.Permuted = rows, true
		}
		ls.setProj(p, ps)
	}

	// A fused QKV tensor fills the projections not found separately.
	if w := lt.w[roleQKV]; w != nil && (ls.Q == nil || ls.K == nil || ls.V == nil) {
		d, err := storedDims(w)
		if err != nil {
			return nil, err
		}
		if m.arch.fused == fusedUnknown {
			return nil, &Error{File: c.Path, Tensor: w.t.Name, Offset: -1, Err: fmt.Errorf(
				"fused QKV tensor of architecture %q, whose split rule this tool does not know (it never splits by guessing thirds); %s", m.arch.name, mapHelp)}
		}
		total := qRows + 2*kvRows
		if d != [2]int{total, g.DModel} {
			return nil, shapeErr(w.t, "fused QKV", d, [2]int{total, g.DModel})
		}
		qr, kr, vr, err := fusedRows(m.arch.fused, g.NHeads, g.NKVHeads, g.HeadDim)
		if err != nil {
			return nil, &Error{File: c.Path, Tensor: w.t.Name, Offset: -1, Err: err}
		}
		b := lt.b[roleQKV]
		if err := checkBias(b, total); err != nil {
			return nil, err
		}
		for _, x := range []struct {
			p    Projection
			rows []int
		}{{ProjQ, qr}, {ProjK, kr}, {ProjV, vr}} {
			if ls.Proj(x.p) != nil {
				continue
			}
			rows := x.rows
			ps := &ProjSource{Tensor: w.t, Rows: rows, Transposed: m.conv1D(w), Fused: true, Out: len(rows), In: d[1]}
			ps.Split = fmt.Sprintf("%s, %s", m.arch.fused, rowRuns(rows))
			if ps.Transposed {
				ps.Split = "Conv1D [in, out] transposed; columns " + strings.TrimPrefix(rowRuns(rows), "rows ") + " (" + m.arch.fused.String() + ")"
			}
			if (x.p == ProjQ || x.p == ProjK) && m.arch.permuted {
				heads := g.NHeads
				if x.p == ProjK {
					heads = g.NKVHeads
				}
				un, err := unpermuteRows(rows, heads, g.HeadDim, len(rows))
				if err != nil {
					return nil, &Error{File: c.Path, Tensor: w.t.Name, Offset: -1, Err: err}
				}
				ps.Rows, ps.Permuted = un, true
			}
			if b != nil {
				ps.Bias = b.t
			}
			ls.setProj(x.p, ps)
		}
	}
	if ls.Q == nil && ls.K == nil && ls.V == nil && ls.O == nil {
		return nil, nil
	}

	// The pre-attention norm.
	if g.PreNorm {
		if w := lt.w[roleNorm]; w != nil {
			if len(w.t.Shape) != 1 || int(w.t.Shape[0]) != g.DModel {
				return nil, &Error{File: c.Path, Tensor: w.t.Name, Offset: -1, Err: fmt.Errorf("norm weight has shape %v, expected [%d]", w.t.Shape, g.DModel)}
			}
			ls.NormWeight = w.t
			if b := lt.b[roleNorm]; b != nil {
				if err := checkBias(b, g.DModel); err != nil {
					return nil, err
				}
				ls.NormBias = b.t
				if geo.geo.Norm == "" || geo.geo.Norm == NormRMS && !hasRMSKey(m) {
					geo.geo.Norm = NormLayerNorm
				}
			} else if geo.geo.Norm == "" {
				geo.geo.Norm = NormRMS
			}
		}
	}
	if geo.geo.Norm == "" {
		geo.geo.Norm = NormNone
	}
	return ls, nil
}

// hasRMSKey reports whether the metadata says RMSNorm explicitly.
func hasRMSKey(m *Model) bool {
	if m.Checkpoint.Format == FormatGGUF {
		_, ok := m.Checkpoint.GGUF().Lookup(m.arch.name + ".attention.layer_norm_rms_epsilon")
		return ok
	}
	_, c := hfModelType(cfg(m.Checkpoint.Config))
	return c.has("rms_norm_eps")
}

// rowRuns describes a row list as ranges: "rows [0, 64)" or
// "rows [0, 16) [48, 64) ...".
func rowRuns(rows []int) string {
	var b strings.Builder
	b.WriteString("rows")
	n := 0
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j] == rows[j-1]+1 {
			j++
		}
		if n == 6 {
			b.WriteString(" ...")
			break
		}
		fmt.Fprintf(&b, " [%d, %d)", rows[i], rows[j-1]+1)
		n++
		i = j
	}
	return b.String()
}

// ---- loading ----

// LoadLayer decodes layer index i into fresh float32 buffers in the
// DESIGN.md convention (for adapters: the updates ΔW = scale·B·A). A
// projection the checkpoint lacks (a LoRA adapter that targets only q and v)
// is an empty Matrix, not zeros. It is safe for concurrent use.
func (m *Model) LoadLayer(i int) (*Layer, error) {
	ls := m.Layer(i)
	if ls == nil {
		return nil, fmt.Errorf("%s: no layer %d (layers are %s)", m.Checkpoint.Path, i, indexRange(m.LayerIndices()))
	}
	l := &Layer{Index: i}
	for _, p := range Projections {
		ps := ls.Proj(p)
		if ps == nil {
			continue
		}
		mat, bias, err := m.extract(ps)
		if err != nil {
			return nil, err
		}
		switch p {
		case ProjQ:
			l.Q, l.QBias = mat, bias
		case ProjK:
			l.K, l.KBias = mat, bias
		case ProjV:
			l.V, l.VBias = mat, bias
		case ProjO:
			l.O, l.OBias = mat, bias
		}
	}
	var err error
	if ls.NormWeight != nil {
		if l.NormWeight, err = m.Checkpoint.DecodeNew(ls.NormWeight); err != nil {
			return nil, err
		}
	}
	if ls.NormBias != nil {
		if l.NormBias, err = m.Checkpoint.DecodeNew(ls.NormBias); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func indexRange(ix []int) string {
	if len(ix) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d..%d", ix[0], ix[len(ix)-1])
}

// extract decodes one projection and its bias.
func (m *Model) extract(ps *ProjSource) (Matrix, []float32, error) {
	if ps.LoRA != nil {
		mat, err := m.loraDelta(ps)
		return mat, nil, err
	}
	c := m.Checkpoint
	t := ps.Tensor
	out := NewMatrix(ps.Out, ps.In)
	switch {
	case !ps.Transposed && ps.Rows == nil:
		if err := c.Decode(t, out.Data); err != nil {
			return Matrix{}, nil, err
		}
	case !ps.Transposed:
		if err := m.gatherRows(t, ps.Rows, out); err != nil {
			return Matrix{}, nil, err
		}
	default:
		// Stored [in, outTotal]: output row r is stored column rows[r].
		full, err := c.DecodeNew(t)
		if err != nil {
			return Matrix{}, nil, err
		}
		stCols := int(t.Shape[1])
		for r := 0; r < ps.Out; r++ {
			src := r
			if ps.Rows != nil {
				src = ps.Rows[r]
			}
			row := out.Row(r)
			for k := range row {
				row[k] = full[k*stCols+src]
			}
		}
	}
	var bias []float32
	if ps.Bias != nil {
		full, err := c.DecodeNew(ps.Bias)
		if err != nil {
			return Matrix{}, nil, err
		}
		if ps.Rows == nil {
			bias = full
		} else {
			bias = make([]float32, len(ps.Rows))
			for r, s := range ps.Rows {
				bias[r] = full[s]
			}
		}
	}
	return out, bias, nil
}

// gatherRows decodes the listed stored rows into out: runs of consecutive
// rows straight from the file when there are few, otherwise through one
// decoded copy of the whole tensor.
func (m *Model) gatherRows(t *Tensor, rows []int, out Matrix) error {
	c := m.Checkpoint
	type run struct{ src, dst, n int }
	var runs []run
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j] == rows[j-1]+1 {
			j++
		}
		runs = append(runs, run{rows[i], i, j - i})
		i = j
	}
	if len(runs) <= 16 {
		for _, r := range runs {
			dst := out.Data[r.dst*out.Cols : (r.dst+r.n)*out.Cols]
			if err := c.DecodeRows(t, int64(r.src), int64(r.src+r.n), dst); err != nil {
				return err
			}
		}
		return nil
	}
	if int64(len(rows)) == t.Elements()/max(t.RowLen(), 1) && isPermutation(rows) {
		// A row permutation of the whole tensor (RoPE un-permutation): decode
		// in place and move rows along their cycles, without a second copy.
		if err := c.Decode(t, out.Data); err != nil {
			return err
		}
		permuteRows(out, rows)
		return nil
	}
	full, err := c.DecodeNew(t)
	if err != nil {
		return err
	}
	for i, s := range rows {
		copy(out.Row(i), full[s*out.Cols:(s+1)*out.Cols])
	}
	return nil
}

// ---- description (qkv layers --json) ----

// LayersReport is the plain-data description of where every layer's
// projections come from.
type LayersReport struct {
	Schema      string        `json:"schema"` // "qkv.layers/v1"
	Path        string        `json:"path"`
	Format      string        `json:"format"`
	Model       Geometry      `json:"model"`
	IsAdapter   bool          `json:"is_adapter"`
	Adapter     *AdapterInfo  `json:"adapter,omitempty"`
	OtherStacks []string      `json:"other_stacks,omitempty"`
	Layers      []LayerReport `json:"layers"`
}

// LayerReport describes one layer.
type LayerReport struct {
	Index int         `json:"index"`
	Stack string      `json:"stack,omitempty"`
	Q     *ProjReport `json:"q"`
	K     *ProjReport `json:"k"`
	V     *ProjReport `json:"v"`
	O     *ProjReport `json:"o"`
	Norm  *NormReport `json:"norm,omitempty"`
	// CrossAttention lists cross-attention tensors (not extracted).
	CrossAttention []string `json:"cross_attention,omitempty"`
}

// ProjReport describes one projection's source.
type ProjReport struct {
	Tensors []string `json:"tensors"`
	Shape   [2]int   `json:"shape"` // [out, in] as extracted
	DType   string   `json:"dtype"`
	Fused   bool     `json:"fused"`
	Bias    *string  `json:"bias"`
	// RowOrder (Q and K): "half-split", or "interleaved (un-permuted on
	// extraction)" for GGUF files whose converter permuted the rows.
	RowOrder   string  `json:"row_order,omitempty"`
	Split      string  `json:"split,omitempty"`
	Transposed bool    `json:"transposed,omitempty"`
	LoRARank   int     `json:"lora_rank,omitempty"`
	LoRAScale  float64 `json:"lora_scale,omitempty"`
}

// NormReport describes the pre-attention norm.
type NormReport struct {
	Kind   NormKind `json:"kind"`
	Weight string   `json:"weight"`
	Bias   *string  `json:"bias"`
	Eps    float64  `json:"eps"`
}

// Describe reports every layer's tensors without reading tensor data.
func (m *Model) Describe() LayersReport {
	r := LayersReport{Schema: "qkv.layers/v1", Path: m.Checkpoint.Path, Format: string(m.Checkpoint.Format),
		Model: m.Geo, IsAdapter: m.IsAdapter, Adapter: m.Adapter, OtherStacks: m.OtherStacks, Layers: []LayerReport{}}
	for i := range m.Layers {
		ls := &m.Layers[i]
		lr := LayerReport{Index: ls.Index, Stack: ls.Stack, CrossAttention: ls.CrossAttention}
		for _, p := range Projections {
			ps := ls.Proj(p)
			if ps == nil {
				continue
			}
			pr := &ProjReport{Shape: [2]int{ps.Out, ps.In}, Fused: ps.Fused, Split: ps.Split, Transposed: ps.Transposed}
			if ps.LoRA != nil {
				pr.Tensors = []string{ps.LoRA.A.Name, ps.LoRA.B.Name}
				pr.DType = ps.LoRA.A.Type.Name()
				pr.LoRARank, pr.LoRAScale = ps.LoRA.Rank, ps.LoRA.Scale
			} else {
				pr.Tensors = []string{ps.Tensor.Name}
				pr.DType = ps.Tensor.Type.Name()
			}
			if ps.Bias != nil {
				n := ps.Bias.Name
				pr.Bias = &n
			}
			if p == ProjQ || p == ProjK {
				switch {
				case ps.Permuted:
					pr.RowOrder = RowOrderInterleaved + " (un-permuted on extraction)"
				case m.arch.nativeInterleaved:
					// GPT-J-style models: the Hugging Face rows themselves pair (2i, 2i+1).
					pr.RowOrder = RowOrderInterleaved
				default:
					pr.RowOrder = RowOrderHF
				}
			}
			switch p {
			case ProjQ:
				lr.Q = pr
			case ProjK:
				lr.K = pr
			case ProjV:
				lr.V = pr
			case ProjO:
				lr.O = pr
			}
		}
		if ls.NormWeight != nil {
			nr := &NormReport{Kind: m.Geo.Norm, Weight: ls.NormWeight.Name, Eps: m.Geo.NormEps}
			if ls.NormBias != nil {
				n := ls.NormBias.Name
				nr.Bias = &n
			}
			lr.Norm = nr
		}
		r.Layers = append(r.Layers, lr)
	}
	return r
}

// isPermutation reports whether rows holds each of 0..len(rows)-1 once.
func isPermutation(rows []int) bool {
	seen := make([]bool, len(rows))
	for _, r := range rows {
		if r < 0 || r >= len(rows) || seen[r] {
			return false
		}
		seen[r] = true
	}
	return true
}

// permuteRows rearranges m in place so that new row i is old row rows[i].
func permuteRows(m Matrix, rows []int) {
	done := make([]bool, len(rows))
	tmp := make([]float32, m.Cols)
	for start := range rows {
		if done[start] || rows[start] == start {
			done[start] = true
			continue
		}
		copy(tmp, m.Row(start))
		j := start
		for {
			done[j] = true
			k := rows[j]
			if k == start {
				copy(m.Row(j), tmp)
				break
			}
			copy(m.Row(j), m.Row(k))
			j = k
		}
	}
}
