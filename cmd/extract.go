package cmd

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/safetensors"
)

// ExtractOptions are the options of qkv extract.
type ExtractOptions struct {
	IO       *Streams
	Model    ModelInput
	Out      string // a file, or "-" for standard output
	Layers   string // "0-3,7"; "": every layer
	Matrices []formats.Projection
}

// NewCmdExtract builds qkv extract; runF (nil: extractRun) does the work.
func NewCmdExtract(s *Streams, runF func(context.Context, *ExtractOptions) error) *cobra.Command {
	opts := &ExtractOptions{IO: s}
	var (
		mf       modelFlags
		matrices string
	)
	c := &cobra.Command{
		Use:   "extract PATH -o OUT.safetensors",
		Short: "Write every layer's W_Q, W_K, W_V, W_O as float32 in one convention",
		Long: `Extract the attention projections to a safetensors file of float32 tensors
named layers.{i}.q, .k, .v, .o (and layers.{i}.q_bias ... where the model has
biases; layers.{i}.q_delta ... for LoRA adapters), in qkv's convention:
rows = output features, columns = input features (nn.Linear layout), Q/K rows
in Hugging Face order, head h of q/k/v = rows [h*hd, (h+1)*hd), head h of o =
columns [h*hd, (h+1)*hd). Fused tensors are split by the architecture's rule;
GGUF Q/K rows permuted by llama.cpp are un-permuted.

With q or k selected, the vectors the rerun needs come too: layers.{i}.q_norm
and .k_norm (the effective multipliers: 1 + w where the model stores w) and
layers.{i}.sinks. For latent attention (MLA), q, k and v are the effective
matrices and the stored factors are written beside them: q_a, q_a_norm, q_b,
kv_a, kv_a_norm, kv_b, and k_nope, k_rope (the key's per-head and shared
rows). The names are those of the reference files.

-o - writes the file to standard output.`,
		Example: `  qkv extract testdata/tiny-llama -o proj.safetensors
  qkv extract model-Q4_K_M.gguf -o proj.safetensors --layers 0-3,7 --matrices q,k
  qkv extract model.gguf -o - --layers 0 | python3 -c 'import sys; ...'`,
		Args:    exactArgs(1),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			if err := requireOutput("extract", opts.Out); err != nil {
				return err
			}
			projs, err := parseProjections(matrices)
			if err != nil {
				return err
			}
			in, err := mf.resolve(args[0])
			if err != nil {
				return err
			}
			opts.Model, opts.Matrices = in, projs
			return runOr(c, runF, extractRun, opts)
		},
	}
	mf.add(c)
	c.Flags().StringVarP(&opts.Out, "output", "o", "", `the safetensors file to write ("-": standard output)`)
	c.Flags().StringVar(&opts.Layers, "layers", "", "layers to extract, e.g. 0-3,7 (default all)")
	c.Flags().StringVar(&matrices, "matrices", "", "projections to extract, e.g. q,k (default q,k,v,o)")
	return c
}

// extractRun decodes the selected layers and writes their arrays.
func extractRun(ctx context.Context, o *ExtractOptions) error {
	ck, m, err := o.Model.open(ctx)
	if err != nil {
		return err
	}
	defer ck.Close()
	if err := refuseInputAsOutput(ck, "-o", o.Out); err != nil {
		return err
	}
	sel, err := parseLayers(o.Layers, m.LayerIndices())
	if err != nil {
		return err
	}
	var ts []safetensors.WriteTensor
	for _, i := range sel {
		l, err := m.LoadLayer(i)
		if err != nil {
			return err
		}
		for _, e := range m.Extracted(l, o.Matrices) {
			ts = append(ts, safetensors.F32Tensor(e.Name, e.Shape, e.Data))
		}
	}
	if len(ts) == 0 {
		return usageError("nothing to extract from the selected layers and matrices")
	}
	g := m.Geometry()
	meta := [][2]string{{"source", filepath.Base(o.Model.Path)}, {"written_by", "qkv " + Version},
		{"convention", "rows=out features, cols=in features; Q/K rows in Hugging Face (half-split) order"},
		{"arch", g.Arch}, {"n_heads", fmt.Sprint(g.NHeads)}, {"n_kv_heads", fmt.Sprint(g.NKVHeads)}, {"head_dim", fmt.Sprint(g.HeadDim)}}
	return writeF32Safetensors(o.IO, "-o", o.Out, ts, meta)
}
