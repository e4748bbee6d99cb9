package cmd

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/termui"
)

func init() { extraCommands = append(extraCommands, newLayersCmd, newExtractCmd) }

func newLayersCmd(s *Streams) *cobra.Command {
	var (
		mf     modelFlags
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "layers PATH",
		Short: "Show where each layer's W_Q, W_K, W_V and W_O come from, and the model's geometry",
		Long: `Find every attention layer and show, per projection, the source tensor(s),
the extracted shape [out, in], dtype, whether it is fused or transposed, its
bias, and the Q/K row order; and the model's geometry (heads, KV heads,
head_dim, rotary settings, causal or not). Reads no tensor data.

An architecture qkv does not know exits with status 3 and lists the tensor
name patterns it saw; map them with --map and give head counts with --n-heads.`,
		Example: `  qkv layers testdata/tiny-llama
  qkv layers model.gguf --json
  qkv layers ./odd-model --map 'q=blocks\.(\d+)\.wq,k=blocks\.(\d+)\.wk,v=blocks\.(\d+)\.wv,o=blocks\.(\d+)\.wo' --n-heads 8`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ck, m, err := openModel(args[0], &mf)
			if err != nil {
				return err
			}
			defer ck.Close()
			rep := m.Describe()
			if asJSON {
				return writeJSON(s.Out, rep)
			}
			return printLayers(s, rep)
		},
	}
	mf.add(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON document (schema qkv.layers/v1)")
	return c
}

func geometryLine(g formats.Geometry) string {
	var parts []string
	arch := "-"
	if g.Arch != "" {
		arch = termui.Name(g.Arch)
	}
	parts = append(parts, fmt.Sprintf("%s: %d layers, d_model %d", arch, g.NLayers, g.DModel))
	if g.NHeads == 0 {
		parts = append(parts, "head counts unknown (give --n-heads)")
	} else {
		parts = append(parts, fmt.Sprintf("%d heads", g.NHeads))
		if g.NKVHeads != g.NHeads {
			parts = append(parts, fmt.Sprintf("%d KV heads", g.NKVHeads))
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
	return strings.Join(parts, ", ")
}

func printLayers(s *Streams, rep formats.LayersReport) error {
	var b strings.Builder
	b.WriteString(termui.Title(geometryLine(rep.Model), s.Styled))
	if rep.Adapter != nil {
		a := rep.Adapter
		b.WriteString(fmt.Sprintf("LoRA adapter (%s), rank %d, scale %g (%s)", a.Kind, a.Rank, a.Scale, a.ScaleRule))
		if a.BaseModel != "" {
			b.WriteString(", base " + termui.Name(a.BaseModel))
		}
		b.WriteString("\n")
	}
	var rows [][]string
	for _, l := range rep.Layers {
		for _, p := range []struct {
			name string
			pr   *formats.ProjReport
		}{{"q", l.Q}, {"k", l.K}, {"v", l.V}, {"o", l.O}} {
			if p.pr == nil {
				continue
			}
			var notes []string
			if p.pr.Fused {
				notes = append(notes, "fused: "+p.pr.Split)
			}
			if p.pr.Transposed && !p.pr.Fused {
				notes = append(notes, "transposed")
			}
			if strings.HasPrefix(p.pr.RowOrder, formats.RowOrderInterleaved) {
				notes = append(notes, "RoPE rows un-permuted")
			}
			if p.pr.LoRARank > 0 {
				notes = append(notes, fmt.Sprintf("ΔW=%g·B·A r=%d", p.pr.LoRAScale, p.pr.LoRARank))
			}
			bias := "-"
			if p.pr.Bias != nil {
				bias = "yes"
			}
			layer := ""
			if p.name == "q" || (l.Q == nil && p.name == "k") {
				layer = fmt.Sprint(l.Index)
			}
			rows = append(rows, []string{layer, p.name, names(p.pr.Tensors, " + "),
				fmt.Sprintf("[%d, %d]", p.pr.Shape[0], p.pr.Shape[1]), termui.Name(p.pr.DType), bias, strings.Join(notes, "; ")})
		}
	}
	b.WriteString(termui.Table([]string{"layer", "", "tensor", "shape", "dtype", "bias", "notes"}, rows,
		[]bool{true, false, false, false, false, false, false}, s.Styled))
	if len(rep.OtherStacks) > 0 {
		b.WriteString(termui.Dim("other layer stacks found but not shown: "+names(rep.OtherStacks, ", "), s.Styled) + "\n")
	}
	_, err := fmt.Fprint(s.Out, b.String())
	return err
}

// names joins identifiers from a file, each as termui.Name prints it.
func names(xs []string, sep string) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = termui.Name(x)
	}
	return strings.Join(out, sep)
}
