package attn

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/qkvdev/qkv/internal/termui"
)

// The terminal view of a run: an opening line (RunView: the model, the
// layers, the input and, once known, the most notable heads), then per
// layer a section (View: its own notable heads, its settings, every
// selected head's heatmap — side by side as many as the width holds — and
// the metrics table), a closing line for runs of several layers
// (NotableView) and the next-token predictions (PredictionsView). Every
// line is built for the terminal's width (80 at least) and none is longer.

// Ramp is the plain-text shade ramp, from an empty cell to the largest one.
const Ramp = " .:-=+*#%@"

// MinWidth is the narrowest layout: a narrower terminal gets the 80-column
// one.
const MinWidth = 80

// blockGap separates heatmaps placed side by side.
const blockGap = 3

// maxRowLabel and maxColLabel bound the token labels of a heatmap's rows and
// (written downwards) columns, in columns.
const (
	maxRowLabel = 10
	maxColLabel = 6
)

// layout is how a view writes: width, colour, character set.
type layout struct {
	width  int
	styled bool
	ascii  bool
	th     *termui.Theme
	glyphs termui.Glyphs
}

func newLayout(w io.Writer, st termui.Style) layout {
	l := layout{width: max(st.Cols(), MinWidth), styled: st.Styled, ascii: st.ASCII, glyphs: st.Glyphs()}
	l.th = termui.NewTheme(w, termui.Style{Styled: l.styled, Width: l.width})
	return l
}

// sep is the separator of a line's parts.
func (l layout) sep() string {
	if l.ascii {
		return " - "
	}
	return " · "
}

// text makes s safe for the layout: sanitised, and ASCII only in ASCII mode.
func (l layout) text(s string) string {
	s = termui.Clean(s)
	if !l.ascii {
		return s
	}
	return asciiOnly(s)
}

// asciiOnly replaces the non-ASCII characters of s: the view's own
// symbols by their ASCII forms, anything else by '?'.
func asciiOnly(s string) string {
	if isASCII(s) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80:
			b.WriteRune(r)
		case r == 'θ':
			b.WriteString("theta")
		case r == '×':
			b.WriteByte('x')
		case r == '→':
			b.WriteString("->")
		case r == '—', r == '−', r == '–':
			b.WriteByte('-')
		case r == '…':
			b.WriteString("...")
		case r == '·':
			b.WriteByte('.')
		case r == 'Σ':
			b.WriteString("sum")
		case r == '≤':
			b.WriteString("<=")
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// width is the number of columns s takes (escape sequences excluded).
func width(s string) int { return termui.Width(s) }

// wrap joins parts with sep into lines of at most w columns, breaking
// between parts; a part longer than a line is broken between its words
// (and a word longer than a line anywhere). The first line starts with
// lead (styled or not, counted by its width); the next ones are indented
// by indent spaces. Lines carry no trailing spaces.
func wrap(lead string, parts []string, sep string, w, indent int) []string {
	var lines []string
	cur, curW, n := lead, width(lead), 0
	newLine := func() {
		lines = append(lines, strings.TrimRight(cur, " "))
		cur, curW, n = strings.Repeat(" ", indent), indent, 0
	}
	// put adds s after the separator join (none at a line's start).
	put := func(s, join string) {
		sw := width(s)
		if n > 0 && curW+width(join)+sw <= w {
			cur, curW, n = cur+join+s, curW+width(join)+sw, n+1
			return
		}
		if n == 0 && curW+sw <= w {
			cur, curW, n = cur+s, curW+sw, n+1
			return
		}
		if n > 0 || curW > indent {
			newLine()
		}
		for curW+width(s) > w {
			r := []rune(s)
			k := min(max(1, w-curW), len(r))
			cur += string(r[:k])
			newLine()
			s = string(r[k:])
		}
		cur, curW, n = cur+s, curW+width(s), n+1
	}
	for _, p := range parts {
		if width(p) <= w-indent {
			put(p, sep)
			continue
		}
		for i, word := range strings.Fields(p) {
			join := " "
			if i == 0 {
				join = sep
			}
			put(word, join)
		}
	}
	if n > 0 || len(lines) == 0 || curW > indent {
		lines = append(lines, strings.TrimRight(cur, " "))
	}
	return lines
}

// writeLines writes lines, each followed by a newline.
func writeLines(b *strings.Builder, lines []string) {
	for _, s := range lines {
		b.WriteString(s)
		b.WriteByte('\n')
	}
}

// label returns a token's text as a heatmap labels it: spaces, line breaks
// and tabs as visible symbols, anything unsafe escaped, at most n columns
// (cut in the middle).
func label(s string, n int, ascii bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == ' ':
			if ascii {
				b.WriteByte('_')
			} else {
				b.WriteRune('␣')
			}
		case r == '\n':
			if ascii {
				b.WriteString(`\n`)
			} else {
				b.WriteRune('⏎')
			}
		case r == '\t':
			if ascii {
				b.WriteString(`\t`)
			} else {
				b.WriteRune('⇥')
			}
		default:
			b.WriteString(termui.Clean(string(r)))
		}
		i += size
	}
	out := b.String()
	if ascii {
		out = asciiOnly(out)
	}
	return termui.TruncateMiddle(out, n, ascii)
}

// ---- the opening line and notable heads ----

// RunInfo is what the opening line says about a run. It names the
// architecture, not the path, so that a model read locally or from the Hub
// gives the same report (as inspect's does).
type RunInfo struct {
	Arch string
	// Layers is the model's layer count; Shown the layers rerun.
	Layers int
	Shown  []int
	Heads  int
	T      int
	// Input is the input's kind ("tokens", "random", "user") and Mode the
	// input mode (InputModeForward or InputModeRaw).
	Input string
	Mode  string
}

// Notable is the head that stands out most in one respect.
type Notable struct {
	// Kind is "sink", "previous-token", "induction" or "learned sink".
	Kind        string
	Layer, Head int
	Value       float64
}

// Notables keeps, as layers come, the head of each kind with the largest
// value: memory is one record per kind whatever the depth.
type Notables struct {
	best map[string]*Notable
}

// notableKinds are the kinds in the order the report lists them, each
// with the metric it ranks by (nil when the head has none).
var notableKinds = []struct {
	kind   string
	metric func(HeadMetrics) (float64, bool)
}{
	{"sink", func(m HeadMetrics) (float64, bool) { return m.SinkMass, true }},
	{"previous-token", func(m HeadMetrics) (float64, bool) { return m.PrevToken, true }},
	{"induction", func(m HeadMetrics) (float64, bool) {
		if m.Induction == nil {
			return 0, false
		}
		return *m.Induction, true
	}},
	{"learned sink", func(m HeadMetrics) (float64, bool) {
		if m.LearnedSink == nil {
			return 0, false
		}
		return *m.LearnedSink, true
	}},
}

// Add takes a layer's heads into account (heads nil: all of them).
func (n *Notables) Add(r *Result, heads []int) {
	if n.best == nil {
		n.best = map[string]*Notable{}
	}
	if heads == nil {
		for h := range r.Heads {
			heads = append(heads, h)
		}
	}
	for _, k := range notableKinds {
		for _, h := range heads {
			if h < 0 || h >= len(r.Heads) {
				continue
			}
			v, ok := k.metric(r.Heads[h])
			if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			cur := n.best[k.kind]
			if cur == nil {
				n.best[k.kind] = &Notable{Kind: k.kind, Layer: r.Layer, Head: h, Value: v}
			} else if v > cur.Value {
				*cur = Notable{Kind: k.kind, Layer: r.Layer, Head: h, Value: v}
			}
		}
	}
}

// List returns the notable heads, one per kind, in the report's order.
func (n *Notables) List() []Notable {
	var out []Notable
	for _, k := range notableKinds {
		if b := n.best[k.kind]; b != nil {
			out = append(out, *b)
		}
	}
	return out
}

// notableParts describes the notable heads ("sink L4 h1 0.561"); withLayer
// names the layer.
func notableParts(list []Notable, withLayer bool) []string {
	var parts []string
	for _, nb := range list {
		where := fmt.Sprintf("h%d", nb.Head)
		if withLayer {
			where = fmt.Sprintf("L%d h%d", nb.Layer, nb.Head)
		}
		parts = append(parts, fmt.Sprintf("%s %s %.3f", nb.Kind, where, nb.Value))
	}
	return parts
}

// RunView is the report's opening line: the model, its layers and which
// are shown, the input, and the most notable heads when they are known
// before the layers are written (Notable nil: the report closes with them).
type RunView struct {
	Run     RunInfo
	Notable []Notable
	// Later says the notable heads come at the end (a run of several
	// layers writes each as it is computed).
	Later bool
	// Next, when set, are the most likely next tokens (--logits) and
	// NextTexts their texts: the opening line names the first.
	Next      []Prediction
	NextTexts []string
}

// Render writes the opening line, wrapped to the width.
func (v RunView) Render(w io.Writer, st termui.Style) error {
	l := newLayout(w, st)
	r := v.Run
	lead := l.th.Title(l.text(termui.TruncateMiddle(r.Arch, 40, l.ascii)))
	var parts []string
	switch {
	case len(r.Shown) == 1:
		parts = append(parts, fmt.Sprintf("layer %d of %d", r.Shown[0], r.Layers))
	case len(r.Shown) == r.Layers:
		parts = append(parts, fmt.Sprintf("all %d layers", r.Layers))
	default:
		parts = append(parts, fmt.Sprintf("%d of %d layers", len(r.Shown), r.Layers))
	}
	parts = append(parts, fmt.Sprintf("%d heads", r.Heads), fmt.Sprintf("T=%d %s", r.T, inputWord(r.Input, r.T)))
	if r.Mode == InputModeForward {
		parts = append(parts, "forward pass (each layer reads the residual stream)")
	} else {
		parts = append(parts, "raw (each layer reads the same input)")
	}
	switch {
	case len(v.Notable) > 0:
		parts = append(parts, "strongest: "+strings.Join(notableParts(v.Notable, len(r.Shown) > 1), ", "))
	case v.Later:
		parts = append(parts, "notable heads after the last layer")
	}
	for i := range parts {
		parts[i] = l.text(parts[i])
	}
	if len(v.Next) > 0 {
		text := v.Next[0].Piece
		if len(v.NextTexts) > 0 {
			text = v.NextTexts[0]
		}
		parts = append(parts, "next token "+label(text, 24, l.ascii)+" "+l.text(fmt.Sprintf("p %.3g", v.Next[0].Prob)))
	}
	var b strings.Builder
	writeLines(&b, wrap(lead+": ", parts, l.sep(), l.width, 2))
	_, err := io.WriteString(w, b.String())
	return err
}

func inputWord(kind string, T int) string {
	switch kind {
	case "tokens":
		if T == 1 {
			return "token"
		}
		return "tokens"
	case "random":
		return "random rows"
	case "user":
		return "rows of the input file"
	}
	return "positions"
}

// NotableView closes a report of several layers with its most notable
// heads.
type NotableView struct {
	Notable []Notable
}

// Render writes the closing line, wrapped to the width.
func (v NotableView) Render(w io.Writer, st termui.Style) error {
	l := newLayout(w, st)
	parts := notableParts(v.Notable, true)
	if len(parts) == 0 {
		parts = []string{"none (every metric undefined)"}
	}
	var b strings.Builder
	writeLines(&b, wrap(l.th.Title("strongest heads")+": ", parts, l.sep(), l.width, 2))
	_, err := io.WriteString(w, b.String())
	return err
}

// ---- one layer ----

// View is a layer's result as the terminal shows it: the token labels of
// its positions and the heads to draw.
type View struct {
	Result *Result
	// Labels are the token texts for positions 0..T−1 (sanitised here), or
	// nil: positions label the heatmaps.
	Labels []string
	// Heads selects heads to draw; nil draws every head.
	Heads []int
	// Notable opens the section with the layer's most notable heads (in a
	// report of several layers; one layer's are in the opening line).
	Notable bool
}

var (
	_ termui.Renderer = View{}
	_ termui.Renderer = RunView{}
	_ termui.Renderer = NotableView{}
	_ termui.Renderer = PredictionsView{}
)

// Render draws the layer's section: a line with its most notable heads,
// its settings, every selected head's heatmap (side by side as many as the
// width holds) and the metrics table. st.Styled draws the palette's
// heatmap colours; otherwise cells use the characters of Ramp.
func (v View) Render(w io.Writer, st termui.Style) error {
	r := v.Result
	if r == nil {
		return fmt.Errorf("attn: nothing to render")
	}
	heads, err := selectHeads(r, v.Heads)
	if err != nil {
		return err
	}
	if v.Labels != nil && len(r.Probs) > 0 && len(v.Labels) != len(r.Probs[0]) {
		return fmt.Errorf("attn: %d labels for %d positions", len(v.Labels), len(r.Probs[0]))
	}
	l := newLayout(w, st)
	var b strings.Builder
	var nb Notables
	nb.Add(r, heads)
	lead := l.th.Title(fmt.Sprintf("layer %d", r.Layer))
	if parts := notableParts(nb.List(), false); v.Notable && len(parts) > 0 {
		writeLines(&b, wrap(lead+": strongest ", parts, l.sep(), l.width, 2))
		lead = ""
	}
	desc := describe(r)
	for i := range desc {
		desc[i] = l.text(desc[i])
	}
	if lead != "" {
		lead += ": "
	}
	writeLines(&b, wrap(lead, desc, ", ", l.width, 2))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	b.Reset()
	if err := l.heatmaps(w, r, heads, v.Labels); err != nil {
		return err
	}
	return l.metrics(w, r, heads)
}

// describe lists a layer's settings.
func describe(r *Result) []string {
	s := r.Settings
	parts := []string{fmt.Sprintf("T=%d", s.T), fmt.Sprintf("%d heads / %d kv heads × %d", s.NHeads, s.NKVHeads, s.HeadDim)}
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
	return parts
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

// grid is how a layer's heatmaps are drawn: g×g cells (g < T: pooled) of
// cellw columns, rows labelled in lw columns.
type grid struct {
	T, g, cellw, lw int
	rowLabels       []string // g labels
	colLabels       [][]rune // T columns of downward labels, or nil
}

// blockWidth is one heatmap's width: the row labels, " │", the cells.
func (gr grid) blockWidth() int { return gr.lw + 2 + gr.g*gr.cellw }

// perRow is how many heatmaps of width bw fit side by side in w columns.
func perRow(bw, w int) int { return max(1, (w+blockGap)/(bw+blockGap)) }

// planGrid chooses the cells for T positions at the layout's width: two
// columns a cell when the pattern fits so, one when only that fits (or
// when one column a cell places two heatmaps side by side where two would
// not), pooled into blocks otherwise.
func (l layout) planGrid(T int, labels []string, titleW int) grid {
	gr := grid{T: T, g: T, cellw: 2, lw: len(strconv.Itoa(T - 1))}
	if labels != nil {
		for _, s := range labels {
			gr.lw = max(gr.lw, width(label(s, maxRowLabel, l.ascii)))
		}
	}
	avail := l.width - gr.lw - 2
	switch {
	case 2*T <= avail:
		if perRow(max(titleW, gr.blockWidth()), l.width) < 2 && T <= avail {
			one := gr
			one.cellw = 1
			if perRow(max(titleW, one.blockWidth()), l.width) >= 2 {
				gr = one
			}
		}
	case T <= avail:
		gr.cellw = 1
	default:
		gr.cellw = 1
		gr.g = avail
		// Prefer even blocks: the largest divisor of T in [¾·avail, avail].
		for d := avail; d*4 >= avail*3; d-- {
			if T%d == 0 {
				gr.g = d
				break
			}
		}
		// Pooled rows are labelled with their first position.
		gr.lw = len(strconv.Itoa(T - 1))
	}
	gr.rowLabels = make([]string, gr.g)
	for i := range gr.rowLabels {
		switch {
		case gr.g < T:
			gr.rowLabels[i] = strconv.Itoa(i * T / gr.g)
		case labels != nil:
			gr.rowLabels[i] = label(labels[i], maxRowLabel, l.ascii)
		default:
			gr.rowLabels[i] = strconv.Itoa(i)
		}
	}
	if gr.g == T && labels != nil {
		gr.colLabels = make([][]rune, T)
		for j, s := range labels {
			col := []rune(label(s, maxColLabel, l.ascii))
			for k, c := range col {
				if width(string(c)) != 1 {
					col[k] = '?' // a wide character would shift the columns
				}
			}
			gr.colLabels[j] = col
		}
	}
	return gr
}

// heatmaps draws the selected heads' patterns, side by side as many as fit.
func (l layout) heatmaps(w io.Writer, r *Result, heads []int, labels []string) error {
	if len(heads) == 0 || len(r.Probs) == 0 {
		return nil
	}
	T := len(r.Probs[0])
	titleW := 0
	titles := make([]string, len(heads))
	for k, h := range heads {
		titles[k] = fmt.Sprintf("head %d (kv %d)", h, kvOf(r, h))
		titleW = max(titleW, width(titles[k])+len(" max 0.00"))
	}
	gr := l.planGrid(T, labels, titleW)
	var b strings.Builder
	ramp := []rune(Ramp)
	shades := fmt.Sprintf("%q", Ramp)
	if l.styled && !l.ascii {
		shades = ""
		for lv := 1; lv < len(ramp); lv++ {
			shades += l.th.Heat("█", lv)
		}
	}
	note := []string{"rows: queries", "columns: keys", "shades " + shades + " from 0 to each head's max"}
	if gr.g < T {
		note = append(note, l.text(fmt.Sprintf("pooled %d→%d: block means of %s positions", T, gr.g, blockDesc(T, gr.g))))
	}
	writeLines(&b, wrap("", note, "; ", l.width, 2))
	b.WriteByte('\n')
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	blocks := make([][]string, len(heads))
	bw := 0
	for k, h := range heads {
		cells := cellsOf(r.Probs[h], gr)
		blocks[k] = l.heatmap(titles[k], cells, gr)
		for _, s := range blocks[k] {
			bw = max(bw, width(s))
		}
	}
	n := perRow(bw, l.width)
	for i := 0; i < len(blocks); i += n {
		b.Reset()
		row := blocks[i:min(len(blocks), i+n)]
		lines := 0
		for _, bl := range row {
			lines = max(lines, len(bl))
		}
		for k := 0; k < lines; k++ {
			var line strings.Builder
			for j, bl := range row {
				s := ""
				if k < len(bl) {
					s = bl[k]
				}
				line.WriteString(s)
				if j < len(row)-1 {
					line.WriteString(strings.Repeat(" ", bw-width(s)+blockGap))
				}
			}
			b.WriteString(strings.TrimRight(line.String(), " "))
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// kvOf is the KV head query head h reads.
func kvOf(r *Result, h int) int {
	if h < len(r.Settings.KVHeadForHead) {
		return r.Settings.KVHeadForHead[h]
	}
	if s := r.Settings; s.NKVHeads > 0 && s.NHeads >= s.NKVHeads && s.NHeads%s.NKVHeads == 0 {
		return h / (s.NHeads / s.NKVHeads)
	}
	return h
}

// cellsOf is one head's pattern at the grid's resolution.
func cellsOf(p [][]float32, gr grid) [][]float64 {
	if gr.g < gr.T {
		return pool(p, gr.g)
	}
	out := make([][]float64, len(p))
	for i, row := range p {
		out[i] = make([]float64, len(row))
		for j, v := range row {
			out[i][j] = float64(v)
		}
	}
	return out
}

// heatmap draws one head's cells as lines (not padded): its title with the
// largest cell, the column header, then a row per query (block).
func (l layout) heatmap(title string, cells [][]float64, gr grid) []string {
	var top float64
	for _, row := range cells {
		for _, v := range row {
			if v > top {
				top = v
			}
		}
	}
	lines := []string{l.th.Title(title) + " max " + strconv.FormatFloat(top, 'g', 2, 64)}
	indent := strings.Repeat(" ", gr.lw+2)
	switch {
	case gr.colLabels != nil:
		depth := 0
		for _, c := range gr.colLabels {
			depth = max(depth, len(c))
		}
		for k := 0; k < depth; k++ {
			var s strings.Builder
			s.WriteString(indent)
			for _, c := range gr.colLabels {
				ch := ' '
				if k < len(c) {
					ch = c[k]
				}
				s.WriteRune(ch)
				s.WriteString(strings.Repeat(" ", gr.cellw-1))
			}
			lines = append(lines, strings.TrimRight(s.String(), " "))
		}
	case gr.g == gr.T:
		var s strings.Builder
		s.WriteString(indent)
		for j := 0; j < gr.T; j++ {
			s.WriteString(strconv.Itoa(j % 10))
			s.WriteString(strings.Repeat(" ", gr.cellw-1))
		}
		lines = append(lines, strings.TrimRight(s.String(), " "))
	default:
		lines = append(lines, indent+l.text(fmt.Sprintf("keys 0..%d →", gr.T-1)))
	}
	bar := "│"
	if l.ascii {
		bar = "|"
	}
	ramp := []rune(Ramp)
	level := func(v float64) int {
		if v != v {
			return -1
		}
		if !(v > 0) || !(top > 0) {
			return 0
		}
		lv := int(math.Round(v / top * float64(len(ramp)-1)))
		return min(max(lv, 1), len(ramp)-1) // any nonzero probability is visible
	}
	for bi, row := range cells {
		var s strings.Builder
		s.WriteString(strings.Repeat(" ", gr.lw-width(gr.rowLabels[bi])) + gr.rowLabels[bi] + " " + l.th.Muted(bar))
		// Runs of equal level are styled together.
		for j := 0; j < len(row); {
			lv := level(row[j])
			k := j
			for k < len(row) && level(row[k]) == lv {
				k++
			}
			n := (k - j) * gr.cellw
			switch {
			case lv < 0:
				s.WriteString(strings.Repeat("?", n))
			case lv == 0:
				s.WriteString(strings.Repeat(" ", n))
			case l.styled && !l.ascii:
				s.WriteString(l.th.Heat(strings.Repeat("█", n), lv))
			default:
				s.WriteString(l.th.Heat(strings.Repeat(string(ramp[lv]), n), lv))
			}
			j = k
		}
		lines = append(lines, strings.TrimRight(s.String(), " "))
	}
	return lines
}

// blockDesc describes the pooling block size ("8×8", or "7–8 × 7–8" when uneven).
func blockDesc(T, g int) string {
	lo, hi := T/g, (T+g-1)/g
	if lo == hi {
		return fmt.Sprintf("%d×%d", lo, lo)
	}
	return fmt.Sprintf("%d–%d × %d–%d", lo, hi, lo, hi)
}

// metricColumn is one column of the metrics table; drop ranks the columns
// a narrow table leaves out first (0: always kept).
type metricColumn struct {
	name  string
	drop  int
	value func(h int, m HeadMetrics) string
}

// metrics draws the per-head metrics table, leaving out the least
// important columns when it does not fit the width.
func (l layout) metrics(w io.Writer, r *Result, heads []int) error {
	num := l.num
	opt := func(p *float64) string {
		if p == nil {
			return num(math.NaN())
		}
		return num(*p)
	}
	cols := []metricColumn{
		{"head", 0, func(h int, m HeadMetrics) string { return strconv.Itoa(h) }},
		{"kv", 3, func(h int, m HeadMetrics) string { return strconv.Itoa(kvOf(r, h)) }},
		{"entropy", 5, func(h int, m HeadMetrics) string { return num(m.Entropy) }},
		{"max_prob", 2, func(h int, m HeadMetrics) string { return num(m.MaxProb) }},
		{"sink", 0, func(h int, m HeadMetrics) string { return num(m.SinkMass) }},
		{"prev_tok", 0, func(h int, m HeadMetrics) string { return num(m.PrevToken) }},
		{"diag", 1, func(h int, m HeadMetrics) string { return num(m.Diagonal) }},
		{"max_logit", 4, func(h int, m HeadMetrics) string { return num(m.MaxLogit) }},
	}
	var learned, induction bool
	for _, m := range r.Heads {
		learned = learned || m.LearnedSink != nil
		induction = induction || m.Induction != nil
	}
	if learned {
		cols = append(cols, metricColumn{"l_sink", 0, func(h int, m HeadMetrics) string { return opt(m.LearnedSink) }})
	}
	if induction {
		cols = append(cols, metricColumn{"induction", 0, func(h int, m HeadMetrics) string { return opt(m.Induction) }})
	}
	rows := make([][]string, 0, len(heads))
	for _, h := range heads {
		if h >= len(r.Heads) {
			continue
		}
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = l.text(c.value(h, r.Heads[h]))
		}
		rows = append(rows, row)
	}
	// Leave out columns, least important first, until the table fits.
	headers, right, widths := make([]string, len(cols)), make([]bool, len(cols)), make([]int, len(cols))
	var drop []int
	for rank := 1; rank <= len(cols); rank++ {
		for i, c := range cols {
			if c.drop == rank {
				drop = append(drop, i)
			}
		}
	}
	for i, c := range cols {
		headers[i], right[i], widths[i] = c.name, true, width(c.name)
		for _, row := range rows {
			widths[i] = max(widths[i], width(row[i]))
		}
	}
	gap, edge := 2, 0
	if l.styled {
		gap, edge = 3, 4
	}
	keep, _ := termui.FitColumns(widths, gap, edge, l.width, drop)
	var dropped []string
	for _, i := range drop {
		if !keep[i] {
			dropped = append(dropped, cols[i].name)
		}
	}
	title := fmt.Sprintf("layer %d head metrics (entropy in nats; means over query positions", r.Layer)
	if learned {
		title += "; l_sink: share of the learned sink logit, 1 − Σ_j p_ij"
	}
	if induction {
		title += "; induction: mean attention from the second copy to the token after the earlier occurrence"
	}
	if len(dropped) > 0 {
		title += "; left out for the width: " + strings.Join(dropped, ", ") + " (in --json)"
	}
	title += ")"
	var b strings.Builder
	writeLines(&b, wrap("", strings.Fields(l.text(title)), " ", l.width, 0))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	return termui.TableLayout{Headers: headers, Right: right, Styled: l.styled, Width: l.width, Drop: drop, ASCII: l.ascii}.Write(w, len(rows),
		func(i int) []string { return rows[i] })
}

// num prints a metric with 4 decimals, termui's placeholder when it is not
// finite.
func (l layout) num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return l.glyphs.NoValue
	}
	return fmt.Sprintf("%.4f", v)
}

// sig formats v with prec significant digits, the placeholder when it is
// not finite.
func (l layout) sig(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return l.glyphs.NoValue
	}
	return strconv.FormatFloat(v, 'g', prec, 64)
}

// ---- predictions ----

// PredictionsView is the most likely next tokens after one position as the
// terminal shows them (--logits).
type PredictionsView struct {
	// After is the text of the token the predictions follow.
	After string
	// Predictions, most likely first; Texts their tokens' texts (nil: the
	// predictions' pieces).
	Predictions []Prediction
	Texts       []string
}

// Render writes a title line and a table: rank, id, token, probability and
// logit.
func (v PredictionsView) Render(w io.Writer, st termui.Style) error {
	l := newLayout(w, st)
	var b strings.Builder
	writeLines(&b, wrap(l.th.Title("next token")+" after "+label(v.After, 40, l.ascii)+" ", []string{"(softmax over the whole vocabulary)"}, " ", l.width, 2))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	rows := make([][]string, len(v.Predictions))
	for i, p := range v.Predictions {
		text := p.Piece
		if i < len(v.Texts) {
			text = v.Texts[i]
		}
		rows[i] = []string{strconv.Itoa(i + 1), strconv.Itoa(p.ID), label(text, 32, l.ascii),
			l.sig(p.Prob, 4), l.sig(p.Logit, 6)}
	}
	return termui.TableLayout{Headers: []string{"#", "id", "token", "p", "logit"}, Right: []bool{true, true, false, true, true},
		Styled: l.styled, Width: l.width, ASCII: l.ascii}.Write(w, len(rows), func(i int) []string { return rows[i] })
}
