package cmd

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/termui"
)

type catReport struct {
	Schema  string             `json:"schema"`
	Source  formats.SourceInfo `json:"source"`
	QKV     buildinfo.Info     `json:"qkv"`
	IO      *source.IO         `json:"io,omitempty"`
	Tensor  string             `json:"tensor"`
	DType   string             `json:"dtype"`
	Shape   []int64            `json:"shape"`
	RowLen  int64              `json:"row_len"`
	Rows    int64              `json:"rows"`
	Shown   int64              `json:"rows_shown"`
	Values  [][]any            `json:"values"` // null for NaN/±Inf, see nan/inf counts
	Summary catSummary         `json:"summary"`

	raw [][]float32 // the shown rows as decoded, for the text view
}

type catSummary struct {
	Count  int64 `json:"count"`
	Min    any   `json:"min"`
	Max    any   `json:"max"`
	Mean   any   `json:"mean"`
	NaN    int64 `json:"nan_count"`
	PosInf int64 `json:"pos_inf_count"`
	NegInf int64 `json:"neg_inf_count"`
	Zeros  int64 `json:"zero_count"`
}

// CatOptions are the options of qkv cat.
type CatOptions struct {
	IO        *Streams
	Path      string
	Tensor    string
	Rows      int64
	JSON      bool
	MaxHeader int64
}

// NewCmdCat builds qkv cat; runF (nil: catRun) does the work.
func NewCmdCat(s *Streams, runF func(context.Context, *CatOptions) error) *cobra.Command {
	opts := &CatOptions{IO: s}
	c := &cobra.Command{
		Use:   "cat PATH TENSOR",
		Short: "Print a tensor's decoded values with min/max/mean and NaN/Inf counts",
		Long: `Decode one tensor to float32 and print a summary first — its type and shape,
the min, max and mean of its finite values and its NaN, +Inf, -Inf and zero
counts over the whole tensor — then its first rows (the tensor viewed as a
matrix whose rows are its innermost dimension).`,
		Example: `  qkv cat model.gguf blk.0.attn_q.weight
  qkv cat model.safetensors model.layers.0.self_attn.q_proj.weight --rows 2 --json`,
		Args:    exactArgs(2),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			if opts.Rows < 0 {
				return usageError("--rows must be 0 or more")
			}
			opts.Path, opts.Tensor = args[0], args[1]
			return runOr(c, runF, catRun, opts)
		},
	}
	c.Flags().Int64Var(&opts.Rows, "rows", 8, "how many rows to print")
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document (schema qkv.cat/v1)")
	addMaxHeaderFlag(c, &opts.MaxHeader)
	return c
}

// catRun decodes the tensor and prints its rows and summary.
func catRun(ctx context.Context, o *CatOptions) error {
	ck, err := openCheckpoint(ctx, o.Path, o.MaxHeader)
	if err != nil {
		return err
	}
	defer ck.Close()
	t := ck.Tensor(o.Tensor)
	if t == nil {
		names := make([]string, len(ck.Tensors))
		for i, t := range ck.Tensors {
			names[i] = t.Name
		}
		hint := "see qkv ls"
		if dym := termui.DidYouMean(o.Tensor, names); dym != "" {
			hint = dym
		}
		return &formats.Error{File: o.Path, Offset: -1, Err: fmt.Errorf("no tensor named %q (%s)", o.Tensor, hint)}
	}
	rep, err := buildCat(ck, t, o.Rows)
	if err != nil {
		return err
	}
	if o.JSON {
		// The counters after the decoding: what reading the tensor cost.
		rep.Source, rep.QKV, rep.IO = ck.Source(), Build(), ioOf(ck)
		return termui.WriteJSON(o.IO.Out, rep)
	}
	return rep.Render(o.IO.Out, o.IO.style())
}

// catChunk is how many values cat decodes at once for the summary: the
// memory cat needs whatever the tensor's size.
const catChunk = 1 << 22

// buildCat decodes the rows cat shows, and the summary over the whole
// tensor in chunks of catChunk values, so that memory stays at the rows
// shown plus one chunk (a 1 GiB tensor is not decoded at once).
func buildCat(ck *formats.Checkpoint, t *formats.Tensor, rows int64) (catReport, error) {
	rl := max(t.RowLen(), 1)
	total := t.Elements() / rl
	shown := min(rows, total)
	rep := catReport{Schema: "qkv.cat/v1", Tensor: t.Name, DType: t.Type.Name(), Shape: t.Shape, RowLen: rl, Rows: total, Shown: shown, Values: [][]any{}}
	if rep.Shape == nil {
		rep.Shape = []int64{}
	}
	var sum inspect.ValueSummary
	parts := 0
	err := ck.DecodeChunks(t, catChunk, func(first int64, vals []float32) error {
		sum = mergeSummaries(sum, inspect.SummarizeValues(vals), parts)
		parts++
		return nil
	})
	if err != nil {
		return rep, err
	}
	if shown > 0 {
		vals := make([]float32, shown*rl)
		if err := ck.DecodeRows(t, 0, shown, vals); err != nil {
			return rep, err
		}
		for r := int64(0); r < shown; r++ {
			row := make([]any, rl)
			for j := int64(0); j < rl; j++ {
				row[j], _ = termui.JSONValue(float64(vals[r*rl+j]))
			}
			rep.Values = append(rep.Values, row)
			rep.raw = append(rep.raw, vals[r*rl:(r+1)*rl])
		}
	}
	if parts == 0 { // no values: the summary of an empty tensor
		sum = inspect.SummarizeValues(nil)
	}
	rep.Summary = catSummary{Count: sum.Count, NaN: sum.NaN, PosInf: sum.PosInf, NegInf: sum.NegInf, Zeros: sum.Zeros}
	rep.Summary.Min, _ = termui.JSONValue(sum.Min)
	rep.Summary.Max, _ = termui.JSONValue(sum.Max)
	rep.Summary.Mean, _ = termui.JSONValue(sum.Mean)
	return rep, nil
}

// mergeSummaries combines the summary of the values so far (a, over parts
// pieces) with that of the next piece b. Counts, min and max combine
// exactly; the mean is weighted by the finite counts (a tensor within one
// piece, which is most, gets exactly SummarizeValues's mean).
func mergeSummaries(a, b inspect.ValueSummary, parts int) inspect.ValueSummary {
	if parts == 0 {
		return b
	}
	fa := a.Count - a.NaN - a.PosInf - a.NegInf
	fb := b.Count - b.NaN - b.PosInf - b.NegInf
	out := inspect.ValueSummary{Count: a.Count + b.Count, NaN: a.NaN + b.NaN, PosInf: a.PosInf + b.PosInf, NegInf: a.NegInf + b.NegInf, Zeros: a.Zeros + b.Zeros}
	switch {
	case fa == 0:
		out.Min, out.Max, out.Mean = b.Min, b.Max, b.Mean
	case fb == 0:
		out.Min, out.Max, out.Mean = a.Min, a.Max, a.Mean
	default:
		out.Min, out.Max = math.Min(a.Min, b.Min), math.Max(a.Max, b.Max)
		out.Mean = (a.Mean*float64(fa) + b.Mean*float64(fb)) / float64(fa+fb)
	}
	return out
}

// Render writes the summary first — the tensor, its type and shape, then
// its value counts and range — then the first rows, as many values a line
// as the width holds. Every line fits the width; the name is cut in the
// middle when it must be.
func (rep catReport) Render(w io.Writer, st termui.Style) error {
	var b strings.Builder
	g := st.Glyphs()
	cols := st.Cols()
	f := func(v any) string {
		if v == nil {
			return g.NoValue
		}
		return strconv.FormatFloat(v.(float64), 'g', 7, 64)
	}
	desc := fmt.Sprintf("  %s %s  (%s of %d values)", termui.Name(rep.DType), termui.Shape(rep.Shape), termui.Plural(rep.Rows, "row"), rep.RowLen)
	name := termui.TruncateMiddle(termui.Name(rep.Tensor), max(cols-termui.Width(desc), 16), st.ASCII)
	b.WriteString(termui.Title(name+desc, st.Styled))
	sm := rep.Summary
	rng := fmt.Sprintf("%s; min %s, max %s, mean %s", termui.Plural(sm.Count, "value"), f(sm.Min), f(sm.Max), f(sm.Mean))
	counts := fmt.Sprintf("NaN %d, +Inf %d, -Inf %d, zeros %d", sm.NaN, sm.PosInf, sm.NegInf, sm.Zeros)
	if termui.Width(rng)+2+termui.Width(counts) <= cols {
		b.WriteString(rng + "; " + counts + "\n")
	} else {
		b.WriteString(termui.Wrap(rng, cols, "  ") + "\n" + termui.Wrap(counts, cols, "  ") + "\n")
	}
	if len(rep.raw) > 0 {
		b.WriteString("\n")
	}
	const cell = 14
	bar := "│"
	if st.ASCII {
		bar = "|"
	}
	perLine := max((cols-8)/cell, 1)
	for r, row := range rep.raw {
		for k := 0; k < len(row); k += perLine {
			label := ""
			if k == 0 {
				label = strconv.Itoa(r)
			}
			b.WriteString(termui.Dim(fmt.Sprintf("%6s %s", label, bar), st.Styled))
			for _, v := range row[k:min(k+perLine, len(row))] {
				fmt.Fprintf(&b, "%*s", cell, strconv.FormatFloat(float64(v), 'g', 7, 32))
			}
			b.WriteString("\n")
		}
	}
	if rep.Shown < rep.Rows {
		b.WriteString(termui.Dim(fmt.Sprintf("%s %d more (--rows N)", g.Ellipsis, rep.Rows-rep.Shown), st.Styled) + "\n")
	}
	_, err := fmt.Fprint(w, b.String())
	return err
}
