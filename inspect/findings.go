package inspect

import (
	"fmt"
	"math"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect/esd"
	"github.com/qkvdev/qkv/internal/termui"
)

// Findings derives every finding from a run's layers, in layer order, then
// projection order, then head order; the across-layer outlier findings come
// last. Zero thresholds take the defaults. It is LayerFindings of each layer
// followed by CrossLayerFindings.
func Findings(layers []LayerReport, t Thresholds, heads bool) []Finding {
	out := []Finding{}
	for _, l := range layers {
		out = append(out, LayerFindings(l, t, heads)...)
	}
	return append(out, CrossLayerFindings(layers, t)...)
}

// CrossLayerKinds are the kinds of findings that depend on more than one
// layer: a part of a sharded run leaves them out and Merge recomputes them
// from every layer. Every other kind depends on its layer alone.
var CrossLayerKinds = []string{KindOutlierNorm}

func crossLayer(kind string) bool {
	for _, k := range CrossLayerKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// thresholdsOrDefaults fills every zero threshold with its default, the
// α ones included (they are used only where a matrix has an esd object).
func thresholdsOrDefaults(t Thresholds) Thresholds {
	o := Options{Thresholds: t, ESD: true}
	o.defaults()
	return o.Thresholds
}

// LayerFindings are the findings of one layer that depend on it alone
// (NaN/Inf, α outside [AlphaLow, AlphaHigh] for matrices with heavy-tail
// metrics, dead, rank-collapsed and duplicated heads), in projection
// order, then head order.
func LayerFindings(l LayerReport, t Thresholds, heads bool) []Finding {
	t = thresholdsOrDefaults(t)
	var out []Finding
	for _, p := range formats.Projections {
		m := l.Matrix(p)
		if m == nil {
			continue
		}
		out = append(out, matrixFindings(l.Index, string(p), m, t, heads)...)
	}
	return out
}

// CrossLayerFindings are the findings that compare layers: a matrix whose
// spectral norm exceeds OutlierNorm × the median of its projection kind
// across layers.
func CrossLayerFindings(layers []LayerReport, t Thresholds) []Finding {
	t = thresholdsOrDefaults(t)
	var out []Finding
	for _, p := range formats.Projections {
		var norms []float64
		for _, l := range layers {
			if m := l.Matrix(p); m != nil {
				norms = append(norms, float64(m.SpectralNorm))
			}
		}
		med := median(norms)
		if !(med > 0) {
			continue
		}
		lim := t.OutlierNorm * med
		for _, l := range layers {
			m := l.Matrix(p)
			if m == nil || !m.SpectralNorm.Valid() || float64(m.SpectralNorm) <= lim {
				continue
			}
			out = append(out, Finding{Kind: KindOutlierNorm, Layer: l.Index, Matrix: string(p),
				Value: m.SpectralNorm, Threshold: Float(lim),
				Message: fmt.Sprintf("spectral norm %.4g is more than %g× the median %.4g of %s across layers", float64(m.SpectralNorm), t.OutlierNorm, med, p)})
		}
	}
	return out
}

func intp(i int) *int { return &i }

func matrixFindings(layer int, name string, m *MatrixReport, t Thresholds, heads bool) []Finding {
	var out []Finding
	if m.NaNCount > 0 {
		out = append(out, Finding{Kind: KindNaN, Layer: layer, Matrix: name, Value: Float(m.NaNCount), Threshold: 0,
			Message: termui.Plural(int64(m.NaNCount), "NaN value")})
	}
	if m.InfCount > 0 {
		out = append(out, Finding{Kind: KindInf, Layer: layer, Matrix: name, Value: Float(m.InfCount), Threshold: 0,
			Message: termui.Plural(int64(m.InfCount), "infinite value")})
	}
	if e := m.ESD; e != nil && e.Status == esd.StatusSuccess && e.Alpha != nil {
		switch a := *e.Alpha; {
		case a < t.AlphaLow:
			out = append(out, Finding{Kind: KindAlphaLow, Layer: layer, Matrix: name, Value: Float(a), Threshold: Float(t.AlphaLow),
				Message: fmt.Sprintf("power-law exponent α = %.4g of the eigenvalue tail is below %g (heavy-tailed: WeightWatcher's over-trained)", a, t.AlphaLow)})
		case a > t.AlphaHigh:
			out = append(out, Finding{Kind: KindAlphaHigh, Layer: layer, Matrix: name, Value: Float(a), Threshold: Float(t.AlphaHigh),
				Message: fmt.Sprintf("power-law exponent α = %.4g of the eigenvalue tail is above %g (WeightWatcher's under-trained)", a, t.AlphaHigh)})
		}
	}
	if !heads || len(m.Heads) == 0 {
		return out
	}
	fros := make([]float64, len(m.Heads))
	for i, h := range m.Heads {
		fros[i] = math.NaN()
		if h.Fro.Valid() {
			fros[i] = float64(h.Fro)
		}
	}
	med := median(fros)
	for _, h := range m.Heads {
		if h.NaNCount > 0 {
			out = append(out, Finding{Kind: KindNaN, Layer: layer, Matrix: name, Head: intp(h.Head), Value: Float(h.NaNCount),
				Message: fmt.Sprintf("head %d holds %s", h.Head, termui.Plural(int64(h.NaNCount), "NaN value"))})
		}
		if h.InfCount > 0 {
			out = append(out, Finding{Kind: KindInf, Layer: layer, Matrix: name, Head: intp(h.Head), Value: Float(h.InfCount),
				Message: fmt.Sprintf("head %d holds %s", h.Head, termui.Plural(int64(h.InfCount), "infinite value"))})
		}
		if lim := t.DeadHead * med; med > 0 && h.Fro.Valid() && float64(h.Fro) < lim {
			out = append(out, Finding{Kind: KindDeadHead, Layer: layer, Matrix: name, Head: intp(h.Head), Value: h.Fro, Threshold: Float(lim),
				Message: fmt.Sprintf("head %d has Frobenius norm %.3g, below %g× the median head norm %.4g", h.Head, float64(h.Fro), t.DeadHead, med)})
			continue // a dead head's rank is meaningless
		}
		lim := t.RankCollapsed * float64(min(h.Shape[0], h.Shape[1]))
		if h.EffectiveRank.Valid() && float64(h.EffectiveRank) < lim {
			out = append(out, Finding{Kind: KindRankCollapsed, Layer: layer, Matrix: name, Head: intp(h.Head), Value: h.EffectiveRank, Threshold: Float(lim),
				Message: fmt.Sprintf("head %d has effective rank %.3g of %d (below %g%%)", h.Head, float64(h.EffectiveRank), min(h.Shape[0], h.Shape[1]), 100*t.RankCollapsed)})
		}
	}
	if p := m.MostSimilar; p != nil && float64(p.Cosine) > t.Duplicate {
		out = append(out, Finding{Kind: KindDuplicateHeads, Layer: layer, Matrix: name, Head: intp(p.A), OtherHead: intp(p.B), Value: p.Cosine, Threshold: Float(t.Duplicate),
			Message: fmt.Sprintf("heads %d and %d are near-duplicates (cosine %s)", p.A, p.B, FormatCosine(float64(p.Cosine), 5))})
	}
	return out
}
