package cmd

import (
	"context"
	"errors"
	"sort"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect/diff"
	"github.com/qkvdev/qkv/internal/termui"
)

// DiffOptions are the options of qkv diff.
type DiffOptions struct {
	IO   *Streams
	A, B ModelInput
	// Format is "text", "markdown" or "json" (--json).
	Format string
	Fast   bool
	Worst  int
	// Thresholds fail the run (exit 1) when a projection crosses them.
	Thresholds []diff.Threshold
}

// NewCmdDiff builds qkv diff; runF (nil: diffRun) does the work.
func NewCmdDiff(s *Streams, runF func(context.Context, *DiffOptions) error) *cobra.Command {
	opts := &DiffOptions{IO: s}
	var mf modelFlags
	var format string
	var jsonOut bool
	var above, below []string
	c := &cobra.Command{
		Use:   "diff A B",
		Short: "Compare the attention projections of two checkpoints of one model",
		Long: `Compare two checkpoints of one model — base and fine-tune, or a safetensors
source and its GGUF conversion or quantization — layer by layer (matched by
index) and projection by projection (GGUF Q/K rows un-permuted first):
relative Frobenius error, cosine similarity, max abs difference, SNR in dB,
change of spectral norm and effective rank, and the effective rank of
ΔW = B − A. Projections present in only one checkpoint are listed. A matrix
holding NaN or Inf is counted and named, never compared or called identical.

Two checkpoints of different models (another width, head count or head
size, or no layer in common) are refused with exit status 3.

--fail-above METRIC=LIMIT and --fail-below METRIC=LIMIT (repeatable) make
diff a CI gate: it exits 1 when a projection's metric crosses a limit
(spectral_norm_change and effective_rank_change by absolute value), or when
it holds NaN or Inf or cannot be compared. Metrics: rel_fro, cosine,
max_abs, snr_db, spectral_norm_change, effective_rank_change,
delta_effective_rank. --format markdown writes the report for a pull request
comment.`,
		Example: `  qkv diff ./llama-hf llama-Q4_K_M.gguf
  qkv diff base/ finetuned/ --json | jq '.summary.worst'
  qkv diff ./llama-hf llama-Q4_K_M.gguf --fail-above rel_fro=0.05 --fail-below snr_db=25
  qkv diff base/ candidate/ --format markdown >> "$GITHUB_STEP_SUMMARY"`,
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
			if opts.Format, err = diffFormat(format, jsonOut); err != nil {
				return err
			}
			opts.Thresholds = nil
			for _, fl := range []struct {
				name, bound string
				values      []string
			}{{"--fail-above", diff.Above, above}, {"--fail-below", diff.Below, below}} {
				for _, v := range fl.values {
					t, err := diff.ParseThreshold(v, fl.bound)
					if err != nil {
						return usageError("%s: %v", fl.name, err)
					}
					opts.Thresholds = append(opts.Thresholds, t)
				}
			}
			if opts.Worst < 1 {
				return usageError("--worst must be at least 1, not %d", opts.Worst)
			}
			return runOr(c, runF, diffRun, opts)
		},
	}
	mf.add(c)
	c.Flags().BoolVar(&jsonOut, "json", false, "print one JSON document (schema qkv.diff/v1); the same as --format json")
	c.Flags().StringVar(&format, "format", "text", "output format: text, markdown (for a pull request comment) or json")
	c.Flags().StringArrayVar(&above, "fail-above", nil, "exit 1 when a projection's METRIC is above LIMIT: METRIC=LIMIT, e.g. rel_fro=0.05 (repeatable)")
	c.Flags().StringArrayVar(&below, "fail-below", nil, "exit 1 when a projection's METRIC is below LIMIT: METRIC=LIMIT, e.g. snr_db=25 (repeatable)")
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
	bar := newProgress(o.IO, "diff", "layers")
	bar.Start(len(ma.LayerIndices())) // Compare's first call says how many both have
	rep, err := diff.Compare(ctx, ma, mb, diff.Options{Fast: o.Fast, WorstCount: o.Worst, Progress: bar.Set})
	bar.Done()
	var mm *diff.MismatchError
	if errors.As(err, &mm) {
		return inputError("%s and %s: %v", o.A.Path, o.B.Path, err)
	}
	if err != nil {
		return err
	}
	rep.A, rep.B = o.A.Path, o.B.Path
	pv := newPairProvenance(ca, cb)
	rep.SourceA, rep.SourceB, rep.QKV, rep.IO = pv.SourceA, pv.SourceB, pv.QKV, pv.IO
	rep.Check(o.Thresholds)
	if ca.Format == cb.Format {
		// Same format: tensor names are comparable too; they join the
		// projections present in one checkpoint only.
		rep.OnlyInA, rep.OnlyInB = onlyIn(rep.OnlyInA, ca, cb), onlyIn(rep.OnlyInB, cb, ca)
	}
	switch o.Format {
	case "json":
		err = termui.WriteJSON(o.IO.Out, rep)
	case "markdown":
		err = rep.Markdown(o.IO.Out)
	default:
		err = rep.Render(o.IO.Out, o.IO.style())
	}
	if err != nil {
		return err
	}
	if !rep.Passed {
		return &findingsError{}
	}
	return nil
}

// diffFormat resolves --format and --json.
func diffFormat(format string, jsonOut bool) (string, error) {
	switch format {
	case "text", "markdown", "json":
	default:
		return "", usageError("--format must be text, markdown or json, not %q", format)
	}
	if jsonOut {
		if format != "text" && format != "json" {
			return "", usageError("--json and --format %s cannot be used together", format)
		}
		return "json", nil
	}
	return format, nil
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
