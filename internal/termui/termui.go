// Package termui is qkv's one presentation layer, used by every command's
// renderer:
//
//   - Style (styled or plain, width) and the one renderer signature,
//     Render(w io.Writer, st Style) error;
//   - Theme, the one colour palette (titles, muted text, failures,
//     warnings, heatmaps), styled only when the caller says so;
//   - aligned tables (TableLayout, Table) — a rounded border on a
//     terminal, plain columns otherwise — whose cost is linear in their rows;
//   - number formatting (Num, Sig, Bytes, Count) with one placeholder,
//     NoValue, for numbers that are undefined or not finite;
//   - JSON: WriteJSON for every --json document, and Float / JSONValue /
//     AppendJSONFloat, the one way NaN and ±Inf become null;
//   - Progress, one line of progress on a terminal's stderr;
//   - the sanitiser (Clean, Name, Visible) for strings that came from a
//     file (tensor names, dtypes, metadata keys, model types, error
//     messages) before they reach a terminal or plain text. JSON keeps
//     strings exact: encoding/json escapes control characters itself.
package termui

import (
	"bufio"
	"io"
	"strings"
	"sync"

	"github.com/charmbracelet/lipgloss"
)

// theme is the palette of the helpers below that take a styled flag: its
// profile is fixed, so the writer does not matter.
// It is made on first use: unstyled runs never need it.
var theme = sync.OnceValue(func() *Theme { return NewTheme(io.Discard, Style{Styled: true}) })

func themeFor(styled bool) *Theme {
	if styled {
		return theme()
	}
	return nil
}

// Title renders a heading line. Control characters in s (from a file) are
// shown as escapes; line breaks are kept.
func Title(s string, styled bool) string {
	return themeFor(styled).Title(CleanLines(s)) + "\n"
}

// Dim renders secondary text, sanitised like Title.
func Dim(s string, styled bool) string {
	return themeFor(styled).Muted(CleanLines(s))
}

// Table renders rows under headers; rightAlign marks numeric columns. It is
// TableLayout.Write into a string, for tables small enough to hold.
func Table(headers []string, rows [][]string, rightAlign []bool, styled bool) string {
	var b strings.Builder
	TableLayout{Headers: headers, Right: rightAlign, Styled: styled}.Write(&b, len(rows), func(i int) []string { return rows[i] })
	return b.String()
}

// TableLayout describes a table: its headers, which columns are
// right-aligned (numbers), and whether to draw the styled border.
type TableLayout struct {
	Headers []string
	Right   []bool
	Styled  bool
	// Rule draws a line of "─" under the plain header (styled tables have
	// their border).
	Rule bool
	// Tone, when set, gives cells a colour of the palette in styled tables
	// (a failure, a warning, a success). Cells are sanitised, so colour
	// never comes in their text; plain text marks cells itself if it must
	// (inspect appends "!"). col is the column's index in Headers, whatever
	// columns were dropped.
	Tone func(row, col int) Tone

	// Width, when above 0, is the widest line allowed (Style.Cols()): the
	// columns listed in Drop are left out, least important first, while
	// the table is wider; then the cells of the columns in Shrink (long
	// names) are cut in the middle, down to MinShrink columns each.
	Width  int
	Drop   []int
	Shrink []int
	// ASCII draws with ASCII only: "-" rules, "..." for cut text.
	ASCII bool
}

// Tone is the palette's colour of a table cell.
type Tone int

const (
	ToneNone Tone = iota
	ToneBad       // a failure, a value a finding marks
	ToneWarn      // a warning
	ToneGood      // a success
	nTones
)

// Write renders n rows under the headers. Row i comes from row(i), which is
// called twice per row — once to measure the columns, once to print — so
// that memory stays at one row whatever n is (the slice it returns may be
// reused between calls). Cells are sanitised with Clean. A row with more
// cells than headers has the extra ones dropped; one with fewer leaves the
// rest empty. Time is linear in the rows and their text.
func (t TableLayout) Write(w io.Writer, n int, row func(i int) []string) error {
	widths := make([]int, len(t.Headers))
	for i, h := range t.Headers {
		widths[i] = Width(Clean(h))
	}
	for r := 0; r < n; r++ {
		for i, c := range row(r) {
			if i < len(widths) {
				widths[i] = max(widths[i], Width(Clean(c)))
			}
		}
	}
	headers, right, cols, cut := t.Headers, t.Right, []int(nil), []bool(nil)
	if t.Width > 0 {
		widths, cols, cut = t.fit(widths)
		headers = pick(t.Headers, cols, nil)
		right = make([]bool, len(cols))
		for k, i := range cols {
			right[k] = i < len(t.Right) && t.Right[i]
		}
		inner, buf := row, []string(nil)
		row = func(r int) []string {
			buf = pick(inner(r), cols, buf)
			for k := range buf {
				if cut[k] {
					buf[k] = TruncateMiddle(Clean(buf[k]), widths[k], t.ASCII)
				}
			}
			return buf
		}
		for k := range headers {
			if cut[k] {
				headers[k] = TruncateMiddle(Clean(headers[k]), widths[k], t.ASCII)
			}
		}
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	lw := lineWriter{w: bw, widths: widths, right: right}
	if t.Styled {
		lw.styled = true
		th := theme()
		lw.bar = th.muted.Render("│")
		lw.hpre, lw.hpost = styleAround(th.header)
		lw.tpre[ToneBad], lw.tpost[ToneBad] = styleAround(th.bad)
		lw.tpre[ToneWarn], lw.tpost[ToneWarn] = styleAround(th.warn)
		lw.tpre[ToneGood], lw.tpost[ToneGood] = styleAround(th.good)
		lw.rule(bw, "╭", "┬", "╮")
		lw.line(headers, true, nil)
		lw.rule(bw, "├", "┼", "┤")
	} else {
		lw.line(headers, true, nil)
		if t.Rule {
			ch := "─"
			if t.ASCII {
				ch = "-"
			}
			rule := make([]string, len(widths))
			for i, wd := range widths {
				rule[i] = strings.Repeat(ch, wd)
			}
			lw.line(rule, false, nil)
		}
	}
	for r := 0; r < n; r++ {
		var tone func(int) Tone
		if t.Styled && t.Tone != nil {
			tone = func(col int) Tone {
				if cols != nil {
					col = cols[col]
				}
				return t.Tone(r, col)
			}
		}
		lw.line(row(r), false, tone)
	}
	if t.Styled {
		lw.rule(bw, "╰", "┴", "╯")
	}
	return bw.Flush()
}

// fit chooses the columns kept within t.Width and the widths of the shrunk
// ones: it returns the kept columns' widths, their indexes in Headers, and
// which of them are cut.
func (t TableLayout) fit(widths []int) (kept []int, cols []int, cut []bool) {
	gap, edge := 2, 0
	if t.Styled {
		gap, edge = 3, 4 // "│ " … " │ " … " │"
	}
	keep, total := FitColumns(widths, gap, edge, t.Width, t.Drop)
	over := total - t.Width
	shrink := map[int]int{}
	for _, i := range t.Shrink {
		if over <= 0 {
			break
		}
		if i < 0 || i >= len(widths) || !keep[i] {
			continue
		}
		by := min(over, widths[i]-MinShrink)
		if by > 0 {
			shrink[i] = widths[i] - by
			over -= by
		}
	}
	for i, w := range widths {
		if !keep[i] {
			continue
		}
		cols = append(cols, i)
		nw, ok := shrink[i]
		if !ok {
			nw = w
		}
		kept = append(kept, nw)
		cut = append(cut, ok)
	}
	return kept, cols, cut
}

// pick returns the cells of row at cols (missing cells empty), reusing buf.
func pick(row []string, cols []int, buf []string) []string {
	buf = buf[:0]
	for _, i := range cols {
		c := ""
		if i < len(row) {
			c = row[i]
		}
		buf = append(buf, c)
	}
	return buf
}

// styleAround returns the escape sequences a style puts before and after
// its text, so that many cells are styled without rendering each one.
func styleAround(s lipgloss.Style) (string, string) {
	r := s.Render("X")
	i := strings.Index(r, "X")
	if i < 0 {
		return "", ""
	}
	return r[:i], r[i+1:]
}

type lineWriter struct {
	w           *bufio.Writer
	widths      []int
	right       []bool
	styled      bool
	bar         string         // styled vertical border
	hpre, hpost string         // header style around header text
	tpre, tpost [nTones]string // each tone's style around a cell's text
	buf         []byte
}

func (l *lineWriter) rule(w *bufio.Writer, left, mid, right string) {
	var b strings.Builder
	b.WriteString(left)
	for i, wd := range l.widths {
		if i > 0 {
			b.WriteString(mid)
		}
		b.WriteString(strings.Repeat("─", wd+2))
	}
	b.WriteString(right)
	w.WriteString(theme().muted.Render(b.String()))
	w.WriteByte('\n')
}

func spaces(b []byte, n int) []byte {
	for ; n > 0; n-- {
		b = append(b, ' ')
	}
	return b
}

// line writes one row. Plain rows separate columns by two spaces and end
// without trailing spaces; styled rows pad every cell to its column and
// colour cells by tone (nil: none).
func (l *lineWriter) line(cells []string, header bool, tone func(col int) Tone) {
	b := l.buf[:0]
	last := len(l.widths) - 1
	if !l.styled {
		last = min(len(cells), len(l.widths)) - 1
	}
	if l.styled {
		b = append(b, l.bar...)
	}
	for i := range l.widths {
		if !l.styled && i > last {
			break
		}
		c := ""
		if i < len(cells) {
			c = Clean(cells[i])
		}
		pad := l.widths[i] - Width(c)
		right := i < len(l.right) && l.right[i]
		tn := ToneNone
		if tone != nil {
			if tn = tone(i); tn < 0 || tn >= nTones {
				tn = ToneNone
			}
		}
		if l.styled {
			b = append(b, ' ')
			if header {
				b = append(b, l.hpre...)
			}
			b = append(b, l.tpre[tn]...)
		} else if i > 0 {
			b = append(b, "  "...)
		}
		switch {
		case right:
			b = spaces(b, pad)
			b = append(b, c...)
		case !l.styled && i == last:
			b = append(b, c...)
		default:
			b = append(b, c...)
			b = spaces(b, pad)
		}
		if l.styled {
			if header {
				b = append(b, l.hpost...)
			}
			b = append(b, l.tpost[tn]...)
			b = append(b, ' ')
			b = append(b, l.bar...)
		}
	}
	if !l.styled {
		// An empty last column would leave the separator dangling.
		for len(b) > 0 && b[len(b)-1] == ' ' {
			b = b[:len(b)-1]
		}
	}
	b = append(b, '\n')
	l.w.Write(b)
	l.buf = b
}
