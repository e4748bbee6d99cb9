package attn

import (
	"math"
	"testing"

	"github.com/qkvdev/qkv/formats"
)

// naive is a direct float64 transcription of the computation in Run's doc,
// written without blocking or packing, to check the fast path at sizes where
// it splits rows into causal blocks and C into several tasks.
func naive(g formats.Geometry, l *formats.Layer, x formats.Matrix, causal, useNorm bool) (probs [][][]float64, out [][]float64) {
	T, d, hd, nh, nkv := x.Rows, g.DModel, g.HeadDim, g.NHeads, g.NKVHeads
	xn := make([][]float64, T)
	for i := range xn {
		xn[i] = make([]float64, d)
		row := x.Row(i)
		var mean, ss float64
		for _, v := range row {
			mean += float64(v)
		}
		mean /= float64(d)
		for j, v := range row {
			xn[i][j] = float64(v)
			if useNorm && g.Norm == formats.NormLayerNorm {
				ss += (float64(v) - mean) * (float64(v) - mean)
			} else {
				ss += float64(v) * float64(v)
			}
		}
		if !useNorm {
			continue
		}
		for j := range xn[i] {
			if g.Norm == formats.NormLayerNorm {
				xn[i][j] = (xn[i][j]-mean)/math.Sqrt(ss/float64(d)+g.NormEps)*float64(l.NormWeight[j]) + float64(l.NormBias[j])
			} else {
				xn[i][j] = xn[i][j] / math.Sqrt(ss/float64(d)+g.NormEps) * float64(l.NormWeight[j])
			}
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
	q, k, v := proj(l.Q, l.QBias, xn), proj(l.K, l.KBias, xn), proj(l.V, l.VBias, xn)
	rope := func(m [][]float64, heads int) {
		rot := g.RotaryDims
		for p := range m {
			for h := 0; h < heads; h++ {
				for i := 0; i < rot/2; i++ {
					a := float64(p) / math.Pow(g.RopeTheta, float64(2*i)/float64(rot))
					x1, x2 := m[p][h*hd+i], m[p][h*hd+i+rot/2]
					m[p][h*hd+i] = x1*math.Cos(a) - x2*math.Sin(a)
					m[p][h*hd+i+rot/2] = x2*math.Cos(a) + x1*math.Sin(a)
				}
			}
		}
	}
	if g.RotaryDims > 0 {
		rope(q, nh)
		rope(k, nkv)
	}
	slopes := ALiBiSlopes(nh)
	ctx := make([][]float64, T)
	for i := range ctx {
		ctx[i] = make([]float64, nh*hd)
	}
	probs = make([][][]float64, nh)
	for h := 0; h < nh; h++ {
		kg := h / (nh / nkv)
		probs[h] = make([][]float64, T)
		for i := 0; i < T; i++ {
			s := make([]float64, T)
			m := math.Inf(-1)
			for j := 0; j < T; j++ {
				if causal && j > i {
					s[j] = math.Inf(-1)
					continue
				}
				for c := 0; c < hd; c++ {
					s[j] += q[i][h*hd+c] * k[j][kg*hd+c]
				}
				s[j] /= math.Sqrt(float64(hd))
				if g.ALiBi {
					s[j] += slopes[h] * float64(j) // Hugging Face BLOOM's form
				}
				m = math.Max(m, s[j])
			}
			var z float64
			for j := range s {
				s[j] = math.Exp(s[j] - m)
				z += s[j]
			}
			for j := range s {
				s[j] /= z
				for c := 0; c < hd; c++ {
					ctx[i][h*hd+c] += s[j] * v[j][kg*hd+c]
				}
			}
			probs[h][i] = s
		}
	}
	return probs, proj(l.O, l.OBias, ctx)
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
			res, err := Run(g, l, x, Options{})
			if err != nil {
				t.Fatal(err)
			}
			wantP, wantO := naive(g, l, x, g.Causal, g.PreNorm)
			var dp float64
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
			do := math.Sqrt(num / den)
			if dp > 1e-5 || do > 1e-5 {
				t.Errorf("%s T=%d: max|Δp| = %g, rel Δout = %g", name, T, dp, do)
			}
		}
	}
}
