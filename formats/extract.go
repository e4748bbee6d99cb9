package formats

import "fmt"

// ---- loading ----

// LoadLayer decodes layer index i into fresh float32 buffers in the
// DESIGN.md convention (for adapters: the updates ΔW = scale·B·A, formed in
// full, and their factors in Layer.LoRA). A projection the checkpoint lacks
// (a LoRA adapter that targets only q and v) is an empty Matrix, not zeros.
// It is safe for concurrent use.
func (m *Model) LoadLayer(i int) (*Layer, error) { return m.loadLayer(i, true) }

// LoadLayerFactors is LoadLayer without forming an adapter's updates: each
// LoRA projection is only its factors (Layer.LoRA; its Matrix is empty), r
// rows and columns instead of out × in values. A model's layers load as
// with LoadLayer.
func (m *Model) LoadLayerFactors(i int) (*Layer, error) { return m.loadLayer(i, false) }

func (m *Model) loadLayer(i int, formDelta bool) (*Layer, error) {
	ls := m.Layer(i)
	if ls == nil {
		return nil, fmt.Errorf("%s: no layer %d (layers are %s)", m.Checkpoint.Path, i, indexRange(m.LayerIndices()))
	}
	l := &Layer{Index: i}
	// A fused QKV tensor read whole (a transposed Conv1D, or rows too
	// scattered to read by runs) is decoded once for its three projections:
	// a remote one is fetched once.
	whole := map[*Tensor][]float32{}
	if ls.MLA != nil {
		if err := m.loadMLA(ls, l); err != nil {
			return nil, err
		}
	}
	for _, p := range Projections {
		ps := ls.Proj(p)
		if ps == nil || ps.Effective != "" {
			continue // latent-attention matrices come from loadMLA
		}
		if ps.LoRA != nil {
			f, err := m.loraFactors(ps)
			if err != nil {
				return nil, err
			}
			if l.LoRA == nil {
				l.LoRA = map[Projection]*LoRAFactors{}
			}
			l.LoRA[p] = f
			if !formDelta {
				continue
			}
		}
		mat, bias, err := m.extract(ps, whole, l.LoRA[p])
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
	// Vectors; (1 + w) norms get their 1 here for Hugging Face files
	// (llama.cpp's converter stored 1 + w already).
	offset := float32(0)
	if m.Checkpoint.Format != FormatGGUF {
		offset = float32(m.Geo.NormWeightOffset)
	}
	for _, x := range []struct {
		t      *Tensor
		dst    *[]float32
		offset float32
	}{{ls.NormWeight, &l.NormWeight, offset}, {ls.NormBias, &l.NormBias, 0}, {ls.QNorm, &l.QNorm, offset},
		{ls.KNorm, &l.KNorm, offset}, {ls.Sinks, &l.Sinks, 0}} {
		if x.t == nil {
			continue
		}
		v, err := m.Checkpoint.DecodeNew(x.t)
		if err != nil {
			return nil, err
		}
		if x.offset != 0 {
			for k := range v {
				v[k] += x.offset
			}
		}
		*x.dst = v
	}
	return l, nil
}

func indexRange(ix []int) string {
	if len(ix) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d..%d", ix[0], ix[len(ix)-1])
}

// extract decodes one projection and its bias. whole holds the tensors
// decoded whole so far (for the other projections of a fused tensor); f,
// when not nil, holds a LoRA projection's factors, already decoded.
func (m *Model) extract(ps *ProjSource, whole map[*Tensor][]float32, f *LoRAFactors) (Matrix, []float32, error) {
	if ps.LoRA != nil {
		if f == nil {
			var err error
			if f, err = m.loraFactors(ps); err != nil {
				return Matrix{}, nil, err
			}
		}
		mat, err := f.Delta()
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
		if err := m.gatherRows(t, ps.Rows, out, whole); err != nil {
			return Matrix{}, nil, err
		}
	default:
		// Stored [in, outTotal]: output row r is stored column rows[r].
		full, err := decodeWhole(c, t, whole)
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
		full, err := decodeWhole(c, ps.Bias, whole)
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

// decodeWhole decodes t whole once per whole map (nil: every time).
func decodeWhole(c *Checkpoint, t *Tensor, whole map[*Tensor][]float32) ([]float32, error) {
	if v, ok := whole[t]; ok {
		return v, nil
	}
	v, err := c.DecodeNew(t)
	if err == nil && whole != nil {
		whole[t] = v
	}
	return v, err
}

// gatherRows decodes the listed stored rows into out: runs of consecutive
// rows straight from the file when there are few, otherwise through one
// decoded copy of the whole tensor (kept in whole for the tensor's other
// projections).
func (m *Model) gatherRows(t *Tensor, rows []int, out Matrix, whole map[*Tensor][]float32) error {
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
	full, err := decodeWhole(c, t, whole)
	if err != nil {
		return err
	}
	for i, s := range rows {
		copy(out.Row(i), full[s*out.Cols:(s+1)*out.Cols])
	}
	return nil
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
