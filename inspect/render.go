package inspect

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect/esd"
	"github.com/qkvdev/qkv/internal/termui"
)

// sparkLevels are the eight bar heights of a spectrum sparkline.
var sparkLevels = []rune("▁▂▃▄▅▆▇█")

// Sparkline draws the descending spectrum sv in width cells on a log scale:
// the top of the range is sv[0], the bottom the smallest positive value but
// no lower than 1e-12·sv[0]; zero values are blank.
func Sparkline(sv []float64, width int) string {
	if len(sv) == 0 || width <= 0 || !(sv[0] > 0) {
		return ""
	}
	hi := math.Log10(sv[0])
	lo := hi
	for _, v := range sv {
		if v > 0 && math.Log10(v) < lo {
			lo = math.Log10(v)
		}
	}
	lo = math.Max(lo, hi-12)
	n := min(width, len(sv))
	var b strings.Builder
	for i := 0; i < n; i++ {
		j := 0
		if n > 1 {
			j = i * (len(sv) - 1) / (n - 1)
		}
		v := sv[j]
		if !(v > 0) {
			b.WriteRune(' ')
			continue
		}
		lvl := len(sparkLevels) - 1
		if hi > lo {
			f := (math.Log10(v) - lo) / (hi - lo)
			lvl = int(math.Round(math.Max(0, f) * float64(len(sparkLevels)-1)))
		}
		b.WriteRune(sparkLevels[lvl])
	}
	return b.String()
}

// fmtNum prints a statistic as termui.Num does (4 significant digits, the
// placeholder when undefined).
func fmtNum(f Float) string { return termui.Num(float64(f)) }

// fmtCond prints a condition number; beyond 1e12 the smallest singular value
// is rounding noise of the stored matrix, so only the bound is shown.
func fmtCond(f Float) string {
	if f.Valid() && float64(f) > 1e12 {
		return ">1e12"
	}
	return fmtNum(f)
}

func fmtRank(r *int) string {
	if r == nil {
		return termui.NoValue
	}
	return fmt.Sprint(*r)
}

func fmtShape(s [2]int) string { return fmt.Sprintf("%d×%d", s[0], s[1]) }

// column ids of the statistics tables, in display order.
const (
	colLabel = iota
	colShape
	colFro
	colNorm
	colRank
	colEff
	colStable
	colCond
	colAlpha // the power-law fit's α (--esd); shown only when some row has one
	colSpark
	nCols
)

var colHeaders = [nCols]string{"", "shape", "fro", "‖·‖₂", "rank", "eff.rank", "stable", "cond", "α", "spectrum"}

// dropOrder is the order in which columns go when the width is short.
var dropOrder = []int{colShape, colStable, colCond, colFro}

// cellRow is one table row: its cells and which of them a finding marks.
type cellRow struct {
	cells [nCols]string
	marks [nCols]bool
	spark []float64
}

// Condition cells of the flags that leave condition null.
const (
	condIll      = "ill"      // FlagIllConditioned
	condSingular = "singular" // FlagSingular
)

// condCell shows why a condition number is absent when a flag says so.
func condCell(s *Stats) string {
	if !s.Condition.Valid() {
		switch {
		case slices.Contains(s.Flags, FlagSingular):
			return condSingular
		case slices.Contains(s.Flags, FlagIllConditioned):
			return condIll
		}
	}
	return fmtCond(s.Condition)
}

// approxEff: the effective rank is an estimate (fast mode's bounds) or
// sums approximate singular values.
func approxEff(s *Stats) bool {
	return s.EffectiveRankBounds != nil || slices.Contains(s.Flags, FlagEffectiveRankApprox)
}

func statsRow(label string, s *Stats) cellRow {
	var r cellRow
	r.cells = [nCols]string{label, fmtShape(s.Shape), fmtNum(s.Fro), fmtNum(s.SpectralNorm), fmtRank(s.Rank),
		fmtNum(s.EffectiveRank), fmtNum(s.StableRank), condCell(s), ""}
	if approxEff(s) && s.EffectiveRank.Valid() {
		r.cells[colEff] = "≈" + r.cells[colEff]
	}
	r.spark = s.spark
	if !s.finite() {
		r.marks[colFro] = true
		switch {
		case s.NaNCount > 0 && s.InfCount > 0:
			r.cells[colFro] = "NaN,Inf"
		case s.NaNCount > 0:
			r.cells[colFro] = "NaN"
		default:
			r.cells[colFro] = "Inf"
		}
	}
	return r
}

// findingIndex finds the findings of a matrix or head quickly.
type findingIndex map[string][]Finding

func fkey(layer int, m string, head int) string { return fmt.Sprintf("%d/%s/%d", layer, m, head) }

func indexFindings(fs []Finding) findingIndex {
	ix := findingIndex{}
	for _, f := range fs {
		h := -1
		if f.Head != nil {
			h = *f.Head
		}
		ix[fkey(f.Layer, f.Matrix, h)] = append(ix[fkey(f.Layer, f.Matrix, h)], f)
		if f.OtherHead != nil {
			ix[fkey(f.Layer, f.Matrix, *f.OtherHead)] = append(ix[fkey(f.Layer, f.Matrix, *f.OtherHead)], f)
		}
	}
	return ix
}

func (r *cellRow) mark(fs []Finding) {
	for _, f := range fs {
		switch f.Kind {
		case KindOutlierNorm:
			r.marks[colNorm] = true
		case KindDeadHead, KindNaN, KindInf:
			r.marks[colFro] = true
		case KindRankCollapsed:
			r.marks[colEff] = true
		case KindDuplicateHeads:
			r.marks[colLabel] = true
		case KindAlphaLow, KindAlphaHigh:
			r.marks[colAlpha] = true
		}
	}
}

// tableSpec is one table ready to lay out.
type tableSpec struct {
	title string
	rows  []cellRow
}

// layout picks the columns and sparkline width that fit width; it returns
// the visible column ids and the sparkline width (0: no sparkline).
func layout(rows []cellRow, width int, hdr [nCols]string) ([]int, int) {
	widths := [nCols]int{}
	for c := 0; c < nCols; c++ {
		widths[c] = lipgloss.Width(hdr[c])
		for _, r := range rows {
			widths[c] = max(widths[c], lipgloss.Width(r.cells[c]))
		}
	}
	hasSpark := false
	for _, r := range rows {
		hasSpark = hasSpark || len(r.spark) > 0
	}
	visible := map[int]bool{}
	for c := 0; c < colSpark; c++ {
		visible[c] = true
	}
	visible[colAlpha] = hasColumn(rows, colAlpha)
	total := func() int {
		t := 0
		for c := 0; c < colSpark; c++ {
			if visible[c] {
				t += widths[c] + 3 // cell padding and border
			}
		}
		return t + 1
	}
	// One sparkline width for every table keeps them comparable.
	const minSpark, maxSpark = 8, 24
	for _, c := range dropOrder {
		if !hasSpark || total()+minSpark+3 <= width {
			break
		}
		visible[c] = false
	}
	spark := 0
	if hasSpark {
		// The column is at least as wide as its header.
		spark = min(maxSpark, width-total()-3)
		if max(spark, lipgloss.Width(hdr[colSpark])) > width-total()-3 || spark < minSpark {
			spark = 0
		}
	}
	var cols []int
	for c := 0; c < colSpark; c++ {
		if visible[c] {
			cols = append(cols, c)
		}
	}
	if spark > 0 {
		cols = append(cols, colSpark)
	}
	return cols, spark
}

var (
	_ termui.Renderer = (*Report)(nil)
	_ termui.Renderer = View{}
)

// View is a report as text, with what the caller knows beyond it.
type View struct {
	Report *Report
	// Context, when set, says what the findings were computed against
	// when the report shows only some of the model's layers (shown under
	// the verdict).
	Context string
}

// Render writes the report as View{Report: r} does.
func (r *Report) Render(w io.Writer, st termui.Style) error { return View{Report: r}.Render(w, st) }

// Render writes the report verdict first: one summary line (model, layers
// shown, findings count, worst finding), the findings, then the tables: one
// per projection (rows = layers), with Heads one per layer and projection
// (rows = heads) and a circuits table, and a legend of the marks used.
// st.Styled selects the palette's colours and borders (the caller decides,
// from whether stdout is a terminal and NO_COLOR); otherwise the output is
// plain text with no escape codes. st.Width is the terminal width in
// columns (80 when ≤ 0).
func (v View) Render(w io.Writer, st termui.Style) error {
	r := v.Report
	width := st.Cols()
	th := termui.NewTheme(w, st)
	var b strings.Builder
	tx := textFor(st)
	writeLine(&b, th.Title, tx(r.Verdict()), width)
	if v.Context != "" {
		writeLine(&b, th.Muted, tx(v.Context), width)
	}
	b.WriteString("\n")
	if len(r.Findings) > 0 {
		writeFindings(&b, r.Findings, th, width, tx)
		b.WriteString("\n")
	}
	ix := indexFindings(r.Findings)
	var used marksUsed
	for _, p := range formats.Projections {
		t := tableSpec{title: r.matrixName(p)}
		bound := -1 // the rank bound every layer shares, 0 when none
		for _, l := range r.Layers {
			m := l.Matrix(p)
			if m == nil {
				continue
			}
			row := statsRow(fmt.Sprintf("layer %d", l.Index), &m.Stats)
			row.setAlpha(m)
			row.mark(ix[fkey(l.Index, string(p), -1)])
			t.rows = append(t.rows, row)
			if bound == -1 || bound == m.RankBound {
				bound = m.RankBound
			} else {
				bound = 0
			}
		}
		if bound > 0 {
			t.title += fmt.Sprintf(" (effective, from latent factors: rank ≤ %d)", bound)
		}
		writeTable(&b, t, th, width, &used, tx)
	}
	// Latent attention's stored factors, one table per factor.
	var factors []string
	for _, l := range r.Layers {
		for _, f := range l.Factors {
			if !slices.Contains(factors, f.Name) {
				factors = append(factors, f.Name)
			}
		}
	}
	for _, name := range factors {
		t := tableSpec{title: "latent factor " + name}
		for _, l := range r.Layers {
			for i := range l.Factors {
				if f := &l.Factors[i]; f.Name == name {
					t.rows = append(t.rows, statsRow(fmt.Sprintf("layer %d", l.Index), &f.Stats))
				}
			}
		}
		writeTable(&b, t, th, width, &used, tx)
	}
	if r.Settings.Heads {
		for _, l := range r.Layers {
			for _, p := range formats.Projections {
				m := l.Matrix(p)
				if m == nil || len(m.Heads) == 0 {
					continue
				}
				t := tableSpec{title: fmt.Sprintf("layer %d %s heads", l.Index, r.matrixName(p))}
				if s := m.MostSimilar; s != nil {
					t.title += fmt.Sprintf(" (most similar: %d~%d cos %s)", s.A, s.B, FormatCosine(float64(s.Cosine), -4))
				}
				for _, h := range m.Heads {
					row := statsRow(fmt.Sprintf("head %d", h.Head), &h.Stats)
					row.mark(ix[fkey(l.Index, string(p), h.Head)])
					t.rows = append(t.rows, row)
				}
				writeTable(&b, t, th, width, &used, tx)
			}
			if len(l.Circuits) > 0 {
				writeCircuits(&b, l, th)
			}
		}
	}
	if legend := used.legend(th != nil); legend != "" {
		writeLine(&b, th.Muted, tx(legend), width)
	}
	text := b.String()
	if st.ASCII && !st.Styled {
		text = ASCII(text)
	}
	_, err := io.WriteString(w, text)
	return err
}

// writeLine writes one line of text, styled by style when it fits the
// width, else wrapped at spaces (continuation lines indented) and plain.
func writeLine(b *strings.Builder, style func(string) string, s string, width int) {
	if lipgloss.Width(s) <= width {
		b.WriteString(style(s))
	} else {
		b.WriteString(wrapWords(s, width, "", "  "))
	}
	b.WriteString("\n")
}

// marksUsed records which marks the tables used, for the legend.
type marksUsed struct {
	ill, singular, undefined, approx, marked, alpha, failed bool
}

func (u *marksUsed) row(r cellRow, cols []int) {
	for _, c := range cols {
		switch cell := r.cells[c]; {
		case c == colCond && cell == condIll:
			u.ill = true
		case c == colCond && cell == condSingular:
			u.singular = true
		case c == colAlpha && cell == alphaFailed:
			u.alpha, u.failed = true, true
		case c == colAlpha && cell != "":
			u.alpha = true
		case cell == termui.NoValue:
			u.undefined = true
		case strings.HasPrefix(cell, "≈"):
			u.approx = true
		}
		u.marked = u.marked || r.marks[c]
	}
}

// legend explains the marks the tables used; "" when none.
func (u *marksUsed) legend(styled bool) string {
	var parts []string
	if u.ill {
		parts = append(parts, "cond ill: ill-conditioned, sv[last] < 2⁻²³·sv[0], below the float32 rounding of the largest value, so the ratio would measure storage noise (JSON: condition null, flag ill_conditioned)")
	}
	if u.singular {
		parts = append(parts, "cond singular: sv[last] = 0")
	}
	if u.alpha {
		parts = append(parts, "α: exponent of the power law fitted to the tail of the eigenvalues λ = σ² (WeightWatcher's method; JSON esd)")
	}
	if u.failed {
		parts = append(parts, "α fail: too few eigenvalues above 1e-5 to fit (JSON esd.status failed, with its reason)")
	}
	if u.approx {
		parts = append(parts, "≈: approximate or estimated (fast mode's bounds, or a rank-deficient matrix's approximate tail)")
	}
	if u.undefined {
		parts = append(parts, termui.NoValue+": undefined")
	}
	if u.marked {
		if styled {
			parts = append(parts, "red: a value a finding flags")
		} else {
			parts = append(parts, "!: a value a finding flags")
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "; ") + "."
}

// Verdict is the report's one-line summary: the model, the layers shown,
// the number of findings and the worst of them.
func (r *Report) Verdict() string {
	g := r.Model
	layers := layersText(len(r.Layers))
	if n := g.NLayers; n > len(r.Layers) && len(r.Layers) > 0 {
		idx := make([]int, len(r.Layers))
		for i, l := range r.Layers {
			idx[i] = l.Index
		}
		layers = fmt.Sprintf("%s of %d shown", shownLayers(idx), n)
	}
	kv := ""
	if g.NKVHeads > 0 && g.NKVHeads != g.NHeads {
		kv = fmt.Sprintf(" (%d KV)", g.NKVHeads)
	}
	heads := fmt.Sprintf("%d heads%s × %d", g.NHeads, kv, g.HeadDim)
	if g.NHeads == 0 { // a single mapped tensor, or --n-heads not known
		heads = "no head geometry"
	}
	what := orDash(g.Arch)
	if a := r.Adapter; a != nil {
		// Every matrix is an update, not a weight of the model: said first.
		what = strings.TrimSpace(g.Arch + " " + a.describe())
	}
	s := fmt.Sprintf("%s — %s, d_model %d, %s, %s mode: ", what, layers, g.DModel, heads, r.Settings.Mode)
	if len(r.Findings) == 0 {
		return s + "no findings"
	}
	f := WorstFinding(r.Findings)
	s += fmt.Sprintf("%d finding", len(r.Findings))
	if len(r.Findings) > 1 {
		s += "s, worst"
	}
	return s + ": " + f.Kind + " at " + findingWhere(*f)
}

// describe says what an adapter's report shows: "LoRA adapter (peft,
// rank 4, scale 4): ΔW = s·B·A".
func (a *Adapter) describe() string {
	ranks, scales := a.seenRanks(), a.seenScales()
	rank := fmt.Sprintf("rank %d", ranks[0])
	if n := len(ranks); n > 1 {
		rank = fmt.Sprintf("ranks %d–%d", ranks[0], ranks[n-1])
	}
	scale := "scale " + termui.Num(scales[0])
	if n := len(scales); n > 1 {
		scale = fmt.Sprintf("scales %s–%s", termui.Num(scales[0]), termui.Num(scales[n-1]))
	}
	return fmt.Sprintf("LoRA adapter (%s, %s, %s): ΔW = s·B·A", termui.Clean(a.Kind), rank, scale)
}

// matrixName names projection p's matrices in titles: W_Q, or ΔW_Q for an
// adapter's updates.
func (r *Report) matrixName(p formats.Projection) string {
	name := "W_" + strings.ToUpper(string(p))
	if r.Adapter != nil {
		name = "ΔW_" + strings.ToUpper(string(p))
	}
	return name
}

// shownLayers writes sorted layer indices compactly: "layer 3", "layers 0-2,5".
func shownLayers(idx []int) string {
	var parts []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", idx[i], idx[j]))
		} else {
			parts = append(parts, fmt.Sprint(idx[i]))
		}
		i = j + 1
	}
	if len(idx) == 1 {
		return "layer " + parts[0]
	}
	return "layers " + strings.Join(parts, ",")
}

// severity orders finding kinds from the worst: values that are not
// numbers, then heads that do nothing, then norms out of line, then
// structure that may be intended.
var severity = []string{KindNaN, KindInf, KindDeadHead, KindOutlierNorm, KindRankCollapsed, KindDuplicateHeads, KindAlphaLow, KindAlphaHigh}

// ByWorstKind returns the findings worst kind first (the order severity
// gives), in their report order within a kind: how every listing of them
// reads, the verdict naming the first. fs is not changed.
func ByWorstKind(fs []Finding) []Finding {
	fs = slices.Clone(fs)
	slices.SortStableFunc(fs, func(a, b Finding) int { return severityOf(a.Kind) - severityOf(b.Kind) })
	return fs
}

func severityOf(kind string) int {
	if i := slices.Index(severity, kind); i >= 0 {
		return i
	}
	return len(severity)
}

// WorstFinding returns the most severe finding (the first of its kind in
// report order), nil when there is none.
func WorstFinding(fs []Finding) *Finding {
	var worst *Finding
	for i := range fs {
		if worst == nil || severityOf(fs[i].Kind) < severityOf(worst.Kind) {
			worst = &fs[i]
		}
	}
	return worst
}

func findingWhere(f Finding) string {
	where := fmt.Sprintf("layer %d %s", f.Layer, f.Matrix)
	if f.Head != nil {
		where += fmt.Sprintf(" head %d", *f.Head)
	}
	return where
}

// RenderFindings writes the verdict line and the findings, as a report's
// text begins (qkv report's summary).
func (r *Report) RenderFindings(w io.Writer, st termui.Style) error {
	th := termui.NewTheme(w, st)
	var b strings.Builder
	tx := textFor(st)
	writeLine(&b, th.Title, tx(r.Verdict()), st.Cols())
	if len(r.Findings) > 0 {
		b.WriteString("\n")
		writeFindings(&b, r.Findings, th, st.Cols(), tx)
	}
	text := b.String()
	if st.ASCII && !st.Styled {
		text = ASCII(text)
	}
	_, err := io.WriteString(w, text)
	return err
}

func orDash(s string) string {
	if s == "" {
		return "model"
	}
	return s
}

// writeTable writes one statistics table; th is nil for plain text, where
// marked cells get a "!".
func writeTable(b *strings.Builder, t tableSpec, th *termui.Theme, width int, used *marksUsed, tx func(string) string) {
	var hdr [nCols]string
	for c, h := range colHeaders {
		hdr[c] = tx(h) // measured as written
	}
	if len(t.rows) == 0 {
		return
	}
	// When every row has one shape, it goes in the title rather than a column.
	title := t.title
	if shape, same := commonShape(t.rows); same {
		if i := strings.Index(title, " ("); i >= 0 {
			title = title[:i] + "  " + shape + title[i:]
		} else {
			title += "  " + shape
		}
		rows := make([]cellRow, len(t.rows))
		copy(rows, t.rows)
		for i := range rows {
			rows[i].cells[colShape] = ""
		}
		t.rows = rows
	}
	cols, spark := layout(t.rows, width, hdr)
	if len(cols) > 0 && cols[0] == colLabel && len(cols) > 1 && cols[1] == colShape && t.rows[0].cells[colShape] == "" {
		cols = append(cols[:1], cols[2:]...)
	}
	headers := make([]string, len(cols))
	right := make([]bool, len(cols))
	for i, c := range cols {
		headers[i] = hdr[c]
		right[i] = c != colLabel && c != colSpark
	}
	styled := th != nil
	rows := make([][]string, len(t.rows))
	for i, r := range t.rows {
		used.row(r, cols)
		rows[i] = make([]string, len(cols))
		for j, c := range cols {
			if c == colSpark {
				rows[i][j] = Sparkline(r.spark, spark)
			} else {
				rows[i][j] = r.cells[c]
			}
			if !styled && r.marks[c] {
				rows[i][j] += "!"
			}
		}
	}
	b.WriteString(th.Title(tx(title)))
	b.WriteString("\n")
	termui.TableLayout{Headers: headers, Right: right, Styled: styled, Rule: true,
		Tone: func(row, col int) termui.Tone {
			if t.rows[row].marks[cols[col]] {
				return termui.ToneBad
			}
			return termui.ToneNone
		}}.
		Write(b, len(rows), func(i int) []string { return rows[i] })
	b.WriteString("\n")
}

func writeCircuits(b *strings.Builder, l LayerReport, th *termui.Theme) {
	headers := []string{"head", "kv", "QK ‖·‖₂", "QK eff.rank", "OV ‖·‖₂", "OV eff.rank"}
	rows := make([][]string, len(l.Circuits))
	for i, c := range l.Circuits {
		rows[i] = []string{fmt.Sprint(c.Head), fmt.Sprint(c.KVHead), fmtNum(c.QK.SpectralNorm), fmtNum(c.QK.EffectiveRank),
			fmtNum(c.OV.SpectralNorm), fmtNum(c.OV.EffectiveRank)}
	}
	b.WriteString(th.Title(fmt.Sprintf("layer %d circuits", l.Index)))
	b.WriteString("\n")
	termui.TableLayout{Headers: headers, Right: []bool{true, true, true, true, true, true}, Styled: th != nil, Rule: true}.
		Write(b, len(rows), func(i int) []string { return rows[i] })
	b.WriteString("\n")
}

func writeFindings(b *strings.Builder, fs []Finding, th *termui.Theme, width int, tx func(string) string) {
	// Worst kinds first, as the verdict names the worst; within a kind in
	// report order (by layer). The JSON keeps report order.
	fs = ByWorstKind(fs)
	b.WriteString(th.Title(fmt.Sprintf("Findings (%d)", len(fs))))
	b.WriteString("\n")
	kw := 0
	for _, f := range fs {
		kw = max(kw, lipgloss.Width(f.Kind))
	}
	for _, f := range fs {
		kind := f.Kind + strings.Repeat(" ", kw-lipgloss.Width(f.Kind))
		line := wrapWords(tx(findingWhere(f)+": "+f.Message), width, "  "+kind+"  ", "      ")
		if th != nil {
			line = strings.Replace(line, f.Kind, th.Bad(f.Kind), 1)
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
}

// wrapWords breaks s at spaces so that no line exceeds width where a word
// allows it: the first line starts with first, the others with rest.
func wrapWords(s string, width int, first, rest string) string {
	var out strings.Builder
	line := first
	empty := true
	for _, wd := range strings.Fields(s) {
		if !empty && lipgloss.Width(line)+1+lipgloss.Width(wd) > width {
			out.WriteString(line)
			out.WriteString("\n")
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line += wd
		empty = false
	}
	out.WriteString(line)
	return out.String()
}

// hasColumn reports whether some row has a value in column c.
func hasColumn(rows []cellRow, c int) bool {
	for _, r := range rows {
		if r.cells[c] != "" {
			return true
		}
	}
	return false
}

// Cells of the α column for a fit that gave no α.
const (
	alphaFailed = "fail" // esd status "failed": too few eigenvalues
)

// setAlpha fills a matrix row's α cell from its heavy-tail fit (none
// without --esd).
func (r *cellRow) setAlpha(m *MatrixReport) {
	switch e := m.ESD; {
	case e == nil && slices.Contains(m.Flags, FlagESDZero):
		r.cells[colAlpha] = termui.NoValue
	case e == nil:
	case e.Status == esd.StatusSuccess && e.Alpha != nil:
		r.cells[colAlpha] = fmtNum(Float(*e.Alpha))
	default:
		r.cells[colAlpha] = alphaFailed
	}
}

// commonShape reports the shape all rows share, if they share one.
func commonShape(rows []cellRow) (string, bool) {
	if len(rows) == 0 {
		return "", false
	}
	for _, r := range rows[1:] {
		if r.cells[colShape] != rows[0].cells[colShape] {
			return "", false
		}
	}
	return rows[0].cells[colShape], rows[0].cells[colShape] != ""
}

func layersText(n int) string {
	if n == 1 {
		return "1 layer"
	}
	return fmt.Sprintf("%d layers", n)
}

// RenderMarkdown writes the report as GitHub-flavoured Markdown for a pull
// request comment or a CI summary: the verdict as a heading, the context,
// the findings as a table, then the statistics tables (and with Heads the
// head tables) folded in a <details> block. Text from the checkpoint (the
// architecture's name) and the messages are escaped, so that they can
// neither break a table nor add markup.
func (v View) RenderMarkdown(w io.Writer) error {
	r := v.Report
	var b strings.Builder
	b.WriteString("### qkv inspect: " + mdEscape(r.Verdict()) + "\n\n")
	if v.Context != "" {
		b.WriteString(mdEscape(v.Context) + "\n\n")
	}
	if len(r.Findings) > 0 {
		fmt.Fprintf(&b, "**Findings (%d)**\n\n| kind | where | finding |\n|---|---|---|\n", len(r.Findings))
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", mdEscape(f.Kind), mdEscape(findingWhere(f)), mdEscape(f.Message))
		}
		b.WriteString("\n")
	}
	b.WriteString("<details><summary>Statistics per layer</summary>\n\n")
	ix := indexFindings(r.Findings)
	var used marksUsed
	mdTable := func(title string, rows []cellRow) {
		if len(rows) == 0 {
			return
		}
		cols := []int{colLabel, colShape, colFro, colNorm, colRank, colEff, colStable, colCond}
		if hasColumn(rows, colAlpha) {
			cols = append(cols, colAlpha)
		}
		shape, same := commonShape(rows)
		if same {
			cols = slices.Delete(cols, 1, 2)
			title += " " + shape
		}
		b.WriteString("**" + mdEscape(title) + "**\n\n|")
		for _, c := range cols {
			h := colHeaders[c]
			if c == colLabel {
				h = strings.Fields(rows[0].cells[colLabel])[0]
			}
			b.WriteString(" " + mdEscape(h) + " |")
		}
		b.WriteString("\n|")
		for _, c := range cols {
			if c == colLabel || c == colShape {
				b.WriteString("---|")
			} else {
				b.WriteString("--:|")
			}
		}
		b.WriteString("\n")
		for _, row := range rows {
			used.row(row, cols)
			b.WriteString("|")
			for _, c := range cols {
				cell := row.cells[c]
				if c == colLabel {
					cell = strings.Join(strings.Fields(cell)[1:], " ")
				}
				cell = mdEscape(cell)
				if row.marks[c] {
					cell = "**" + cell + "** ⚠"
				}
				b.WriteString(" " + cell + " |")
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	for _, p := range formats.Projections {
		var rows []cellRow
		for _, l := range r.Layers {
			if m := l.Matrix(p); m != nil {
				row := statsRow(fmt.Sprintf("layer %d", l.Index), &m.Stats)
				row.setAlpha(m)
				row.mark(ix[fkey(l.Index, string(p), -1)])
				rows = append(rows, row)
			}
		}
		mdTable(r.matrixName(p), rows)
	}
	if r.Settings.Heads {
		for _, l := range r.Layers {
			for _, p := range formats.Projections {
				m := l.Matrix(p)
				if m == nil || len(m.Heads) == 0 {
					continue
				}
				var rows []cellRow
				for _, h := range m.Heads {
					row := statsRow(fmt.Sprintf("head %d", h.Head), &h.Stats)
					row.mark(ix[fkey(l.Index, string(p), h.Head)])
					rows = append(rows, row)
				}
				mdTable(fmt.Sprintf("layer %d %s heads", l.Index, r.matrixName(p)), rows)
			}
		}
	}
	if legend := used.legend(false); legend != "" {
		b.WriteString(mdEscape(strings.Replace(legend, "!: a value", "⚠: a value", 1)) + "\n\n")
	}
	b.WriteString("</details>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEscape makes text safe inside Markdown (a table cell included): control
// and invisible characters are shown as escapes (termui.Clean), and every
// character Markdown or HTML would read as markup is backslash-escaped.
func mdEscape(s string) string {
	s = termui.Clean(s)
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
			continue
		case strings.ContainsRune("\\`*_[]<>|~", r):
			b.WriteRune('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// asciiFor are the ASCII stand-ins of the characters qkv's text uses, for a
// terminal that shows ASCII only (termui.Style.ASCII, TERM=dumb).
var asciiFor = map[rune]string{
	'—': "-", '–': "-", '─': "-", '━': "-", '│': "|", '┃': "|",
	'╭': "+", '╮': "+", '╰': "+", '╯': "+", '┬': "+", '┴': "+", '├': "+", '┤': "+", '┼': "+",
	'×': "x", '≈': "~", '‖': "|", '·': ".", '→': "->", '←': "<-", '…': "...", '≤': "<=", '≥': ">=",
	'±': "+/-", '√': "sqrt", '∞': "inf", 'ᵀ': "^T", '⚠': "!", '•': "*", '²': "^2", '₂': "2",
	'Δ': "d", 'α': "alpha", 'σ': "sigma", 'λ': "lambda", 'γ': "gamma", 'θ': "theta", 'ρ': "rho", 'ε': "eps",
	'▁': "_", '▂': ".", '▃': "-", '▄': "~", '▅': "=", '▆': "+", '▇': "*", '█': "#", '░': ".",
}

// textFor returns how text is written for st: as it is, or (on an ASCII
// terminal) through ASCII, before it is measured and wrapped, since the
// stand-ins may be wider than what they stand for.
func textFor(st termui.Style) func(string) string {
	if st.ASCII && !st.Styled {
		return ASCII
	}
	return func(s string) string { return s }
}

// superscripts are the superscript characters of exponents ("2⁻²³"); a
// lone ² is asciiFor's "^2".
var superscripts = map[rune]byte{'⁰': '0', '¹': '1', '²': '2', '³': '3', '⁴': '4', '⁵': '5', '⁶': '6', '⁷': '7', '⁸': '8', '⁹': '9', '⁻': '-'}

// ASCII rewrites text for a terminal that shows ASCII only: qkv's own
// symbols become ASCII stand-ins (— to -, × to x, ‖·‖₂ to |.|2, sparkline
// levels to _.-~=+*#, superscripts to ^-23, …), and any other character
// outside ASCII (from a name in a file) becomes a \u escape.
func ASCII(s string) string {
	var b strings.Builder
	sup := false // inside a run of superscript digits
	for _, r := range s {
		if d, ok := superscripts[r]; ok && (r != '²' || sup) {
			if !sup {
				b.WriteByte('^')
				sup = true
			}
			b.WriteByte(d)
			continue
		}
		sup = false
		switch a, ok := asciiFor[r]; {
		case r < 0x80:
			b.WriteRune(r)
		case ok:
			b.WriteString(a)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	return b.String()
}
