package cmd

import (
	"context"
	"sort"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect/diff"
	"github.com/qkvdev/qkv/internal/termui"
)

// DiffOptions are the options of qkv diff.
type DiffOptions struct {
	IO    *Streams
	A, B  ModelInput
	JSON  bool
	Fast  bool
	Worst int
}

// NewCmdDiff builds qkv diff; runF (nil: diffRun) does the work.
func NewCmdDiff(s *Streams, runF func(context.Context, *DiffOptions) error) *cobra.Command {
	opts := &DiffOptions{IO: s}
	var mf modelFlags
	c := &cobra.Command{
		Use:   "diff A B",
		Short: "Compare the attention projections of two checkpoints of one model",
		Long: `Compare two checkpoints of one model — base and fine-tune, or a safetensors
source and its GGUF conversion or quantization — layer by layer (matched by
index) and projection by projection (GGUF Q/K rows un-permuted first):
relative Frobenius error, cosine similarity, max abs difference, SNR in dB,
change of spectral norm and effective rank, and the effective rank of
ΔW = B − A. Projections present in only one checkpoint are listed.`,
		Example: `  qkv diff ./llama-hf llama-Q4_K_M.gguf
  qkv diff base/ finetuned/ --json | jq '.summary.worst'`,
		Args:    exactArgs(2),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			a, err := mf.resolve(args[0])
			if err != nil {
				return err
			}
			b, err := mf.resolve(args[1])
			if err != nil {
				return err
			}
			opts.A, opts.B = a, b
			return runOr(c, runF, diffRun, opts)
		},
	}
	mf.add(c)
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document (schema qkv.diff/v1)")
	c.Flags().BoolVar(&opts.Fast, "fast", false, "estimate spectral norms and effective ranks (Lanczos) instead of full spectra")
	c.Flags().IntVar(&opts.Worst, "worst", 5, "how many worst projections the summary names")
	return c
}

// diffRun compares the two checkpoints and prints the report.
func diffRun(ctx context.Context, o *DiffOptions) error {
	ca, ma, err := o.A.open(ctx)
	if err != nil {
		return err
	}
	defer ca.Close()
	cb, mb, err := o.B.open(ctx)
	if err != nil {
		return err
	}
	defer cb.Close()
	rep, err := diff.Compare(ctx, ma, mb, diff.Options{Fast: o.Fast, WorstCount: o.Worst})
	if err != nil {
		return err
	}
	rep.A, rep.B = o.A.Path, o.B.Path
	if ca.Format == cb.Format {
		// Same format: tensor names are comparable too; they join the
		// projections present in one checkpoint only.
		rep.OnlyInA, rep.OnlyInB = onlyIn(rep.OnlyInA, ca, cb), onlyIn(rep.OnlyInB, cb, ca)
	}
	if o.JSON {
		return termui.WriteJSON(o.IO.Out, rep)
	}
	// Tensor names and paths in the text are shown as termui prints names
	// (JSON above keeps them exact).
	for _, xs := range [][]string{rep.OnlyInA, rep.OnlyInB} {
		for i, n := range xs {
			xs[i] = termui.Name(n)
		}
	}
	rep.A, rep.B = termui.Clean(rep.A), termui.Clean(rep.B)
	return rep.Render(o.IO.Out, termui.Style{Styled: o.IO.Styled, Width: o.IO.Width})
}

// onlyIn adds the tensor names of a that b does not have to out, and sorts.
func onlyIn(out []string, a, b *formats.Checkpoint) []string {
	for _, t := range a.Tensors {
		if b.Tensor(t.Name) == nil {
			out = append(out, t.Name)
		}
	}
	sort.Strings(out)
	return out
}
