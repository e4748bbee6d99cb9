package htmlreport

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
)

// FromInspect fills Data from an inspect report: the model summary,
// findings, per layer and projection the statistics and (when the report
// was made with Options.Spectrum) the singular values, and (with
// Options.Heads) layer × head heatmaps of head norms, effective ranks and
// the QK/OV circuits, and (with Options.ESD) each matrix's power-law fit.
// Composition scores and attention patterns are not in an inspect report;
// the caller adds them.
func FromInspect(rep *inspect.Report, source string) *Data {
	g := rep.Model
	d := &Data{
		Source: source,
		Model: Model{Arch: g.Arch, DModel: g.DModel, NLayers: g.NLayers, NHeads: g.NHeads,
			NKVHeads: g.NKVHeads, HeadDim: g.HeadDim, Facts: geometryFacts(g)},
		Findings: []Finding{},
	}
	if rep.Settings.Mode == "fast" {
		d.Notes = append(d.Notes, "Fast mode: spectral statistics are Lanczos estimates (flag \"estimated\"); spectra are drawn only where singular values were kept.")
	}
	if !rep.Settings.Spectrum {
		d.Notes = append(d.Notes, "The singular values were not kept, so this report has no spectrum or ESD plots.")
	}
	for _, u := range g.Unsupported {
		d.Notes = append(d.Notes, "Not modelled by qkv: "+u.Name+": "+u.Message)
	}
	for _, f := range inspect.ByWorstKind(rep.Findings) {
		h := -1
		if f.Head != nil {
			h = *f.Head
		}
		d.Findings = append(d.Findings, Finding{Kind: f.Kind, Layer: f.Layer, Matrix: f.Matrix, Head: h, Message: f.Message})
	}
	for _, l := range rep.Layers {
		dl := Layer{Index: l.Index}
		for _, p := range formats.Projections {
			m := l.Matrix(p)
			if m == nil {
				continue
			}
			rank := -1
			if m.Rank != nil {
				rank = *m.Rank
			}
			dl.Matrices = append(dl.Matrices, Matrix{Name: string(p), Shape: m.Shape, SV: m.SV,
				Fro: float64(m.Fro), SpectralNorm: float64(m.SpectralNorm), EffectiveRank: float64(m.EffectiveRank),
				StableRank: float64(m.StableRank), Rank: rank, Flags: m.Flags, ESD: FromESD(m.ESD)})
		}
		d.Layers = append(d.Layers, dl)
	}
	d.Heads = headMaps(rep)
	return d
}

func geometryFacts(g formats.Geometry) []Fact {
	var f []Fact
	add := func(k, v string) { f = append(f, Fact{k, v}) }
	if g.VocabSize > 0 {
		add("vocabulary", strconv.Itoa(g.VocabSize))
	}
	add("causal", strconv.FormatBool(g.Causal))
	norm := string(g.Norm)
	if !g.PreNorm {
		norm += " (no norm before attention)"
	} else if g.NormEps > 0 {
		norm += fmt.Sprintf(" (ε = %g)", g.NormEps)
	}
	add("pre-attention norm", norm)
	switch {
	case g.RotaryDims > 0:
		add("positions", fmt.Sprintf("RoPE on %d dims, θ = %g", g.RotaryDims, g.RopeTheta))
	case g.ALiBi:
		add("positions", "ALiBi")
	case g.PositionEmbeddings:
		add("positions", "learned absolute embeddings")
	default:
		add("positions", "none")
	}
	if g.SlidingWindow > 0 {
		n := 0
		for _, t := range g.LayerTypes {
			if t == formats.LayerSlidingAttention {
				n++
			}
		}
		add("sliding window", fmt.Sprintf("%d positions (%d layers)", g.SlidingWindow, n))
	}
	if g.MLA != nil {
		add("attention", "multi-head latent attention (MLA)")
	}
	return f
}

// headMaps builds the layer × head heatmaps from the per-head statistics
// and circuits; none when the report has no head detail.
func headMaps(rep *inspect.Report) []HeadMap {
	var out []HeadMap
	var layers []int
	for _, l := range rep.Layers {
		layers = append(layers, l.Index)
	}
	kv := rep.Model.NKVHeads < rep.Model.NHeads
	type metric struct {
		group, what string
		get         func(h *inspect.HeadStats) float64
	}
	metrics := []metric{
		{"Head norms", "Frobenius norm", func(h *inspect.HeadStats) float64 { return float64(h.Fro) }},
		{"Head effective ranks", "effective rank", func(h *inspect.HeadStats) float64 { return float64(h.EffectiveRank) }},
	}
	for _, mt := range metrics {
		for _, p := range formats.Projections {
			vals := make([][]float64, len(rep.Layers))
			found := false
			for i, l := range rep.Layers {
				m := l.Matrix(p)
				if m == nil {
					continue
				}
				for k := range m.Heads {
					h := &m.Heads[k]
					for len(vals[i]) <= h.Head && h.Head < 1<<16 {
						vals[i] = append(vals[i], math.NaN())
					}
					if h.Head >= 0 && h.Head < len(vals[i]) {
						vals[i][h.Head] = mt.get(h)
						found = true
					}
				}
			}
			if !found {
				continue
			}
			col := "head"
			if kv && (p == formats.ProjK || p == formats.ProjV) {
				col = "KV head"
			}
			out = append(out, HeadMap{Group: mt.group, Title: fmt.Sprintf("%s heads: %s", projTitle(string(p)), mt.what),
				Caption: headCaption(p, mt.what), ColName: col, Layers: layers, Values: vals})
		}
	}
	type cmetric struct {
		name, what string
		get        func(c *inspect.Circuit) float64
	}
	for _, cm := range []cmetric{
		{"QK", "spectral norm", func(c *inspect.Circuit) float64 { return float64(c.QK.SpectralNorm) }},
		{"OV", "spectral norm", func(c *inspect.Circuit) float64 { return float64(c.OV.SpectralNorm) }},
		{"QK", "effective rank", func(c *inspect.Circuit) float64 { return float64(c.QK.EffectiveRank) }},
		{"OV", "effective rank", func(c *inspect.Circuit) float64 { return float64(c.OV.EffectiveRank) }},
	} {
		vals := make([][]float64, len(rep.Layers))
		found := false
		for i, l := range rep.Layers {
			for k := range l.Circuits {
				c := &l.Circuits[k]
				for len(vals[i]) <= c.Head && c.Head < 1<<16 {
					vals[i] = append(vals[i], math.NaN())
				}
				if c.Head >= 0 && c.Head < len(vals[i]) {
					vals[i][c.Head] = cm.get(c)
					found = true
				}
			}
		}
		if !found {
			continue
		}
		cap := "QK = W_Q^hᵀ W_K^g: the bilinear form a query head scores keys with."
		if cm.name == "OV" {
			cap = "OV = W_O^h W_V^g: what a head writes given what it reads."
		}
		out = append(out, HeadMap{Group: "Circuits", Title: fmt.Sprintf("%s circuits: %s", cm.name, cm.what),
			Caption: cap, ColName: "head", Layers: layers, Values: vals})
	}
	return out
}

func headCaption(p formats.Projection, what string) string {
	var b strings.Builder
	switch p {
	case formats.ProjO:
		b.WriteString("Head h of W_O is its columns [h·hd, (h+1)·hd).")
	case formats.ProjQ:
		b.WriteString("Head h of W_Q is its rows [h·hd, (h+1)·hd).")
	default:
		b.WriteString("KV head g of W_" + strings.ToUpper(string(p)) + " is its rows [g·hd, (g+1)·hd).")
	}
	if what == "Frobenius norm" {
		b.WriteString(" A dark cell in a bright row is a dead or weak head.")
	} else {
		b.WriteString(" A dark cell is a head whose weights span few directions.")
	}
	return b.String()
}
