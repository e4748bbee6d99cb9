package htmlreport

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

func (r *renderer) layers(d *Data) {
	if len(d.Layers) == 0 {
		return
	}
	r.s(`<section id="layers"><h2>Layers</h2>`)
	for li := range d.Layers {
		l := &d.Layers[li]
		r.f(`<section class="layer" id="layer-%d"><h3>Layer %d</h3>`, l.Index, l.Index)
		r.layerTable(l)
		r.s(`<div class="figs">`)
		r.spectra(l)
		for i := range l.Matrices {
			m := &l.Matrices[i]
			if len(m.SV) == 0 {
				continue
			}
			if full := min(m.Shape[0], m.Shape[1]); len(m.SV) != full {
				// a partial spectrum (estimates) has no density to draw
				r.f(`<p class="note">Layer %d %s: %d of %d singular values known, so no ESD is drawn.</p>`, l.Index, esc(projTitle(m.Name)), len(m.SV), full)
				continue
			}
			title := fmt.Sprintf("Layer %d %s: eigenvalue spectrum (ESD)", l.Index, projTitle(m.Name))
			svg, note := r.esdPlot(title, m.SV, m.ESD)
			cap := esc(title) + "."
			switch {
			case m.ESD == nil:
				cap += " No power-law fit in this report."
			case m.ESD.Status == "success":
				cap += fmt.Sprintf(" Power law α = %s", fmtNum(m.ESD.Alpha))
				if !math.IsNaN(m.ESD.Sigma) {
					cap += fmt.Sprintf(" ± %s", fmtNum(m.ESD.Sigma))
				}
				cap += fmt.Sprintf(" (KS distance D = %s) over λ from xmin = %s to %s", fmtNum(m.ESD.D), fmtNum(m.ESD.XMin), fmtNum(m.ESD.XMax))
				if m.ESD.NumSpikes >= 0 {
					cap += fmt.Sprintf(", %d eigenvalues in the tail", m.ESD.NumSpikes)
				}
				cap += "."
				if m.ESD.Warning != "" {
					cap += " Warning: " + esc(m.ESD.Warning) + "."
				}
			default:
				cap += " The power-law fit failed (status " + esc(m.ESD.Status) + ")"
				if m.ESD.Reason != "" {
					cap += ": " + esc(m.ESD.Reason)
				}
				cap += "; no line is drawn."
			}
			if note != "" {
				cap += " " + esc(note)
			}
			r.figure("chart", svg, cap)
		}
		r.s("</div></section>\n")
	}
	r.s("</section>\n")
}

func (r *renderer) layerTable(l *Layer) {
	if len(l.Matrices) == 0 {
		return
	}
	withESD := false
	for _, m := range l.Matrices {
		withESD = withESD || m.ESD != nil
	}
	r.f(`<div class="tw"><table class="stats"><caption>Layer %d statistics</caption><thead><tr>`, l.Index)
	heads := []string{"matrix", "shape", "‖W‖<sub>F</sub>", "σ<sub>max</sub>", "rank", `<abbr title="effective rank">eff. rank</abbr>`, `<abbr title="stable rank">st. rank</abbr>`}
	if withESD {
		heads = append(heads, "α", "D", "xmin", "tail", "α̂", "warning")
	}
	heads = append(heads, "flags")
	for _, h := range heads {
		r.f(`<th scope="col">%s</th>`, h)
	}
	r.s(`</tr></thead><tbody>`)
	for _, m := range l.Matrices {
		r.f(`<tr><th scope="row">%s</th><td>%d×%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>`,
			esc(projTitle(m.Name)), m.Shape[0], m.Shape[1], fmtNum(m.Fro), fmtNum(m.SpectralNorm), fmtInt(m.Rank), fmtNum(m.EffectiveRank), fmtNum(m.StableRank))
		if withESD {
			e := m.ESD
			switch {
			case e == nil:
				r.s(strings.Repeat("<td>—</td>", 6))
			case e.Status != "success":
				r.f(`<td colspan="5">fit %s</td><td>%s</td>`, esc(e.Status), esc(e.Warning))
			default:
				r.f(`<td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>`,
					fmtNum(e.Alpha), fmtNum(e.D), fmtNum(e.XMin), fmtInt(e.NumSpikes), fmtNum(e.AlphaWeighted), esc(e.Warning))
			}
		}
		flags := make([]string, len(m.Flags))
		for i, f := range m.Flags {
			flags[i] = esc(label(f))
		}
		r.f(`<td>%s</td></tr>`, strings.Join(flags, ", "))
	}
	r.s(`</tbody></table></div>`)
}

// spectra draws every matrix's singular values of one layer in one chart.
func (r *renderer) spectra(l *Layer) {
	var ss []series
	total, shown, hidden := 0, 0, 0
	for i := range l.Matrices {
		m := &l.Matrices[i]
		smax := 0.0
		for _, v := range m.SV {
			if v > smax && !math.IsInf(v, 0) {
				smax = v
			}
		}
		if !(smax > 0) {
			continue
		}
		se := series{name: projTitle(m.Name), cls: projClass(m.Name, i)}
		floor := smax * 1e-10
		for _, v := range m.SV {
			if !(v > floor) || math.IsInf(v, 0) {
				hidden++
			}
		}
		total += len(m.SV)
		for _, k := range downsample(len(m.SV), maxSpectrumPoints) {
			if v := m.SV[k]; v > floor && !math.IsInf(v, 0) {
				se.xs = append(se.xs, float64(k+1))
				se.ys = append(se.ys, v)
				shown++
			}
		}
		ss = append(ss, se)
	}
	if len(ss) == 0 {
		return
	}
	title := fmt.Sprintf("Layer %d: singular values", l.Index)
	svg := r.drawLineChart(lineChart{title: title,
		desc:   fmt.Sprintf("Singular values of each projection of layer %d against their rank, log-log axes.", l.Index),
		xlabel: "rank", ylabel: "singular value σᵢ", xlog: true, ylog: true, series: ss})
	cap := esc(title) + " σ<sub>i</sub> against rank i (log-log)."
	if shown+hidden < total {
		cap += fmt.Sprintf(" Downsampled to at most %d points per line, at log-spaced ranks (%d of %d values drawn).", maxSpectrumPoints, shown, total-hidden)
	}
	if hidden > 0 {
		cap += fmt.Sprintf(" %d value(s) below 10⁻¹⁰·σ<sub>max</sub> (zero to rounding) not shown.", hidden)
	}
	r.figure("chart", svg, cap)
}

func (r *renderer) composition(d *Data) {
	if len(d.Composition) == 0 {
		return
	}
	r.s(`<section id="composition"><h2>Head composition</h2>`)
	r.s(`<p>Rows are earlier heads, columns later heads; a cell is the score of the earlier head’s output feeding the later head’s query (Q), key (K) or value (V) side. Pairs within a layer or backwards are empty. The random baseline is marked on the colour bar.</p>`)
	for ci := range d.Composition {
		c := &d.Composition[ci]
		L := len(c.Q)
		if L == 0 {
			continue
		}
		H := len(c.Q[0])
		lay := func(l int) int {
			if c.Layers != nil {
				return c.Layers[l]
			}
			return l
		}
		name := c.Name
		if name == "" {
			name = "scores"
		}
		r.f(`<h3>%s</h3>`, esc(name))
		kinds := []struct {
			n string
			v [][][][]float64
		}{{"Q", c.Q}, {"K", c.K}, {"V", c.V}}
		if L < 2 {
			r.s(`<p>One layer: no pairs of layers to compose.</p>`)
			continue
		}
		// one colour scale for the three kinds of a variant, so they
		// compare; it reaches down to the baseline so that is on it
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, k := range kinds {
			for l1 := range k.v {
				for h1 := range k.v[l1] {
					for l2 := l1 + 1; l2 < L; l2++ {
						for _, s := range k.v[l1][h1][l2] {
							if !math.IsNaN(s) && !math.IsInf(s, 0) {
								lo, hi = math.Min(lo, s), math.Max(hi, s)
							}
						}
					}
				}
			}
		}
		if math.IsInf(lo, 0) {
			lo, hi = math.NaN(), math.NaN()
		}
		var marks []refLine
		if c.Baseline > 0 && !math.IsNaN(lo) {
			lo = math.Min(lo, c.Baseline)
			hi = math.Max(hi, c.Baseline)
			marks = []refLine{{c.Baseline, "baseline"}}
		}
		// Rows are the earlier layers 0..L−2, columns the later 1..L−1: the
		// last layer writes to no later one and the first reads from none.
		n := L - 1
		headLevel := n*H <= maxCompCells
		r.s(`<div class="figs">`)
		for _, k := range kinds {
			v := k.v
			title := fmt.Sprintf("%s-composition (%s)", k.n, name)
			h := heat{title: title, lo: lo, hi: hi, marks: marks, unit: "score", maxW: 420, maxH: 420}
			var cap string
			if headLevel {
				h.rows, h.cols, h.block = n*H, n*H, H
				h.rowName, h.colName = "earlier head", "later head"
				h.rowBlock = func(b int) string { return "L" + strconv.Itoa(lay(b)) }
				h.colBlock = func(b int) string { return "L" + strconv.Itoa(lay(b+1)) }
				h.at = func(cc, rr int) float64 { return v[rr/H][rr%H][cc/H+1][cc%H] }
				h.masked = func(cc, rr int) bool { return cc/H+1 <= rr/H }
				h.desc = fmt.Sprintf("%s-composition scores of every pair of heads in different layers, %d layers of %d heads, scale %s to %s.", k.n, L, H, fmtNum(lo), fmtNum(hi))
				cap = fmt.Sprintf("%s-composition scores, %s: rows are the heads of layers %d to %d, columns those of layers %d to %d; each block is a pair of layers, each cell a pair of heads.",
					k.n, esc(name), lay(0), lay(L-2), lay(1), lay(L-1))
			} else {
				layerMax := func(l1, l2 int) float64 {
					m := math.NaN()
					for h1 := 0; h1 < H; h1++ {
						for _, s := range v[l1][h1][l2] {
							if !math.IsNaN(s) && !(s <= m) {
								m = s
							}
						}
					}
					return m
				}
				h.rows, h.cols = n, n
				h.rowName, h.colName = "earlier layer", "later layer"
				h.rowLabel = func(i int) string { return strconv.Itoa(lay(i)) }
				h.colLabel = func(i int) string { return strconv.Itoa(lay(i + 1)) }
				h.at = func(cc, rr int) float64 { return layerMax(rr, cc+1) }
				h.masked = func(cc, rr int) bool { return cc+1 <= rr }
				h.desc = fmt.Sprintf("Largest %s-composition score over the head pairs of each pair of layers, %d layers, scale %s to %s.", k.n, L, fmtNum(lo), fmtNum(hi))
				cap = fmt.Sprintf("%s-composition, %s: the largest score over the %d×%d head pairs of each pair of layers (%d heads per side are too many to draw one cell per pair; the table below lists the top pairs).", k.n, esc(name), H, H, n*H)
			}
			if c.Baseline > 0 {
				cap += fmt.Sprintf(" Random baseline %s.", fmtNum(c.Baseline))
			}
			r.figure("heat", r.drawHeat(h), cap)
		}
		r.s(`</div>`)
		r.topPairs(kinds[0].v, kinds[1].v, kinds[2].v, lay, c.Baseline, name)
	}
	r.s("</section>\n")
}

type pair struct {
	l1, h1, l2, h2 int
	s              float64
}

// top returns the n largest scores with l2 > l1, in descending order (ties
// in index order).
func top(v [][][][]float64, n int) []pair {
	var out []pair
	for l1 := range v {
		for h1 := range v[l1] {
			for l2 := l1 + 1; l2 < len(v[l1][h1]); l2++ {
				for h2, s := range v[l1][h1][l2] {
					if math.IsNaN(s) || math.IsInf(s, 0) {
						continue
					}
					if len(out) == n && s <= out[n-1].s {
						continue
					}
					p := pair{l1, h1, l2, h2, s}
					i := len(out)
					for i > 0 && out[i-1].s < s {
						i--
					}
					out = append(out, pair{})
					copy(out[i+1:], out[i:])
					out[i] = p
					if len(out) > n {
						out = out[:n]
					}
				}
			}
		}
	}
	return out
}

func (r *renderer) topPairs(q, k, v [][][][]float64, lay func(int) int, base float64, name string) {
	r.f(`<div class="tw"><table class="pairs"><caption>Strongest head pairs (%s)</caption><thead><tr><th scope="col">kind</th><th scope="col">earlier head</th><th scope="col">later head</th><th scope="col">score</th>`, esc(name))
	if base > 0 {
		r.s(`<th scope="col">× baseline</th>`)
	}
	r.s(`</tr></thead><tbody>`)
	for _, kk := range []struct {
		n string
		v [][][][]float64
	}{{"Q", q}, {"K", k}, {"V", v}} {
		for _, p := range top(kk.v, topPairs) {
			r.f(`<tr><td>%s</td><td>L%d H%d</td><td>L%d H%d</td><td>%s</td>`, kk.n, lay(p.l1), p.h1, lay(p.l2), p.h2, fmtNum(p.s))
			if base > 0 {
				r.f(`<td>%s</td>`, fmtNum(p.s/base))
			}
			r.s(`</tr>`)
		}
	}
	r.s(`</tbody></table></div>`)
}

// maxTokenKey bounds the token key printed under attention figures.
const maxTokenKey = 256

func (r *renderer) attention(d *Data) {
	a := d.Attention
	if a == nil || len(a.Layers) == 0 {
		return
	}
	T, panels := 0, 0
	for _, l := range a.Layers {
		panels += len(l.Probs)
		if len(l.Probs) > 0 {
			T = len(l.Probs[0])
		}
	}
	if T == 0 {
		return
	}
	side := min(T, maxAttnSide)
	if panels > 0 {
		side = min(side, max(8, int(math.Sqrt(float64(maxAttnCells)/float64(panels)))))
	}
	side = min(side, T)
	tok := func(i int) string {
		if i < len(a.Tokens) {
			return label(a.Tokens[i])
		}
		return strconv.Itoa(i)
	}
	r.s(`<section id="attention"><h2>Attention patterns</h2>`)
	if a.Input != "" {
		r.f(`<p>Input: %s (%d positions).</p>`, esc(a.Input), T)
	}
	r.s(`<p>One panel per head: row i is query position i (top = first), column j key position j; colour is the probability, 0 (dark) to 1 (yellow) on one scale for every panel; grey = not a number.</p>`)
	r.figure("legend", r.probLegend(), "Colour scale of the attention panels: square root of the probability, so that attention spread thinly over many positions still shows.")
	for _, l := range a.Layers {
		var b strings.Builder
		b.WriteString(`<div class="panels">`)
		for h, p := range l.Probs {
			b.WriteString(r.attnPanel(l.Index, h, p, side, tok))
		}
		b.WriteString(`</div>`)
		cap := fmt.Sprintf("Layer %d attention patterns, %d heads.", l.Index, len(l.Probs))
		if side < T {
			cap += fmt.Sprintf(" Each panel is pooled from %d×%d to %d×%d cells (mean over blocks of positions) to keep the report small.", T, T, side, side)
		}
		r.figure("attn", b.String(), cap)
	}
	r.s(`<h3>Token key</h3><ol class="tokens" start="0">`)
	for i := 0; i < min(T, maxTokenKey); i++ {
		r.f(`<li><code>%s</code></li>`, esc(tok(i)))
	}
	r.s(`</ol>`)
	if T > maxTokenKey {
		r.f(`<p>… and %d more positions.</p>`, T-maxTokenKey)
	}
	r.s("</section>\n")
}

// attnPanel draws one head's T×T probabilities pooled to side×side cells.
func (r *renderer) attnPanel(layer, h int, p [][]float32, side int, tok func(int) string) string {
	T := len(p)
	const S, top = 132.0, 16.0
	at := func(c, rr int) float64 {
		i0, i1 := rr*T/side, (rr+1)*T/side
		j0, j1 := c*T/side, (c+1)*T/side
		sum := 0.0
		for i := i0; i < i1; i++ {
			for j := j0; j < j1; j++ {
				sum += float64(p[i][j])
			}
		}
		return sum / float64((i1-i0)*(j1-j0))
	}
	// square-root colour scale: diffuse attention (p ≈ 1/T) stays visible
	uri, err := rasterURI(side, side, func(c, rr int) uint8 { return colourIndex(math.Sqrt(at(c, rr)), 0, 1) })
	if err != nil {
		r.fail(err)
		return ""
	}
	// the key attended most on average, for the description
	best, bestV := 0, -1.0
	for j := 0; j < T; j++ {
		s := 0.0
		for i := 0; i < T; i++ {
			if v := float64(p[i][j]); !math.IsNaN(v) && !math.IsInf(v, 0) {
				s += v
			}
		}
		if s > bestV {
			best, bestV = j, s
		}
	}
	title := fmt.Sprintf("Layer %d head %d attention", layer, h)
	desc := fmt.Sprintf("%d×%d attention probabilities; on average the most attended key is position %d (%s) with mean probability %s.",
		T, T, best, tok(best), fmtNum(bestV/float64(T)))
	s := newSVG(S+2, S+top+2, r.id(), title, desc)
	s.text(1, 11, "tk", "start", false, "head "+strconv.Itoa(h))
	s.image(1, top, S, S, uri)
	s.rect(1, top, S, S, "frame")
	return s.String()
}

// probLegend is a horizontal colour bar for probabilities 0..1.
func (r *renderer) probLegend() string {
	uri, err := rasterURI(nColours, 1, func(c, _ int) uint8 { return uint8(c) })
	if err != nil {
		r.fail(err)
		return ""
	}
	s := newSVG(300, 44, r.id(), "Probability colour scale", "Viridis colour bar from probability 0 (dark purple) to 1 (yellow), on a square-root scale.")
	s.image(10, 4, 280, 14, uri)
	s.rect(10, 4, 280, 14, "frame")
	for _, v := range []float64{0, 0.01, 0.1, 0.25, 0.5, 1} {
		x := 10 + 280*math.Sqrt(v)
		s.line(x, 18, x, 22, "ax")
		s.text(x, 34, "tk", "middle", false, fmtNum(v))
	}
	return s.String()
}
