package cmd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/inspect/circuits"
	"github.com/qkvdev/qkv/internal/linalg"
	"github.com/qkvdev/qkv/internal/outfile"
	"github.com/qkvdev/qkv/internal/termui"
)

// CircuitsOptions are the options of qkv circuits.
type CircuitsOptions struct {
	IO      *Streams
	Model   ModelInput
	Layers  string // "0-3,7"; "": every layer
	RawOnly bool
	JSON    bool
	Out     string // "": no file written
	Top     int    // pairs in the top table
	PerHead int    // heads in the partners table; 0 hides it
	Seed    uint64
	// BaselineSamples is the number of random pairs of the baseline; 0
	// skips it.
	BaselineSamples int
}

// NewCmdCircuits builds qkv circuits; runF (nil: circuitsRun) does the work.
func NewCmdCircuits(s *Streams, runF func(context.Context, *CircuitsOptions) error) *cobra.Command {
	opts := &CircuitsOptions{IO: s}
	var mf modelFlags
	c := &cobra.Command{
		Use:   "circuits PATH",
		Short: "Q-, K- and V-composition scores between the heads of different layers",
		Long: `How strongly each head's output feeds each later head's query, key or value
(the composition scores of Elhage et al. 2021, as TransformerLens defines
them), from the weights alone: for an earlier head with OV circuit A and a
later head with circuits QK and OV,

  Q = ‖QKᵀ·A‖ / (‖QK‖·‖A‖)    K = ‖QK·A‖ / (‖QK‖·‖A‖)    V = ‖OV·A‖ / (‖OV‖·‖A‖)

(Frobenius norms; GQA-aware). Raw, and "ln_folded" with each layer's
pre-attention norm weight folded into its W_Q, W_K, W_V. Read a score against
the baseline: the mean score of random matrices of the same shapes (about
1/√d_model). Prints the verdict, the strongest pairs and each head's
strongest partners; --json prints every score (schema qkv.circuits/v1,
arrays [l1][h1][l2][h2], zero where l2 ≤ l1), --out writes that document to a
file.

Cost: (H·d + KV·(d+dv))·d_model·H·dv multiply-adds per pair of layers and
variant. A 32-layer, 32-head, 4096-wide model takes hours on a laptop:
the estimate is printed on stderr before a run of more than a few seconds;
--layers and --raw-only shrink it.`,
		Example: `  qkv circuits testdata/tiny-llama
  qkv circuits ./model --layers 0-5 --top 30
  qkv circuits model.gguf --raw-only --out circuits.json
  qkv circuits ./model --json | jq '.baseline.mean'`,
		Args:    exactArgs(1),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			if opts.Top < 0 {
				return usageError("--top must be 0 or more, not %d", opts.Top)
			}
			if opts.PerHead < 0 {
				return usageError("--per-head must be 0 or more, not %d", opts.PerHead)
			}
			if opts.BaselineSamples < 0 || opts.BaselineSamples > maxBaselineSamples {
				return usageError("--baseline-samples must be between 0 and %d, not %d", maxBaselineSamples, opts.BaselineSamples)
			}
			if opts.Out != "" {
				if outfile.IsStdout(opts.Out) {
					return usageError("--out %s: standard output carries the report; --json prints the document there", opts.Out)
				}
				if err := checkOutput("--out", opts.Out); err != nil {
					return err
				}
			}
			in, err := mf.resolve(args[0])
			if err != nil {
				return err
			}
			opts.Model = in
			return runOr(c, runF, circuitsRun, opts)
		},
	}
	mf.add(c)
	f := c.Flags()
	f.StringVar(&opts.Layers, "layers", "", "layers to take, e.g. 0-3,7 (default all); scores are between these layers")
	f.BoolVar(&opts.RawOnly, "raw-only", false, "skip the ln_folded variant (half the work)")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON document (schema qkv.circuits/v1) with every score")
	f.StringVarP(&opts.Out, "out", "o", "", "also write the JSON document (every score) to this file")
	f.IntVar(&opts.Top, "top", 20, "pairs in the table of strongest compositions")
	f.IntVar(&opts.PerHead, "per-head", 32, "heads in the table of strongest partners (those with the strongest composition); 0 hides it")
	f.Uint64Var(&opts.Seed, "seed", 0, "seed of the random baseline")
	f.IntVar(&opts.BaselineSamples, "baseline-samples", circuits.DefaultBaselineSamples, "random pairs the baseline mean is taken over; 0 skips it")
	return c
}

// maxBaselineSamples bounds --baseline-samples: each sample multiplies
// d_model × head_dim matrices.
const maxBaselineSamples = 1_000_000

// circuitsDoc is the JSON document: the scores as inspect/circuits lays
// them out, each query head's KV head, the strongest pairs of each variant,
// and the provenance blocks every report carries.
type circuitsDoc struct {
	*circuits.Result
	// KVHead[h] is query head h's K/V group.
	KVHead   []int                      `json:"kv_head"`
	TopPairs map[string][]circuits.Pair `json:"top_pairs"`
	Provenance
}

// circuitsRun computes the scores and prints them.
func circuitsRun(ctx context.Context, o *CircuitsOptions) error {
	s := o.IO
	ck, m, err := o.Model.open(ctx)
	if err != nil {
		return err
	}
	defer ck.Close()
	if err := m.HeadsKnown(); err != nil {
		return err
	}
	if m.IsAdapter {
		return inputError("%s is a LoRA adapter: composition scores need a model's full weights (merge the adapter into its base first)", o.Model.Path)
	}
	if o.Out != "" {
		if err := refuseCheckpointFile(ck, "--out", o.Out); err != nil {
			return err
		}
	}
	sel, err := parseLayers(o.Layers, m.LayerIndices())
	if err != nil {
		return err
	}
	src := &layerSubset{LayerSource: m, indices: sel}
	g := m.Geometry()
	cost := circuitsCost(g, len(sel), !o.RawOnly)
	if est := estimateSeconds(cost); est > costNoticeSeconds {
		fmt.Fprintln(s.Err, termui.Clean(costNotice(g, len(sel), !o.RawOnly, cost, est)))
	}
	opts := circuits.Options{RawOnly: o.RawOnly, Seed: o.Seed, BaselineSamples: o.BaselineSamples}
	if o.BaselineSamples == 0 {
		opts.BaselineSamples = -1
	}
	bar := newProgress(s, "circuits", "pairs of layers")
	bar.Start(len(sel) * (len(sel) - 1) / 2)
	opts.Progress = bar.Set
	res, err := circuits.Compute(ctx, src, opts)
	bar.Done()
	if err != nil {
		return &formats.Error{File: o.Model.Path, Offset: -1, Err: err}
	}
	for _, w := range res.Warnings {
		if o.RawOnly && strings.HasSuffix(w, "(raw only)") {
			continue // asked for: not a warning
		}
		fmt.Fprintln(s.Err, "qkv: warning: "+termui.Clean(w))
	}
	doc := newCircuitsDoc(res, newProvenance(ck), max(o.Top, 20))
	if o.Out != "" {
		if err := writeJSONFile(s, "--out", o.Out, doc.writeJSON); err != nil {
			return err
		}
	}
	if o.JSON {
		return doc.writeJSON(s.Out)
	}
	arch := g.Arch
	if arch != "" {
		arch = termui.Name(arch)
	}
	return circuitsView{res: res, arch: arch, top: o.Top, perHead: o.PerHead}.Render(s.Out, s.style())
}

func newCircuitsDoc(res *circuits.Result, p Provenance, top int) *circuitsDoc {
	doc := &circuitsDoc{Result: res, Provenance: p, TopPairs: map[string][]circuits.Pair{}}
	grp := max(1, res.NHeads/max(1, res.NKVHeads))
	doc.KVHead = make([]int, res.NHeads)
	for h := range doc.KVHead {
		doc.KVHead[h] = h / grp
	}
	// Every variant the document holds (ln_folded is raw's scores for a
	// post-norm model).
	doc.TopPairs["raw"] = res.Raw.Top(res.Layers, top)
	if res.LNFolded != nil {
		doc.TopPairs["ln_folded"] = res.LNFolded.Top(res.Layers, top)
	}
	return doc
}

// writeJSONFile writes a JSON document to path through outfile.
func writeJSONFile(s *Streams, flag, path string, write func(io.Writer) error) error {
	f, err := outfile.Create(path, s.Out)
	if err != nil {
		return flagged(flag, err)
	}
	defer f.Abort()
	if err := write(f); err != nil {
		return flagged(flag, err)
	}
	return flagged(flag, f.Commit())
}

// writeJSON writes the document indented as every --json is, except that
// each earlier head's scores ([l2][h2]) and each layer's norms are one
// line: a 32-layer, 32-head model's scores are then 6·1024 lines, not six
// million.
func (d *circuitsDoc) writeJSON(w io.Writer) error {
	// The document without its score arrays, then the arrays put in place
	// of their nulls.
	light := *d
	res := *d.Result
	res.Raw, res.LNFolded = nil, nil
	light.Result = &res
	var head bytes.Buffer
	if err := termui.WriteJSON(&head, &light); err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	for _, line := range strings.SplitAfter(head.String(), "\n") {
		var s *circuits.Scores
		switch strings.TrimRight(line, ",\n") {
		case `  "raw": null`:
			s = d.Raw
		case `  "ln_folded": null`:
			s = d.LNFolded
		}
		if s == nil {
			bw.WriteString(line)
			continue
		}
		key, _, _ := strings.Cut(line, ":")
		bw.WriteString(key + ": ")
		writeScoresJSON(bw, s, "  ")
		bw.WriteString(strings.TrimPrefix(line, key+": null"))
	}
	return bw.Flush()
}

// writeScoresJSON writes one variant's scores: per array, one line per
// earlier head [l1][h1] holding its [l2][h2] scores.
func writeScoresJSON(bw *bufio.Writer, s *circuits.Scores, indent string) {
	in1, in2, in3 := indent+"  ", indent+"    ", indent+"      "
	var buf []byte
	bw.WriteString("{\n")
	for i, a := range []struct {
		key string
		v   circuits.Array4
	}{{"Q", s.Q}, {"K", s.K}, {"V", s.V}} {
		if i > 0 {
			bw.WriteString(",\n")
		}
		bw.WriteString(in1 + `"` + a.key + `": [`)
		for l1, x := range a.v {
			if l1 > 0 {
				bw.WriteString(",")
			}
			bw.WriteString("\n" + in2 + "[")
			for h1, y := range x {
				if h1 > 0 {
					bw.WriteString(",")
				}
				buf = termui.AppendJSONArrays(buf[:0], y)
				bw.WriteString("\n" + in3)
				bw.Write(buf)
			}
			bw.WriteString("\n" + in2 + "]")
		}
		if len(a.v) > 0 {
			bw.WriteString("\n" + in1)
		}
		bw.WriteString("]")
	}
	for _, n := range []struct {
		key string
		v   [][]float64
	}{{"ov_fro", s.OVNorm}, {"qk_fro", s.QKNorm}} {
		bw.WriteString(",\n" + in1 + `"` + n.key + `": [`)
		for l, row := range n.v {
			if l > 0 {
				bw.WriteString(",")
			}
			buf = termui.AppendJSONArrays(buf[:0], row)
			bw.WriteString("\n" + in2)
			bw.Write(buf)
		}
		if len(n.v) > 0 {
			bw.WriteString("\n" + in1)
		}
		bw.WriteString("]")
	}
	bw.WriteString("\n" + indent + "}")
}

// variant is one variant's scores, named as in JSON.
type variant struct {
	name string
	s    *circuits.Scores
}

// circuitVariants are the computed variants: ln_folded first when it
// differs from raw (what the model's layers read), then raw.
func circuitVariants(res *circuits.Result) []variant {
	var out []variant
	if res.LNFolded != nil && res.LNFolded != res.Raw {
		out = append(out, variant{"ln_folded", res.LNFolded})
	}
	return append(out, variant{"raw", res.Raw})
}

// circuitsCost is the number of multiply-adds of the scores' products:
// (H·d + KV·(d+dv))·d_model·H·dv per pair of layers and variant, about 6%
// more for the head-sized steps (inspect/circuits' documentation).
func circuitsCost(g formats.Geometry, layers int, folded bool) float64 {
	dv := g.HeadDim
	if g.VHeadDim > 0 {
		dv = g.VHeadDim
	}
	kv := g.NKVHeads
	if kv == 0 {
		kv = g.NHeads
	}
	per := float64(g.NHeads*g.HeadDim+kv*(g.HeadDim+dv)) * float64(g.DModel) * float64(g.NHeads*dv)
	pairs := float64(layers) * float64(layers-1) / 2
	variants := 1.0
	if folded && g.PreNorm && g.Norm != formats.NormNone && g.Norm != "" {
		variants = 2
	}
	return 1.06 * per * pairs * variants
}

// costNoticeSeconds: runs estimated longer than this say so before they
// start.
const costNoticeSeconds = 10

// estimateSeconds turns a number of multiply-adds into seconds at the rate
// this machine multiplies float64 matrices (measured once, only for work
// that could be long).
func estimateSeconds(madds float64) float64 {
	if madds < 1e9 {
		return madds / 1e10 // well under a second on any machine
	}
	return madds / machineRate()
}

// machineRate measures the multiply-adds per second of a product of the
// kind the scores need (float32 operands, float64 result, all CPUs).
func machineRate() float64 {
	const m, k, n = 384, 1024, 384
	a := make([]float32, m*k)
	b := make([]float32, k*n)
	for i := range a {
		a[i] = float32(i%7) - 3
	}
	for i := range b {
		b[i] = float32(i%5) - 2
	}
	c := make([]float64, m*n)
	best := math.Inf(1)
	for range 3 {
		t0 := time.Now()
		if err := linalg.Mul(c, n, 1, linalg.RowMajor(a, m, k, k), linalg.RowMajor(b, k, n, n), 0, linalg.MulOptions{}); err != nil {
			return 1e10
		}
		best = min(best, time.Since(t0).Seconds())
	}
	return float64(m*k*n) / max(best, 1e-6)
}

// costNotice says, before a long run, what it will cost.
func costNotice(g formats.Geometry, layers int, folded bool, madds, seconds float64) string {
	variants := "raw and ln_folded"
	if circuitsCost(g, layers, folded) == circuitsCost(g, layers, false) {
		variants = "one variant"
	}
	msg := fmt.Sprintf("qkv: circuits: %d pairs of layers × %d heads², %s: %.2g multiply-adds, about %s on this machine (measured %.3g GFLOP/s)",
		layers*(layers-1)/2, g.NHeads, variants, madds, humanDuration(seconds), 2*madds/seconds/1e9)
	var shrink []string
	if variants != "one variant" {
		shrink = append(shrink, "--raw-only halves it")
	}
	if layers > 2 {
		shrink = append(shrink, "--layers narrows it")
	}
	if len(shrink) > 0 {
		msg += "; " + strings.Join(shrink, ", ")
	}
	return msg
}

func humanDuration(s float64) string {
	switch {
	case s < 90:
		return fmt.Sprintf("%.0f s", s)
	case s < 90*60:
		return fmt.Sprintf("%.0f minutes", s/60)
	case s < 48*3600:
		return fmt.Sprintf("%.1f hours", s/3600)
	}
	return fmt.Sprintf("%.1f days", s/86400)
}

// circuitsView is the text report: the verdict, the strongest pairs and
// each head's strongest partners.
type circuitsView struct {
	res     *circuits.Result
	arch    string
	top     int
	perHead int
}

var _ termui.Renderer = circuitsView{}

func headLabel(layer, head int) string { return fmt.Sprintf("L%dH%d", layer, head) }

// Render writes the view for st.
func (v circuitsView) Render(w io.Writer, st termui.Style) error {
	width := st.Cols()
	th := termui.NewTheme(w, st)
	r := v.res
	vs := circuitVariants(r)
	main := vs[0]
	base := math.NaN()
	if r.Baseline != nil {
		base = r.Baseline.Mean
	}
	var b strings.Builder
	arch := v.arch
	if arch == "" {
		arch = "model"
	}
	kv := ""
	if r.NKVHeads != r.NHeads {
		kv = fmt.Sprintf(" (%d KV)", r.NKVHeads)
	}
	head := fmt.Sprintf("%s — %s × %s%s, d_model %d: ", arch, termui.Plural(int64(len(r.Layers)), "layer"), termui.Plural(int64(r.NHeads), "head"), kv, r.DModel)
	best := main.s.Top(r.Layers, 1)
	switch {
	case len(r.Layers) < 2:
		head += "one layer, so no pair of heads in different layers"
	case len(best) == 0:
		head += "no score is defined (every circuit is zero)"
	default:
		p := best[0]
		head += fmt.Sprintf("strongest %s-composition %s, %s → %s", p.Mode, termui.Num(p.Score), headLabel(p.Layer1, p.Head1), headLabel(p.Layer2, p.Head2))
		if base > 0 {
			head += fmt.Sprintf(", %.1f× the random baseline %s", p.Score/base, termui.Num(base))
		}
		head += " (" + main.name + ")"
	}
	tx := func(s string) string { return s }
	if st.ASCII && !st.Styled {
		tx = inspect.ASCII
	}
	head = tx(head)
	writeWrapped(&b, th.Title(head), head, width)
	b.WriteString("\n")
	if len(r.Layers) >= 2 && v.top > 0 {
		b.WriteString("\n")
		v.writeTop(&b, th, width, vs, base, tx)
	}
	if len(r.Layers) >= 2 && v.perHead > 0 {
		b.WriteString("\n")
		v.writePartners(&b, th, width, main, base, tx)
	}
	b.WriteString("\n")
	legend := "Score: ‖later head's QK or OV · earlier head's OV‖ / (product of their norms), Frobenius: 0 when the later head ignores what the earlier one writes, larger the more of it it reads (at most 1)."
	if base > 0 {
		legend += fmt.Sprintf(" × base: the score over the baseline %s, the mean score of random matrices of these shapes (%d samples).", termui.Num(base), r.Baseline.NSamples)
	}
	legend += " " + variantText(r)
	if r.Undefined > 0 {
		legend += fmt.Sprintf(" %d scores are undefined (a zero circuit) and left out.", r.Undefined)
	}
	legend = tx(legend)
	writeWrapped(&b, th.Muted(legend), legend, width)
	b.WriteString("\n")
	text := b.String()
	if st.ASCII && !st.Styled {
		text = inspect.ASCII(text)
	}
	_, err := io.WriteString(w, text)
	return err
}

// variantText says what the variants are.
func variantText(r *circuits.Result) string {
	switch {
	case r.LNFolded == nil:
		return "raw: the weights as stored (ln_folded not computed)."
	case r.LNFolded == r.Raw:
		return "raw: the weights as stored; no norm before attention to fold."
	}
	return "ln_folded: each layer's " + r.FoldedNorm + " weight folded into its W_Q, W_K, W_V; raw: the weights as stored."
}

// writeWrapped writes styled (the text of plain, styled) when plain fits
// the width, else plain wrapped at spaces (styling each line is not worth
// it).
func writeWrapped(b *strings.Builder, styled, plain string, width int) {
	if lipgloss.Width(plain) <= width {
		b.WriteString(styled)
		return
	}
	b.WriteString(termui.Wrap(plain, width, "  "))
}

// column is one column of a table that may be dropped when the width is
// short: the lowest keep goes first.
type column struct {
	header string
	right  bool
	keep   int
	cell   func(i int) string
}

// writeColumns writes a table of n rows laid out for width: the columns
// of the lowest keep (below 100) go first while it is too wide.
func writeColumns(b *strings.Builder, th *termui.Theme, title string, cols []column, n, width int, ascii bool) {
	if title != "" {
		b.WriteString(th.Title(title))
		b.WriteString("\n")
	}
	headers := make([]string, len(cols))
	right := make([]bool, len(cols))
	var drop []int
	for i, c := range cols {
		headers[i], right[i] = c.header, c.right
		if c.keep < 100 {
			drop = append(drop, i)
		}
	}
	slices.SortStableFunc(drop, func(x, y int) int { return cols[x].keep - cols[y].keep })
	row := make([]string, len(cols))
	termui.TableLayout{Headers: headers, Right: right, Styled: th != nil, Rule: true, Width: width, Drop: drop, ASCII: ascii}.
		Write(b, n, func(i int) []string {
			for j, c := range cols {
				row[j] = c.cell(i)
			}
			return row
		})
}

// writeTop writes the strongest pairs of the main variant, with the other
// variant's score of the same pair beside it.
func (v circuitsView) writeTop(b *strings.Builder, th *termui.Theme, width int, vs []variant, base float64, tx func(string) string) {
	r := v.res
	main := vs[0]
	pairs := main.s.Top(r.Layers, v.top)
	pos := map[int]int{}
	for i, l := range r.Layers {
		pos[l] = i
	}
	other := func(p circuits.Pair) float64 {
		if len(vs) < 2 {
			return math.NaN()
		}
		s := vs[1].s
		a := map[string]circuits.Array4{"Q": s.Q, "K": s.K, "V": s.V}[p.Mode]
		return a[pos[p.Layer1]][p.Head1][pos[p.Layer2]][p.Head2]
	}
	cols := []column{
		{"#", true, 10, func(i int) string { return fmt.Sprint(i + 1) }},
		{"comp", false, 100, func(i int) string { return pairs[i].Mode }},
		{"writer", false, 100, func(i int) string { return headLabel(pairs[i].Layer1, pairs[i].Head1) }},
		{"reader", false, 100, func(i int) string { return headLabel(pairs[i].Layer2, pairs[i].Head2) }},
		{main.name, true, 100, func(i int) string { return termui.Sig(pairs[i].Score, 4) }},
	}
	if base > 0 {
		cols = append(cols, column{"× base", true, 50, func(i int) string { return termui.Fixed(pairs[i].Score/base, 1, "") }})
	}
	if len(vs) > 1 {
		cols = append(cols, column{vs[1].name, true, 40, func(i int) string { return termui.Sig(other(pairs[i]), 4) }})
	}
	cols = append(cols, column{"meaning", false, 5, func(i int) string { return compMeaning(pairs[i]) }})
	title := fmt.Sprintf("Strongest compositions (%d of %d pairs of heads × Q, K, V)", len(pairs), scoredPairs(r))
	writeColumns(b, th, tx(title), cols, len(pairs), width, tx("×") != "×")
}

func scoredPairs(r *circuits.Result) int {
	n := len(r.Layers)
	return n * (n - 1) / 2 * r.NHeads * r.NHeads
}

func compMeaning(p circuits.Pair) string {
	w, r := headLabel(p.Layer1, p.Head1), headLabel(p.Layer2, p.Head2)
	switch p.Mode {
	case "Q":
		return w + "'s output feeds " + r + "'s queries"
	case "K":
		return w + "'s output feeds " + r + "'s keys"
	}
	return w + "'s output feeds " + r + "'s values"
}

// partner is a head's strongest partner in one direction and mode.
type partner struct {
	layer, head int
	score       float64
	mode        string
}

// writePartners writes, per head, the earlier head feeding its Q, K and V
// most and the later head it feeds most; heads are those with the
// strongest score either way, in model order.
func (v circuitsView) writePartners(b *strings.Builder, th *termui.Theme, width int, main variant, base float64, tx func(string) string) {
	r := v.res
	n, h := len(r.Layers), r.NHeads
	nan := partner{layer: -1, score: math.NaN()}
	from := make([][3]partner, n*h) // [Q, K, V] strongest earlier writer
	feeds := make([]partner, n*h)   // strongest later reader
	for i := range from {
		from[i] = [3]partner{nan, nan, nan}
		feeds[i] = nan
	}
	better := func(p *partner, s float64) bool { return !math.IsNaN(s) && (math.IsNaN(p.score) || s > p.score) }
	for mi, a := range []circuits.Array4{main.s.Q, main.s.K, main.s.V} {
		mode := string("QKV"[mi])
		for l1 := range n {
			for h1 := range h {
				for l2 := l1 + 1; l2 < n; l2++ {
					for h2, s := range a[l1][h1][l2] {
						if f := &from[l2*h+h2][mi]; better(f, s) {
							*f = partner{r.Layers[l1], h1, s, mode}
						}
						if f := &feeds[l1*h+h1]; better(f, s) {
							*f = partner{r.Layers[l2], h2, s, mode}
						}
					}
				}
			}
		}
	}
	strongest := func(i int) float64 {
		s := feeds[i].score
		for _, f := range from[i] {
			if math.IsNaN(s) || f.score > s {
				s = f.score
			}
		}
		return s
	}
	order := make([]int, n*h)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		sa, sb := strongest(a), strongest(b)
		switch {
		case math.IsNaN(sa) && math.IsNaN(sb):
			return 0
		case math.IsNaN(sa):
			return 1
		case math.IsNaN(sb):
			return -1
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	shown := order[:min(v.perHead, len(order))]
	slices.Sort(shown)
	cell := func(p partner, mode bool) string {
		if p.layer < 0 {
			return termui.NoValue
		}
		s := headLabel(p.layer, p.head) + " " + termui.Sig(p.score, 3)
		if mode {
			s = p.mode + " " + s
		}
		return s
	}
	cols := []column{
		{"head", false, 100, func(i int) string { return headLabel(r.Layers[shown[i]/h], shown[i]%h) }},
		{"Q from", false, 90, func(i int) string { return cell(from[shown[i]][0], false) }},
		{"K from", false, 90, func(i int) string { return cell(from[shown[i]][1], false) }},
		{"V from", false, 90, func(i int) string { return cell(from[shown[i]][2], false) }},
		{"feeds most", false, 95, func(i int) string { return cell(feeds[shown[i]], true) }},
	}
	if base > 0 {
		cols = append(cols, column{"best × base", true, 20, func(i int) string { return termui.Fixed(strongest(shown[i])/base, 1, "") }})
	}
	title := "Strongest partners of each head"
	if len(shown) < n*h {
		title = fmt.Sprintf("Strongest partners of the %d heads with the strongest composition (of %d; --per-head N for more)", len(shown), n*h)
	}
	title = tx(title + " — " + main.name)
	writeWrapped(b, th.Title(title), title, width)
	b.WriteString("\n")
	writeColumns(b, th, "", cols, len(shown), width, tx("×") != "×")
}
