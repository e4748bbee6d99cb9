package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/attn"
	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/tokenizer"
	"github.com/qkvdev/qkv/internal/infile"
	"github.com/qkvdev/qkv/internal/outfile"
	"github.com/qkvdev/qkv/internal/termui"
)

// AttnInput is where attn's input comes from: exactly one of Random (T
// rows), Tokens, Text, RandomRepeat or File is set.
type AttnInput struct {
	Random int     // T rows of seeded standard normal values × Scale
	Seed   uint64  // of Random and RandomRepeat
	Scale  float64 // of Random
	Tokens []int   // token ids
	Text   string  // text, tokenized with the checkpoint's tokenizer
	// RandomRepeat: BOS, n random token ids and the same n again (the
	// induction test).
	RandomRepeat int
	File         string // a safetensors file holding Tensor, [T, d_model]
	Tensor       string
}

// tokenInput says whether the input is token ids (given, from text, or
// random repeated ones), which the forward pass can start from.
func (in *AttnInput) tokenInput() bool {
	return in.Tokens != nil || in.Text != "" || in.RandomRepeat > 0
}

// AttnOptions are the options of qkv attn, resolved: the input chosen,
// the norm and mask decided.
type AttnOptions struct {
	IO    *Streams
	Model ModelInput
	Layer int
	All   bool
	Input AttnInput
	// DefaultInput: no input flag was given and Input is the default
	// --random 8 (said on stderr, so no one mistakes it for a real input).
	DefaultInput bool
	// Mode is attn.InputModeForward (the layers read the residual stream
	// the blocks below produce) or attn.InputModeRaw (each reads Input).
	Mode string
	// Logits runs the whole model and shows the most likely next tokens
	// (forward mode).
	Logits   bool
	Norm     bool  // raw mode: apply the layer's pre-attention norm
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
	inputFlags := []string{"random", "tokens", "text", "random-repeat", "input"}
	c := &cobra.Command{
		Use:   "attn PATH [--layer N | --all] [--tokens IDS | --text TEXT | --random-repeat N | --random T | --input FILE]",
		Short: "Rerun attention on sample inputs and show each head's pattern",
		Long: `Rerun one layer's attention (or, with --all, every layer's) from the weights
alone, as the architecture defines it: the optional pre-attention norm; Q/K/V
with biases; Q/K norms (per head or over the whole projection, Gemma's 1 + w);
RoPE (Hugging Face rotate_half, or the model's own interleaved pairs) with rope
scaling (linear, dynamic, YaRN, LongRoPE, Llama 3) and per-layer bases, or
ALiBi; GQA/MQA head sharing; the causal mask for decoders and sliding or
chunked windows on the layers that have them; the score scale the model uses;
logit softcapping; attention sinks; exact multi-head latent attention (MLA)
from its factors; softmax and the output projection. Shows a heatmap of each
head's T×T pattern (side by side as many as the terminal's width holds) and,
per head: entropy (nats), mean max probability, sink mass (attention to
position 0), previous-token score, diagonal score and the largest
pre-softmax logit. The report opens with one line: the architecture, the layers,
the input and the most notable heads (highest sink mass, strongest
previous-token and induction heads). With --all each layer is written as
soon as it is computed — text, JSON and --out alike — and then forgotten, so
memory holds one layer whatever the depth; the notable heads across layers
close the report.

Inputs: --tokens 1,15,2 (token ids), --text "..." (tokenized with the
checkpoint's own tokenizer, special tokens added), --random-repeat N (BOS, N
random ids from --seed and the same N again: each head gets an induction
score), --random T (seeded standard normal × --scale; Go's PCG, not torch's)
or --input FILE.safetensors[:TENSOR] (a [T, d_model] tensor, default name "x").
With none of them, attn runs on --random 8 (--seed, default 0) in raw mode and
says so on stderr: the patterns of random rows, not of any text.

--input-mode forward (the default for token inputs) runs the real model: each
layer reads the residual stream the blocks below produce (norms, attention,
MLP, residual adds as the architecture's modeling code does them), one block
decoded at a time; --logits runs every block and the LM head and lists the
most likely next tokens. --input-mode raw (the default for --random and
--input) feeds every layer the same input: for tokens, the embedding rows the
first layer receives; the pre-norm is then on for token inputs, off otherwise
(--norm).

A model with a setting qkv does not implement is refused (exit 3), naming
it; where the file does not say something qkv needs (a GGUF without gemma3's
query_pre_attn_scalar or sliding pattern), qkv follows llama.cpp and warns
on stderr.`,
		Example: `  qkv attn testdata/tiny-llama --tokens 1,5,9,12,7 
  qkv attn model.gguf --all --text "The capital of France is" --logits
  qkv attn model.gguf --all --random-repeat 20 --seed 1 --json
  qkv attn model.gguf --all --random 16 --seed 7 --json
  qkv attn ./gpt2 --layer 3 --tokens 464,3290,318 --heads 0,5 --out attn.safetensors`,
		Args:    exactArgs(1),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			changed := c.Flags().Changed
			in := &opts.Input
			nInputs := 0
			for _, flag := range inputFlags {
				if changed(flag) {
					nInputs++
				}
			}
			if nInputs > 1 {
				return usageError("give one input: --random, --tokens, --text, --random-repeat or --input")
			}
			if changed("random") && in.Random < 1 {
				return usageError("--random must be at least 1, not %d", in.Random)
			}
			if changed("random-repeat") && in.RandomRepeat < 1 {
				return usageError("--random-repeat must be at least 1, not %d", in.RandomRepeat)
			}
			if changed("text") && in.Text == "" {
				return usageError("--text: no text")
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
				in.Random, opts.DefaultInput = defaultRandomRows, true
			}
			if tokens != "" {
				var err error
				if in.Tokens, err = parseInts("--tokens", tokens); err != nil {
					return err
				}
			}
			switch norm {
			case "on":
				opts.Norm = true
			case "off":
			case "auto":
				opts.Norm = in.tokenInput()
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
			// The forward pass starts from tokens; it is the default for
			// them, and the rerun of each layer on one input otherwise.
			switch opts.Mode {
			case "":
				opts.Mode = attn.InputModeRaw
				if in.tokenInput() {
					opts.Mode = attn.InputModeForward
				}
			case attn.InputModeForward:
				if !in.tokenInput() {
					return usageError("--input-mode forward starts from tokens: give --tokens, --text or --random-repeat")
				}
			case attn.InputModeRaw:
			default:
				return usageError("--input-mode must be forward or raw, not %q", opts.Mode)
			}
			if opts.Mode == attn.InputModeForward && changed("norm") {
				return usageError("--norm applies to --input-mode raw: in the forward pass each layer applies its own norms")
			}
			if opts.Logits && opts.Mode != attn.InputModeForward {
				return usageError("--logits needs the forward pass (--tokens, --text or --random-repeat, --input-mode forward)")
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
	fl.BoolVar(&opts.All, "all", false, "rerun every layer (forward mode: each reads the residual stream below it; raw mode: each the same input)")
	fl.IntVar(&opts.Input.Random, "random", 0, "input: T rows of seeded standard normal values")
	fl.Float64Var(&opts.Input.Scale, "scale", 1, "standard deviation of --random values")
	fl.Uint64Var(&opts.Input.Seed, "seed", 0, "seed of --random and --random-repeat")
	fl.StringVar(&tokens, "tokens", "", "input: comma-separated token ids")
	fl.StringVar(&opts.Input.Text, "text", "", "input: text, tokenized with the checkpoint's tokenizer (special tokens added)")
	fl.IntVar(&opts.Input.RandomRepeat, "random-repeat", 0, "input: BOS, N random token ids (--seed) and the same N again; adds each head's induction score")
	fl.StringVar(&opts.Mode, "input-mode", "", "forward (each layer reads the residual stream of the blocks below; default for token inputs) or raw (each layer reads the input)")
	fl.BoolVar(&opts.Logits, "logits", false, "forward pass: run every block and the LM head, show the most likely next tokens (and write logits with --out)")
	fl.StringVar(&input, "input", "", "input: FILE.safetensors[:TENSOR] holding a [T, d_model] tensor (default TENSOR x)")
	fl.StringVar(&norm, "norm", "auto", "raw mode: pre-attention norm on, off, or auto (on for token inputs)")
	fl.StringVar(&causal, "causal", "auto", "causal mask: true, false, or auto (the architecture's)")
	fl.StringVar(&heads, "heads", "", "heads to draw, e.g. 0,3 (default all)")
	fl.BoolVar(&opts.JSON, "json", false, "print one JSON document (schema qkv.attn/v1)")
	fl.BoolVar(&opts.Patterns, "patterns", false, "include every head's T×T probabilities in the JSON")
	fl.StringVarP(&opts.Out, "out", "o", "", "write layers.{i}.probs [heads, T, T], layers.{i}.out [T, d_model] and x (forward: also layers.{i}.hidden, logits) to this safetensors file")
	return c
}

// defaultRandomRows is the input of attn given none: --random 8.
const defaultRandomRows = 8

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

// attnRun reruns the selected layers on the input and reports them as it
// goes: in forward mode from the residual stream the blocks below produce,
// in raw mode each layer on the same input. Each layer is written — its
// text section, its part of the JSON document, its tensors in --out — as
// soon as it is computed and then forgotten, so memory holds one layer's
// probabilities (and in forward mode one block's weights) whatever the
// depth.
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
	// Refused before any work: a setting the rerun (or the forward pass)
	// does not model would make every number wrong.
	var spec *formats.ForwardSpec
	if o.Mode == attn.InputModeForward {
		if spec, err = attn.ForwardSupported(m); err != nil {
			return &formats.Error{File: path, Offset: -1, Err: err}
		}
	} else if err := attn.CheckSupported(g); err != nil {
		return &formats.Error{File: path, Offset: -1, Err: err}
	}
	for _, a := range g.Assumptions {
		// Wrapped to the width: a terminal would break it mid-word.
		fmt.Fprintln(s.Err, termui.Wrap("qkv: warning: "+unsupportedText(a), max(s.Width, attn.MinWidth), "  "))
	}
	if o.DefaultInput {
		fmt.Fprintln(s.Err, termui.Wrap(fmt.Sprintf("qkv: no input given: using --random %d --seed %d (choose one with --tokens, --text, --random-repeat, --random or --input)",
			o.Input.Random, o.Input.Seed), max(s.Width, attn.MinWidth), "  "))
	}
	layers := []int{o.Layer}
	if o.All {
		layers = m.LayerIndices()
	} else if m.Layer(o.Layer) == nil {
		return usageError("--layer %d: the model has %s", o.Layer, rangeString(m.LayerIndices()))
	}
	if o.Out != "" {
		if err := refuseCheckpointFile(ck, "--out", o.Out); err != nil {
			return err
		}
	}
	var tk *tokenInput
	if o.Input.tokenInput() {
		if tk, err = resolveTokens(ck, m, &o.Input); err != nil {
			return err
		}
	}

	if o.Mode == attn.InputModeForward {
		// Whatever the pass would refuse is refused before anything is
		// written: the reports stream.
		if err := attn.ForwardCheck(m, tk.ids, attn.ForwardOptions{Layers: layers, Logits: o.Logits}); err != nil {
			return &formats.Error{File: path, Offset: -1, Err: err}
		}
		if _, err := attn.EmbedTokens(m, tk.ids); err != nil {
			return err
		}
	}

	// The input, and what every layer will be run with.
	run := &attnStream{o: o, path: path, tk: tk, layers: layers}
	runOpt := attn.Options{Causal: o.Causal}
	var x formats.Matrix
	if o.Mode == attn.InputModeForward {
		runOpt.Input = attn.InputInfo{Kind: "tokens", TokenIDs: tk.ids, Tokens: tk.pieces}
		run.T, run.labels = len(tk.ids), tk.texts
	} else {
		if x, runOpt.Input, run.labels, err = attnInput(ck, m, g, &o.Input, tk); err != nil {
			return err
		}
		runOpt.NoNorm = !o.Norm
		run.T = x.Rows
	}
	if o.Heads != nil {
		for _, h := range o.Heads {
			if h < 0 || h >= g.NHeads {
				return usageError("--heads: head %d out of range (the model has %s: 0..%d)", h, termui.Plural(int64(g.NHeads), "head"), g.NHeads-1)
			}
		}
	}
	settings := make([]attn.Settings, len(layers))
	for i, l := range layers {
		if settings[i], err = attn.LayerSettings(g, l, run.T, runOpt); err != nil {
			return &formats.Error{File: path, Offset: -1, Err: fmt.Errorf("layer %d: %v", l, err)}
		}
	}

	// The outputs, opened before any layer runs: each is written as the
	// layers come.
	if o.Out != "" {
		vocab := int64(0)
		if o.Logits {
			head, err := m.LMHead()
			if err != nil {
				return err
			}
			vocab = head.Shape[0]
		}
		f, err := outfile.Create(o.Out, s.Out)
		if err != nil {
			return flagged("--out", err)
		}
		defer f.Abort()
		meta := [][2]string{{"source", filepath.Base(path)}, {"written_by", "qkv " + Version}, {"input_mode", o.Mode}}
		tensors := attnOutLayout(o.Mode, layers, run.T, g.DModel, g.NHeads, spec, o.Logits, vocab)
		if run.out, err = attn.NewOutWriter(f, tensors, meta); err != nil {
			return flagged("--out", err)
		}
		run.outFile = f
	}
	if o.JSON {
		p := newProvenance(ck)
		head := attn.Document{Schema: attn.Schema, Source: p.Source, QKV: p.QKV}
		if run.doc, err = attn.StartDocument(s.Out, head, settings, o.Patterns); err != nil {
			return err
		}
	} else {
		run.info = attn.RunInfo{Arch: g.Arch, Layers: len(m.LayerIndices()), Shown: layers,
			Heads: g.NHeads, T: run.T, Input: runOpt.Input.Kind, Mode: o.Mode}
		if len(layers) > 1 {
			// Each layer is written as it is computed: the notable heads
			// close the report.
			if err := (attn.RunView{Run: run.info, Later: true}).Render(s.Out, s.style()); err != nil {
				return err
			}
			fmt.Fprintln(s.Out)
		}
	}
	defer func() { run.progress.done() }() // the line made below, whatever happens
	var fr *attn.ForwardResult
	if o.Mode == attn.InputModeForward {
		want := map[int]bool{}
		for _, l := range layers {
			want[l] = true
		}
		blocks := slices.Max(layers) + 1
		if o.Logits {
			blocks = spec.Layers
		}
		run.progress = newAttnProgress(s, "forward pass", "blocks", blocks)
		fr, err = attn.Forward(m, tk.ids, attn.ForwardOptions{Layers: layers, Logits: o.Logits, Causal: o.Causal,
			Input: runOpt.Input, Stream: true, OnBlock: func(rec *attn.BlockRecord) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				if rec.Index == 0 {
					if err := run.write("x", rec.Hidden.Data); err != nil {
						return err
					}
				}
				if err := run.write(fmt.Sprintf("layers.%d.hidden", rec.Index), rec.Hidden.Data); err != nil {
					return err
				}
				if want[rec.Index] {
					if err := run.layer(rec.Attn); err != nil {
						return err
					}
				}
				run.progress.set(rec.Index + 1)
				return nil
			}})
		if err != nil {
			return run.failed(err)
		}
		if o.Logits {
			if err := run.write("logits", fr.Logits.Data); err != nil {
				return run.failed(err)
			}
		}
	} else {
		if err := run.write("x", x.Data); err != nil {
			return run.failed(err)
		}
		run.progress = newAttnProgress(s, "attn", "layers", len(layers))
		for k, i := range layers {
			if err := ctx.Err(); err != nil {
				return err
			}
			l, err := m.LoadLayer(i)
			if err != nil {
				return err
			}
			r, err := attn.Run(g, l, x, runOpt)
			if err != nil {
				return &formats.Error{File: path, Offset: -1, Err: fmt.Errorf("layer %d: %v", i, err)}
			}
			if err := run.layer(r); err != nil {
				return run.failed(err)
			}
			// The layer is written: its probabilities' memory serves the next.
			runOpt.Probs = r.ProbsBuffer()
			run.progress.set(k + 1)
		}
	}
	run.progress.done()

	var preds []attn.Prediction
	if fr != nil && o.Logits {
		preds = fr.Predictions(predictionsShown, tk.piece)
	}
	if o.JSON {
		var fwd *attn.ForwardDoc
		if fr != nil {
			fwd = &attn.ForwardDoc{Spec: fr.Spec}
			if preds != nil {
				after := len(tk.ids) - 1
				fwd.PredictionsAfter, fwd.Predictions = &after, preds
			}
		}
		// The reads are counted at the end, so the io block comes last.
		if err := run.doc.Finish(fwd, ioOf(ck)); err != nil {
			return err
		}
	} else {
		var texts []string
		for _, p := range preds {
			texts = append(texts, tk.text(p.ID))
		}
		if len(layers) == 1 {
			v := attn.RunView{Run: run.info, Notable: run.notable.List(), Next: preds, NextTexts: texts}
			if err := v.Render(s.Out, s.style()); err != nil {
				return err
			}
			fmt.Fprintln(s.Out)
			if _, err := s.Out.Write(run.single.Bytes()); err != nil {
				return err
			}
		} else {
			if err := (attn.NotableView{Notable: run.notable.List()}).Render(s.Out, s.style()); err != nil {
				return err
			}
			if preds != nil {
				fmt.Fprintln(s.Out)
			}
		}
		if preds != nil {
			after := tk.texts[len(tk.texts)-1]
			if err := (attn.PredictionsView{After: after, Predictions: preds, Texts: texts}).Render(s.Out, s.style()); err != nil {
				return err
			}
		}
	}
	if run.out != nil {
		if err := run.out.Close(); err != nil {
			return flagged("--out", err)
		}
		return flagged("--out", run.outFile.Commit())
	}
	return nil
}

// attnStream is a run of attn writing each layer as it is computed.
type attnStream struct {
	o      *AttnOptions
	path   string
	tk     *tokenInput
	layers []int
	T      int
	labels []string // the heatmaps' token texts, or nil
	info   attn.RunInfo
	// Where layers go: the JSON document, or the text report; and --out.
	doc     *attn.DocWriter
	out     *attn.OutWriter
	outFile *outfile.File
	notable attn.Notables
	// single holds the one layer's section of a one-layer text report
	// until the opening line is written.
	single   bytes.Buffer
	progress *attnProgress
}

// attnProgress is a run's progress line on a terminal's stderr: layers (or
// blocks of the forward pass) done of all, the rate, the time left and
// the time spent. The line is cleared before each layer is written to
// stdout, which may be the same terminal, and drawn again after; it is a
// message (termui.Progress.Show) so that clearing it loses no count.
type attnProgress struct {
	p           *termui.Progress
	label, unit string
	total       int
	start       time.Time
	n           int
}

// newAttnProgress starts the line (nil, which draws nothing, when stderr
// is not a terminal).
func newAttnProgress(s *Streams, label, unit string, total int) *attnProgress {
	p := newProgress(s, label, unit)
	if p == nil {
		return nil
	}
	a := &attnProgress{p: p, label: label, unit: unit, total: total, start: time.Now()}
	a.set(0)
	return a
}

func (a *attnProgress) set(done int) {
	if a == nil {
		return
	}
	a.n = done
	a.draw()
}

func (a *attnProgress) draw() {
	elapsed := time.Since(a.start)
	msg := fmt.Sprintf("%s %d/%d %s", a.label, a.n, a.total, a.unit)
	if a.n > 0 && a.n < a.total {
		rate := float64(a.n) / elapsed.Seconds()
		left := time.Duration(float64(a.total-a.n) / rate * float64(time.Second))
		msg += fmt.Sprintf("  %.3g/s  ETA %s", rate, termui.Duration(left))
	}
	a.p.Show(msg + "  " + termui.Duration(elapsed))
}

// clear takes the line off the screen until the next set.
func (a *attnProgress) clear() {
	if a != nil {
		a.p.Done()
	}
}

// done clears the line for good.
func (a *attnProgress) done() { a.clear() }

// write writes one tensor to --out (nothing without it).
func (r *attnStream) write(name string, parts ...[]float32) error {
	if r.out == nil {
		return nil
	}
	return r.out.Write(name, parts...)
}

// layer reports one layer's result and forgets it.
func (r *attnStream) layer(res *attn.Result) error {
	o, s := r.o, r.o.IO
	if r.tk != nil && r.tk.repeat > 0 {
		if _, err := attn.InductionScores(res, r.tk.start, r.tk.repeat); err != nil {
			return &formats.Error{File: r.path, Offset: -1, Err: err}
		}
	}
	r.notable.Add(res, o.Heads)
	if err := r.write(fmt.Sprintf("layers.%d.probs", res.Layer), attn.ProbsParts(res)...); err != nil {
		return err
	}
	if err := r.write(fmt.Sprintf("layers.%d.out", res.Layer), res.Out.Data); err != nil {
		return err
	}
	// The progress line shares the terminal: cleared before the layer is
	// written, drawn again by the next set.
	r.progress.clear()
	if r.doc != nil {
		if err := r.doc.Layer(res); err != nil {
			return writeError{err}
		}
		return nil
	}
	w := s.Out
	if len(r.layers) == 1 {
		// One layer: its section waits for the end of the run, so that the
		// opening line can state its notable heads (and the next token).
		w = &r.single
	}
	if err := (attn.View{Result: res, Labels: r.labels, Heads: o.Heads, Notable: len(r.layers) > 1}).Render(w, s.style()); err != nil {
		return writeError{err}
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return writeError{err}
	}
	return nil
}

// writeError is a failure to write the report, not the checkpoint's fault.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }
func (e writeError) Unwrap() error { return e.err }

// failed is the error of a run stopped by err: attn's own errors name the
// checkpoint; a write error is returned as it is.
func (r *attnStream) failed(err error) error {
	var we writeError
	if errors.As(err, &we) {
		return we.err
	}
	var fe *formats.Error
	var oe *outfile.Error
	var ue *exitError
	if errors.As(err, &fe) || errors.As(err, &oe) || errors.As(err, &ue) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &formats.Error{File: r.path, Offset: -1, Err: err}
}

// attnOutLayout lists what --out writes, in the order the run produces it:
// x; in forward mode layers.{i}.hidden for every block that runs; the
// requested layers' probabilities and outputs; the logits.
func attnOutLayout(mode string, layers []int, T, d, nh int, spec *formats.ForwardSpec, logits bool, vocab int64) []attn.OutTensor {
	mat := func(name string, rows, cols int64) attn.OutTensor {
		return attn.OutTensor{Name: name, Shape: []int64{rows, cols}}
	}
	t, dm := int64(T), int64(d)
	ts := []attn.OutTensor{mat("x", t, dm)}
	layer := func(i int) {
		ts = append(ts, attn.OutTensor{Name: fmt.Sprintf("layers.%d.probs", i), Shape: []int64{int64(nh), t, t}},
			mat(fmt.Sprintf("layers.%d.out", i), t, dm))
	}
	if mode != attn.InputModeForward {
		for _, i := range layers {
			layer(i)
		}
		return ts
	}
	want := map[int]bool{}
	for _, i := range layers {
		want[i] = true
	}
	blocks := slices.Max(layers) + 1
	if logits {
		blocks = spec.Layers
	}
	for i := 0; i < blocks; i++ {
		ts = append(ts, mat(fmt.Sprintf("layers.%d.hidden", i), t, dm))
		if want[i] {
			layer(i)
		}
	}
	if logits {
		ts = append(ts, mat("logits", t, vocab))
	}
	return ts
}

// predictionsShown is how many next tokens --logits lists.
const predictionsShown = 10

// tokenInput is a token input resolved: the ids; their pieces (the
// vocabulary's entries: the checkpoint's tokenizer, else the GGUF
// vocabulary, else the ids) and texts (what they stand for in text, which
// label the heatmaps); and for --random-repeat where the first copy
// starts and its length.
type tokenInput struct {
	ids           []int
	pieces, texts []string
	piece, text   func(id int) string // nil without a tokenizer
	start, repeat int
}

// resolveTokens turns --tokens, --text or --random-repeat into token ids
// with the checkpoint's own tokenizer where it has one.
func resolveTokens(ck *formats.Checkpoint, m *formats.Model, in *AttnInput) (*tokenInput, error) {
	tok, tokErr := tokenizer.FromCheckpoint(ck)
	tk := &tokenInput{}
	if tokErr == nil {
		tk.piece, tk.text = tok.Piece, tok.Text
	}
	switch {
	case in.Text != "":
		if tokErr != nil {
			return nil, &exitError{code: ExitInput, err: fmt.Errorf("--text needs the checkpoint's tokenizer: %v", tokErr)}
		}
		ids, err := tok.Encode(in.Text, tokenizer.EncodeOptions{AddSpecial: true, ParseSpecial: true})
		if err != nil {
			return nil, &exitError{code: ExitInput, err: fmt.Errorf("%s: %v", ck.Path, err)}
		}
		if len(ids) == 0 {
			return nil, usageError("--text: the text gives no tokens")
		}
		tk.ids = ids
	case in.RandomRepeat > 0:
		// Token ids are drawn above the low special ids (unk, BOS, EOS,
		// padding) where the tokenizer names them.
		vocab, bos, lo := m.Geometry().VocabSize, -1, 0
		if tokErr == nil {
			info := tok.Info
			vocab, bos = info.VocabSize, info.BOS
			for _, id := range []int{info.BOS, info.EOS, info.UNK, info.PAD, info.SEP, info.CLS} {
				if id >= 0 && id < 32 {
					lo = max(lo, id+1)
				}
			}
		}
		ids, start, err := attn.RandomRepeatTokens(in.RandomRepeat, vocab, lo, in.Seed, bos)
		if err != nil {
			return nil, usageError("--random-repeat: %v", err)
		}
		tk.ids, tk.start, tk.repeat = ids, start, in.RandomRepeat
	default:
		// Ids given on the command line are the user's to fix (exit 2);
		// the vocabulary is the embedding matrix's rows.
		if vocab := m.Geometry().VocabSize; vocab > 0 {
			for _, id := range in.Tokens {
				if id < 0 || id >= vocab {
					return nil, usageError("--tokens: id %d is outside the vocabulary (ids 0..%d)", id, vocab-1)
				}
			}
		}
		tk.ids = in.Tokens
	}
	if tk.piece != nil {
		tk.pieces, tk.texts = make([]string, len(tk.ids)), make([]string, len(tk.ids))
		for i, id := range tk.ids {
			tk.pieces[i], tk.texts[i] = tk.piece(id), tk.text(id)
		}
	} else {
		tk.pieces = tokenLabels(ck, tk.ids)
		tk.texts = tk.pieces
		tk.text = func(id int) string { return strconv.Itoa(id) }
	}
	return tk, nil
}

// attnInput builds the raw rerun's x from the chosen input, with labels
// for the heatmap.
func attnInput(ck *formats.Checkpoint, m *formats.Model, g formats.Geometry, in *AttnInput, tk *tokenInput) (formats.Matrix, attn.InputInfo, []string, error) {
	switch {
	case tk != nil:
		ids := tk.ids
		e, err := m.Embeddings(ids)
		if err != nil {
			return formats.Matrix{}, attn.InputInfo{}, nil, err
		}
		x, err := attn.BuildInput(attn.EmbeddingInput{TokenRows: e.TokenRows, TokenScale: e.TokenScale, Positions: e.Positions,
			TokenType: e.TokenType, NormWeight: e.NormWeight, NormBias: e.NormBias, NormEps: e.NormEps})
		if err != nil {
			return formats.Matrix{}, attn.InputInfo{}, nil, &formats.Error{File: ck.Path, Offset: -1, Err: err}
		}
		return x, attn.InputInfo{Kind: "tokens", TokenIDs: ids, Tokens: tk.pieces}, tk.texts, nil
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
