package htmlreport

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Chart geometry (px in the SVG's own coordinates; CSS scales the SVG down
// to the page width on a phone).
const (
	chartW  = 480.0
	chartH  = 300.0
	marginL = 60.0
	marginR = 14.0
	marginT = 30.0
	marginB = 46.0
	// markerMax: series with at most this many points get point markers.
	markerMax = 40
)

// series is one line of a chart; cls selects its colour, dash pattern and
// marker ("sq", "sk", "sv", "so" or "s4", "s5", ...).
type series struct {
	name   string
	cls    string
	xs, ys []float64
}

// refLine is a horizontal reference line at v with a label.
type refLine struct {
	v     float64
	label string
}

type lineChart struct {
	title, desc    string
	xlabel, ylabel string
	xlog, ylog     bool
	xint           bool // x values are integers (layer indices): integer ticks
	series         []series
	hlines         []refLine
}

// markerShape returns a small path (relative to the point) per series class,
// so lines differ by shape and dash as well as colour.
func markerShape(cls string, x, y float64) string {
	p := func(f string, a ...any) string { return fmt.Sprintf(f, a...) }
	switch cls {
	case "sq": // square
		return p("M%s %sh6v6h-6z", num(x-3), num(y-3))
	case "sk": // triangle
		return p("M%s %sl3.5 6h-7z", num(x), num(y-3.5))
	case "sv": // diamond
		return p("M%s %sl4 4-4 4-4-4z", num(x), num(y-4))
	default: // cross
		return p("M%s %sl6 6m0-6l-6 6", num(x-3), num(y-3))
	}
}

// extent returns the finite (and, for log, positive) min and max of vals.
func extent(log bool, lo, hi float64, vals ...float64) (float64, float64) {
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) || (log && !(v > 0)) {
			continue
		}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	return lo, hi
}

// pad widens [lo, hi] by a fraction of its span (in log10 for log scales).
func pad(log bool, lo, hi, f float64) (float64, float64) {
	if log {
		l0, l1 := math.Log10(lo), math.Log10(hi)
		d := (l1 - l0) * f
		if d == 0 {
			d = 0.1
		}
		return math.Pow(10, l0-d), math.Pow(10, l1+d)
	}
	d := (hi - lo) * f
	return lo - d, hi + d
}

// axes draws the frame, grid, ticks and axis titles of a plot area.
func (s *svg) axes(x, y scale, xlabel, ylabel string, xint bool) {
	left, right := x.r0, x.r1
	bottom, top := y.r0, y.r1
	for _, t := range y.ticks(5) {
		py := y.at(t.v)
		s.line(left, py, right, py, "gr")
		s.line(left-4, py, left, py, "ax")
		s.text(left-6, py+3.5, "tk", "end", false, t.label)
	}
	xt := x.ticks(6)
	if xint {
		var keep []tick
		for _, t := range xt {
			if t.v == math.Round(t.v) {
				keep = append(keep, tick{t.v, strconv.Itoa(int(t.v))})
			}
		}
		if len(keep) == 0 {
			c := math.Round((x.d0 + x.d1) / 2)
			keep = []tick{{c, fmtNum(c)}}
		}
		xt = keep
	}
	for _, t := range xt {
		px := x.at(t.v)
		s.line(px, bottom, px, bottom+4, "ax")
		s.text(px, bottom+16, "tk", "middle", false, t.label)
	}
	s.line(left, bottom, right, bottom, "ax")
	s.line(left, top, left, bottom, "ax")
	s.text((left+right)/2, bottom+36, "al", "middle", false, xlabel)
	s.text(14, (top+bottom)/2, "al", "middle", true, ylabel)
}

// drawLineChart draws a chart of one or more series with a legend.
func (r *renderer) drawLineChart(c lineChart) string {
	var xs, ys []float64
	for _, se := range c.series {
		xs = append(xs, se.xs...)
		ys = append(ys, se.ys...)
	}
	for _, h := range c.hlines {
		ys = append(ys, h.v)
	}
	x0, x1 := extent(c.xlog, math.Inf(1), math.Inf(-1), xs...)
	y0, y1 := extent(c.ylog, math.Inf(1), math.Inf(-1), ys...)
	if math.IsInf(x0, 0) || math.IsInf(y0, 0) {
		return ""
	}
	if !c.xint {
		x0, x1 = pad(c.xlog, x0, x1, 0.02)
	} else {
		// room for the end markers
		d := math.Max(0.3, 0.02*(x1-x0))
		x0, x1 = x0-d, x1+d
	}
	y0, y1 = pad(c.ylog, y0, y1, 0.05)
	xs2 := newScale(c.xlog, x0, x1, marginL, chartW-marginR)
	ys2 := newScale(c.ylog, y0, y1, chartH-marginB, marginT)
	s := newSVG(chartW, chartH, r.id(), c.title, c.desc+seriesSummary(c))
	s.axes(xs2, ys2, c.xlabel, c.ylabel, c.xint)
	for _, h := range c.hlines {
		py := ys2.at(h.v)
		s.line(marginL, py, chartW-marginR, py, "ref")
		s.text(chartW-marginR-2, py-3, "tk", "end", false, h.label)
	}
	// legend: one swatch per series along the top
	lx := marginL
	for _, se := range c.series {
		s.line(lx, 14, lx+22, 14, "ln "+se.cls)
		s.rawPath(markerShape(se.cls, lx+11, 14), "mk "+se.cls)
		s.text(lx+26, 18, "lg", "start", false, se.name)
		lx += 34 + 7*float64(len([]rune(se.name)))
	}
	for _, se := range c.series {
		px := make([]float64, len(se.xs))
		py := make([]float64, len(se.xs))
		var mk strings.Builder
		n := 0
		for i := range se.xs {
			px[i], py[i] = math.NaN(), math.NaN()
			if i < len(se.ys) && xs2.in(se.xs[i]) && ys2.in(se.ys[i]) {
				px[i], py[i] = xs2.at(se.xs[i]), ys2.at(se.ys[i])
				n++
			}
		}
		s.path(px, py, "ln "+se.cls)
		if n <= markerMax {
			for i := range px {
				if !math.IsNaN(px[i]) && !math.IsNaN(py[i]) {
					mk.WriteString(markerShape(se.cls, px[i], py[i]))
				}
			}
			s.rawPath(mk.String(), "mk "+se.cls)
		}
	}
	return s.String()
}

// seriesSummary describes each series' range in words, for people who do
// not see the chart: " W_Q: 1.2 (at 3) to 4.5 (at 0)."
func seriesSummary(c lineChart) string {
	var b strings.Builder
	for _, se := range c.series {
		lo, hi := -1, -1
		for i, y := range se.ys {
			if math.IsNaN(y) || math.IsInf(y, 0) || i >= len(se.xs) {
				continue
			}
			if lo < 0 || y < se.ys[lo] {
				lo = i
			}
			if hi < 0 || y > se.ys[hi] {
				hi = i
			}
		}
		if lo < 0 {
			continue
		}
		fmt.Fprintf(&b, " %s: %s (at %s %s) to %s (at %s %s).", se.name, fmtNum(se.ys[lo]), c.xlabel, fmtNum(se.xs[lo]),
			fmtNum(se.ys[hi]), c.xlabel, fmtNum(se.xs[hi]))
	}
	return b.String()
}

// downsample picks at most n indices of 0..len−1, log-spaced in rank so a
// log-x spectrum keeps its shape at both ends; the first and last are kept.
func downsample(length, n int) []int {
	if length <= n {
		idx := make([]int, length)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := make([]int, 0, n)
	last := -1
	for k := 0; k < n; k++ {
		// rank (1-based) from 1 to length, geometric
		rank := math.Pow(float64(length), float64(k)/float64(n-1))
		i := int(math.Round(rank)) - 1
		if i <= last {
			i = last + 1
		}
		if i >= length {
			break
		}
		idx = append(idx, i)
		last = i
	}
	if idx[len(idx)-1] != length-1 {
		idx[len(idx)-1] = length - 1
	}
	return idx
}

// evalsThresh is WeightWatcher's EVALS_THRESH: only λ above it are fitted.
const evalsThresh = 1e-5

// esdPlot draws the empirical spectral density of λ = σ² as a log-binned
// histogram (density: count / (n · bin width)) on log-log axes, with the
// fitted power law p(λ) = f·(α−1)/xmin·(λ/xmin)^−α over [xmin, xmax], where
// f is the fraction of the plotted eigenvalues in the tail — the same
// normalisation as the histogram. It returns the SVG and a sentence for the
// caption about what was left out ("" when nothing).
func (r *renderer) esdPlot(title string, sv []float64, fit *ESD) (string, string) {
	lmax := 0.0
	for _, s := range sv {
		if l := s * s; l > lmax && !math.IsInf(l, 0) {
			lmax = l
		}
	}
	if !(lmax > 0) {
		return "", "no positive eigenvalues"
	}
	// Drawn are the λ WeightWatcher fits, λ > 1e-5 (its EVALS_THRESH), so
	// the histogram and the line describe one set; when fewer than two are
	// that large (a tiny matrix), everything above rounding (1e-12·λ_max).
	collect := func(cut float64) ([]float64, int) {
		var lam []float64
		dropped := 0
		for _, s := range sv {
			if l := s * s; l > cut && !math.IsInf(l, 0) {
				lam = append(lam, l)
			} else {
				dropped++
			}
		}
		return lam, dropped
	}
	cut, why := evalsThresh, "below WeightWatcher's cut and left out of its fit"
	lam, dropped := collect(cut)
	if len(lam) < 2 {
		cut, why = 1e-12*lmax, "zero to rounding"
		lam, dropped = collect(cut)
	}
	lo, hi := extent(true, math.Inf(1), math.Inf(-1), lam...)
	if lo == hi {
		lo, hi = lo/2, hi*2
	}
	nb := int(math.Round(2 * math.Sqrt(float64(len(lam)))))
	nb = max(6, min(50, nb))
	llo, lhi := math.Log10(lo), math.Log10(hi)
	edges := make([]float64, nb+1)
	for i := range edges {
		edges[i] = math.Pow(10, llo+(lhi-llo)*float64(i)/float64(nb))
	}
	counts := make([]int, nb)
	for _, l := range lam {
		b := int((math.Log10(l) - llo) / (lhi - llo) * float64(nb))
		counts[max(0, min(nb-1, b))]++
	}
	n := float64(len(lam))
	dens := make([]float64, nb)
	for i, c := range counts {
		dens[i] = float64(c) / (n * (edges[i+1] - edges[i]))
	}
	ok := fit != nil && fit.Status == "success" && fit.Alpha > 1 && fit.XMin > 0 && fit.XMax >= fit.XMin
	var fx, fy []float64
	if ok {
		tail := 0
		for _, l := range lam {
			if l >= fit.XMin {
				tail++
			}
		}
		f := float64(tail) / n
		p := func(x float64) float64 { return f * (fit.Alpha - 1) / fit.XMin * math.Pow(x/fit.XMin, -fit.Alpha) }
		fx = []float64{fit.XMin, fit.XMax}
		fy = []float64{p(fit.XMin), p(fit.XMax)}
	}
	y0, y1 := extent(true, math.Inf(1), math.Inf(-1), append(append([]float64{}, dens...), fy...)...)
	x0, x1 := extent(true, lo, hi, fx...)
	x0, x1 = pad(true, x0, x1, 0.03)
	y0, y1 = pad(true, y0, y1, 0.08)
	xs := newScale(true, x0, x1, marginL, chartW-marginR)
	ys := newScale(true, y0, y1, chartH-marginB, marginT)
	desc := fmt.Sprintf("Histogram of %d eigenvalues λ = σ² in %d log-spaced bins, log-log axes.", len(lam), nb)
	if ok {
		desc += fmt.Sprintf(" Fitted power law with α = %s from λ = %s to %s.", fmtNum(fit.Alpha), fmtNum(fit.XMin), fmtNum(fit.XMax))
	} else if fit != nil {
		desc += " The power-law fit failed; no line is drawn."
	}
	s := newSVG(chartW, chartH, r.id(), title, desc)
	s.axes(xs, ys, "eigenvalue λ = σ²", "density", false)
	var bars strings.Builder
	base := chartH - marginB
	for i, d := range dens {
		if counts[i] == 0 || !ys.in(d) {
			continue
		}
		fmt.Fprintf(&bars, "M%s %sV%sH%sV%sZ", num(xs.at(edges[i])), num(base), num(ys.at(d)), num(xs.at(edges[i+1])), num(base))
	}
	s.rawPath(bars.String(), "bar")
	s.rect(marginL, 8, 14, 10, "bar")
	s.text(marginL+18, 18, "lg", "start", false, "ESD")
	if ok {
		px := []float64{xs.at(fx[0]), xs.at(fx[1])}
		py := []float64{ys.at(fy[0]), ys.at(fy[1])}
		s.path(px, py, "fit")
		s.line(px[0], marginT, px[0], base, "xmin")
		s.text(px[0]+3, marginT+10, "tk", "start", false, "xmin")
		s.line(marginL+60, 13, marginL+82, 13, "fit")
		s.text(marginL+86, 18, "lg", "start", false, "power law, α = "+fmtNum(fit.Alpha))
	}
	note := ""
	if dropped > 0 {
		note = fmt.Sprintf("%d eigenvalue(s) ≤ %s (%s) not shown.", dropped, fmtNum(cut), why)
	}
	return s.String(), note
}

// heat describes one heatmap: cols × rows cells, value at(c, r) (NaN: no
// value), masked(c, r) cells drawn empty, colour scale [lo, hi].
type heat struct {
	title, desc      string
	rowName, colName string
	rows, cols       int
	// rowLabel/colLabel label row r / column c; with block > 0 each block
	// of rows or columns is labelled at its middle, by rowBlock/colBlock(b).
	rowLabel, colLabel func(i int) string
	block              int
	rowBlock, colBlock func(b int) string
	at                 func(c, r int) float64
	masked             func(c, r int) bool
	lo, hi             float64
	unit               string    // legend title
	marks              []refLine // marked on the colour bar (baseline)
	maxW, maxH         float64   // bounds of the cell area
}

// drawHeat draws h as a raster of cells with labelled axes and a colour
// bar. A raster with few cells gets square cells of up to 28 px.
func (r *renderer) drawHeat(h heat) string {
	if h.rows <= 0 || h.cols <= 0 {
		return ""
	}
	if h.maxW == 0 {
		h.maxW = 400
	}
	if h.maxH == 0 {
		h.maxH = 520
	}
	cell := math.Min(28, math.Min(h.maxW/float64(h.cols), h.maxH/float64(h.rows)))
	gw, gh := cell*float64(h.cols), cell*float64(h.rows)
	const left, top = 58.0, 10.0
	barX := left + gw + 22
	W := barX + 90
	bh := math.Min(math.Max(gh, 100), 220) // colour bar height
	by := top + 12
	// tall enough for the rotated row title and the colour bar
	H := math.Max(math.Max(top+gh+44, by+bh+30), 7*float64(len([]rune(h.rowName)))+24)
	anyNaN := false
	uri, err := rasterURI(h.cols, h.rows, func(c, rr int) uint8 {
		if h.masked != nil && h.masked(c, rr) {
			return idxClear
		}
		i := colourIndex(h.at(c, rr), h.lo, h.hi)
		if i == idxNaN {
			anyNaN = true
		}
		return i
	})
	if err != nil {
		r.fail(err)
		return ""
	}
	s := newSVG(W, H, r.id(), h.title, h.desc)
	s.rect(left, top, gw, gh, "hbg")
	s.image(left, top, gw, gh, uri)
	s.rect(left, top, gw, gh, "frame")
	// axis labels: every k-th row/column so that labels do not overlap
	// (a label needs about 6.5 px per character at 11 px, rows 12 px)
	label := func(n int, size, need float64, lab, blockLab func(int) string, draw func(pos float64, t string)) {
		if h.block > 0 && blockLab != nil {
			nb := (n + h.block - 1) / h.block
			w := need * float64(len([]rune(blockLab(nb-1))))
			if need == 0 {
				w = 12
			}
			step := max(1, int(math.Ceil((w+4)/(size*float64(h.block)))))
			for b := 0; b < nb; b += step {
				draw((float64(b*h.block)+float64(min(h.block, n-b*h.block))/2)*size, blockLab(b))
			}
			return
		}
		w := need * float64(len([]rune(lab(n-1))))
		if need == 0 {
			w = 12
		}
		step := max(1, int(math.Ceil((w+4)/size)))
		for i := 0; i < n; i += step {
			draw((float64(i)+0.5)*size, lab(i))
		}
	}
	label(h.rows, cell, 0, h.rowLabel, h.rowBlock, func(pos float64, t string) {
		s.text(left-5, top+pos+3.5, "tk", "end", false, t)
	})
	label(h.cols, cell, 6.5, h.colLabel, h.colBlock, func(pos float64, t string) {
		s.text(left+pos, top+gh+14, "tk", "middle", false, t)
	})
	if h.block > 0 {
		var d strings.Builder
		for b := h.block; b < h.rows; b += h.block {
			y := top + float64(b)*cell
			fmt.Fprintf(&d, "M%s %sH%s", num(left), num(y), num(left+gw))
		}
		for b := h.block; b < h.cols; b += h.block {
			x := left + float64(b)*cell
			fmt.Fprintf(&d, "M%s %sV%s", num(x), num(top), num(top+gh))
		}
		s.rawPath(d.String(), "sep")
	}
	s.text(left+gw/2, top+gh+32, "al", "middle", false, h.colName)
	s.text(14, math.Max(top+gh/2, 3.5*float64(len([]rune(h.rowName)))+6), "al", "middle", true, h.rowName)
	// colour bar
	bar, err := rasterURI(1, nColours, func(_, rr int) uint8 { return uint8(nColours - 1 - rr) })
	if err != nil {
		r.fail(err)
		return ""
	}
	s.text(barX, top+4, "tk", "start", false, h.unit)
	s.image(barX, by, 12, bh, bar)
	s.rect(barX, by, 12, bh, "frame")
	lo, hi := h.lo, h.hi
	var ticks []tick
	switch {
	case math.IsNaN(lo) || math.IsNaN(hi): // no values at all: no ticks
		lo, hi = 0, 1
	case !(hi > lo): // one value
		ticks = []tick{{lo, fmtNum(lo)}}
		hi = lo + 1
	default:
		// the ends of the scale are always labelled
		ticks = []tick{{lo, fmtNum(lo)}, {hi, fmtNum(hi)}}
	}
	bs := newScale(false, lo, hi, by+bh, by)
	for _, t := range linTicks(lo, hi, 4) {
		y := bs.at(t.v)
		ok := len(ticks) == 2 && y < by+bh-12 && y > by+12
		for _, m := range h.marks {
			ok = ok && math.Abs(bs.at(m.v)-y) >= 12
		}
		if ok {
			ticks = append(ticks, t)
		}
	}
	for _, t := range ticks {
		y := bs.at(t.v)
		s.line(barX+12, y, barX+16, y, "ax")
		s.text(barX+18, y+3.5, "tk", "start", false, t.label)
	}
	for _, m := range h.marks {
		if !bs.in(m.v) {
			continue
		}
		y := bs.at(m.v)
		s.line(barX-3, y, barX+15, y, "mark")
		s.text(barX+18, y+3.5, "tk mk-l", "start", false, m.label)
	}
	if anyNaN {
		y := by + bh + 8
		fmt.Fprintf(&s.b, `<rect x="%s" y="%s" width="12" height="10" fill="%s" class="frame"/>`, num(barX), num(y), hexColour(idxNaN))
		s.text(barX+16, y+9, "tk", "start", false, "no value")
	}
	return s.String()
}
