package formats

import (
	"fmt"
	"strings"
)

// ProjSource says where one projection of one layer comes from and how it is
// extracted into the DESIGN.md convention.
type ProjSource struct {
	// Tensor is the stored weight (for an effective latent-attention
	// matrix: the last factor, q_b_proj or kv_b_proj); nil for a LoRA update.
	Tensor *Tensor
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
	// Effective is set for multi-head latent attention: the matrix is built
	// from Factors (the layer's MLA tensors) as Effective says.
	Effective string
	Factors   []*Tensor
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
	// QNorm, KNorm are the Q/K norm weights, Sinks the per-head sink
	// logits, nil when the model has none.
	QNorm, KNorm, Sinks *Tensor
	// MLA holds the stored factors of a latent-attention layer, or nil.
	MLA *MLASource
	// CrossAttention lists cross-attention tensors (BART's encoder_attn),
	// which are not this layer's self-attention and are not extracted.
	CrossAttention []string
}

// MLASource names a latent-attention layer's stored tensors. GGUF files
// split kv_b_proj into KB (K-nope rows of each head, transposed) and VB.
type MLASource struct {
	QA, QANorm, QB, KVA, KVANorm, KVB, KB, VB *Tensor
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
	oCols, ok3 := mulFits(limit, g.NHeads, g.ValueHeadDim())
	if !ok1 || !ok2 || !ok3 {
		return nil, &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("geometry too large: %d heads × head_dim %d", g.NHeads, g.HeadDim)}
	}
	want := map[Projection][2]int{ProjQ: {qRows, g.DModel}, ProjK: {kvRows, g.DModel}, ProjV: {kvRows, g.DModel}, ProjO: {g.DModel, oCols}}
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
	vector := func(mt *match, n int, what string) (*Tensor, error) {
		if mt == nil {
			return nil, nil
		}
		if len(mt.t.Shape) != 1 || int(mt.t.Shape[0]) != n {
			return nil, &Error{File: c.Path, Tensor: mt.t.Name, Offset: -1, Err: fmt.Errorf("%s has shape %v, expected [%d]", what, mt.t.Shape, n)}
		}
		return mt.t, nil
	}

	if g.MLA != nil {
		if err := m.mlaSource(lt, ls, geo); err != nil {
			return nil, err
		}
	}

	// Separate projections.
	for _, p := range Projections {
		if ls.Proj(p) != nil {
			continue
		}
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
		switch {
		case g.NHeads == 0 && m.single:
			// No head counts (single-tensor mode): only d_model, the input
			// of q, k, v and the output of o, must agree.
			dm := d[1]
			if p == ProjO {
				dm = d[0]
			}
			if dm != g.DModel {
				return nil, &Error{File: c.Path, Tensor: w.t.Name, Offset: -1, Err: fmt.Errorf("W_%s has shape [%d, %d] (out, in), which does not fit d_model %d of the other tensors named by --map", strings.ToUpper(string(p)), d[0], d[1], g.DModel)}
			}
		case d != want[p]:
			return nil, shapeErr(w.t, "W_"+strings.ToUpper(string(p)), d, want[p])
		}
		ps := &ProjSource{Tensor: w.t, Transposed: m.conv1D(w), Out: d[0], In: d[1]}
		if b := lt.b[r]; b != nil {
			if err := checkBias(b, d[0]); err != nil {
				return nil, err
			}
			ps.Bias = b.t
		}
		if (p == ProjQ || p == ProjK) && m.permuted() {
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
		kind := m.fused()
		if kind == fusedUnknown {
			return nil, &Error{File: c.Path, Tensor: w.t.Name, Offset: -1, Err: fmt.Errorf(
				"fused QKV tensor of architecture %q, whose split rule this tool does not know (it never splits by guessing thirds); %s", m.archName, mapHelp)}
		}
		total := qRows + 2*kvRows
		if d != [2]int{total, g.DModel} {
			return nil, shapeErr(w.t, "fused QKV", d, [2]int{total, g.DModel})
		}
		qr, kr, vr, err := fusedRows(kind, g.NHeads, g.NKVHeads, g.HeadDim)
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
			ps.Split = fmt.Sprintf("%s, %s", kind, rowRuns(rows))
			if ps.Transposed {
				ps.Split = "Conv1D [in, out] transposed; columns " + strings.TrimPrefix(rowRuns(rows), "rows ") + " (" + kind.String() + ")"
			}
			if (x.p == ProjQ || x.p == ProjK) && m.permuted() {
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

	// Q/K norms and sinks.
	var err error
	qn, kn := g.HeadDim, g.HeadDim
	if g.QKNorm == QKNormWhole {
		qn, kn = qRows, kvRows
	}
	if g.QKNorm != QKNormNone && g.QKNorm != QKNormL2 {
		if ls.QNorm, err = vector(lt.w[roleQNorm], qn, "the Q norm weight"); err != nil {
			return nil, err
		}
		if ls.KNorm, err = vector(lt.w[roleKNorm], kn, "the K norm weight"); err != nil {
			return nil, err
		}
		if ls.QNorm == nil || ls.KNorm == nil {
			geo.unsupported("tensor", fmt.Sprintf("layer %d q_norm/k_norm", ls.Number), "layer %d lacks the Q/K norm weights the %s layout has; the rerun would differ from the model", ls.Number, m.arch.Name)
		}
	}
	if g.Sinks {
		if ls.Sinks, err = vector(lt.w[roleSinks], g.NHeads, "the attention sinks"); err != nil {
			return nil, err
		}
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

// mlaSource checks a latent-attention layer's factors and describes its
// effective Q, K, V (and stored O).
func (m *Model) mlaSource(lt *layerTensors, ls *LayerSource, geo *geoSource) error {
	c := m.Checkpoint
	g := geo.geo
	ml := g.MLA
	h := g.NHeads
	nope, rope, vd, kvr := ml.QKNopeHeadDim, ml.QKRopeHeadDim, ml.VHeadDim, ml.KVLoraRank
	src := &MLASource{}
	need := func(r role, what string, shape ...int) (*Tensor, error) {
		mt := lt.w[r]
		if mt == nil {
			return nil, &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("latent-attention layer %d has no %s", lt.number, what)}
		}
		if len(mt.t.Shape) != len(shape) {
			return nil, &Error{File: c.Path, Tensor: mt.t.Name, Offset: -1, Err: fmt.Errorf("%s has shape %v, expected %v", what, mt.t.Shape, shape)}
		}
		for i, d := range shape {
			if int(mt.t.Shape[i]) != d {
				return nil, &Error{File: c.Path, Tensor: mt.t.Name, Offset: -1, Err: fmt.Errorf("%s has shape %v, expected %v (MLA: %d heads, q_lora_rank %d, kv_lora_rank %d, nope %d, rope %d, v %d)", what, mt.t.Shape, shape, h, ml.QLoraRank, kvr, nope, rope, vd)}
			}
		}
		if b := lt.b[r]; b != nil {
			return nil, &Error{File: c.Path, Tensor: b.t.Name, Offset: -1, Err: fmt.Errorf("latent-attention biases are not supported")}
		}
		return mt.t, nil
	}
	var err error
	qRows := h * (nope + rope)
	if ml.QLoraRank > 0 {
		if src.QA, err = need(roleQA, "q_a_proj", ml.QLoraRank, g.DModel); err != nil {
			return err
		}
		if src.QANorm, err = need(roleQANorm, "q_a_layernorm", ml.QLoraRank); err != nil {
			return err
		}
		if src.QB, err = need(roleQB, "q_b_proj", qRows, ml.QLoraRank); err != nil {
			return err
		}
		ls.Q = &ProjSource{Tensor: src.QB, Out: qRows, In: g.DModel, Factors: []*Tensor{src.QA, src.QANorm, src.QB},
			Effective: "q_b · diag(q_a_layernorm) · q_a"}
	} else {
		if src.QB, err = need(roleQ, "q_proj", qRows, g.DModel); err != nil {
			return err
		}
		ls.Q = &ProjSource{Tensor: src.QB, Out: qRows, In: g.DModel}
	}
	if src.KVA, err = need(roleKVA, "kv_a_proj_with_mqa", kvr+rope, g.DModel); err != nil {
		return err
	}
	if src.KVANorm, err = need(roleKVANorm, "kv_a_layernorm", kvr); err != nil {
		return err
	}
	if lt.w[roleKVB] != nil {
		if src.KVB, err = need(roleKVB, "kv_b_proj", h*(nope+vd), kvr); err != nil {
			return err
		}
	} else {
		if src.KB, err = need(roleKB, "k_b", h, kvr, nope); err != nil {
			return err
		}
		if src.VB, err = need(roleVB, "v_b", h, vd, kvr); err != nil {
			return err
		}
	}
	kvb := []*Tensor{src.KVB}
	if src.KVB == nil {
		kvb = []*Tensor{src.KB, src.VB}
	}
	ls.K = &ProjSource{Tensor: kvb[0], Out: h * (nope + rope), In: g.DModel,
		Factors:   append([]*Tensor{src.KVA, src.KVANorm}, kvb...),
		Effective: "per head [kv_b K-nope rows · diag(kv_a_layernorm) · kv_a latent rows; kv_a rope rows (shared)]"}
	ls.V = &ProjSource{Tensor: kvb[len(kvb)-1], Out: h * vd, In: g.DModel,
		Factors:   append([]*Tensor{src.KVA, src.KVANorm}, kvb...),
		Effective: "per head kv_b V rows · diag(kv_a_layernorm) · kv_a latent rows"}
	ls.MLA = src
	return nil
}

// hasRMSKey reports whether the metadata says RMSNorm explicitly.
func hasRMSKey(m *Model) bool {
	if m.Checkpoint.Format == FormatGGUF {
		_, ok := m.Checkpoint.GGUF().Lookup(m.archName + ".attention.layer_norm_rms_epsilon")
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
