package attn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qkvdev/qkv/formats"
)

// refInvFreq is an independent float64 transcription of transformers'
// rope init functions (default, linear, dynamic, yarn, longrope, llama3) for
// a run of T positions: it returns the inverse frequencies and the factor on
// cos and sin. It is written from the published formulas, without Run's
// float32 rounding.
func refInvFreq(rot int, theta float64, sc *formats.RopeScaling, T int) ([]float64, float64) {
	n := rot / 2
	plain := func(base float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Pow(base, -float64(2*i)/float64(rot))
		}
		return out
	}
	if sc == nil {
		return plain(theta), 1
	}
	inv := plain(theta)
	mscale := func(s, m float64) float64 {
		if s <= 1 {
			return 1
		}
		return 1 + 0.1*m*math.Log(s)
	}
	switch sc.Type {
	case "linear":
		for i := range inv {
			inv[i] /= sc.Factor
		}
		return inv, 1
	case "dynamic":
		if T <= sc.MaxPositions {
			return inv, 1
		}
		ratio := sc.Factor*float64(T)/float64(sc.MaxPositions) - sc.Factor + 1
		return plain(theta * math.Pow(ratio, float64(rot)/float64(rot-2))), 1
	case "yarn":
		factor := sc.Factor
		if factor == 0 {
			factor = float64(sc.MaxPositions) / float64(sc.OriginalMaxPositions)
		}
		// The dimension index at which a frequency turns r times over the
		// original context: solve orig/(2π·theta^(2d/rot)) = r for d.
		dimFor := func(r float64) float64 {
			return math.Log(float64(sc.OriginalMaxPositions)/(2*math.Pi*r)) * float64(rot) / (2 * math.Log(theta))
		}
		fast, slow := sc.BetaFast, sc.BetaSlow
		if fast == 0 {
			fast = 32
		}
		if slow == 0 {
			slow = 1
		}
		lo, hi := dimFor(fast), dimFor(slow)
		if sc.Truncate == nil || *sc.Truncate {
			lo, hi = math.Floor(lo), math.Ceil(hi)
		}
		lo, hi = math.Max(lo, 0), math.Min(hi, float64(rot-1))
		if lo == hi {
			hi += 0.001
		}
		for i := range inv {
			w := math.Min(1, math.Max(0, (float64(i)-lo)/(hi-lo))) // weight of the interpolated frequency
			inv[i] = inv[i]*(1-w) + inv[i]/factor*w
		}
		af := sc.AttentionFactor
		if af == 0 {
			af = mscale(factor, 1)
			if sc.MScale != 0 && sc.MScaleAllDim != 0 {
				af = mscale(factor, sc.MScale) / mscale(factor, sc.MScaleAllDim)
			}
		}
		return inv, af
	case "longrope":
		ext := sc.ShortFactor
		if T > sc.OriginalMaxPositions {
			ext = sc.LongFactor
		}
		for i := range inv {
			inv[i] /= ext[i]
		}
		f := float64(sc.MaxPositions) / float64(sc.OriginalMaxPositions)
		if sc.Factor != 0 {
			f = sc.Factor
		}
		af := 1.0
		if f > 1 {
			af = math.Sqrt(1 + math.Log(f)/math.Log(float64(sc.OriginalMaxPositions)))
		}
		return inv, af
	case "llama3":
		orig := float64(sc.OriginalMaxPositions)
		for i, f := range inv {
			wave := 2 * math.Pi / f
			switch {
			case wave < orig/sc.HighFreqFactor:
			case wave > orig/sc.LowFreqFactor:
				inv[i] = f / sc.Factor
			default:
				s := (orig/wave - sc.LowFreqFactor) / (sc.HighFreqFactor - sc.LowFreqFactor)
				inv[i] = (1-s)*f/sc.Factor + s*f
			}
		}
		return inv, 1
	}
	panic("refInvFreq: unknown type " + sc.Type)
}

// naive is a direct float64 transcription of the computation in Run's doc,
// written without blocking or packing, to check the fast path at sizes where
// it splits rows into causal blocks and C into several tasks, and every
// setting of the attention contract.
func naive(g formats.Geometry, l *formats.Layer, x formats.Matrix, causal, useNorm bool) (probs [][][]float64, out [][]float64) {
	if g.NKVHeads == 0 {
		g.NKVHeads = g.NHeads
	}
	T, d, hd, nh, nkv := x.Rows, g.DModel, g.HeadDim, g.NHeads, g.NKVHeads
	vhd := g.ValueHeadDim()
	// rms normalises v in place over each block of n values, times w (nil: 1).
	rms := func(v []float64, n int, w []float32, eps float64) {
		for b := 0; b+n <= len(v); b += n {
			var ss float64
			for _, e := range v[b : b+n] {
				ss += e * e
			}
			r := 1 / math.Sqrt(ss/float64(n)+eps)
			for j := b; j < b+n; j++ {
				v[j] *= r
				if w != nil {
					v[j] *= float64(w[j-b])
				}
			}
		}
	}
	xn := make([][]float64, T)
	for i := range xn {
		xn[i] = make([]float64, d)
		row := x.Row(i)
		var mean float64
		for j, v := range row {
			xn[i][j] = float64(v)
			mean += float64(v) / float64(d)
		}
		if !useNorm {
			continue
		}
		if g.Norm == formats.NormLayerNorm {
			var ss float64
			for _, v := range xn[i] {
				ss += (v - mean) * (v - mean)
			}
			for j := range xn[i] {
				xn[i][j] = (xn[i][j]-mean)/math.Sqrt(ss/float64(d)+g.NormEps)*float64(l.NormWeight[j]) + float64(l.NormBias[j])
			}
		} else {
			rms(xn[i], d, l.NormWeight, g.NormEps)
		}
	}
	proj := func(w formats.Matrix, b []float32, in [][]float64) [][]float64 {
		o := make([][]float64, len(in))
		for i := range in {
			o[i] = make([]float64, w.Rows)
			for r := 0; r < w.Rows; r++ {
				var s float64
				for c := 0; c < w.Cols; c++ {
					s += in[i][c] * float64(w.At(r, c))
				}
				if b != nil {
					s += float64(b[r])
				}
				o[i][r] = s
			}
		}
		return o
	}
	la := g.ForLayer(l.Index)
	rot := g.RotaryDims
	if g.MLA != nil {
		rot = g.MLA.QKRopeHeadDim
	}
	var inv []float64
	af := 1.0
	if la.RoPE && rot > 0 {
		inv, af = refInvFreq(rot, la.RopeTheta, la.RopeScaling, T)
	}
	// rope turns, in each head of width w of row p, the rot dims from off.
	rope := func(m [][]float64, heads, w, off int) {
		if inv == nil {
			return
		}
		for p := range m {
			for h := 0; h < heads; h++ {
				for i := 0; i < rot/2; i++ {
					a, b := h*w+off+i, h*w+off+i+rot/2
					if g.RopeStyle == formats.RopeInterleavedPairs {
						a, b = h*w+off+2*i, h*w+off+2*i+1
					}
					c, s := af*math.Cos(float64(p)*inv[i]), af*math.Sin(float64(p)*inv[i])
					m[p][a], m[p][b] = m[p][a]*c-m[p][b]*s, m[p][b]*c+m[p][a]*s
				}
			}
		}
	}
	var q, k, v [][]float64
	if ml := g.MLA; ml != nil {
		f := l.MLA
		if ml.QLoraRank > 0 {
			q = proj(f.QA, nil, xn)
			for i := range q {
				rms(q[i], ml.QLoraRank, f.QANorm, 1e-6)
			}
			q = proj(f.QB, nil, q)
		} else {
			q = proj(f.QB, nil, xn)
		}
		c := proj(f.KVA, nil, xn)
		lat := make([][]float64, T)
		kr := make([][]float64, T)
		for i := range c {
			lat[i] = append([]float64(nil), c[i][:ml.KVLoraRank]...)
			kr[i] = append([]float64(nil), c[i][ml.KVLoraRank:]...)
			rms(lat[i], ml.KVLoraRank, f.KVANorm, 1e-6)
		}
		kv := proj(f.KVB, nil, lat)
		rope(q, nh, hd, ml.QKNopeHeadDim)
		rope(kr, 1, rot, 0)
		k, v = make([][]float64, T), make([][]float64, T)
		for i := range kv {
			for h := 0; h < nh; h++ {
				blk := kv[i][h*(ml.QKNopeHeadDim+vhd):]
				k[i] = append(append(k[i], blk[:ml.QKNopeHeadDim]...), kr[i]...)
				v[i] = append(v[i], blk[ml.QKNopeHeadDim:ml.QKNopeHeadDim+vhd]...)
			}
		}
	} else {
		q, k, v = proj(l.Q, l.QBias, xn), proj(l.K, l.KBias, xn), proj(l.V, l.VBias, xn)
		for i := 0; i < T; i++ {
			switch g.QKNorm {
			case formats.QKNormPerHead:
				rms(q[i], hd, l.QNorm, g.QKNormEps)
				rms(k[i], hd, l.KNorm, g.QKNormEps)
			case formats.QKNormWhole:
				rms(q[i], nh*hd, l.QNorm, g.QKNormEps)
				rms(k[i], nkv*hd, l.KNorm, g.QKNormEps)
			}
		}
		rope(q, nh, hd, 0)
		rope(k, nkv, hd, 0)
		if g.QKNorm == formats.QKNormL2 && inv != nil {
			for i := 0; i < T; i++ {
				rms(q[i], hd, nil, g.QKNormEps)
				rms(k[i], hd, nil, g.QKNormEps)
			}
		}
	}
	scale := g.ScoreScale
	if scale == 0 {
		scale = 1 / math.Sqrt(float64(hd))
	}
	slopes := ALiBiSlopes(nh)
	ctx := make([][]float64, T)
	for i := range ctx {
		ctx[i] = make([]float64, nh*vhd)
	}
	probs = make([][][]float64, nh)
	for h := 0; h < nh; h++ {
		kg := h / (nh / nkv)
		probs[h] = make([][]float64, T)
		for i := 0; i < T; i++ {
			s := make([]float64, T)
			m := math.Inf(-1)
			for j := 0; j < T; j++ {
				masked := causal && j > i
				if la.Type == formats.LayerSlidingAttention {
					masked = masked || j <= i-la.Window || (!causal && j >= i+la.Window)
				}
				if masked {
					s[j] = math.Inf(-1)
					continue
				}
				for c := 0; c < hd; c++ {
					s[j] += q[i][h*hd+c] * k[j][kg*hd+c]
				}
				s[j] *= scale
				if g.Softcap > 0 {
					s[j] = g.Softcap * math.Tanh(s[j]/g.Softcap)
				}
				if g.ALiBi {
					s[j] += slopes[h] * float64(j) // Hugging Face BLOOM's form
				}
				m = math.Max(m, s[j])
			}
			var z, sink float64
			if g.Sinks {
				m = math.Max(m, float64(l.Sinks[h]))
				sink = math.Exp(float64(l.Sinks[h]) - m)
				z = sink
			}
			for j := range s {
				s[j] = math.Exp(s[j] - m)
				z += s[j]
			}
			for j := range s {
				s[j] /= z
				for c := 0; c < vhd; c++ {
					ctx[i][h*vhd+c] += s[j] * v[j][kg*vhd+c]
				}
			}
			probs[h][i] = s
		}
	}
	return probs, proj(l.O, l.OBias, ctx)
}

// compareNaive runs Run on g and naive on ref (g with what the reference
// needs spelled out) and returns max|Δp| and rel Frobenius Δout.
func compareNaive(t *testing.T, g, ref formats.Geometry, l *formats.Layer, x formats.Matrix) (res *Result, dp, do float64) {
	t.Helper()
	res, err := Run(g, l, x, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantP, wantO := naive(ref, l, x, g.Causal, g.PreNorm)
	for h := range wantP {
		for i := range wantP[h] {
			for j := range wantP[h][i] {
				dp = math.Max(dp, math.Abs(float64(res.Probs[h][i][j])-wantP[h][i][j]))
			}
		}
	}
	var num, den float64
	for i := range wantO {
		for j, w := range wantO[i] {
			e := float64(res.Out.At(i, j)) - w
			num += e * e
			den += w * w
		}
	}
	return res, dp, math.Sqrt(num / den)
}

func TestAgainstNaive(t *testing.T) {
	base := formats.Geometry{DModel: 48, NHeads: 6, NKVHeads: 2, HeadDim: 12, Causal: true,
		RotaryDims: 8, RopeTheta: 10000, Norm: formats.NormLayerNorm, NormEps: 1e-5, PreNorm: true}
	alibi := base
	alibi.RotaryDims, alibi.RopeTheta, alibi.ALiBi, alibi.NKVHeads = 0, 0, true, 6
	rms := base
	rms.Norm, rms.NKVHeads, rms.RotaryDims = formats.NormRMS, 1, 12
	enc := base
	enc.Causal, enc.PreNorm, enc.RotaryDims = false, false, 0
	for name, g := range map[string]formats.Geometry{"gqa-layernorm-partial-rope": base, "alibi-6-heads": alibi, "mqa-rmsnorm": rms, "encoder": enc} {
		for _, T := range []int{1, 50, 131} {
			l := testModel(uint64(T), g)
			x, _, _ := RandomInput(T, g.DModel, uint64(T)+1, 1)
			if _, dp, do := compareNaive(t, g, g, l, x); dp > 1e-5 || do > 1e-5 {
				t.Errorf("%s T=%d: max|Δp| = %g, rel Δout = %g", name, T, dp, do)
			}
		}
	}
}

// TestSettingsAgainstNaive checks every setting of the attention contract
// against the float64 transcription, at lengths that split causal rows into
// blocks, with the rope scalings past their original context.
func TestSettingsAgainstNaive(t *testing.T) {
	tr, fa := true, false
	base := formats.Geometry{DModel: 32, NHeads: 4, NKVHeads: 2, HeadDim: 8, Causal: true,
		RotaryDims: 8, RopeTheta: 10000, Norm: formats.NormRMS, NormEps: 1e-6, PreNorm: true}
	with := func(f func(g *formats.Geometry)) formats.Geometry {
		g := base
		f(&g)
		return g
	}
	geos := map[string]formats.Geometry{
		"qk-norm-per-head": with(func(g *formats.Geometry) { g.QKNorm, g.QKNormEps = formats.QKNormPerHead, 1e-6 }),
		"qk-norm-whole":    with(func(g *formats.Geometry) { g.QKNorm, g.QKNormEps = formats.QKNormWhole, 1e-6 }),
		"qk-norm-l2-nope": with(func(g *formats.Geometry) {
			g.QKNorm, g.QKNormEps, g.RopeStyle, g.NoRoPELayers = formats.QKNormL2, 1e-5, formats.RopeInterleavedPairs, []int{3}
		}),
		"interleaved-partial": with(func(g *formats.Geometry) { g.RopeStyle, g.RotaryDims = formats.RopeInterleavedPairs, 4 }),
		"linear":              with(func(g *formats.Geometry) { g.RopeScaling = &formats.RopeScaling{Type: "linear", Factor: 4} }),
		"dynamic": with(func(g *formats.Geometry) {
			g.RopeScaling = &formats.RopeScaling{Type: "dynamic", Factor: 2, MaxPositions: 32}
		}),
		"yarn-truncate": with(func(g *formats.Geometry) {
			g.RopeScaling = &formats.RopeScaling{Type: "yarn", Factor: 8, OriginalMaxPositions: 32, BetaFast: 32, BetaSlow: 1, Truncate: &tr}
		}),
		"yarn-mscale": with(func(g *formats.Geometry) {
			g.RopeScaling = &formats.RopeScaling{Type: "yarn", Factor: 8, OriginalMaxPositions: 16, BetaFast: 16, BetaSlow: 2,
				Truncate: &fa, MScale: 0.7, MScaleAllDim: 1}
		}),
		"longrope": with(func(g *formats.Geometry) {
			g.RopeScaling = &formats.RopeScaling{Type: "longrope", OriginalMaxPositions: 32, MaxPositions: 256,
				ShortFactor: []float64{1, 1.5, 2, 3}, LongFactor: []float64{1.2, 4, 9, 20}}
		}),
		"llama3": with(func(g *formats.Geometry) {
			g.RopeScaling = &formats.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 64}
		}),
		"gemma-like": with(func(g *formats.Geometry) {
			g.LayerTypes = []string{"sliding_attention", "full_attention", "sliding_attention", "sliding_attention"}
			g.SlidingWindow, g.LocalRopeTheta, g.RopeTheta = 5, 10000, 1e6
			g.RopeScaling = &formats.RopeScaling{Type: "linear", Factor: 8}
			g.ScoreScale, g.Softcap = 0.3, 2
		}),
		"sliding-bidirectional": with(func(g *formats.Geometry) {
			g.Causal, g.LayerTypes, g.SlidingWindow = false, []string{"sliding_attention", "sliding_attention", "sliding_attention"}, 7
		}),
		"sinks-window": with(func(g *formats.Geometry) {
			g.Sinks, g.LayerTypes, g.SlidingWindow = true, []string{"full_attention", "sliding_attention"}, 9
		}),
		"mla": with(func(g *formats.Geometry) {
			g.NKVHeads, g.HeadDim, g.VHeadDim, g.RotaryDims, g.RopeStyle = 4, 10, 6, 4, formats.RopeInterleavedPairs
			g.MLA = &formats.MLA{QLoraRank: 12, KVLoraRank: 10, QKNopeHeadDim: 6, QKRopeHeadDim: 4, VHeadDim: 6}
			g.RopeScaling = &formats.RopeScaling{Type: "yarn", Factor: 4, OriginalMaxPositions: 16, MScale: 1, MScaleAllDim: 1}
		}),
		"mla-no-q-lora": with(func(g *formats.Geometry) {
			g.NKVHeads, g.HeadDim, g.VHeadDim, g.RotaryDims = 4, 10, 6, 4
			g.MLA = &formats.MLA{KVLoraRank: 10, QKNopeHeadDim: 6, QKRopeHeadDim: 4, VHeadDim: 6}
		}),
	}
	for name, g := range geos {
		for _, layer := range []int{0, 1, 3} {
			for _, T := range []int{1, 9, 70} {
				l := settingsModel(uint64(T+layer), g)
				l.Index = layer
				x, _, _ := RandomInput(T, g.DModel, uint64(T)+2, 1)
				gg := g
				if g.MLA != nil && g.RopeScaling != nil {
					// DeepSeek's mscale² on the score scale, computed here
					// from its definition for the float64 reference.
					m := 0.1*g.RopeScaling.MScaleAllDim*math.Log(g.RopeScaling.Factor) + 1
					gg.ScoreScale = m * m / math.Sqrt(float64(g.HeadDim))
				}
				res, dp, do := compareNaive(t, g, gg, l, x)
				if gg.ScoreScale != 0 && math.Abs(res.Settings.Scale-gg.ScoreScale) > 1e-7 {
					t.Errorf("%s: scale %g, want %g", name, res.Settings.Scale, gg.ScoreScale)
				}
				if dp > 1e-5 || do > 1e-5 {
					t.Errorf("%s layer %d T=%d: max|Δp| = %g, rel Δout = %g", name, layer, T, dp, do)
				}
			}
		}
	}
}

// settingsModel returns a random layer for any geometry of the contract:
// Q/K norm weights, sinks and MLA factors where the geometry has them.
func settingsModel(seed uint64, g formats.Geometry) *formats.Layer {
	r := rand.New(rand.NewPCG(seed, 7))
	nkv := g.NKVHeads
	hd, vhd := g.HeadDim, g.ValueHeadDim()
	pos := func(n int) []float32 {
		v := randVec(r, n, 0.3)
		for i := range v {
			v[i]++
		}
		return v
	}
	l := &formats.Layer{O: randMatrix(r, g.DModel, g.NHeads*vhd, 0.3), OBias: randVec(r, g.DModel, 0.1), NormWeight: pos(g.DModel)}
	if m := g.MLA; m != nil {
		f := &formats.MLALayer{KVA: randMatrix(r, m.KVLoraRank+m.QKRopeHeadDim, g.DModel, 0.4),
			KVANorm: pos(m.KVLoraRank), KVB: randMatrix(r, g.NHeads*(m.QKNopeHeadDim+vhd), m.KVLoraRank, 0.4)}
		if m.QLoraRank > 0 {
			f.QA, f.QANorm = randMatrix(r, m.QLoraRank, g.DModel, 0.4), pos(m.QLoraRank)
			f.QB = randMatrix(r, g.NHeads*hd, m.QLoraRank, 0.4)
		} else {
			f.QB = randMatrix(r, g.NHeads*hd, g.DModel, 0.4)
		}
		l.MLA = f
		return l
	}
	l.Q, l.K, l.V = randMatrix(r, g.NHeads*hd, g.DModel, 0.4), randMatrix(r, nkv*hd, g.DModel, 0.4), randMatrix(r, nkv*vhd, g.DModel, 0.4)
	l.QBias, l.KBias, l.VBias = randVec(r, g.NHeads*hd, 0.1), randVec(r, nkv*hd, 0.1), randVec(r, nkv*vhd, 0.1)
	switch g.QKNorm {
	case formats.QKNormPerHead:
		l.QNorm, l.KNorm = pos(hd), pos(hd)
	case formats.QKNormWhole:
		l.QNorm, l.KNorm = pos(g.NHeads*hd), pos(nkv*hd)
	}
	if g.Sinks {
		l.Sinks = randVec(r, g.NHeads, 1.5)
	}
	return l
}
