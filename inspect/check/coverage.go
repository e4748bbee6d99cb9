package check

import (
	"github.com/qkvdev/qkv/formats"
)

// cover says how a stored tensor's values are counted from its decoded
// layer instead of being decoded a second time by the scan: every stored
// value appears exactly once in the layer's matrices (or bias), at a known
// place.
type cover struct {
	t    *formats.Tensor
	kind coverKind
	// parts are the projections the tensor's values are in: each with the
	// stored rows its matrix rows come from (nil: all, in order) — or, for
	// a transposed tensor, the stored columns.
	parts []coverPart
	// mla names the latent-attention factor (kindMLA).
	mla string
}

type coverPart struct {
	p    formats.Projection
	rows []int
}

type coverKind int

const (
	kindRows       coverKind = iota // [out, in] weights, rows split or permuted among the parts
	kindTransposed                  // stored [in, out]: a stored row is a column of every part
	kindBias                        // a projection's bias, as it is or permuted
	kindMLA                         // a latent-attention factor decoded as it is stored
)

// layerCovers lists the tensors of layer ls whose values its decoded layer
// holds exactly. The others (LoRA factors, norms, GGUF's reassembled
// latent factors, fused biases) are left to the scan; they are small.
func layerCovers(ls *formats.LayerSource) []cover {
	var out []cover
	byTensor := map[*formats.Tensor][]coverPart{}
	var order []*formats.Tensor
	transposed := map[*formats.Tensor]bool{}
	mixed := map[*formats.Tensor]bool{}
	for _, p := range formats.Projections {
		ps := ls.Proj(p)
		if ps == nil || ps.Tensor == nil || ps.LoRA != nil || ps.Effective != "" {
			continue
		}
		t := ps.Tensor
		if _, seen := byTensor[t]; !seen {
			order = append(order, t)
			transposed[t] = ps.Transposed
		} else if transposed[t] != ps.Transposed {
			mixed[t] = true
		}
		byTensor[t] = append(byTensor[t], coverPart{p, ps.Rows})
		// A bias read whole, or permuted with its weight's rows (a fused
		// bias split among the projections is left to the scan).
		if ps.Bias != nil && (ps.Rows == nil || (len(ps.Rows) == int(ps.Bias.Elements()) && isPermutation(ps.Rows))) {
			out = append(out, cover{t: ps.Bias, kind: kindBias, parts: []coverPart{{p, ps.Rows}}})
		}
	}
	for _, t := range order {
		parts := byTensor[t]
		if mixed[t] || len(t.Shape) != 2 {
			continue
		}
		stored := int(t.Shape[0]) // rows split among the parts
		if transposed[t] {
			stored = int(t.Shape[1]) // columns split among the parts
		}
		if !partition(ls, parts, stored, int(t.Shape[0]), int(t.Shape[1]), transposed[t]) {
			continue
		}
		kind := kindRows
		if transposed[t] {
			kind = kindTransposed
		}
		out = append(out, cover{t: t, kind: kind, parts: parts})
	}
	if ml := ls.MLA; ml != nil {
		// QB and KVA/KVB are decoded as stored (GGUF's k_b and v_b are
		// reassembled into kv_b, so they are scanned).
		for _, x := range []struct {
			name string
			t    *formats.Tensor
		}{{"q_a", ml.QA}, {"q_b", ml.QB}, {"kv_a", ml.KVA}, {"kv_b", ml.KVB}} {
			if x.t != nil && len(x.t.Shape) == 2 {
				out = append(out, cover{t: x.t, kind: kindMLA, mla: x.name})
			}
		}
	}
	return out
}

// partition reports whether the parts' matrices hold each of the stored
// rows (columns for a transposed tensor) exactly once, with the stored
// tensor's other dimension as their columns (rows).
func partition(ls *formats.LayerSource, parts []coverPart, stored, rows, cols int, transposed bool) bool {
	seen := make([]bool, stored)
	n := 0
	for _, pt := range parts {
		ps := ls.Proj(pt.p)
		other := cols
		if transposed {
			other = rows
		}
		if ps.In != other {
			return false
		}
		if pt.rows == nil {
			if ps.Out != stored {
				return false
			}
			for i := range seen {
				if seen[i] {
					return false
				}
				seen[i] = true
			}
			n += stored
			continue
		}
		if len(pt.rows) != ps.Out {
			return false
		}
		for _, r := range pt.rows {
			if r < 0 || r >= stored || seen[r] {
				return false
			}
			seen[r] = true
		}
		n += len(pt.rows)
	}
	return n == stored
}

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

// count takes the cover's counts from the decoded layer; ok is false when
// the layer does not hold the values the cover expects (then the scan
// decodes the tensor).
func (c *cover) count(l *formats.Layer) (valueScan, bool) {
	t := c.t
	switch c.kind {
	case kindBias:
		b := l.Bias(c.parts[0].p)
		if int64(len(b)) != t.Elements() {
			return valueScan{}, false
		}
		sc := newValueScan(max(t.RowLen(), 1))
		sc.feed(b)
		return sc, true
	case kindMLA:
		if l.MLA == nil {
			return valueScan{}, false
		}
		var mat formats.Matrix
		switch c.mla {
		case "q_a":
			mat = l.MLA.QA
		case "q_b":
			mat = l.MLA.QB
		case "kv_a":
			mat = l.MLA.KVA
		case "kv_b":
			mat = l.MLA.KVB
		}
		if int64(mat.Rows) != t.Shape[0] || int64(mat.Cols) != t.Shape[1] || len(mat.Data) != mat.Rows*mat.Cols {
			return valueScan{}, false
		}
		sc := newValueScan(int64(mat.Cols))
		sc.feed(mat.Data)
		return sc, true
	case kindRows:
		total := newValueScan(t.Shape[1])
		for k, pt := range c.parts {
			mat := l.Matrix(pt.p)
			if int64(mat.Cols) != t.Shape[1] || len(mat.Data) != mat.Rows*mat.Cols {
				return valueScan{}, false
			}
			sc := newValueScan(int64(mat.Cols))
			sc.rowOf = pt.rows
			sc.feed(mat.Data)
			if k == 0 {
				total = sc
				total.rowOf = nil
			} else {
				total.merge(sc)
			}
		}
		return total, true
	case kindTransposed:
		// Stored [in, out]: stored row k is column k of every part.
		in, out := int(t.Shape[0]), t.Shape[1]
		sc := newValueScan(out)
		colNonzero := make([]bool, in)
		for _, pt := range c.parts {
			mat := l.Matrix(pt.p)
			if mat.Cols != in || len(mat.Data) != mat.Rows*mat.Cols {
				return valueScan{}, false
			}
			part := newValueScan(int64(mat.Cols))
			part.feed(mat.Data) // NaN and Inf counts; rows here are columns stored
			sc.nan += part.nan
			sc.inf += part.inf
			for r := 0; r < mat.Rows; r++ {
				for k, v := range mat.Row(r) {
					if v != 0 {
						colNonzero[k] = true
					}
				}
			}
		}
		sc.firstZeroRow = -1
		sc.allZero = true
		for k, nz := range colNonzero {
			if nz {
				sc.allZero = false
				continue
			}
			sc.zeroRows++
			if sc.firstZeroRow < 0 {
				sc.firstZeroRow = int64(k)
			}
		}
		return sc, true
	}
	return valueScan{}, false
}
