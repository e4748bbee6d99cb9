package cmd

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"sort"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/safetensors"
	"github.com/qkvdev/qkv/internal/termui"
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

// extractRun decodes the selected layers and writes their arrays as it
// goes: the file's header comes first, from the shapes the layers will have
// (extractPlan), then each layer is decoded (one ahead of the writer) and
// written and forgotten, so that memory holds about three layers whatever
// the model's depth.
func extractRun(ctx context.Context, o *ExtractOptions) error {
	ck, m, err := o.Model.open(ctx)
	if err != nil {
		return err
	}
	defer ck.Close()
	if err := refuseCheckpointFile(ck, "-o", o.Out); err != nil {
		return err
	}
	sel, err := parseLayers(o.Layers, m.LayerIndices())
	if err != nil {
		return err
	}
	plan, err := extractPlan(m, sel, o.Matrices)
	if err != nil {
		return err
	}
	if len(plan) == 0 {
		return usageError("nothing to extract from the selected layers and matrices")
	}
	// safetensors.Write lays tensors out sorted by name; a layer's tensors
	// ("layers.12.k" ... "layers.12.v") are adjacent in that order, so the
	// layers are decoded in the order their first tensor is written.
	sort.Slice(plan, func(a, b int) bool { return plan[a].name < plan[b].name })
	var order []int
	for k, p := range plan {
		if k == 0 || plan[k-1].layer != p.layer {
			order = append(order, p.layer)
		}
	}
	bar := newProgress(o.IO, "extract", "layers")
	ls := newLayerStream(ctx, m, order, o.Matrices, bar)
	defer ls.stop()
	ts := make([]safetensors.WriteTensor, len(plan))
	for k, p := range plan {
		ts[k] = safetensors.WriteTensor{Name: p.name, DType: dtype.F32, Shape: p.shape, Size: 4 * elements(p.shape),
			Write: func(w io.Writer) error {
				data, err := ls.tensor(p)
				if err != nil {
					return err
				}
				return safetensors.WriteFloat32s(w, data)
			}}
	}
	g := m.Geometry()
	meta := [][2]string{{"source", filepath.Base(o.Model.Path)}, {"written_by", "qkv " + Version},
		{"convention", "rows=out features, cols=in features; Q/K rows in Hugging Face (half-split) order"},
		{"arch", g.Arch}, {"n_heads", fmt.Sprint(g.NHeads)}, {"n_kv_heads", fmt.Sprint(g.NKVHeads)}, {"head_dim", fmt.Sprint(g.HeadDim)}}
	size, err := writeF32Safetensors(o.IO, "-o", o.Out, ts, meta)
	o.IO.clearProgress()
	if err == nil {
		reportWrote(o.IO, o.Out, len(ts), size)
	}
	return err
}

func elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// plannedTensor is one array extract will write: its name, layer and shape.
type plannedTensor struct {
	name  string
	layer int
	shape []int64
}

// extractPlan lists, without decoding anything, the arrays
// formats.Model.Extracted gives for the selected layers: the same names and
// shapes, from the layers' sources. The writer checks every array against
// its plan (a difference is an error, never a wrong file), and the zoo
// tests compare the files with the references.
func extractPlan(m *formats.Model, layers []int, projs []formats.Projection) ([]plannedTensor, error) {
	g := m.Geometry()
	var out []plannedTensor
	for _, i := range layers {
		ls := m.Layer(i)
		if ls == nil {
			return nil, fmt.Errorf("%s: no layer %d", m.Checkpoint.Path, i)
		}
		pre := fmt.Sprintf("layers.%d.", i)
		add := func(name string, shape ...int64) {
			out = append(out, plannedTensor{pre + name, i, shape})
		}
		vec := func(name string, t *formats.Tensor) {
			if t != nil {
				add(name, t.Elements())
			}
		}
		want := map[formats.Projection]bool{}
		for _, p := range projs {
			want[p] = true
			ps := ls.Proj(p)
			if ps == nil {
				continue
			}
			suffix := ""
			if m.IsAdapter {
				suffix = "_delta"
			}
			add(string(p)+suffix, int64(ps.Out), int64(ps.In))
			if ps.Bias != nil {
				n := ps.Bias.Elements()
				if ps.Rows != nil {
					n = int64(len(ps.Rows))
				}
				add(string(p)+"_bias", n)
			}
		}
		if want[formats.ProjQ] {
			vec("q_norm", ls.QNorm)
		}
		if want[formats.ProjK] {
			vec("k_norm", ls.KNorm)
		}
		if want[formats.ProjQ] || want[formats.ProjK] {
			vec("sinks", ls.Sinks)
		}
		ml, geo := ls.MLA, g.MLA
		if ml == nil || geo == nil {
			continue
		}
		d := int64(g.DModel)
		h, nope, rope, vd := int64(g.NHeads), int64(geo.QKNopeHeadDim), int64(geo.QKRopeHeadDim), int64(geo.VHeadDim)
		kvr, qr := int64(geo.KVLoraRank), int64(geo.QLoraRank)
		if want[formats.ProjQ] && ml.QA != nil {
			add("q_a", qr, d)
			vec("q_a_norm", ml.QANorm)
			add("q_b", h*(nope+rope), qr)
		}
		if want[formats.ProjK] || want[formats.ProjV] {
			add("kv_a", kvr+rope, d)
			vec("kv_a_norm", ml.KVANorm)
			add("kv_b", h*(nope+vd), kvr)
		}
		if want[formats.ProjK] {
			add("k_nope", h*nope, d)
			add("k_rope", rope, d)
		}
	}
	return out, nil
}

// layerStream decodes layers in a given order, one ahead of the writer, and
// hands out their arrays; a layer is dropped when the writer moves on.
type layerStream struct {
	m     *formats.Model
	projs []formats.Projection
	next  chan streamedLayer
	quit  chan struct{}
	done  chan struct{}
	bar   *termui.Progress
	total int

	cur     streamedLayer
	written int
}

type streamedLayer struct {
	index  int
	arrays map[string]formats.ExtractedTensor
	err    error
}

func newLayerStream(ctx context.Context, m *formats.Model, order []int, projs []formats.Projection, bar *termui.Progress) *layerStream {
	s := &layerStream{m: m, projs: projs, next: make(chan streamedLayer, 1), quit: make(chan struct{}), done: make(chan struct{}),
		bar: bar, total: len(order), cur: streamedLayer{index: -1}}
	go func() {
		defer close(s.done)
		defer close(s.next)
		for _, i := range order {
			select {
			case <-s.quit:
				return
			default:
			}
			sl := streamedLayer{index: i}
			if err := ctx.Err(); err != nil {
				sl.err = err
			} else if l, err := m.LoadLayer(i); err != nil {
				sl.err = err
			} else {
				sl.arrays = map[string]formats.ExtractedTensor{}
				for _, e := range m.Extracted(l, projs) {
					sl.arrays[e.Name] = e
				}
			}
			select {
			case s.next <- sl:
			case <-s.quit:
				return
			}
			if sl.err != nil {
				return
			}
		}
	}()
	s.bar.Set(0, s.total)
	return s
}

// tensor returns the planned array's values, decoding its layer if the
// writer has reached a new one.
func (s *layerStream) tensor(p plannedTensor) ([]float32, error) {
	if s.cur.index != p.layer {
		if s.cur.index >= 0 {
			s.written++
			s.bar.Set(s.written, s.total)
		}
		s.cur = streamedLayer{index: -1} // the last layer's arrays can go
		// Collect them now: the peak is then the layers in flight, the same
		// at any depth, not wherever the collector's pacing left it (±30%
		// between runs); one collection of a small live heap per layer
		// costs far less than decoding the layer.
		runtime.GC()
		sl, ok := <-s.next
		switch {
		case !ok:
			return nil, fmt.Errorf("layer %d: not decoded", p.layer)
		case sl.err != nil:
			return nil, sl.err
		case sl.index != p.layer:
			return nil, fmt.Errorf("layer %d: decoded layer %d instead", p.layer, sl.index)
		}
		s.cur = sl
	}
	e, ok := s.cur.arrays[p.name]
	if !ok || !slices.Equal(e.Shape, p.shape) {
		// The plan and the decoded layer disagree: refuse rather than
		// write a file whose header does not describe its data.
		return nil, fmt.Errorf("%s: decoded as shape %v, planned %v (please report this)", p.name, e.Shape, p.shape)
	}
	return e.Data, nil
}

// stop ends the decoding goroutine and waits for it.
func (s *layerStream) stop() {
	close(s.quit)
	for range s.next {
	}
	<-s.done
}
