package htmlreport

import (
	"fmt"
	"math"
)

// Test fixtures: Data built from formulas (no other package involved), so
// golden files change only when the rendering does.

// splitmix is a tiny deterministic generator for fixture values.
type splitmix uint64

func (s *splitmix) float() float64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return float64(z>>11) / (1 << 53)
}

// spectrum returns n descending singular values whose squares follow a
// power law of exponent alpha in rank (λ_i ∝ i^(−1/(α−1))), jittered.
func spectrum(n int, alpha, scale float64, rng *splitmix) []float64 {
	sv := make([]float64, n)
	for i := range sv {
		lam := math.Pow(float64(i+1), -1/(alpha-1)) * (1 + 0.05*rng.float())
		sv[i] = scale * math.Sqrt(lam)
	}
	for i := 1; i < n; i++ { // keep them descending after the jitter
		sv[i] = math.Min(sv[i], sv[i-1])
	}
	return sv
}

// fitFor returns an ESD fit consistent with spectrum(): the tail starts at
// the rank-n/4 eigenvalue.
func fitFor(sv []float64, alpha float64) *ESD {
	k := len(sv) / 4
	return &ESD{Status: "success", Alpha: alpha, XMin: sv[k] * sv[k], XMax: sv[0] * sv[0], D: 0.05 + 0.01*alpha,
		Sigma: (alpha - 1) / math.Sqrt(float64(k+1)), AlphaWeighted: alpha * math.Log10(sv[0]*sv[0]), NumSpikes: k + 1}
}

// hostile are labels a malicious checkpoint could carry.
var hostile = []string{
	"</title><script>alert(1)</script>",
	`"><img src=x onerror=alert(2)>`,
	"' onmouseover='alert(3)",
	"<svg onload=alert(4)>",
	"&lt;b&gt;]]><!--",
	"\u202egnp.exe\u202c",
	"a\x00b\x1b[31mred\n",
	"\xff\xfe invalid",
	" the",
	"javascript:alert(5)",
}

// smallData is a 2-layer, 4-head model with every section, hostile token
// labels and a hostile finding message.
func smallData() *Data {
	rng := splitmix(1)
	d := &Data{
		Source:    "testdata/<tiny>&model.safetensors",
		Generator: "qkv test",
		Model: Model{Arch: "llama", DModel: 16, NLayers: 2, NHeads: 4, NKVHeads: 2, HeadDim: 4,
			Facts: []Fact{{"causal", "true"}, {"positions", "RoPE on 4 dims, θ = 10000"}}},
		Notes: []string{"A note with <angle> brackets & an ampersand."},
		Findings: []Finding{
			{Kind: "dead_head", Layer: 1, Matrix: "q", Head: 3, Message: "head 3 has Frobenius norm 0"},
			{Kind: "outlier_norm", Layer: 0, Matrix: "o", Head: -1, Message: hostile[0] + hostile[1]},
			{Kind: "<kind>", Layer: -1, Head: -1, Message: "model-wide " + hostile[5]},
		},
	}
	shapes := map[string][2]int{"q": {16, 16}, "k": {8, 16}, "v": {8, 16}, "o": {16, 16}}
	for l := 0; l < 2; l++ {
		dl := Layer{Index: l}
		for i, name := range []string{"q", "k", "v", "o"} {
			sh := shapes[name]
			alpha := 2.5 + float64(i) + float64(l)
			m := Matrix{Name: name, Shape: sh, Rank: min(sh[0], sh[1]), Fro: 3 + float64(i), SpectralNorm: 1.5 + float64(l),
				EffectiveRank: 6 + float64(i), StableRank: 2.5, Flags: nil}
			m.SV = spectrum(min(sh[0], sh[1]), alpha, 1+float64(l), &rng)
			m.ESD = fitFor(m.SV, alpha)
			switch {
			case l == 1 && name == "v": // rank 1: the fit fails, zeros are not drawn
				for k := 1; k < len(m.SV); k++ {
					m.SV[k] = 0
				}
				m.Rank = 1
				m.ESD = &ESD{Status: "failed", Alpha: math.NaN(), XMin: math.NaN(), XMax: math.NaN(), D: math.NaN(),
					Sigma: math.NaN(), AlphaWeighted: math.NaN(), NumSpikes: -1}
			case l == 1 && name == "o":
				m.SV, m.ESD = nil, nil
				m.Flags = []string{"spectrum_skipped", "nan"}
				m.Fro, m.SpectralNorm, m.EffectiveRank, m.StableRank, m.Rank = math.NaN(), math.NaN(), math.NaN(), math.NaN(), -1
			case l == 0 && name == "q":
				m.ESD.Warning = "under-trained"
			case l == 0 && name == "k": // one λ = 1e-8: below the fit's cut, not drawn
				m.SV[len(m.SV)-1] = 1e-4
			}
			dl.Matrices = append(dl.Matrices, m)
		}
		d.Layers = append(d.Layers, dl)
	}
	d.Heads = []HeadMap{
		{Group: "Head norms", Title: "W_Q heads: Frobenius norm", Caption: "rows " + hostile[3], ColName: "head",
			Layers: []int{0, 1}, Values: [][]float64{{1, 1.2, 0.9, 1.1}, {1.05, 0.95, 1, 0}}},
		{Group: "Head norms", Title: "W_K heads: Frobenius norm", ColName: "KV head",
			Layers: []int{0, 1}, Values: [][]float64{{2, 2.5}, {math.NaN(), 1.5}}},
		{Group: "Circuits", Title: "QK circuits: effective rank", ColName: "head",
			Layers: []int{0, 1}, Values: [][]float64{{3.9, 3.8, 1, 3.7}, {3.5, 3.6}}},
	}
	comp := func(kind int) [][][][]float64 {
		v := make([][][][]float64, 2)
		for l1 := range v {
			v[l1] = make([][][]float64, 4)
			for h1 := range v[l1] {
				v[l1][h1] = make([][]float64, 2)
				for l2 := range v[l1][h1] {
					v[l1][h1][l2] = make([]float64, 4)
					if l2 <= l1 {
						continue
					}
					for h2 := range v[l1][h1][l2] {
						v[l1][h1][l2][h2] = 0.1 + 0.05*float64(kind) + 0.02*float64(h1*4+h2) + 0.01*rng.float()
					}
				}
			}
		}
		return v
	}
	d.Composition = []Composition{{Name: "raw", Q: comp(0), K: comp(1), V: comp(2), Baseline: 0.25}}
	T := 6
	probs := make([][][]float32, 4)
	for h := range probs {
		probs[h] = make([][]float32, T)
		for i := range probs[h] {
			row := make([]float32, T)
			switch h {
			case 0: // uniform over the causal prefix
				for j := 0; j <= i; j++ {
					row[j] = 1 / float32(i+1)
				}
			case 1: // previous token
				row[max(0, i-1)] = 1
			case 2: // first token
				row[0] = 1
			default: // diagonal, with one NaN cell
				row[i] = 1
				if i == 5 {
					row[0] = float32(math.NaN())
				}
			}
			probs[h][i] = row
		}
	}
	d.Attention = &Attention{Input: "tokens 1,2,3,4,5,6 " + hostile[2], Tokens: append([]string(nil), hostile[:T]...), Layers: []AttentionLayer{{Index: 1, Probs: probs}}}
	return d
}

// bigData is an L-layer, H-head model with full spectra of a d_model-wide
// model, every head map, both composition variants and attention patterns
// of attnLayers layers over T positions: the size test's worst case.
func bigData(L, H, KV, dModel, attnLayers, T int) *Data {
	rng := splitmix(7)
	hd := dModel / H
	d := &Data{Source: fmt.Sprintf("synthetic-%dx%d", L, H),
		Model: Model{Arch: "llama", DModel: dModel, NLayers: L, NHeads: H, NKVHeads: KV, HeadDim: hd}}
	layers := make([]int, L)
	for l := 0; l < L; l++ {
		layers[l] = l
		dl := Layer{Index: l}
		for i, name := range []string{"q", "k", "v", "o"} {
			rows := dModel
			if name == "k" || name == "v" {
				rows = KV * hd
			}
			alpha := 2 + 4*rng.float()
			sv := spectrum(min(rows, dModel), alpha, 10+float64(i), &rng)
			dl.Matrices = append(dl.Matrices, Matrix{Name: name, Shape: [2]int{rows, dModel}, SV: sv, Fro: 50, SpectralNorm: sv[0],
				EffectiveRank: float64(len(sv)) / 2, StableRank: 20, Rank: len(sv), ESD: fitFor(sv, alpha)})
		}
		d.Layers = append(d.Layers, dl)
		d.Findings = append(d.Findings, Finding{Kind: "alpha_high", Layer: l, Matrix: "v", Head: -1, Message: "α above 6"})
	}
	grid := func(cols int) [][]float64 {
		v := make([][]float64, L)
		for l := range v {
			v[l] = make([]float64, cols)
			for h := range v[l] {
				v[l][h] = 1 + rng.float()
			}
		}
		return v
	}
	for _, g := range []string{"Head norms", "Head effective ranks"} {
		for _, p := range []string{"Q", "K", "V", "O"} {
			cols := H
			if p == "K" || p == "V" {
				cols = KV
			}
			d.Heads = append(d.Heads, HeadMap{Group: g, Title: "W_" + p + " " + g, ColName: "head", Layers: layers, Values: grid(cols)})
		}
	}
	for _, t := range []string{"QK spectral norm", "OV spectral norm", "QK effective rank", "OV effective rank"} {
		d.Heads = append(d.Heads, HeadMap{Group: "Circuits", Title: t, ColName: "head", Layers: layers, Values: grid(H)})
	}
	comp := func() [][][][]float64 {
		v := make([][][][]float64, L)
		for l1 := range v {
			v[l1] = make([][][]float64, H)
			for h1 := range v[l1] {
				v[l1][h1] = make([][]float64, L)
				for l2 := range v[l1][h1] {
					v[l1][h1][l2] = make([]float64, H)
					if l2 > l1 {
						for h2 := range v[l1][h1][l2] {
							v[l1][h1][l2][h2] = 0.02 + 0.1*rng.float()
						}
					}
				}
			}
		}
		return v
	}
	for _, n := range []string{"raw", "ln_folded"} {
		d.Composition = append(d.Composition, Composition{Name: n, Q: comp(), K: comp(), V: comp(), Baseline: 1 / math.Sqrt(float64(dModel))})
	}
	a := &Attention{Input: fmt.Sprintf("random T=%d", T)}
	for i := 0; i < T; i++ {
		a.Tokens = append(a.Tokens, fmt.Sprintf("tok%d", i))
	}
	for l := 0; l < attnLayers; l++ {
		al := AttentionLayer{Index: l}
		for h := 0; h < H; h++ {
			p := make([][]float32, T)
			for i := range p {
				p[i] = make([]float32, T)
				s := 0.0
				w := make([]float64, i+1)
				for j := range w {
					w[j] = rng.float()
					s += w[j]
				}
				for j := range w {
					p[i][j] = float32(w[j] / s)
				}
			}
			al.Probs = append(al.Probs, p)
		}
		a.Layers = append(a.Layers, al)
	}
	d.Attention = a
	return d
}

// sparseData is smallData with every number unknown and no token labels.
func sparseData() *Data {
	d := smallData()
	for li := range d.Layers {
		for mi := range d.Layers[li].Matrices {
			m := &d.Layers[li].Matrices[mi]
			for k := range m.SV {
				m.SV[k] = math.NaN()
			}
			m.SpectralNorm, m.EffectiveRank = math.NaN(), math.NaN()
			m.ESD = nil
		}
	}
	for i := range d.Heads {
		for _, row := range d.Heads[i].Values {
			for k := range row {
				row[k] = math.NaN()
			}
		}
	}
	d.Attention.Tokens = nil
	return d
}
