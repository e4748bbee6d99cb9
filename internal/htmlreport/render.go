package htmlreport

import (
	"bufio"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

//go:embed style.css
var styleCSS string

// csp allows nothing but the page's own stylesheet (by hash) and data:
// images (the heatmap rasters): no scripts, fonts, frames or requests. A
// string that escaped esc could still not run or load anything, and the
// browser test fails on the console error a blocked item raises.
var csp = func() string {
	h := sha256.Sum256([]byte(styleCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'; img-src data:"
}()

// Limits that keep a report of a large model to a few megabytes.
const (
	// maxSpectrumPoints: singular values drawn per line of a spectrum plot.
	maxSpectrumPoints = 200
	// maxCompCells: composition matrices with more head pairs per side are
	// drawn per layer pair (the maximum over heads).
	maxCompCells = 256
	// maxAttnSide: attention patterns with more positions are pooled.
	maxAttnSide = 64
	// maxAttnCells bounds the cells of all attention panels together.
	maxAttnCells = 1 << 20
	// maxTableCells: heatmaps up to this size also get their values as a
	// table (for screen readers and copying).
	maxTableCells = 1024
	// topPairs: rows of each composition top-pairs table.
	topPairs = 10
	// maxFindings: findings listed; the rest are counted.
	maxFindings = 1000
)

// renderer writes one page; errors are sticky.
type renderer struct {
	w    *bufio.Writer
	err  error
	ids  int
	figs int
}

func (r *renderer) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *renderer) id() string { r.ids++; return "s" + strconv.Itoa(r.ids) }

// s writes trusted markup.
func (r *renderer) s(parts ...string) {
	for _, p := range parts {
		if _, err := r.w.WriteString(p); err != nil {
			r.fail(err)
		}
	}
}

// f writes trusted markup with arguments; every untrusted argument must
// already have passed through esc.
func (r *renderer) f(format string, a ...any) {
	if _, err := fmt.Fprintf(r.w, format, a...); err != nil {
		r.fail(err)
	}
}

// figure writes a <figure> holding one SVG (or several, inline) and a
// numbered caption (an HTML fragment: its untrusted parts escaped).
func (r *renderer) figure(cls, body, caption string) {
	if body == "" {
		return
	}
	r.figs++
	r.f(`<figure class="%s">%s<figcaption><b>Figure %d.</b> %s</figcaption></figure>`+"\n", cls, body, r.figs, caption)
}

// Render writes d as one self-contained HTML page: inline CSS and SVG, no
// scripts, fonts or network requests. The output depends only on d.
func Render(w io.Writer, d *Data) error {
	if d == nil {
		return errors.New("htmlreport: no data")
	}
	if err := validate(d); err != nil {
		return fmt.Errorf("htmlreport: %w", err)
	}
	r := &renderer{w: bufio.NewWriterSize(w, 64<<10)}
	title := d.Title
	if title == "" {
		title = "qkv report: " + d.Source
	}
	r.s("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n",
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n")
	r.f("<meta http-equiv=\"Content-Security-Policy\" content=\"%s\"/>\n", csp)
	r.s("<link rel=\"icon\" href=\"data:,\"/>\n")
	r.f("<title>%s</title>\n<style>%s</style>\n</head>\n<body>\n", esc(title), styleCSS)
	r.f("<header><h1>%s</h1>", esc(title))
	if d.Generator != "" {
		r.f("<p class=\"gen\">Written by %s.</p>", esc(d.Generator))
	}
	r.s("</header>\n")
	r.nav(d)
	r.s("<main>\n")
	r.summary(d)
	r.findings(d)
	r.overview(d)
	r.heads(d)
	r.composition(d)
	r.attention(d)
	r.layers(d)
	r.s("</main>\n")
	r.footer(d)
	r.s("</body>\n</html>\n")
	if r.err != nil {
		return fmt.Errorf("htmlreport: %w", r.err)
	}
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("htmlreport: %w", err)
	}
	return nil
}

// validate checks the shapes Render relies on, so that ragged input is an
// error rather than a panic.
func validate(d *Data) error {
	seen := map[int]bool{}
	for _, l := range d.Layers {
		if seen[l.Index] {
			return fmt.Errorf("layer %d appears twice", l.Index)
		}
		seen[l.Index] = true
	}
	for i, h := range d.Heads {
		if len(h.Layers) != len(h.Values) {
			return fmt.Errorf("head map %d (%q): %d layer labels for %d rows", i, h.Title, len(h.Layers), len(h.Values))
		}
	}
	for _, c := range d.Composition {
		L := len(c.Q)
		if c.Layers != nil && len(c.Layers) != L {
			return fmt.Errorf("composition %q: %d layer labels for %d layers", c.Name, len(c.Layers), L)
		}
		H := 0
		if L > 0 {
			H = len(c.Q[0])
		}
		for _, a := range []struct {
			n string
			v [][][][]float64
		}{{"Q", c.Q}, {"K", c.K}, {"V", c.V}} {
			if len(a.v) != L {
				return fmt.Errorf("composition %q: %s has %d layers, Q has %d", c.Name, a.n, len(a.v), L)
			}
			for l1 := range a.v {
				if len(a.v[l1]) != H {
					return fmt.Errorf("composition %q: %s[%d] has %d heads, want %d", c.Name, a.n, l1, len(a.v[l1]), H)
				}
				for h1 := range a.v[l1] {
					if len(a.v[l1][h1]) != L {
						return fmt.Errorf("composition %q: %s[%d][%d] has %d layers, want %d", c.Name, a.n, l1, h1, len(a.v[l1][h1]), L)
					}
					for l2 := range a.v[l1][h1] {
						if len(a.v[l1][h1][l2]) != H {
							return fmt.Errorf("composition %q: %s[%d][%d][%d] has %d heads, want %d", c.Name, a.n, l1, h1, l2, len(a.v[l1][h1][l2]), H)
						}
					}
				}
			}
		}
	}
	if a := d.Attention; a != nil {
		T := len(a.Tokens)
		for _, l := range a.Layers {
			for h, p := range l.Probs {
				if T == 0 {
					T = len(p)
				}
				if len(p) != T || T == 0 {
					return fmt.Errorf("attention layer %d head %d: %d query rows, want %d", l.Index, h, len(p), T)
				}
				for i, row := range p {
					if len(row) != T {
						return fmt.Errorf("attention layer %d head %d row %d: %d keys, want %d", l.Index, h, i, len(row), T)
					}
				}
			}
		}
		if len(a.Tokens) != 0 && len(a.Tokens) != T {
			return fmt.Errorf("attention: %d token labels for %d positions", len(a.Tokens), T)
		}
	}
	return nil
}

func (r *renderer) nav(d *Data) {
	r.s(`<nav aria-label="Contents"><ol>`)
	r.s(`<li><a href="#summary">Summary</a></li><li><a href="#findings">Findings</a></li>`)
	if len(d.Layers) > 0 {
		r.s(`<li><a href="#overview">Across layers</a></li>`)
	}
	if len(d.Heads) > 0 {
		r.s(`<li><a href="#heads">Heads</a></li>`)
	}
	if len(d.Composition) > 0 {
		r.s(`<li><a href="#composition">Composition</a></li>`)
	}
	if d.Attention != nil && len(d.Attention.Layers) > 0 {
		r.s(`<li><a href="#attention">Attention</a></li>`)
	}
	if len(d.Layers) > 0 {
		r.s(`<li><a href="#layers">Layers</a><ol class="inline">`)
		for _, l := range d.Layers {
			r.f(`<li><a href="#layer-%d">%d</a></li>`, l.Index, l.Index)
		}
		r.s(`</ol></li>`)
	}
	r.s("</ol></nav>\n")
}

func (r *renderer) summary(d *Data) {
	m := d.Model
	r.s(`<section id="summary"><h2>Summary</h2>`)
	r.f(`<p class="src">Checkpoint: <code>%s</code></p>`, esc(d.Source))
	r.s(`<div class="tw"><table class="facts"><tbody>`)
	row := func(k, v string) { r.f(`<tr><th scope="row">%s</th><td>%s</td></tr>`, esc(k), esc(v)) }
	row("architecture", m.Arch)
	row("d_model", fmtInt(m.DModel))
	row("layers", fmtInt(m.NLayers))
	row("query heads", fmtInt(m.NHeads))
	row("KV heads", fmtInt(m.NKVHeads))
	row("head dim", fmtInt(m.HeadDim))
	for _, f := range m.Facts {
		row(f.Name, f.Value)
	}
	row("layers in this report", strconv.Itoa(len(d.Layers)))
	row("findings", strconv.Itoa(len(d.Findings)))
	r.s(`</tbody></table></div>`)
	if len(d.Notes) > 0 {
		r.s(`<ul class="notes">`)
		for _, n := range d.Notes {
			r.f(`<li>%s</li>`, esc(n))
		}
		r.s(`</ul>`)
	}
	r.s("</section>\n")
}

func (r *renderer) findings(d *Data) {
	r.s(`<section id="findings"><h2>Findings</h2>`)
	if len(d.Findings) == 0 {
		r.s(`<p class="ok">No findings: nothing in these weights crossed a threshold.</p></section>` + "\n")
		return
	}
	layers := map[int]bool{}
	for _, l := range d.Layers {
		layers[l.Index] = true
	}
	r.s(`<ul class="findings">`)
	shown := d.Findings
	if len(shown) > maxFindings {
		shown = shown[:maxFindings]
	}
	for _, f := range shown {
		r.f(`<li><span class="kind">%s</span> `, esc(f.Kind))
		var where []string
		if f.Layer >= 0 {
			if layers[f.Layer] {
				where = append(where, fmt.Sprintf(`<a href="#layer-%d">layer %d</a>`, f.Layer, f.Layer))
			} else {
				where = append(where, fmt.Sprintf("layer %d", f.Layer))
			}
		}
		if f.Matrix != "" {
			where = append(where, esc(f.Matrix))
		}
		if f.Head >= 0 {
			where = append(where, fmt.Sprintf("head %d", f.Head))
		}
		if len(where) > 0 {
			r.f(`<span class="where">%s</span> `, strings.Join(where, " · "))
		}
		r.f("%s</li>", esc(f.Message))
	}
	r.s("</ul>")
	if n := len(d.Findings) - len(shown); n > 0 {
		r.f(`<p>… and %d more findings, not listed here (the JSON of qkv inspect has them all).</p>`, n)
	}
	r.s("</section>\n")
}

// projClass is the series class of a projection name.
func projClass(name string, i int) string {
	switch name {
	case "q", "k", "v", "o":
		return "s" + name
	}
	return "s" + strconv.Itoa(4+i%4)
}

func projTitle(name string) string {
	switch name {
	case "q", "k", "v", "o":
		return "W_" + strings.ToUpper(name)
	}
	return label(name)
}

// matrixNames lists the projection names in the order they first appear.
func matrixNames(d *Data) []string {
	var names []string
	for _, l := range d.Layers {
		for _, m := range l.Matrices {
			if !slices.Contains(names, m.Name) {
				names = append(names, m.Name)
			}
		}
	}
	return names
}

// overview draws per-layer statistics across the model.
func (r *renderer) overview(d *Data) {
	if len(d.Layers) == 0 {
		return
	}
	names := matrixNames(d)
	collect := func(get func(m *Matrix) float64) ([]series, int) {
		var out []series
		n := 0
		for i, name := range names {
			se := series{name: projTitle(name), cls: projClass(name, i)}
			for _, l := range d.Layers {
				for k := range l.Matrices {
					if m := &l.Matrices[k]; m.Name == name {
						v := get(m)
						if !math.IsNaN(v) {
							se.xs = append(se.xs, float64(l.Index))
							se.ys = append(se.ys, v)
							n++
						}
					}
				}
			}
			out = append(out, se)
		}
		return out, n
	}
	r.s(`<section id="overview"><h2>Across layers</h2><div class="figs">`)
	norm, n1 := collect(func(m *Matrix) float64 { return m.SpectralNorm })
	if n1 > 0 {
		svg := r.drawLineChart(lineChart{title: "Spectral norm by layer", desc: "Spectral norm σ_max of each projection against the layer index, log y axis.",
			xlabel: "layer", ylabel: "σ₁ (spectral norm)", ylog: true, xint: true, series: norm})
		r.figure("chart", svg, "Spectral norm σ<sub>max</sub> of W<sub>Q</sub>, W<sub>K</sub>, W<sub>V</sub>, W<sub>O</sub> by layer (log scale). A layer far above the others is an outlier.")
	}
	er, n2 := collect(func(m *Matrix) float64 { return m.EffectiveRank })
	if n2 > 0 {
		svg := r.drawLineChart(lineChart{title: "Effective rank by layer", desc: "Effective rank exp(entropy of the normalised singular values) of each projection against the layer index.",
			xlabel: "layer", ylabel: "effective rank", xint: true, series: er})
		r.figure("chart", svg, "Effective rank (exp of the entropy of σ/Σσ) of each projection by layer.")
	}
	al, n3 := collect(func(m *Matrix) float64 {
		if m.ESD == nil || m.ESD.Status != "success" {
			return math.NaN()
		}
		return m.ESD.Alpha
	})
	if n3 > 0 {
		svg := r.drawLineChart(lineChart{title: "Power-law exponent α by layer", desc: "Fitted power-law exponent α of each projection's eigenvalue spectrum against the layer index, with reference lines at α = 2 and α = 6.",
			xlabel: "layer", ylabel: "α", xint: true, series: al, hlines: []refLine{{2, "α = 2"}, {6, "α = 6"}}})
		r.figure("chart", svg, "Power-law exponent α of the eigenvalue spectrum λ = σ² by layer. WeightWatcher reads α &lt; 2 as over-trained and α &gt; 6 as under-trained; failed fits are left out.")
	}
	r.s("</div></section>\n")
}

// finiteRange returns the min and max of the finite values (NaN, NaN when
// there are none).
func finiteRange(vals func(yield func(float64))) (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	vals(func(v float64) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	})
	if math.IsInf(lo, 0) {
		return math.NaN(), math.NaN()
	}
	return lo, hi
}

func (r *renderer) heads(d *Data) {
	if len(d.Heads) == 0 {
		return
	}
	r.s(`<section id="heads"><h2>Heads</h2><p>Each cell is one head (column) of one layer (row). Colours: viridis, dark = low, yellow = high; grey = no value.</p>`)
	var groups []string
	for _, h := range d.Heads {
		if !slices.Contains(groups, h.Group) {
			groups = append(groups, h.Group)
		}
	}
	for _, g := range groups {
		if g != "" {
			r.f(`<h3>%s</h3>`, esc(g))
		}
		r.s(`<div class="figs">`)
		for i := range d.Heads {
			if h := &d.Heads[i]; h.Group == g {
				r.headMap(h)
			}
		}
		r.s("</div>\n")
	}
	r.s("</section>\n")
}

func (r *renderer) headMap(h *HeadMap) {
	cols := 0
	for _, row := range h.Values {
		cols = max(cols, len(row))
	}
	if cols == 0 {
		return
	}
	at := func(c, rr int) float64 {
		if c < len(h.Values[rr]) {
			return h.Values[rr][c]
		}
		return math.NaN()
	}
	lo, hi := finiteRange(func(y func(float64)) {
		for _, row := range h.Values {
			for _, v := range row {
				y(v)
			}
		}
	})
	colName := h.ColName
	if colName == "" {
		colName = "head"
	}
	desc := fmt.Sprintf("Heatmap of %d layers by %d %ss", len(h.Values), cols, colName)
	if !math.IsNaN(lo) {
		desc += fmt.Sprintf(", values from %s to %s", fmtNum(lo), fmtNum(hi))
		mr, mc := -1, -1
		for rr, row := range h.Values {
			for c, v := range row {
				if v == hi && mr < 0 {
					mr, mc = rr, c
				}
			}
		}
		desc += fmt.Sprintf("; the largest is layer %d %s %d", h.Layers[mr], colName, mc)
	}
	desc += "."
	svg := r.drawHeat(heat{title: h.Title, desc: desc, rowName: "layer", colName: colName,
		rows: len(h.Values), cols: cols,
		rowLabel: func(i int) string { return strconv.Itoa(h.Layers[i]) },
		colLabel: strconv.Itoa, at: at, lo: lo, hi: hi})
	cap := esc(h.Title) + "."
	if h.Caption != "" {
		cap += " " + esc(h.Caption)
	}
	if len(h.Values)*cols <= maxTableCells {
		cap += r.valueTable(h, cols)
	}
	r.figure("heat", svg, cap)
}

// valueTable writes a heatmap's numbers as a collapsed table.
func (r *renderer) valueTable(h *HeadMap, cols int) string {
	var b strings.Builder
	b.WriteString(`<details><summary>Values</summary><div class="tw"><table class="vals"><thead><tr><th scope="col">layer</th>`)
	for c := 0; c < cols; c++ {
		fmt.Fprintf(&b, `<th scope="col">%d</th>`, c)
	}
	b.WriteString(`</tr></thead><tbody>`)
	for i, row := range h.Values {
		fmt.Fprintf(&b, `<tr><th scope="row">%d</th>`, h.Layers[i])
		for c := 0; c < cols; c++ {
			v := math.NaN()
			if c < len(row) {
				v = row[c]
			}
			fmt.Fprintf(&b, `<td>%s</td>`, fmtNum(v))
		}
		b.WriteString(`</tr>`)
	}
	b.WriteString(`</tbody></table></div></details>`)
	return b.String()
}

func (r *renderer) footer(d *Data) {
	r.s(`<footer><h2>How to read this report</h2><dl>`,
		`<dt>Singular values σ</dt><dd>of each projection matrix, descending, on log-log axes (rank against σ).</dd>`,
		`<dt>ESD</dt><dd>the empirical spectral density of the eigenvalues λ = σ² of WᵀW, a histogram on log-spaced bins. The line is the power law p(λ) ∝ λ<sup>−α</sup> fitted to the tail λ ≥ xmin (WeightWatcher's method: the continuous maximum-likelihood α at every candidate xmin, xmin chosen by the smallest Kolmogorov–Smirnov distance D).</dd>`,
		`<dt>Effective rank</dt><dd>exp(−Σ p<sub>i</sub> ln p<sub>i</sub>) with p = σ / Σσ.</dd>`,
		`<dt>Composition scores</dt><dd>Q-, K- and V-composition of an earlier head’s output with a later head’s query, key or value side (Elhage et al. 2021): ‖M·OV‖<sub>F</sub> / (‖M‖<sub>F</sub>‖OV‖<sub>F</sub>).</dd>`,
		`<dt>Colours</dt><dd>sequential data use viridis and lines the Okabe–Ito palette with distinct dashes and markers, so no figure depends on telling colours apart.</dd>`,
		`</dl>`)
	if d.Generator != "" {
		r.f(`<p class="gen">%s</p>`, esc(d.Generator))
	}
	r.s("</footer>\n")
}
