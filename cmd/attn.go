package cmd

import (
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
)

func init() { extraCommands = append(extraCommands, newAttnCmd) }

type attnFlags struct {
	mf       modelFlags
	layer    int
	all      bool
	random   int
	scale    float64
	seed     uint64
	tokens   string
	input    string
	norm     string
	causal   string
	heads    string
	asJSON   bool
	patterns bool
	out      string
	// changed reports whether a flag was given (zero values are defaults).
	changed func(name string) bool
}

func newAttnCmd(s *Streams) *cobra.Command {
	var f attnFlags
	c := &cobra.Command{
		Use:   "attn PATH [--layer N | --all] [--random T | --tokens IDS | --input FILE]",
		Short: "Rerun attention on sample inputs and show each head's pattern",
		Long: `Rerun one layer's attention (or, with --all, every layer's, each on the same
input) from the weights alone: optional pre-attention norm, Q/K/V with biases,
RoPE (Hugging Face rotate_half) or ALiBi as the architecture defines it,
GQA/MQA head sharing, causal mask for decoders, softmax(QKᵀ/√head_dim)V and
the output projection. Shows a heatmap of each head's T×T pattern and, per
head: entropy (nats), mean max probability, sink mass (attention to position
0), previous-token score, diagonal score and the largest pre-softmax logit.

Inputs: --random T (seeded standard normal × --scale; Go's PCG, not torch's),
--tokens 1,15,2 (the embedding rows the first layer receives, with learned
positions, token type and embedding LayerNorm where the architecture has
them), or --input FILE.safetensors[:TENSOR] (a [T, d_model] tensor, default
name "x"). The pre-norm is on by default for --tokens, off otherwise.`,
		Example: `  qkv attn testdata/tiny-llama --tokens 1,5,9,12,7 
  qkv attn model.gguf --all --random 16 --seed 7 --json
  qkv attn ./gpt2 --layer 3 --tokens 464,3290,318 --heads 0,5 --out attn.safetensors`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.changed = cmd.Flags().Changed
			return runAttn(s, args[0], &f)
		},
	}
	f.mf.add(c)
	fl := c.Flags()
	fl.IntVar(&f.layer, "layer", 0, "the layer to rerun")
	fl.BoolVar(&f.all, "all", false, "rerun every layer, each on the same input")
	fl.IntVar(&f.random, "random", 0, "input: T rows of seeded standard normal values")
	fl.Float64Var(&f.scale, "scale", 1, "standard deviation of --random values")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of --random")
	fl.StringVar(&f.tokens, "tokens", "", "input: comma-separated token ids")
	fl.StringVar(&f.input, "input", "", "input: FILE.safetensors[:TENSOR] holding a [T, d_model] tensor (default TENSOR x)")
	fl.StringVar(&f.norm, "norm", "auto", "pre-attention norm: on, off, or auto (on for --tokens)")
	fl.StringVar(&f.causal, "causal", "auto", "causal mask: true, false, or auto (the architecture's)")
	fl.StringVar(&f.heads, "heads", "", "heads to draw, e.g. 0,3 (default all)")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON document (schema qkv.attn/v1)")
	fl.BoolVar(&f.patterns, "patterns", false, "include every head's T×T probabilities in the JSON")
	fl.StringVarP(&f.out, "out", "o", "", "write layers.{i}.probs [heads, T, T], layers.{i}.out [T, d_model] and x to this safetensors file")
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

func runAttn(s *Streams, path string, f *attnFlags) error {
	if f.changed == nil { // called without cobra: a flag is given when it is not zero
		f.changed = func(name string) bool {
			switch name {
			case "random":
				return f.random != 0
			case "tokens":
				return f.tokens != ""
			case "input":
				return f.input != ""
			}
			return false
		}
	}
	nInputs := 0
	for _, flag := range []string{"random", "tokens", "input"} {
		if f.changed(flag) {
			nInputs++
		}
	}
	if nInputs > 1 {
		return usageError("give one input: --random, --tokens or --input")
	}
	if f.changed("random") && f.random < 1 {
		return usageError("--random must be at least 1, not %d", f.random)
	}
	if math.IsNaN(f.scale) || math.IsInf(f.scale, 0) || f.scale <= 0 {
		return usageError("--scale must be a positive finite number, not %s", strconv.FormatFloat(f.scale, 'g', -1, 64))
	}
	if f.changed("input") {
		if err := checkInputFile(f.input); err != nil {
			return err
		}
	}
	if f.out != "" {
		if outfile.IsStdout(f.out) {
			return usageError("--out %s: standard output carries attn's report; name a file to write", f.out)
		}
		if err := checkOutput("--out", f.out); err != nil {
			return err
		}
	}
	if nInputs == 0 {
		f.random = 8
	}
	var useNorm bool
	switch f.norm {
	case "on":
		useNorm = true
	case "off":
	case "auto":
		useNorm = f.tokens != ""
	default:
		return usageError("--norm must be on, off or auto")
	}
	var causal *bool
	switch f.causal {
	case "auto":
	case "true", "false":
		v := f.causal == "true"
		causal = &v
	default:
		return usageError("--causal must be true, false or auto")
	}
	var showHeads []int
	if f.heads != "" {
		var err error
		if showHeads, err = parseInts("--heads", f.heads); err != nil {
			return err
		}
	}
	ck, m, err := openModel(path, &f.mf)
	if err != nil {
		return err
	}
	defer ck.Close()
	if err := m.HeadsKnown(); err != nil {
		return err
	}
	g := m.Geometry()
	layers := []int{f.layer}
	if f.all {
		layers = m.LayerIndices()
	} else if m.Layer(f.layer) == nil {
		return usageError("--layer %d: the model has %s", f.layer, rangeString(m.LayerIndices()))
	}

	x, info, labels, err := attnInput(ck, m, g, f)
	if err != nil {
		return err
	}
	var results []*attn.Result
	for _, i := range layers {
		l, err := m.LoadLayer(i)
		if err != nil {
			return err
		}
		r, err := attn.Run(g, l, x, attn.Options{Causal: causal, NoNorm: !useNorm, Input: info})
		if err != nil {
			return &formats.Error{File: path, Offset: -1, Err: fmt.Errorf("layer %d: %v", i, err)}
		}
		results = append(results, r)
		if !f.asJSON {
			if err := attn.Render(s.Out, r, attn.RenderOptions{Styled: s.Styled, Width: s.Width, Labels: labels, Heads: showHeads}); err != nil {
				return usageError("%v", err)
			}
			fmt.Fprintln(s.Out)
		}
	}
	if f.out != "" {
		if err := refuseInputAsOutput(ck, "--out", f.out); err != nil {
			return err
		}
		if err := writeAttnOut(s, f.out, path, x, results); err != nil {
			return err
		}
	}
	if f.asJSON {
		return attn.WriteJSON(s.Out, attn.NewDocument(results, f.patterns))
	}
	return nil
}

// attnInput builds x from the chosen input flag, with labels for the heatmap.
func attnInput(ck *formats.Checkpoint, m *formats.Model, g formats.Geometry, f *attnFlags) (formats.Matrix, attn.InputInfo, []string, error) {
	switch {
	case f.tokens != "":
		ids, err := parseInts("--tokens", f.tokens)
		if err != nil {
			return formats.Matrix{}, attn.InputInfo{}, nil, err
		}
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
	case f.input != "":
		file, name := splitInput(f.input)
		in, err := formats.Open(file, formats.Options{})
		if err != nil {
			return formats.Matrix{}, attn.InputInfo{}, nil, err
		}
		defer in.Close()
		t := in.Tensor(name)
		if t == nil {
			return formats.Matrix{}, attn.InputInfo{}, nil, &formats.Error{File: file, Offset: -1, Err: fmt.Errorf("no tensor named %q (name another with FILE:TENSOR)", name)}
		}
		if len(t.Shape) != 2 || int(t.Shape[1]) != g.DModel {
			return formats.Matrix{}, attn.InputInfo{}, nil, &formats.Error{File: file, Tensor: name, Offset: -1, Err: fmt.Errorf("shape %v, want [T, %d]", t.Shape, g.DModel)}
		}
		vals, err := in.DecodeNew(t)
		if err != nil {
			return formats.Matrix{}, attn.InputInfo{}, nil, err
		}
		return formats.Matrix{Rows: int(t.Shape[0]), Cols: g.DModel, Data: vals}, attn.InputInfo{Kind: "user"}, nil, nil
	default:
		x, info, err := attn.RandomInput(f.random, g.DModel, f.seed, f.scale)
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
