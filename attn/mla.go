package attn

import (
	"fmt"

	"github.com/qkvdev/qkv/formats"
)

// checkMLA validates a latent-attention geometry and the layer's factors.
func checkMLA(g formats.Geometry, l *formats.Layer) error {
	m := g.MLA
	if m.KVLoraRank <= 0 || m.QKNopeHeadDim < 0 || m.QKRopeHeadDim <= 0 || m.QKRopeHeadDim%2 != 0 || m.VHeadDim <= 0 || m.QLoraRank < 0 {
		return fmt.Errorf("attn: MLA needs positive kv_lora_rank and v_head_dim and an even positive qk_rope_head_dim (got %+v)", *m)
	}
	if g.HeadDim != m.QKNopeHeadDim+m.QKRopeHeadDim || g.ValueHeadDim() != m.VHeadDim {
		return fmt.Errorf("attn: MLA head_dim %d and v_head_dim %d must be qk_nope_head_dim + qk_rope_head_dim = %d and v_head_dim = %d",
			g.HeadDim, g.ValueHeadDim(), m.QKNopeHeadDim+m.QKRopeHeadDim, m.VHeadDim)
	}
	if g.NKVHeads != g.NHeads {
		return fmt.Errorf("attn: MLA needs n_kv_heads = n_heads (got %d and %d)", g.NKVHeads, g.NHeads)
	}
	if g.RotaryDims != m.QKRopeHeadDim {
		return fmt.Errorf("attn: MLA rotary_dims %d must equal qk_rope_head_dim %d", g.RotaryDims, m.QKRopeHeadDim)
	}
	if g.QKNorm != formats.QKNormNone || g.ALiBi {
		return fmt.Errorf("attn: MLA with a Q/K norm or ALiBi is not a known architecture")
	}
	f := l.MLA
	if f == nil {
		return fmt.Errorf("attn: layer %d has no latent-attention factors (q_a/q_b, kv_a, kv_b)", l.Index)
	}
	if l.QBias != nil || l.KBias != nil || l.VBias != nil {
		return fmt.Errorf("attn: layer %d: q/k/v biases cannot be placed in latent attention", l.Index)
	}
	nh, qk := g.NHeads, g.HeadDim
	shapes := []shape{
		{"kv_a_proj_with_mqa", f.KVA, m.KVLoraRank + m.QKRopeHeadDim, g.DModel},
		{"kv_b_proj", f.KVB, nh * (m.QKNopeHeadDim + m.VHeadDim), m.KVLoraRank},
	}
	vecs := []vec{{"kv_a_layernorm", f.KVANorm, m.KVLoraRank, true}}
	if m.QLoraRank > 0 {
		shapes = append(shapes, shape{"q_a_proj", f.QA, m.QLoraRank, g.DModel}, shape{"q_b_proj", f.QB, nh * qk, m.QLoraRank})
		vecs = append(vecs, vec{"q_a_layernorm", f.QANorm, m.QLoraRank, true})
	} else {
		shapes = append(shapes, shape{"q_proj", f.QB, nh * qk, g.DModel})
		if !f.QA.Empty() || f.QANorm != nil {
			return fmt.Errorf("attn: layer %d has q_a factors, but q_lora_rank is 0", l.Index)
		}
	}
	return checkShapes(l.Index, shapes, vecs)
}

// mlaProject computes q [T, n_heads·qk_head_dim], k (same layout) and
// v [T, n_heads·v_head_dim] of a latent-attention layer from its factors,
// as Hugging Face DeepseekV3Attention does, with RoPE (cos/sin, nil for
// none) applied to each query head's last qk_rope_head_dim dims and to the
// shared rope key before it joins every head's key.
func mlaProject(g formats.Geometry, l *formats.Layer, xn formats.Matrix, cos, sin []float32, interleaved bool) (q, k, v formats.Matrix) {
	m, f := g.MLA, l.MLA
	T, nh, qk := xn.Rows, g.NHeads, g.HeadDim
	nope, rope, vhd, r := m.QKNopeHeadDim, m.QKRopeHeadDim, m.VHeadDim, m.KVLoraRank
	xp := packMatrixA(xn.Data, xn.Cols, T, xn.Cols, true)
	if m.QLoraRank > 0 {
		cq := linearPacked(xp, f.QA, nil)
		rmsNorm(cq.Data, cq.Data, f.QANorm, m.QLoraRank, mlaLatentNormEps)
		q = linear(cq, f.QB, nil)
	} else {
		q = linearPacked(xp, f.QB, nil)
	}
	ckv := linearPacked(xp, f.KVA, nil) // [T, kv_lora_rank + rope]
	latent := formats.NewMatrix(T, r)
	kRope := formats.NewMatrix(T, rope)
	for i := 0; i < T; i++ {
		row := ckv.Row(i)
		copy(latent.Row(i), row[:r])
		copy(kRope.Row(i), row[r:])
	}
	rmsNorm(latent.Data, latent.Data, f.KVANorm, r, mlaLatentNormEps)
	kv := linear(latent, f.KVB, nil) // head h: [k_nope (nope); v (vhd)]
	if cos != nil {
		applyRotary(q.Data, T, q.Cols, nh, qk, nope, rope, interleaved, cos, sin)
		applyRotary(kRope.Data, T, rope, 1, rope, 0, rope, interleaved, cos, sin)
	}
	k = formats.NewMatrix(T, nh*qk)
	v = formats.NewMatrix(T, nh*vhd)
	for i := 0; i < T; i++ {
		kvRow, kRow, vRow := kv.Row(i), k.Row(i), v.Row(i)
		for h := 0; h < nh; h++ {
			src := kvRow[h*(nope+vhd):]
			copy(kRow[h*qk:h*qk+nope], src[:nope])
			copy(kRow[h*qk+nope:(h+1)*qk], kRope.Row(i))
			copy(vRow[h*vhd:(h+1)*vhd], src[nope:nope+vhd])
		}
	}
	return q, k, v
}
