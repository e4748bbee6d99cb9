package attn

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/qkvdev/qkv/internal/termui"
)

// Ramp is the plain-text shade ramp, from an empty cell to the largest one.
const Ramp = " .:-=+*#%@"

// View is a layer's result as the terminal shows it: the token labels of
// its positions and the heads to draw.
type View struct {
	Result *Result
	// Labels are the token labels for positions 0..T−1, or nil (see
	// RenderOptions.Labels).
	Labels []string
	// Heads selects heads to draw; nil draws every head.
	Heads []int
}

// Render draws every selected head's pattern followed by the metrics
// table: the one renderer signature of qkv's reports. st.Styled draws the
// palette's heatmap colours; otherwise cells use the characters of Ramp.
func (v View) Render(w io.Writer, st termui.Style) error {
	return render(w, v.Result, RenderOptions{Styled: st.Styled, Width: st.Width, Labels: v.Labels, Heads: v.Heads})
}

var (
	_ termui.Renderer = View{}
	_ termui.Renderer = PredictionsView{}
)

// RenderOptions controls how RenderPattern and RenderMetrics draw.
type RenderOptions struct {
	// Styled draws coloured block characters (termui's heatmap colours);
	// otherwise cells use the characters of Ramp and no escape sequences
	// are written.
	Styled bool
	// Width is the terminal width in columns (80 when ≤ 0). When T does not
	// fit, the pattern is pooled into blocks (mean probability per block).
	Width int
	// Labels are the token labels for positions 0..T−1, or nil. They label
	// rows (up to 10 columns wide) and, written downwards, columns; a pooled
	// pattern labels its rows with the first position of each block instead.
	Labels []string
	// Heads selects heads to draw; nil draws every head.
	Heads []int
}

// render draws every selected head's pattern followed by the metrics table.
func render(w io.Writer, r *Result, o RenderOptions) error {
	if r == nil {
		return fmt.Errorf("attn: nothing to render")
	}
	heads, err := selectHeads(r, o.Heads)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "%s\n\n", describe(r)); err != nil {
		return err
	}
	for _, h := range heads {
		if err := RenderPattern(w, r, h, o); err != nil {
			return err
		}
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
	}
	return RenderMetrics(w, r, o)
}

// describe is the one-line summary of a layer's settings.
func describe(r *Result) string {
	s := r.Settings
	parts := []string{fmt.Sprintf("layer %d: T=%d, %d heads / %d kv heads × %d", r.Layer, s.T, s.NHeads, s.NKVHeads, s.HeadDim)}
	if s.Causal {
		parts = append(parts, "causal")
	} else {
		parts = append(parts, "bidirectional")
	}
	if s.SlidingWindow > 0 {
		parts = append(parts, fmt.Sprintf("sliding window %d", s.SlidingWindow))
	}
	parts = append(parts, "pre-norm "+s.PreNorm)
	if s.QKNorm != nil {
		parts = append(parts, "q/k norm "+string(s.QKNorm.Kind))
	}
	if s.MLA != nil {
		parts = append(parts, fmt.Sprintf("latent attention (kv rank %d)", s.MLA.KVLoraRank))
	}
	if s.RoPE != nil {
		r := fmt.Sprintf("RoPE %d dims θ=%g", s.RoPE.RotaryDims, s.RoPE.Theta)
		if s.RoPE.Style == "interleaved-pairs" {
			r += " interleaved"
		}
		if sc := s.RoPE.Scaling; sc != nil {
			r += fmt.Sprintf(" %s ×%g", sc.Type, sc.Factor)
		}
		parts = append(parts, r)
	}
	if s.ScaleFormula != "" && s.ScaleFormula != "1/sqrt(head_dim)" {
		parts = append(parts, fmt.Sprintf("scale %.4g", s.Scale))
	}
	if s.Softcap > 0 {
		parts = append(parts, fmt.Sprintf("softcap %g", s.Softcap))
	}
	if s.Sinks {
		parts = append(parts, "learned sinks")
	}
	if len(s.ALiBiSlopes) > 0 {
		parts = append(parts, "ALiBi")
	}
	switch s.Input.Kind {
	case "random":
		seed := "?"
		if s.Input.Seed != nil {
			seed = fmt.Sprint(*s.Input.Seed)
		}
		parts = append(parts, fmt.Sprintf("input random seed %s × %g", seed, s.Input.Scale))
	case "":
	default:
		parts = append(parts, "input "+s.Input.Kind)
	}
	return strings.Join(parts, ", ")
}

func selectHeads(r *Result, sel []int) ([]int, error) {
	if sel == nil {
		out := make([]int, len(r.Probs))
		for i := range out {
			out[i] = i
		}
		return out, nil
	}
	for _, h := range sel {
		if h < 0 || h >= len(r.Probs) {
			return nil, fmt.Errorf("attn: head %d out of range (the layer has %d heads)", h, len(r.Probs))
		}
	}
	return sel, nil
}

// cleanLabel makes a token label printable on one line and at most max runes.
func cleanLabel(s string, max int) string {
	var b []rune
	for _, c := range s {
		switch {
		case c == ' ':
			c = '␣'
		case c == '\n':
			c = '⏎'
		case c == '\t':
			c = '⇥'
		case !unicode.IsPrint(c):
			c = '·'
		}
		b = append(b, c)
	}
	if len(b) > max {
		b = append(b[:max-1], '…')
	}
	return string(b)
}

// padLeft right-aligns s in n columns, counting runes as one column each.
func padLeft(s string, n int) string {
	if k := len([]rune(s)); k < n {
		return strings.Repeat(" ", n-k) + s
	}
	return s
}

// pool averages p [T][T] into g×g blocks; bin b covers [b·T/g, (b+1)·T/g).
func pool(p [][]float32, g int) [][]float64 {
	T := len(p)
	out := make([][]float64, g)
	for bi := range out {
		out[bi] = make([]float64, g)
		r0, r1 := bi*T/g, (bi+1)*T/g
		for bj := range out[bi] {
			c0, c1 := bj*T/g, (bj+1)*T/g
			var s float64
			for i := r0; i < r1; i++ {
				for _, v := range p[i][c0:c1] {
					s += float64(v)
				}
			}
			out[bi][bj] = s / float64((r1-r0)*(c1-c0))
		}
	}
	return out
}

// RenderPattern draws head h's T×T pattern: rows are query positions, columns
// key positions, each cell shaded by its probability relative to the largest
// cell. When 2·T columns do not fit, cells are one column wide; when T does
// not fit either, the pattern is pooled and the header says so.
func RenderPattern(w io.Writer, r *Result, h int, o RenderOptions) error {
	if h < 0 || h >= len(r.Probs) {
		return fmt.Errorf("attn: head %d out of range (the layer has %d heads)", h, len(r.Probs))
	}
	p := r.Probs[h]
	T := len(p)
	width := o.Width
	if width <= 0 {
		width = 80
	}
	labels := o.Labels
	if labels != nil && len(labels) != T {
		return fmt.Errorf("attn: %d labels for %d positions", len(labels), T)
	}

	// Row labels: the token labels, or positions.
	const maxLabel = 10
	lw := len(fmt.Sprint(T - 1))
	for _, l := range labels {
		if n := len([]rune(cleanLabel(l, maxLabel))); n > lw {
			lw = n
		}
	}
	avail := width - lw - 3
	if avail < 4 {
		avail = 4
	}
	g, cellw := T, 2
	if 2*T > avail {
		cellw = 1
		if T > avail {
			g = avail
			// Prefer even blocks: the largest divisor of T in [¾·avail, avail].
			for d := avail; d*4 >= avail*3; d-- {
				if T%d == 0 {
					g = d
					break
				}
			}
		}
	}
	pooled := g < T
	var grid [][]float64
	if pooled {
		grid = pool(p, g)
	} else {
		grid = make([][]float64, T)
		for i, row := range p {
			grid[i] = make([]float64, T)
			for j, v := range row {
				grid[i][j] = float64(v)
			}
		}
	}
	var top float64
	for _, row := range grid {
		for _, v := range row {
			if v > top {
				top = v
			}
		}
	}

	var b strings.Builder
	kv := h
	if r.Settings.NKVHeads > 0 && r.Settings.NHeads >= r.Settings.NKVHeads {
		kv = h / (r.Settings.NHeads / r.Settings.NKVHeads)
	}
	title := fmt.Sprintf("layer %d head %d (kv %d)", r.Layer, h, kv)
	if h < len(r.Heads) {
		m := r.Heads[h]
		title += fmt.Sprintf("  entropy %.3f  max_prob %.3f  sink %.3f  prev %.3f  diag %.3f  max_logit %.3f",
			m.Entropy, m.MaxProb, m.SinkMass, m.PrevToken, m.Diagonal, m.MaxLogit)
		if m.LearnedSink != nil {
			title += fmt.Sprintf("  learned_sink %.3f", *m.LearnedSink)
		}
	}
	th := termui.NewTheme(w, termui.Style{Styled: o.Styled, Width: o.Width})
	b.WriteString(th.Title(title) + "\n")
	note := "rows: query positions, columns: key positions; shade relative to the largest cell"
	if pooled {
		note = fmt.Sprintf("pooled %d→%d (block means, %s positions); ", T, g, blockDesc(T, g)) + note
	}
	b.WriteString(note + "\n")
	if o.Styled {
		legend := "0 "
		for lv := 1; lv < len([]rune(Ramp)); lv++ {
			legend += th.Heat("█", lv)
		}
		b.WriteString(legend + fmt.Sprintf(" %.3g\n", top))
	} else {
		b.WriteString(fmt.Sprintf("shades %q from 0 to %.3g\n", Ramp, top))
	}

	// Column header: vertical token labels when unpooled, else key ranges.
	indent := strings.Repeat(" ", lw+2)
	if !pooled && labels != nil {
		cols := make([][]rune, T)
		depth := 0
		for j, l := range labels {
			cols[j] = []rune(cleanLabel(l, 6))
			if len(cols[j]) > depth {
				depth = len(cols[j])
			}
		}
		for k := 0; k < depth; k++ {
			b.WriteString(indent)
			for j := 0; j < T; j++ {
				c := ' '
				if k < len(cols[j]) {
					c = cols[j][k]
				}
				b.WriteRune(c)
				b.WriteString(strings.Repeat(" ", cellw-1))
			}
			b.WriteString("\n")
		}
	} else if !pooled {
		b.WriteString(indent)
		for j := 0; j < T; j++ {
			b.WriteString(fmt.Sprint(j % 10))
			b.WriteString(strings.Repeat(" ", cellw-1))
		}
		b.WriteString("\n")
	} else {
		b.WriteString(indent + fmt.Sprintf("keys 0..%d →\n", T-1))
	}

	ramp := []rune(Ramp)
	level := func(v float64) int {
		if !(v > 0) || !(top > 0) {
			if v != v {
				return -1
			}
			return 0
		}
		l := int(math.Round(v / top * float64(len(ramp)-1)))
		if l < 1 {
			l = 1 // any nonzero probability is visible
		}
		if l > len(ramp)-1 {
			l = len(ramp) - 1
		}
		return l
	}
	for bi, row := range grid {
		var lab string
		switch {
		case pooled:
			lab = fmt.Sprint(bi * T / g)
		case labels != nil:
			lab = cleanLabel(labels[bi], maxLabel)
		default:
			lab = fmt.Sprint(bi)
		}
		b.WriteString(padLeft(lab, lw) + " │")
		// Runs of equal level are styled together.
		for j := 0; j < len(row); {
			lv := level(row[j])
			k := j
			for k < len(row) && level(row[k]) == lv {
				k++
			}
			n := (k - j) * cellw
			switch {
			case lv < 0:
				b.WriteString(strings.Repeat("?", n))
			case !o.Styled:
				b.WriteString(strings.Repeat(string(ramp[lv]), n))
			case lv == 0:
				b.WriteString(strings.Repeat(" ", n))
			default:
				b.WriteString(th.Heat(strings.Repeat("█", n), lv))
			}
			j = k
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// blockDesc describes the pooling block size ("8×8", or "7–8 × 7–8" when uneven).
func blockDesc(T, g int) string {
	lo, hi := T/g, (T+g-1)/g
	if lo == hi {
		return fmt.Sprintf("%d×%d", lo, lo)
	}
	return fmt.Sprintf("%d–%d × %d–%d", lo, hi, lo, hi)
}

// RenderMetrics draws the per-head metrics table of a layer.
func RenderMetrics(w io.Writer, r *Result, o RenderOptions) error {
	heads, err := selectHeads(r, o.Heads)
	if err != nil {
		return err
	}
	cols := []string{"head", "kv", "entropy", "max_prob", "sink", "prev_tok", "diag", "max_logit"}
	widths := []int{4, 3, 8, 8, 7, 8, 7, 9}
	learned := false
	for _, m := range r.Heads {
		learned = learned || m.LearnedSink != nil
	}
	if learned {
		cols, widths = append(cols, "l_sink"), append(widths, 7)
	}
	induction := false
	for _, m := range r.Heads {
		induction = induction || m.Induction != nil
	}
	if induction {
		cols, widths = append(cols, "induction"), append(widths, 9)
	}
	var b strings.Builder
	var hdr []string
	for i, c := range cols {
		hdr = append(hdr, padLeft(c, widths[i]))
	}
	line := termui.NewTheme(w, termui.Style{Styled: o.Styled}).Title(strings.Join(hdr, "  "))
	title := fmt.Sprintf("layer %d head metrics (entropy in nats; means over query positions", r.Layer)
	if learned {
		title += "; l_sink: share of the learned sink logit, 1 − Σ_j p_ij"
	}
	if induction {
		title += "; induction: mean attention from the second copy to the token after the earlier occurrence"
	}
	b.WriteString(title + ")\n")
	b.WriteString(line + "\n")
	group := 1
	if r.Settings.NKVHeads > 0 && r.Settings.NHeads >= r.Settings.NKVHeads {
		group = r.Settings.NHeads / r.Settings.NKVHeads
	}
	for _, h := range heads {
		if h >= len(r.Heads) {
			continue
		}
		m := r.Heads[h]
		cells := []string{fmt.Sprint(m.Head), fmt.Sprint(h / group), num(m.Entropy), num(m.MaxProb),
			num(m.SinkMass), num(m.PrevToken), num(m.Diagonal), num(m.MaxLogit)}
		if learned {
			v := math.NaN()
			if m.LearnedSink != nil {
				v = *m.LearnedSink
			}
			cells = append(cells, num(v))
		}
		if induction {
			v := math.NaN()
			if m.Induction != nil {
				v = *m.Induction
			}
			cells = append(cells, num(v))
		}
		for i := range cells {
			cells[i] = padLeft(cells[i], widths[i])
		}
		b.WriteString(strings.Join(cells, "  ") + "\n")
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// num prints a metric with 4 decimals, termui's placeholder when it is not
// finite.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return termui.NoValue
	}
	return fmt.Sprintf("%.4f", v)
}

// PredictionsView is the most likely next tokens after one position as the
// terminal shows them (--logits).
type PredictionsView struct {
	// After is the piece at the position the predictions follow.
	After string
	// Predictions carry their pieces (Prediction.Piece), most likely first.
	Predictions []Prediction
}

// Render writes one line per candidate: rank, id, piece (sanitised for
// the terminal), probability and logit.
func (v PredictionsView) Render(w io.Writer, st termui.Style) error {
	var b strings.Builder
	fmt.Fprintf(&b, "next token after %s (softmax over the whole vocabulary):\n", cleanLabel(v.After, 40))
	for i, p := range v.Predictions {
		fmt.Fprintf(&b, "%3d  %7d  %-24s  p %.4f  logit %s\n", i+1, p.ID, cleanLabel(p.Piece, 24), p.Prob, strconv.FormatFloat(p.Logit, 'g', 6, 64))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
