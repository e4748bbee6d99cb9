package formats

import "fmt"

// loadMLA decodes a latent-attention layer's factors and builds the
// effective per-head matrices of ../shared/reference/zoo-modern/deepseek_v3:
// W_Q = q_b · diag(q_a_norm) · q_a; per head h, K_h = [kv_b K-nope rows of
// h · diag(kv_a_norm) · kv_a latent rows; kv_a rope rows] and V_h = kv_b V
// rows of h · diag(kv_a_norm) · kv_a latent rows. Products accumulate in
// float64 and are rounded once.
func (m *Model) loadMLA(ls *LayerSource, l *Layer) error {
	c := m.Checkpoint
	g := m.Geo
	ml := g.MLA
	src := ls.MLA
	h, nope, rope, vd, kvr := g.NHeads, ml.QKNopeHeadDim, ml.QKRopeHeadDim, ml.VHeadDim, ml.KVLoraRank
	d := g.DModel
	out := &MLALayer{}
	mat := func(t *Tensor, rows, cols int) (Matrix, error) {
		v, err := c.DecodeNew(t)
		if err != nil {
			return Matrix{}, err
		}
		if len(v) != rows*cols {
			return Matrix{}, &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("holds %d values, expected %d×%d", len(v), rows, cols)}
		}
		return Matrix{Rows: rows, Cols: cols, Data: v}, nil
	}
	var err error
	offset := float32(0)
	if c.Format != FormatGGUF {
		offset = float32(g.NormWeightOffset)
	}
	vec := func(t *Tensor) ([]float32, error) {
		v, err := c.DecodeNew(t)
		for k := range v {
			v[k] += offset
		}
		return v, err
	}
	qRows := h * (nope + rope)
	if src.QA != nil {
		if out.QA, err = mat(src.QA, ml.QLoraRank, d); err != nil {
			return err
		}
		if out.QANorm, err = vec(src.QANorm); err != nil {
			return err
		}
		if out.QB, err = mat(src.QB, qRows, ml.QLoraRank); err != nil {
			return err
		}
		l.Q = scaledProduct(out.QB, out.QANorm, out.QA, nil)
	} else if out.QB, err = mat(src.QB, qRows, d); err != nil {
		return err
	}
	if out.KVA, err = mat(src.KVA, kvr+rope, d); err != nil {
		return err
	}
	if out.KVANorm, err = vec(src.KVANorm); err != nil {
		return err
	}
	per := nope + vd
	if src.KVB != nil {
		if out.KVB, err = mat(src.KVB, h*per, kvr); err != nil {
			return err
		}
	} else {
		// GGUF: k_b [h][kv_lora_rank][nope] (K-nope rows transposed) and
		// v_b [h][v][kv_lora_rank]; reassemble kv_b's rows.
		kb, err := mat(src.KB, h*kvr, nope)
		if err != nil {
			return err
		}
		vb, err := mat(src.VB, h*vd, kvr)
		if err != nil {
			return err
		}
		out.KVB = NewMatrix(h*per, kvr)
		for hh := 0; hh < h; hh++ {
			for j := 0; j < nope; j++ {
				row := out.KVB.Row(hh*per + j)
				for k := 0; k < kvr; k++ {
					row[k] = kb.At(hh*kvr+k, j)
				}
			}
			for j := 0; j < vd; j++ {
				copy(out.KVB.Row(hh*per+nope+j), vb.Row(hh*vd+j))
			}
		}
	}
	latent := out.KVA.RowBlock(0, kvr)
	kRows := make([]int, 0, h*nope)
	vRows := make([]int, 0, h*vd)
	for hh := 0; hh < h; hh++ {
		for j := 0; j < nope; j++ {
			kRows = append(kRows, hh*per+j)
		}
		for j := 0; j < vd; j++ {
			vRows = append(vRows, hh*per+nope+j)
		}
	}
	kNope := scaledProduct(out.KVB, out.KVANorm, latent, kRows)
	l.V = scaledProduct(out.KVB, out.KVANorm, latent, vRows)
	l.K = NewMatrix(h*(nope+rope), d)
	for hh := 0; hh < h; hh++ {
		copy(l.K.Data[hh*(nope+rope)*d:], kNope.Data[hh*nope*d:(hh+1)*nope*d])
		copy(l.K.Data[(hh*(nope+rope)+nope)*d:], out.KVA.Data[kvr*d:(kvr+rope)*d])
	}
	l.MLA = out
	return nil
}

// scaledProduct returns B[rows] · diag(w) · A (all rows of B when rows is
// nil), accumulated in float64 and rounded once to float32.
func scaledProduct(b Matrix, w []float32, a Matrix, rows []int) Matrix {
	if rows == nil {
		rows = make([]int, b.Rows)
		for i := range rows {
			rows[i] = i
		}
	}
	out := NewMatrix(len(rows), a.Cols)
	acc := make([]float64, a.Cols)
	for i, r := range rows {
		for k := range acc {
			acc[k] = 0
		}
		br := b.Row(r)
		for k, bv := range br {
			f := float64(bv) * float64(w[k])
			for j, av := range a.Row(k) {
				acc[j] += f * float64(av)
			}
		}
		row := out.Row(i)
		for j, v := range acc {
			row[j] = float32(v)
		}
	}
	return out
}
