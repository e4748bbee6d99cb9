package cmd

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/attn"
	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/safetensors"
	"github.com/qkvdev/qkv/internal/infile"
	"github.com/qkvdev/qkv/internal/outfile"
	"github.com/qkvdev/qkv/internal/termui"
)

// AttnInput is where attn's input x comes from: exactly one of Random
// (T rows), Tokens or File is set.
type AttnInput struct {
	Random int     // T rows of seeded standard normal values × Scale
	Seed   uint64  // of Random
	Scale  float64 // of Random
	Tokens []int   // token ids: the embedding rows the first layer receives
	File   string  // a safetensors file holding Tensor, [T, d_model]
	Tensor string
}

// AttnOptions are the options of qkv attn, resolved: the input chosen,
// the norm and mask decided.
type AttnOptions struct {
	IO       *Streams
	Model    ModelInput
	Layer    int
	All      bool
	Input    AttnInput
	Norm     bool  // apply the layer's pre-attention norm
	Causal   *bool // nil: the architecture's
	Heads    []int // heads to draw; nil: every head
	JSON     bool
	Patterns bool   // every head's T×T probabilities in the JSON
	Out      string // "": no arrays written
}

// NewCmdAttn builds qkv attn; runF (nil: attnRun) does the work.
func NewCmdAttn(s *Streams, runF func(context.Context, *AttnOptions) error) *cobra.Command {
	opts := &AttnOptions{IO: s}
	var (
		mf     modelFlags
		tokens string
		input  string
		norm   string
		causal string
		heads  string
	)
	c := &cobra.Command{
		Use:   "attn PATH [--layer N | --all] [--random T | --tokens IDS | --input FILE]",
		Short: "Rerun attention on sample inputs and show each head's pattern",
		Long: `Rerun one layer's attention (or, with --all, every layer's, each on the same
input) from the weights alone, as the architecture defines it: the optional
pre-attention norm; Q/K/V with biases; Q/K norms (per head or over the whole
projection, Gemma's 1 + w); RoPE (Hugging Face rotate_half, or the model's own
interleaved pairs) with rope scaling (linear, dynamic, YaRN, LongRoPE,
Llama 3) and per-layer bases, or ALiBi; GQA/MQA head sharing; the causal mask
for decoders and sliding or chunked windows on the layers that have them; the
score scale the model uses; logit softcapping; attention sinks; exact
multi-head latent attention (MLA) from its factors; softmax and the output
projection. Shows a heatmap of each head's T×T pattern and, per head: entropy
(nats), mean max probability, sink mass (attention to position 0),
previous-token score, diagonal score and the largest pre-softmax logit.

A model with a setting qkv does not implement is refused (exit 3), naming
it; where the file does not say something qkv needs (a GGUF without gemma3's
query_pre_attn_scalar or sliding pattern), qkv follows llama.cpp and warns
on stderr.

Inputs: --random T (seeded standard normal × --scale; Go's PCG, not torch's),
--tokens 1,15,2 (the embedding rows the first layer receives, with learned
positions, token type and embedding LayerNorm where the architecture has
them), or --input FILE.safetensors[:TENSOR] (a [T, d_model] tensor, default
name "x"). The pre-norm is on by default for --tokens, off otherwise.`,
		Example: `  qkv attn testdata/tiny-llama --tokens 1,5,9,12,7 
  qkv attn model.gguf --all --random 16 --seed 7 --json
  qkv attn ./gpt2 --layer 3 --tokens 464,3290,318 --heads 0,5 --out attn.safetensors`,
		Args:    exactArgs(1),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			changed := c.Flags().Changed
			in := &opts.Input
			nInputs := 0
			for _, flag := range []string{"random", "tokens", "input"} {
				if changed(flag) {
					nInputs++
				}
			}
			if nInputs > 1 {
				return usageError("give one input: --random, --tokens or --input")
			}
			if changed("random") && in.Random < 1 {
				return usageError("--random must be at least 1, not %d", in.Random)
			}
			if math.IsNaN(in.Scale) || math.IsInf(in.Scale, 0) || in.Scale <= 0 {
				return usageError("--scale must be a positive finite number, not %s", strconv.FormatFloat(in.Scale, 'g', -1, 64))
			}
			if changed("input") {
				if err := checkInputFile(input); err != nil {
					return err
				}
				in.File, in.Tensor = splitInput(input)
			}
			if opts.Out != "" {
				if outfile.IsStdout(opts.Out) {
					return usageError("--out %s: standard output carries attn's report; name a file to write", opts.Out)
				}
				if err := checkOutput("--out", opts.Out); err != nil {
					return err
				}
			}
			if nInputs == 0 {
				in.Random = 8
			}
			switch norm {
			case "on":
				opts.Norm = true
			case "off":
			case "auto":
				opts.Norm = tokens != ""
			default:
				return usageError("--norm must be on, off or auto")
			}
			switch causal {
			case "auto":
			case "true", "false":
				v := causal == "true"
				opts.Causal = &v
			default:
				return usageError("--causal must be true, false or auto")
			}
			if heads != "" {
				var err error
				if opts.Heads, err = parseInts("--heads", heads); err != nil {
					return err
				}
			}
			if tokens != "" {
				var err error
				if in.Tokens, err = parseInts("--tokens", tokens); err != nil {
					return err
				}
			}
			m, err := mf.resolve(args[0])
			if err != nil {
				return err
			}
			opts.Model = m
			return runOr(c, runF, attnRun, opts)
		},
	}
	mf.add(c)
	fl := c.Flags()
	fl.IntVar(&opts.Layer, "layer", 0, "the layer to rerun")
	fl.BoolVar(&opts.All, "all", false, "rerun every layer, each on the same input")
	fl.IntVar(&opts.Input.Random, "random", 0, "input: T rows of seeded standard normal values")
	fl.Float64Var(&opts.Input.Scale, "scale", 1, "standard deviation of --random values")
	fl.Uint64Var(&opts.Input.Seed, "seed", 0, "seed of --random")
	fl.StringVar(&tokens, "tokens", "", "input: comma-separated token ids")
	fl.StringVar(&input, "input", "", "input: FILE.safetensors[:TENSOR] holding a [T, d_model] tensor (default TENSOR x)")
	fl.StringVar(&norm, "norm", "auto", "pre-attention norm: on, off, or auto (on for --tokens)")
	fl.StringVar(&causal, "causal", "auto", "causal mask: true, false, or auto (the architecture's)")
	fl.StringVar(&heads, "heads", "", "heads to draw, e.g. 0,3 (default all)")
	fl.BoolVar(&opts.JSON, "json", false, "print one JSON document (schema qkv.attn/v1)")
	fl.BoolVar(&opts.Patterns, "patterns", false, "include every head's T×T probabilities in the JSON")
	fl.StringVarP(&opts.Out, "out", "o", "", "write layers.{i}.probs [heads, T, T], layers.{i}.out [T, d_model] and x to this safetensors file")
	return c
}

func parseInts(flag, spec string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(spec, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		v, err := strconv.Atoi(p)
		if err != nil {
			return nil, usageError("%s: %q is not an integer", flag, p)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, usageError("%s: no values in %q", flag, spec)
	}
	return out, nil
}

// attnRun reruns the selected layers on the input and prints the patterns.
func attnRun(ctx context.Context, o *AttnOptions) error {
	s := o.IO
	path := o.Model.Path
	ck, m, err := o.Model.open(ctx)
	if err != nil {
		return err
	}
	defer ck.Close()
	if err := m.HeadsKnown(); err != nil {
		return err
	}
	g := m.Geometry()
	// Refused before any work: a setting the rerun does not model would
	// make every number wrong.
	if err := attn.CheckSupported(g); err != nil {
		return &formats.Error{File: path, Offset: -1, Err: err}
	}
	for _, a := range g.Assumptions {
		fmt.Fprintln(s.Err, "qkv: warning: "+unsupportedText(a))
	}
	layers := []int{o.Layer}
	if o.All {
		layers = m.LayerIndices()
	} else if m.Layer(o.Layer) == nil {
		return usageError("--layer %d: the model has %s", o.Layer, rangeString(m.LayerIndices()))
	}

	x, info, labels, err := attnInput(ck, m, g, &o.Input)
	if err != nil {
		return err
	}
	var results []*attn.Result
	for _, i := range layers {
		l, err := m.LoadLayer(i)
		if err != nil {
			return err
		}
		r, err := attn.Run(g, l, x, attn.Options{Causal: o.Causal, NoNorm: !o.Norm, Input: info})
		if err != nil {
			return &formats.Error{File: path, Offset: -1, Err: fmt.Errorf("layer %d: %v", i, err)}
		}
		results = append(results, r)
		if !o.JSON {
			if err := (attn.View{Result: r, Labels: labels, Heads: o.Heads}).Render(s.Out, termui.Style{Styled: s.Styled, Width: s.Width}); err != nil {
				return usageError("%v", err)
			}
			fmt.Fprintln(s.Out)
		}
	}
	if o.Out != "" {
		if err := refuseInputAsOutput(ck, "--out", o.Out); err != nil {
			return err
		}
		if err := writeAttnOut(s, o.Out, path, x, results); err != nil {
			return err
		}
	}
	if o.JSON {
		return attn.WriteJSON(s.Out, attn.NewDocument(results, o.Patterns))
	}
	return nil
}

// attnInput builds x from the chosen input flag, with labels for the heatmap.
func attnInput(ck *formats.Checkpoint, m *formats.Model, g formats.Geometry, in *AttnInput) (formats.Matrix, attn.InputInfo, []string, error) {
	switch {
	case in.Tokens != nil:
		ids := in.Tokens
		e, err := m.Embeddings(ids)
		if err != nil {
			return formats.Matrix{}, attn.InputInfo{}, nil, err
		}
		x, err := attn.BuildInput(attn.EmbeddingInput{TokenRows: e.TokenRows, TokenScale: e.TokenScale, Positions: e.Positions,
			TokenType: e.TokenType, NormWeight: e.NormWeight, NormBias: e.NormBias, NormEps: e.NormEps})
		if err != nil {
			return formats.Matrix{}, attn.InputInfo{}, nil, &formats.Error{File: ck.Path, Offset: -1, Err: err}
		}
		labels := tokenLabels(ck, ids)
		return x, attn.InputInfo{Kind: "tokens", TokenIDs: ids, Tokens: labels}, labels, nil
	case in.File != "":
		file, name := in.File, in.Tensor
		src, err := formats.Open(file, formats.Options{})
		if err != nil {
			return formats.Matrix{}, attn.InputInfo{}, nil, err
		}
		defer src.Close()
		t := src.Tensor(name)
		if t == nil {
			return formats.Matrix{}, attn.InputInfo{}, nil, &formats.Error{File: file, Offset: -1, Err: fmt.Errorf("no tensor named %q (name another with FILE:TENSOR)", name)}
		}
		if len(t.Shape) != 2 || int(t.Shape[1]) != g.DModel {
			return formats.Matrix{}, attn.InputInfo{}, nil, &formats.Error{File: file, Tensor: name, Offset: -1, Err: fmt.Errorf("shape %v, want [T, %d]", t.Shape, g.DModel)}
		}
		vals, err := src.DecodeNew(t)
		if err != nil {
			return formats.Matrix{}, attn.InputInfo{}, nil, err
		}
		return formats.Matrix{Rows: int(t.Shape[0]), Cols: g.DModel, Data: vals}, attn.InputInfo{Kind: "user"}, nil, nil
	default:
		x, info, err := attn.RandomInput(in.Random, g.DModel, in.Seed, in.Scale)
		if err != nil {
			return formats.Matrix{}, info, nil, usageError("%v", err)
		}
		return x, info, nil, nil
	}
}

// splitInput reads --input FILE[:TENSOR] (default tensor "x").
func splitInput(spec string) (file, tensor string) {
	if i := strings.LastIndex(spec, ":"); i > 0 && !strings.HasSuffix(spec, ".safetensors") {
		return spec[:i], spec[i+1:]
	}
	return spec, "x"
}

// checkInputFile refuses an --input that is not a regular file before the
// model is opened: a folder would open as a checkpoint (and fail with a
// message about its own files), a FIFO would block.
func checkInputFile(spec string) error {
	file, _ := splitInput(spec)
	st, err := os.Stat(file)
	switch {
	case err != nil:
		return &exitError{code: ExitInput, err: fmt.Errorf("--input %s: %v", file, infile.Cause(err))}
	case st.IsDir():
		return usageError("--input %s: is a folder; give a .safetensors file holding a [T, d_model] tensor", file)
	case !st.Mode().IsRegular():
		return usageError("--input %s: not a regular file (%s)", file, infile.Kind(st.Mode()))
	}
	return nil
}

// tokenLabels names token ids from the GGUF vocabulary when there is one.
func tokenLabels(ck *formats.Checkpoint, ids []int) []string {
	labels := make([]string, len(ids))
	for i, id := range ids {
		labels[i] = strconv.Itoa(id)
	}
	g := ck.GGUF()
	if g == nil {
		return labels
	}
	kv, ok := g.Lookup("tokenizer.ggml.tokens")
	if !ok || kv.Type != gguf.Array || kv.ElemType != gguf.String {
		return labels
	}
	for i, id := range ids {
		if uint64(id) >= kv.Count {
			continue
		}
		vals, err := ck.MetaArray(kv, id, 1)
		if err == nil && len(vals) == 1 {
			if s, ok := vals[0].(string); ok {
				labels[i] = s
			}
		}
	}
	return labels
}

func writeAttnOut(s *Streams, out, source string, x formats.Matrix, results []*attn.Result) error {
	ts := []safetensors.WriteTensor{safetensors.F32Tensor("x", []int64{int64(x.Rows), int64(x.Cols)}, x.Data)}
	for _, r := range results {
		nh := len(r.Probs)
		T := x.Rows
		probs := make([]float32, 0, nh*T*T)
		for _, head := range r.Probs {
			for _, row := range head {
				probs = append(probs, row...)
			}
		}
		ts = append(ts,
			safetensors.F32Tensor(fmt.Sprintf("layers.%d.probs", r.Layer), []int64{int64(nh), int64(T), int64(T)}, probs),
			safetensors.F32Tensor(fmt.Sprintf("layers.%d.out", r.Layer), []int64{int64(r.Out.Rows), int64(r.Out.Cols)}, r.Out.Data))
	}
	return writeF32Safetensors(s, "--out", out, ts, [][2]string{{"source", filepath.Base(source)}, {"written_by", "qkv " + Version}})
}
