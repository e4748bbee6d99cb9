package cmd

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/termui"
)

// LayersOptions are the options of qkv layers.
type LayersOptions struct {
	IO    *Streams
	Model ModelInput
	JSON  bool
}

// NewCmdLayers builds qkv layers; runF (nil: layersRun) does the work.
func NewCmdLayers(s *Streams, runF func(context.Context, *LayersOptions) error) *cobra.Command {
	opts := &LayersOptions{IO: s}
	var mf modelFlags
	c := &cobra.Command{
		Use:   "layers PATH",
		Short: "Show where each layer's W_Q, W_K, W_V and W_O come from, and the model's geometry",
		Long: `Find every attention layer and show, per projection, the source tensor(s),
the extracted shape [out, in], dtype, whether it is fused or transposed, its
bias, and the Q/K row order; each layer's Q/K norm weights, attention sinks
and, for latent attention (MLA), the stored factors with the rank bound of
the effective matrices; the model's geometry (heads, KV heads, head_dim,
rotary settings, causal or not); and warnings: what the checkpoint holds that
qkv does not model ("unsupported": attn refuses it) and what qkv assumed
because the file does not say ("assumption"). Reads no tensor data.

An architecture qkv does not know exits with status 3 and lists the tensor
name patterns it saw; map them with --map and give head counts with --n-heads.
For a LoRA adapter, --lora-scale replaces the scale its config implies and
--base names the base model whose config.json gives the head counts.`,
		Example: `  qkv layers testdata/tiny-llama
  qkv layers model.gguf --json
  qkv layers ./adapter --base ./Llama-3-8B --lora-scale 2
  qkv layers ./odd-model --n-heads 8 \
      --map 'q=blocks\.(\d+)\.wq' --map 'k=blocks\.(\d+)\.wk' \
      --map 'v=blocks\.(\d+)\.wv' --map 'o=blocks\.(\d+)\.wo'`,
		Args:    exactArgs(1),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			in, err := mf.resolve(args[0])
			if err != nil {
				return err
			}
			opts.Model = in
			return runOr(c, runF, layersRun, opts)
		},
	}
	mf.add(c)
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document (schema qkv.layers/v1)")
	return c
}

// layersRun describes every layer's tensors.
func layersRun(ctx context.Context, o *LayersOptions) error {
	ck, m, err := o.Model.open(ctx)
	if err != nil {
		return err
	}
	defer ck.Close()
	rep := m.Describe()
	if o.JSON {
		return termui.WriteJSON(o.IO.Out, newLayersDoc(rep, ck))
	}
	return layersView{rep, ck}.Render(o.IO.Out, o.IO.style())
}

// layersDoc is the qkv.layers/v1 document: formats' report with the
// provenance blocks and the KV head of every query head.
type layersDoc struct {
	Schema string             `json:"schema"` // shadows the report's own
	Source formats.SourceInfo `json:"source"`
	QKV    buildinfo.Info     `json:"qkv"`
	IO     *source.IO         `json:"io,omitempty"`
	// Path shadows the report's path, left out: the input is source.input
	// (and the JSON of a model read locally or remotely is the same
	// without source and io).
	Path string `json:"path,omitempty"`
	formats.LayersReport
	KVHeadForHead []int `json:"kv_head_for_head"`
}

func newLayersDoc(rep formats.LayersReport, ck *formats.Checkpoint) layersDoc {
	return layersDoc{Schema: rep.Schema, Source: ck.Source(), QKV: Build(), IO: ioOf(ck), LayersReport: rep, KVHeadForHead: kvHeadForHead(rep.Model)}
}

// kvHeadForHead lists, for each query head, the KV head it reads (empty
// when the head counts are unknown or do not divide).
func kvHeadForHead(g formats.Geometry) []int {
	out := []int{}
	if g.NHeads <= 0 || g.NKVHeads <= 0 || g.NHeads%g.NKVHeads != 0 {
		return out
	}
	for h := 0; h < g.NHeads; h++ {
		out = append(out, g.KVHead(h))
	}
	return out
}

func geometryLine(g formats.Geometry) string {
	var parts []string
	arch := "-"
	if g.Arch != "" {
		arch = termui.Name(g.Arch)
	}
	parts = append(parts, fmt.Sprintf("%s: %s, d_model %d", arch, termui.Plural(int64(g.NLayers), "layer"), g.DModel))
	if g.NHeads == 0 {
		parts = append(parts, "head counts unknown (give --n-heads)")
	} else {
		parts = append(parts, termui.Plural(int64(g.NHeads), "head"))
		if g.NKVHeads != g.NHeads {
			parts = append(parts, termui.Plural(int64(g.NKVHeads), "KV head"))
		}
		parts = append(parts, fmt.Sprintf("head_dim %d", g.HeadDim))
	}
	switch {
	case g.RotaryDims > 0:
		parts = append(parts, fmt.Sprintf("RoPE %d dims θ=%g", g.RotaryDims, g.RopeTheta))
	case g.ALiBi:
		parts = append(parts, "ALiBi")
	case g.PositionEmbeddings:
		parts = append(parts, "learned positions")
	}
	if g.Causal {
		parts = append(parts, "causal")
	} else {
		parts = append(parts, "bidirectional")
	}
	if g.Norm != "" && g.Norm != formats.NormNone {
		parts = append(parts, fmt.Sprintf("%s eps %.6g", g.Norm, g.NormEps))
	}
	if ml := g.MLA; ml != nil {
		parts = append(parts, fmt.Sprintf("latent attention: q_lora_rank %d, kv_lora_rank %d", ml.QLoraRank, ml.KVLoraRank))
	}
	return strings.Join(parts, ", ")
}

// projNotes are the notes column of a projection's row.
func projNotes(pr *formats.ProjReport, ascii bool) string {
	var notes []string
	if pr.Fused {
		notes = append(notes, "fused: "+pr.Split)
	}
	if pr.Transposed && !pr.Fused {
		notes = append(notes, "transposed")
	}
	if strings.HasPrefix(pr.RowOrder, formats.RowOrderInterleaved) {
		notes = append(notes, "RoPE rows un-permuted")
	}
	if pr.LoRARank > 0 {
		if ascii {
			notes = append(notes, fmt.Sprintf("dW=%g*B*A r=%d", pr.LoRAScale, pr.LoRARank))
		} else {
			notes = append(notes, fmt.Sprintf("ΔW=%g·B·A r=%d", pr.LoRAScale, pr.LoRARank))
		}
	}
	if pr.Effective != "" {
		n := "effective"
		if pr.RankBound > 0 {
			le := "≤"
			if ascii {
				le = "<="
			}
			n += fmt.Sprintf(", rank %s %d", le, pr.RankBound)
		}
		notes = append(notes, n)
	}
	return strings.Join(notes, "; ")
}

// layersView is the layers report as text; ck gives the shape and dtype of
// the vectors the report names (Q/K norms, sinks).
type layersView struct {
	rep formats.LayersReport
	ck  *formats.Checkpoint
}

// Render writes the geometry, the table of every layer's tensors, and the
// warnings, laid out for st's width: long tensor names are cut in the
// middle, and when the notes column would not fit beside them, the notes
// are listed under the table instead, once per projection when every layer
// shares them.
func (v layersView) Render(w io.Writer, st termui.Style) error {
	rep, ck, cols, tx := v.rep, v.ck, st.Cols(), textFor(st)
	var b strings.Builder
	b.WriteString(termui.Title(termui.Wrap(tx(geometryLine(rep.Model)), cols, "  "), st.Styled))
	if rep.Adapter != nil {
		a := rep.Adapter
		// The base model's name comes first, where wrapping leaves it whole.
		line := fmt.Sprintf("LoRA adapter (%s)", a.Kind)
		if a.BaseModel != "" {
			line += ", base " + termui.Name(a.BaseModel)
		}
		line += fmt.Sprintf(", rank %d, scale %g (%s)", a.Rank, a.Scale, a.ScaleRule)
		b.WriteString(termui.Wrap(tx(termui.Clean(line)), cols, "  ") + "\n")
	}
	var rows [][]string
	var layerOf []int                // each row's layer
	effective := map[string]string{} // projection -> how its effective matrix is built
	for _, l := range rep.Layers {
		first := true
		label := func() string {
			if first {
				first = false
				return fmt.Sprint(l.Index)
			}
			return ""
		}
		// A latent-attention matrix lists its factors by their short names;
		// the factors' rows below name the tensors.
		factorName := map[string]string{}
		for _, f := range l.MLA {
			factorName[f.Tensor] = f.Name
		}
		for _, p := range []struct {
			name string
			pr   *formats.ProjReport
		}{{"q", l.Q}, {"k", l.K}, {"v", l.V}, {"o", l.O}} {
			if p.pr == nil {
				continue
			}
			bias := "-"
			if p.pr.Bias != nil {
				bias = "yes"
			}
			tensors := names(p.pr.Tensors, " + ")
			if p.pr.Effective != "" {
				short := make([]string, len(p.pr.Tensors))
				for i, t := range p.pr.Tensors {
					short[i] = t
					if n, ok := factorName[t]; ok {
						short[i] = n
					}
				}
				tensors = "from " + names(short, ", ")
				if _, ok := effective[p.name]; !ok {
					effective[p.name] = p.pr.Effective
				}
			}
			rows = append(rows, []string{label(), p.name, tensors,
				fmt.Sprintf("[%d, %d]", p.pr.Shape[0], p.pr.Shape[1]), termui.Name(p.pr.DType), bias, projNotes(p.pr, st.ASCII)})
			layerOf = append(layerOf, l.Index)
		}
		for _, v := range []struct {
			name string
			t    *string
		}{{"q_norm", l.QNorm}, {"k_norm", l.KNorm}, {"sinks", l.Sinks}} {
			if v.t == nil {
				continue
			}
			shape, dt := "", ""
			if t := ck.Tensor(*v.t); t != nil {
				shape, dt = termui.Shape(t.Shape), termui.Name(t.Type.Name())
			}
			rows = append(rows, []string{label(), v.name, termui.Name(*v.t), shape, dt, "", ""})
			layerOf = append(layerOf, l.Index)
		}
		for _, f := range l.MLA {
			rows = append(rows, []string{label(), f.Name, termui.Name(f.Tensor), termui.Shape(f.Shape), termui.Name(f.DType), "", "latent factor"})
			layerOf = append(layerOf, l.Index)
		}
	}
	for _, r := range rows {
		for j, c := range r {
			r[j] = tx(c)
		}
	}
	headers := []string{"layer", "", "tensor", "shape", "dtype", "bias", "notes"}
	right := []bool{true, false, false, false, false, false, false}
	var under []string // the notes, when they go under the table
	hasNotes := false
	for _, r := range rows {
		hasNotes = hasNotes || r[6] != ""
	}
	if !hasNotes {
		headers, right = headers[:6], right[:6]
	} else if !notesFit(headers, rows, st) {
		under = notesBelow(rows, layerOf, len(rep.Layers))
		headers, right = headers[:6], right[:6]
	}
	termui.TableLayout{Headers: headers, Right: right, Styled: st.Styled, Width: cols, ASCII: st.ASCII, Shrink: []int{2, 6}}.
		Write(&b, len(rows), func(i int) []string { return rows[i] })
	if len(under) > 0 {
		b.WriteString(termui.Dim("notes:", st.Styled) + "\n")
	}
	for _, n := range under {
		b.WriteString(termui.Dim("  "+termui.Wrap(n, cols-2, "    "), st.Styled) + "\n")
	}
	for _, p := range []string{"q", "k", "v"} {
		if e, ok := effective[p]; ok {
			b.WriteString(termui.Dim(termui.Wrap(tx(termui.Clean(fmt.Sprintf("effective %s = %s", p, e))), cols, "    "), st.Styled) + "\n")
		}
	}
	if len(rep.OtherStacks) > 0 {
		b.WriteString(termui.Dim(termui.Wrap(tx("other layer stacks found but not shown: "+names(rep.OtherStacks, ", ")), cols, "    "), st.Styled) + "\n")
	}
	for _, w := range rep.Warnings {
		b.WriteString(termui.Wrap(tx(warningLine(w)), cols, "    ") + "\n")
	}
	_, err := fmt.Fprint(w, b.String())
	return err
}

// minTensorCol is the narrowest the tensor column is cut to before the
// notes leave the table.
const minTensorCol = 24

// notesFit reports whether the table fits st's width with its notes
// column, the tensor names cut to minTensorCol at most.
func notesFit(headers []string, rows [][]string, st termui.Style) bool {
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = termui.Width(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], termui.Width(termui.Clean(c)))
		}
	}
	widths[2] = min(widths[2], minTensorCol)
	gap, edge := 2, 0
	if st.Styled {
		gap, edge = 3, 4
	}
	total := edge + gap*(len(widths)-1)
	for _, w := range widths {
		total += w
	}
	return total <= st.Cols()
}

// notesBelow lists the rows' notes as lines for under the table: one line
// per projection and note, saying which layers it applies to ("every
// layer" when all of them).
func notesBelow(rows [][]string, layerOf []int, nLayers int) []string {
	type key struct{ note, where string }
	seen := map[string][]int{} // "proj\x00note" -> layers
	var projOrder []string
	for i, r := range rows {
		if r[6] == "" {
			continue
		}
		k := r[1] + "\x00" + r[6]
		if _, ok := seen[k]; !ok {
			projOrder = append(projOrder, k)
		}
		seen[k] = append(seen[k], layerOf[i])
	}
	// Projections that share a note on the same layers share a line.
	var order []key
	projs := map[key][]string{}
	for _, k := range projOrder {
		proj, note, _ := strings.Cut(k, "\x00")
		where := "every layer"
		if ls := seen[k]; len(ls) < nLayers {
			where = "layer " + intList(ls)
			if len(ls) > 1 {
				where = "layers " + intList(ls)
			}
		}
		g := key{note, where}
		if _, ok := projs[g]; !ok {
			order = append(order, g)
		}
		projs[g] = append(projs[g], proj)
	}
	var out []string
	for _, g := range order {
		out = append(out, fmt.Sprintf("%s (%s): %s", strings.Join(projs[g], ", "), g.where, g.note))
	}
	return out
}

// intList writes numbers as "0, 2, 5".
func intList(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ", ")
}

// warningLine is one of LayersReport.Warnings as text: what qkv does not
// model ("unsupported") or what it assumed ("assumption").
func warningLine(w formats.Warning) string {
	tag := "not modelled"
	if w.Severity == "assumption" {
		tag = "assumed"
	}
	return fmt.Sprintf("warning (%s): %s", tag, unsupportedText(w.Unsupported))
}

// names joins identifiers from a file, each as termui.Name prints it.
func names(xs []string, sep string) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = termui.Name(x)
	}
	return strings.Join(out, sep)
}

// unsupportedText is one sentence about something qkv does not model or
// assumed: the message, naming the key or tensor when it does not already.
func unsupportedText(u formats.Unsupported) string {
	msg := termui.Clean(u.Message)
	if u.Name != "" && !strings.Contains(u.Message, u.Name) {
		msg += " (" + termui.Name(u.Name) + ")"
	}
	return msg
}
