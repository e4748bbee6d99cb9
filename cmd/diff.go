package cmd

import (
	"encoding/json"
	"sort"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/inspect/diff"
	"github.com/qkvdev/qkv/internal/termui"
)

func init() { extraCommands = append(extraCommands, newDiffCmd) }

func newDiffCmd(s *Streams) *cobra.Command {
	var (
		mf     modelFlags
		asJSON bool
		fast   bool
		worst  int
	)
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
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ca, ma, err := openModel(args[0], &mf)
			if err != nil {
				return err
			}
			defer ca.Close()
			cb, mb, err := openModel(args[1], &mf)
			if err != nil {
				return err
			}
			defer cb.Close()
			rep, err := diff.Compare(cmd.Context(), ma, mb, diff.Options{Fast: fast, WorstCount: worst})
			if err != nil {
				return err
			}
			rep.A, rep.B = args[0], args[1]
			if ca.Format == cb.Format {
				// Same format: tensor names are comparable too.
				na, nb := map[string]bool{}, map[string]bool{}
				for _, t := range ca.Tensors {
					na[t.Name] = true
				}
				for _, t := range cb.Tensors {
					nb[t.Name] = true
					if !na[t.Name] {
						rep.OnlyInB = append(rep.OnlyInB, t.Name)
					}
				}
				for _, t := range ca.Tensors {
					if !nb[t.Name] {
						rep.OnlyInA = append(rep.OnlyInA, t.Name)
					}
				}
				sort.Strings(rep.OnlyInA)
				sort.Strings(rep.OnlyInB)
			}
			if asJSON {
				enc := json.NewEncoder(s.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			// Tensor names and paths in the text are shown as termui prints
			// names (JSON above keeps them exact).
			for _, xs := range [][]string{rep.OnlyInA, rep.OnlyInB} {
				for i, n := range xs {
					xs[i] = termui.Name(n)
				}
			}
			rep.A, rep.B = termui.Clean(rep.A), termui.Clean(rep.B)
			return rep.Render(s.Out, s.Styled)
		},
	}
	mf.add(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON document (schema qkv.diff/v1)")
	c.Flags().BoolVar(&fast, "fast", false, "estimate spectral norms and effective ranks (Lanczos) instead of full spectra")
	c.Flags().IntVar(&worst, "worst", 5, "how many worst projections the summary names")
	return c
}
