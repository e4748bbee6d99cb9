package diff

import (
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/termui"
)

// num formats a metric with prec significant digits (termui's placeholder
// when undefined).
func num(f inspect.Float, prec int) string { return termui.Sig(float64(f), prec) }

var _ termui.Renderer = (*Report)(nil)

// Verdict is the report's one-line summary: the failures when a threshold
// failed, else the projections holding NaN/Inf, else how far B is from A.
func (r *Report) Verdict() string {
	s := r.Summary
	var b strings.Builder
	switch {
	case len(r.Failures) > 0:
		n := failedProjections(r.Failures)
		fmt.Fprintf(&b, "FAIL: %s of %d failed %s", termui.Plural(int64(n), "projection"), s.Compared+s.NonFinite+s.Errors, thresholdList(r.Thresholds))
	case s.NonFinite > 0:
		verb := "hold"
		if s.NonFinite == 1 {
			verb = "holds"
		}
		fmt.Fprintf(&b, "%s of %d %s NaN or Inf (not compared)", termui.Plural(int64(s.NonFinite), "projection"), s.Compared+s.NonFinite+s.Errors, verb)
	case s.Compared > 0 && s.Identical == s.Compared && s.Errors == 0:
		return fmt.Sprintf("identical: all %d projections are equal element for element", s.Compared)
	default:
		fmt.Fprintf(&b, "%s compared", termui.Plural(int64(s.Compared), "projection"))
	}
	if s.Compared > 0 && s.Identical == s.Compared && (s.NonFinite > 0 || len(r.Failures) > 0) {
		fmt.Fprintf(&b, "; the other %d identical", s.Compared)
	}
	if s.Compared > 0 && s.Identical < s.Compared {
		fmt.Fprintf(&b, ": max rel_fro %s", num(s.MaxRelFro, 3))
		if len(s.Worst) > 0 {
			fmt.Fprintf(&b, " (layers.%d.%s)", s.Worst[0].Layer, s.Worst[0].Projection)
		}
		fmt.Fprintf(&b, ", lowest SNR %s dB", num(s.MinSNRdB, 3))
		if s.Identical > 0 {
			fmt.Fprintf(&b, ", %d identical", s.Identical)
		}
	}
	if s.Errors > 0 {
		fmt.Fprintf(&b, "; %d with different shapes", s.Errors)
	}
	return b.String()
}

// failedProjections counts the projections among the failures.
func failedProjections(fs []Failure) int {
	seen := map[string]bool{}
	for _, f := range fs {
		seen[fmt.Sprintf("%d.%s", f.Layer, f.Projection)] = true
	}
	return len(seen)
}

func thresholdList(ts []Threshold) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.String()
	}
	return strings.Join(parts, ", ")
}

// failureText is one failure as a line.
func failureText(f Failure) string {
	s := fmt.Sprintf("layers.%d.%s: %s ", f.Layer, f.Projection, f.Metric)
	if f.Reason != "" {
		return s + "undefined (" + f.Reason + ")"
	}
	op := ">"
	if f.Bound == Below {
		op = "<"
	}
	return s + fmt.Sprintf("%s %s %s", num(f.Value, 4), op, termui.Sig(f.Limit, 4))
}

// row is one projection's cells in the table: layer, projection, then the
// metrics; note is the text that replaces the metrics when there are none.
type row struct {
	layer, proj string
	cells       []string
	note        string
	tone        termui.Tone
}

// diffColumns are the metric columns of the table, in order, with the
// priority in which they are dropped on a narrow terminal (highest first).
var diffColumns = []struct {
	header string
	drop   int // 0: never
}{
	{"rel_fro", 0}, {"cosine", 1}, {"max_abs", 4}, {"SNR dB", 0}, {"Δσ₁", 3}, {"Δerank", 2}, {"erank(ΔW)", 5},
}

// notCompared are the cells of a projection that was not compared: what
// stopped it in the first column, the placeholder in the others.
func notCompared(what string) []string {
	cells := make([]string, len(diffColumns))
	for i := range cells {
		cells[i] = termui.NoValue
	}
	cells[0] = what
	return cells
}

// rows lays out the table's rows.
func (r *Report) rows() []row {
	var out []row
	for _, l := range r.Layers {
		first := true
		for _, p := range formats.Projections {
			d := l.Get(p)
			if d == nil {
				continue
			}
			rw := row{proj: string(p)}
			if first {
				rw.layer = fmt.Sprint(l.Index)
				first = false
			}
			switch {
			case d.Error != "":
				rw.note = d.Error
				rw.tone = termui.ToneBad
				rw.cells = notCompared("shape")
			case d.NonFinite:
				rw.note = d.nonFiniteText()
				rw.tone = termui.ToneBad
				rw.cells = notCompared("NaN/Inf")
			default:
				snr := num(d.SNRdB, 4)
				switch {
				case d.Identical:
					snr = "identical"
					rw.tone = termui.ToneGood
				case d.SNRdB.Valid() && d.SNRdB < 20:
					rw.tone = termui.ToneBad
				case d.SNRdB.Valid() && d.SNRdB < 40:
					rw.tone = termui.ToneWarn
				}
				rw.cells = []string{num(d.RelFro, 3), num(d.Cosine, 7), num(d.MaxAbs, 3), snr,
					signed(d.SpectralNormChange, 100, "%"), signed(d.EffectiveRankChange, 1, ""), num(d.DeltaEffectiveRank, 4)}
			}
			out = append(out, rw)
		}
	}
	return out
}

// Render writes the comparison: the verdict, the two checkpoints, the
// failures, a table per layer and projection, and what only one side has.
// Styled output adds the palette's colours: failure where the SNR is below
// 20 dB or a matrix holds NaN/Inf, warning below 40 dB, success for
// identical matrices. Columns are dropped, least important first, until the
// table fits st's width.
func (r *Report) Render(w io.Writer, st termui.Style) error {
	styled, cols := st.Styled, st.Cols()
	tx := textFor(st)
	th := termui.NewTheme(w, st)
	var b strings.Builder
	verdict := termui.Wrap(tx(r.Verdict()), cols, "  ")
	switch {
	case len(r.Failures) > 0 || r.Summary.NonFinite > 0:
		verdict = th.Bad(verdict)
	default:
		verdict = termui.Title(verdict, styled)
		verdict = strings.TrimSuffix(verdict, "\n")
	}
	b.WriteString(verdict + "\n")
	for _, side := range []struct {
		name, path string
		g          formats.Geometry
		src        formats.SourceInfo
	}{{"A", r.A, r.ModelA, r.SourceA}, {"B", r.B, r.ModelB, r.SourceB}} {
		desc := " (" + describe(side.g, side.src) + ")"
		path := termui.TruncateMiddle(tx(termui.Clean(side.path)), max(cols-3-termui.Width(desc), 16), st.ASCII)
		b.WriteString(termui.Dim(termui.Wrap(side.name+": "+path+tx(desc), cols, "   "), styled) + "\n")
	}
	if len(r.Failures) > 0 {
		b.WriteString("\n")
		mark := "✗"
		if st.ASCII {
			mark = "x"
		}
		for _, f := range r.Failures {
			b.WriteString("  " + th.Bad(mark) + " " + termui.Wrap(tx(termui.Clean(failureText(f))), cols-4, "      ") + "\n")
		}
	}
	rows := r.rows()
	if len(rows) > 0 {
		b.WriteString("\n")
	}
	headers := []string{"layer", ""}
	right := []bool{true, false}
	// Columns are left out, least important first, while the table is
	// wider than the terminal.
	var drop []int
	for prio := len(diffColumns); prio >= 1; prio-- {
		for i, c := range diffColumns {
			if c.drop == prio {
				drop = append(drop, i+2)
			}
		}
	}
	for _, c := range diffColumns {
		headers = append(headers, tx(c.header))
		right = append(right, true)
	}
	const snrCol = 5
	cells := make([]string, len(headers))
	termui.TableLayout{Headers: headers, Right: right, Styled: styled, Width: st.Cols(), ASCII: st.ASCII, Drop: drop,
		Tone: func(i, col int) termui.Tone {
			if col == snrCol || (rows[i].note != "" && col == 2) {
				return rows[i].tone
			}
			return termui.ToneNone
		}}.Write(&b, len(rows), func(i int) []string {
		rw := rows[i]
		cells[0], cells[1] = rw.layer, rw.proj
		for k, c := range rw.cells {
			cells[k+2] = tx(c)
		}
		return cells
	})
	for _, l := range r.Layers {
		for _, p := range formats.Projections {
			if d := l.Get(p); d != nil && (d.Error != "" || d.NonFinite) {
				what := d.Error
				if d.NonFinite {
					what = d.nonFiniteText() + ": not compared"
				}
				line := fmt.Sprintf("layers.%d.%s: %s", l.Index, p, what)
				b.WriteString(th.Bad(termui.Wrap(tx(termui.Clean(line)), st.Cols(), "    ")) + "\n")
			}
		}
	}
	s := r.Summary
	if len(s.Worst) > 1 {
		var parts []string
		for _, wst := range s.Worst {
			parts = append(parts, fmt.Sprintf("layers.%d.%s %s", wst.Layer, wst.Projection, num(wst.RelFro, 3)))
		}
		b.WriteString(termui.Dim(termui.Wrap("worst rel_fro: "+strings.Join(parts, ", "), cols, "    "), styled) + "\n")
	}
	if len(r.OnlyInA) > 0 {
		b.WriteString(termui.Dim(termui.Wrap(tx("only in A: "+names(r.OnlyInA)), cols, "    "), styled) + "\n")
	}
	if len(r.OnlyInB) > 0 {
		b.WriteString(termui.Dim(termui.Wrap(tx("only in B: "+names(r.OnlyInB)), cols, "    "), styled) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// names joins names from files as termui prints them.
func names(xs []string) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = termui.Name(x)
	}
	return strings.Join(out, ", ")
}

// describe names a checkpoint's format and architecture.
func describe(g formats.Geometry, src formats.SourceInfo) string {
	parts := []string{}
	if src.Format != "" {
		parts = append(parts, src.Format)
	}
	if g.Arch != "" {
		parts = append(parts, g.Arch)
	}
	parts = append(parts, termui.Plural(int64(g.NLayers), "layer"))
	return strings.Join(parts, ", ")
}

func signed(f inspect.Float, scale float64, unit string) string {
	return termui.Fixed(float64(f), scale, unit)
}

// Markdown writes the report for a pull request comment: the verdict as a
// heading, the checkpoints, the failures, and the table (every column:
// markdown is not bound to a terminal's width).
func (r *Report) Markdown(w io.Writer) error {
	var b strings.Builder
	mark := "✅"
	switch {
	case len(r.Failures) > 0:
		mark = "❌"
	case r.Summary.NonFinite > 0:
		mark = "⚠️"
	}
	fmt.Fprintf(&b, "### %s qkv diff: %s\n\n", mark, mdText(r.Verdict()))
	fmt.Fprintf(&b, "- **A**: `%s` (%s)\n- **B**: `%s` (%s)\n", mdCode(r.A), mdText(describe(r.ModelA, r.SourceA)), mdCode(r.B), mdText(describe(r.ModelB, r.SourceB)))
	if len(r.Thresholds) > 0 {
		fmt.Fprintf(&b, "- **thresholds**: %s\n", mdText(thresholdList(r.Thresholds)))
	}
	if len(r.Failures) > 0 {
		b.WriteString("\n**Failures**\n\n")
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "- %s\n", mdText(failureText(f)))
		}
	}
	rows := r.rows()
	if len(rows) > 0 {
		b.WriteString("\n| layer | projection |")
		for _, c := range diffColumns {
			b.WriteString(" " + c.header + " |")
		}
		b.WriteString("\n|---:|---|")
		for range diffColumns {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		for _, rw := range rows {
			fmt.Fprintf(&b, "| %s | %s |", rw.layer, rw.proj)
			if rw.note != "" {
				fmt.Fprintf(&b, " %s |", mdText(rw.note))
				for range diffColumns[1:] {
					b.WriteString(" |")
				}
			} else {
				for _, c := range rw.cells {
					fmt.Fprintf(&b, " %s |", mdText(c))
				}
			}
			b.WriteString("\n")
		}
	}
	if len(r.OnlyInA) > 0 {
		fmt.Fprintf(&b, "\nOnly in A: %s\n", mdList(r.OnlyInA))
	}
	if len(r.OnlyInB) > 0 {
		fmt.Fprintf(&b, "\nOnly in B: %s\n", mdList(r.OnlyInB))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdText makes text from a report safe in markdown: control characters
// shown as escapes, and the characters markdown would act on escaped —
// backslashes, backquotes, emphasis, links, HTML and table pipes; an
// underscore only where it could start or end emphasis (not inside a
// word, as in rel_fro).
func mdText(s string) string {
	rs := []rune(termui.Clean(s))
	word := func(i int) bool {
		return i >= 0 && i < len(rs) && (unicode.IsLetter(rs[i]) || unicode.IsDigit(rs[i]))
	}
	var b strings.Builder
	for i, r := range rs {
		switch {
		case strings.ContainsRune("\\`*[]<|", r):
			b.WriteByte('\\')
		case r == '_' && !(word(i-1) && word(i+1)):
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCode makes text safe inside a `code span` (no backquotes, one line).
func mdCode(s string) string {
	return strings.ReplaceAll(termui.Clean(s), "`", "'")
}

func mdList(xs []string) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = "`" + mdCode(x) + "`"
	}
	return strings.Join(out, ", ")
}

// textFor returns how the report's text is written for st: on an ASCII
// terminal (TERM=dumb, unstyled) through inspect.ASCII, with the symbols of
// the table's headers first spelled out; as it is otherwise.
func textFor(st termui.Style) func(string) string {
	if st.ASCII && !st.Styled {
		return func(s string) string { return inspect.ASCII(asciiSymbols.Replace(s)) }
	}
	return func(s string) string { return s }
}

var asciiSymbols = strings.NewReplacer("ΔW", "dW", "Δ", "d", "σ₁", "sigma1", "✗", "x")
