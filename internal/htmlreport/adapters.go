package htmlreport

import (
	"math"

	"github.com/qkvdev/qkv/attn"
	"github.com/qkvdev/qkv/inspect/circuits"
	"github.com/qkvdev/qkv/inspect/esd"
)

// FromESD converts a heavy-tail result into the fit drawn over a matrix's
// ESD (set it as Matrix.ESD). Fields a failed fit leaves nil become NaN
// (−1 for the tail size). nil gives nil.
func FromESD(r *esd.Result) *ESD {
	if r == nil {
		return nil
	}
	f := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	e := &ESD{Status: r.Status, Reason: r.Reason, Alpha: f(r.Alpha), XMin: f(r.Xmin), XMax: f(r.Xmax), D: f(r.D),
		Sigma: f(r.Sigma), AlphaWeighted: f(r.AlphaWeighted), NumSpikes: -1}
	if r.NumPLSpikes != nil {
		e.NumSpikes = *r.NumPLSpikes
	}
	if r.Warning != nil {
		e.Warning = *r.Warning
	}
	return e
}

// FromCircuits converts composition scores into the report's composition
// section: the raw variant and, when computed, the norm-folded one.
func FromCircuits(r *circuits.Result) []Composition {
	if r == nil {
		return nil
	}
	base := math.NaN()
	if r.Baseline != nil {
		base = r.Baseline.Mean
	}
	var out []Composition
	for _, v := range []struct {
		name string
		s    *circuits.Scores
	}{{"raw", r.Raw}, {"ln_folded", r.LNFolded}} {
		if v.s == nil {
			continue
		}
		out = append(out, Composition{Name: v.name, Q: v.s.Q, K: v.s.K, V: v.s.V, Layers: r.Layers, Baseline: base})
	}
	return out
}

// FromAttn converts attention reruns of one input (one Result per layer)
// into the attention section; tokens label the positions (nil: numbers)
// and input describes the input ("tokens 1,5,9").
func FromAttn(results []*attn.Result, tokens []string, input string) *Attention {
	a := &Attention{Input: input, Tokens: tokens}
	for _, r := range results {
		if r != nil {
			a.Layers = append(a.Layers, AttentionLayer{Index: r.Layer, Probs: r.Probs})
		}
	}
	return a
}
