package inspect

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/qkvdev/qkv/formats"
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
	colSpark
	nCols
)

var colHeaders = [nCols]string{"", "shape", "fro", "‖·‖₂", "rank", "eff.rank", "stable", "cond", "spectrum"}

// dropOrder is the order in which columns go when the width is short.
var dropOrder = []int{colShape, colStable, colCond, colFro}

// cellRow is one table row: its cells and which of them a finding marks.
type cellRow struct {
	cells [nCols]string
	marks [nCols]bool
	spark []float64
}

func statsRow(label string, s *Stats) cellRow {
	var r cellRow
	r.cells = [nCols]string{label, fmtShape(s.Shape), fmtNum(s.Fro), fmtNum(s.SpectralNorm), fmtRank(s.Rank),
		fmtNum(s.EffectiveRank), fmtNum(s.StableRank), fmtCond(s.Condition), ""}
	if s.EffectiveRankBounds != nil {
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
func layout(rows []cellRow, width int) ([]int, int) {
	widths := [nCols]int{}
	for c := 0; c < nCols; c++ {
		widths[c] = lipgloss.Width(colHeaders[c])
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
		if max(spark, lipgloss.Width(colHeaders[colSpark])) > width-total()-3 || spark < minSpark {
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

var _ termui.Renderer = (*Report)(nil)

// Render writes the report as tables: one per projection (rows = layers),
// with Heads one per layer and projection (rows = heads) and a circuits
// table, then the findings. st.Styled selects the palette's colours and
// borders (the caller decides, from whether stdout is a terminal and
// NO_COLOR); otherwise the output is plain text with no escape codes.
// st.Width is the terminal width in columns (80 when ≤ 0).
func (r *Report) Render(w io.Writer, st termui.Style) error {
	width := st.Cols()
	th := termui.NewTheme(w, st)
	var b strings.Builder
	g := r.Model
	b.WriteString(th.Title(fmt.Sprintf("%s — %s, d_model %d, %d heads (%d KV) × %d, %s mode",
		orDash(g.Arch), layersText(len(r.Layers)), g.DModel, g.NHeads, g.NKVHeads, g.HeadDim, r.Settings.Mode)))
	b.WriteString("\n\n")
	ix := indexFindings(r.Findings)
	for _, p := range formats.Projections {
		t := tableSpec{title: "W_" + strings.ToUpper(string(p))}
		bound := -1 // the rank bound every layer shares, 0 when none
		for _, l := range r.Layers {
			m := l.Matrix(p)
			if m == nil {
				continue
			}
			row := statsRow(fmt.Sprintf("layer %d", l.Index), &m.Stats)
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
		writeTable(&b, t, th, width)
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
		writeTable(&b, t, th, width)
	}
	if r.Settings.Heads {
		for _, l := range r.Layers {
			for _, p := range formats.Projections {
				m := l.Matrix(p)
				if m == nil || len(m.Heads) == 0 {
					continue
				}
				t := tableSpec{title: fmt.Sprintf("layer %d W_%s heads", l.Index, strings.ToUpper(string(p)))}
				if s := m.MostSimilar; s != nil {
					t.title += fmt.Sprintf(" (most similar: %d~%d cos %s)", s.A, s.B, fmtNum(s.Cosine))
				}
				for _, h := range m.Heads {
					row := statsRow(fmt.Sprintf("head %d", h.Head), &h.Stats)
					row.mark(ix[fkey(l.Index, string(p), h.Head)])
					t.rows = append(t.rows, row)
				}
				writeTable(&b, t, th, width)
			}
			if len(l.Circuits) > 0 {
				writeCircuits(&b, l, th)
			}
		}
	}
	writeFindings(&b, r.Findings, th, width)
	_, err := io.WriteString(w, b.String())
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
func writeTable(b *strings.Builder, t tableSpec, th *termui.Theme, width int) {
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
	cols, spark := layout(t.rows, width)
	if len(cols) > 0 && cols[0] == colLabel && len(cols) > 1 && cols[1] == colShape && t.rows[0].cells[colShape] == "" {
		cols = append(cols[:1], cols[2:]...)
	}
	headers := make([]string, len(cols))
	right := make([]bool, len(cols))
	for i, c := range cols {
		headers[i] = colHeaders[c]
		right[i] = c != colLabel && c != colSpark
	}
	styled := th != nil
	rows := make([][]string, len(t.rows))
	for i, r := range t.rows {
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
	b.WriteString(th.Title(title))
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

func writeFindings(b *strings.Builder, fs []Finding, th *termui.Theme, width int) {
	if len(fs) == 0 {
		b.WriteString(th.Title("No findings."))
		b.WriteString("\n")
		return
	}
	b.WriteString(th.Title(fmt.Sprintf("Findings (%d)", len(fs))))
	b.WriteString("\n")
	for _, f := range fs {
		where := fmt.Sprintf("layer %d %s", f.Layer, f.Matrix)
		if f.Head != nil {
			where += fmt.Sprintf(" head %d", *f.Head)
		}
		line := fmt.Sprintf("  %s  %s: %s", f.Kind, where, f.Message)
		if lipgloss.Width(line) > width {
			line = wrap(line, width, "      ")
		}
		if th != nil {
			line = strings.Replace(line, f.Kind, th.Bad(f.Kind), 1)
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
}

// wrap breaks s at spaces so that no line exceeds width (where possible),
// indenting continuation lines.
func wrap(s string, width int, indent string) string {
	words := strings.Fields(s)
	var out, line strings.Builder
	line.WriteString("  ")
	first := true
	for _, wd := range words {
		if !first && lipgloss.Width(line.String())+1+lipgloss.Width(wd) > width {
			out.WriteString(line.String())
			out.WriteString("\n")
			line.Reset()
			line.WriteString(indent)
			first = true
		}
		if !first {
			line.WriteString(" ")
		}
		line.WriteString(wd)
		first = false
	}
	out.WriteString(line.String())
	return out.String()
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
