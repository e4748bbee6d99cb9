package cmd

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/safetensors"
)

func newExtractCmd(s *Streams) *cobra.Command {
	var (
		mf       modelFlags
		out      string
		layers   string
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
GGUF Q/K rows permuted by llama.cpp are un-permuted.`,
		Example: `  qkv extract testdata/tiny-llama -o proj.safetensors
  qkv extract model-Q4_K_M.gguf -o proj.safetensors --layers 0-3,7 --matrices q,k`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("extract needs -o OUT.safetensors")
			}
			if err := checkOutput("-o", out); err != nil {
				return err
			}
			projs, err := parseProjections(matrices)
			if err != nil {
				return err
			}
			ck, m, err := openModel(args[0], &mf)
			if err != nil {
				return err
			}
			defer ck.Close()
			if err := refuseInputAsOutput(ck, "-o", out); err != nil {
				return err
			}
			sel, err := parseLayers(layers, m.LayerIndices())
			if err != nil {
				return err
			}
			var ts []safetensors.WriteTensor
			for _, i := range sel {
				l, err := m.LoadLayer(i)
				if err != nil {
					return err
				}
				for _, p := range projs {
					mat := l.Matrix(p)
					if mat.Empty() {
						continue
					}
					name := fmt.Sprintf("layers.%d.%s", i, p)
					if m.IsAdapter {
						name += "_delta"
					}
					ts = append(ts, safetensors.F32Tensor(name, []int64{int64(mat.Rows), int64(mat.Cols)}, mat.Data))
					if b := l.Bias(p); b != nil {
						ts = append(ts, safetensors.F32Tensor(fmt.Sprintf("layers.%d.%s_bias", i, p), []int64{int64(len(b))}, b))
					}
				}
			}
			if len(ts) == 0 {
				return usageError("nothing to extract from the selected layers and matrices")
			}
			g := m.Geometry()
			meta := [][2]string{{"source", filepath.Base(args[0])}, {"written_by", "qkv " + Version},
				{"convention", "rows=out features, cols=in features; Q/K rows in Hugging Face (half-split) order"},
				{"arch", g.Arch}, {"n_heads", fmt.Sprint(g.NHeads)}, {"n_kv_heads", fmt.Sprint(g.NKVHeads)}, {"head_dim", fmt.Sprint(g.HeadDim)}}
			return writeF32Safetensors(s, "-o", out, ts, meta)
		},
	}
	mf.add(c)
	c.Flags().StringVarP(&out, "output", "o", "", "the safetensors file to write")
	c.Flags().StringVar(&layers, "layers", "", "layers to extract, e.g. 0-3,7 (default all)")
	c.Flags().StringVar(&matrices, "matrices", "", "projections to extract, e.g. q,k (default q,k,v,o)")
	return c
}

var _ = formats.ProjQ
