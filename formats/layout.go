package formats

import "fmt"

// String describes the layout for reports.
func (k FusedLayout) String() string {
	switch k {
	case FusedContig:
		return "q|k|v row blocks"
	case FusedPerHead:
		return "interleaved per head [q_h; k_h; v_h]"
	case FusedGrouped:
		return "grouped per KV head [q heads of the group; k_g; v_g]"
	}
	return "unknown"
}

// fusedRows returns, for a fused tensor, the stored rows that form Q, K and
// V in Hugging Face order. The fused tensor must have (nh+2*nkv)*hd rows.
func fusedRows(kind FusedLayout, nh, nkv, hd int) (q, k, v []int, err error) {
	if nh <= 0 || nkv <= 0 || hd <= 0 {
		return nil, nil, nil, fmt.Errorf("splitting a fused QKV tensor needs the head counts and head_dim (n_heads %d, n_kv_heads %d, head_dim %d)", nh, nkv, hd)
	}
	q = make([]int, 0, nh*hd)
	k = make([]int, 0, nkv*hd)
	v = make([]int, 0, nkv*hd)
	seq := func(dst []int, start, n int) []int {
		for i := 0; i < n; i++ {
			dst = append(dst, start+i)
		}
		return dst
	}
	switch kind {
	case FusedContig:
		q = seq(q, 0, nh*hd)
		k = seq(k, nh*hd, nkv*hd)
		v = seq(v, (nh+nkv)*hd, nkv*hd)
	case FusedPerHead:
		if nkv != nh {
			return nil, nil, nil, fmt.Errorf("a per-head interleaved QKV tensor needs n_kv_heads == n_heads (have %d and %d)", nkv, nh)
		}
		for h := 0; h < nh; h++ {
			base := 3 * h * hd
			q = seq(q, base, hd)
			k = seq(k, base+hd, hd)
			v = seq(v, base+2*hd, hd)
		}
	case FusedGrouped:
		if nh%nkv != 0 {
			return nil, nil, nil, fmt.Errorf("n_heads %d is not a multiple of n_kv_heads %d", nh, nkv)
		}
		g := nh / nkv
		for j := 0; j < nkv; j++ {
			base := j * (g + 2) * hd
			q = seq(q, base, g*hd)
			k = seq(k, base+g*hd, hd)
			v = seq(v, base+(g+1)*hd, hd)
		}
	default:
		return nil, nil, nil, fmt.Errorf("the fused QKV layout of this architecture is unknown")
	}
	return q, k, v, nil
}

// unpermuteRows undoes llama.cpp's RoPE permutation of Q/K rows: within each
// head of hd rows, stored row 2*j+s holds Hugging Face row s*hd/2+j. The
// result lists, for each HF row, the stored row (composed with src when src
// is not nil: the stored rows are src's entries).
func unpermuteRows(src []int, nHeads, hd, rows int) ([]int, error) {
	if hd%2 != 0 || nHeads*hd != rows {
		return nil, fmt.Errorf("cannot undo the RoPE row permutation: %d rows are not %d heads of an even head_dim %d", rows, nHeads, hd)
	}
	out := make([]int, rows)
	half := hd / 2
	for h := 0; h < nHeads; h++ {
		for s := 0; s < 2; s++ {
			for j := 0; j < half; j++ {
				stored := h*hd + 2*j + s
				if src != nil {
					stored = src[stored]
				}
				out[h*hd+s*half+j] = stored
			}
		}
	}
	return out, nil
}
