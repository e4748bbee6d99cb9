package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/attn"
	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/inspect/circuits"
	"github.com/qkvdev/qkv/internal/htmlreport"
	"github.com/qkvdev/qkv/internal/outfile"
	"github.com/qkvdev/qkv/internal/termui"
)

// ReportOptions are the options of qkv report.
type ReportOptions struct {
	IO    *Streams
	Model ModelInput
	Out   string // the HTML file; "-": standard output
	Fast  bool
	// Circuits is "auto" (composition when its estimate is under
	// reportCircuitsAuto), "on" or "off".
	Circuits string
	// Tokens or Text, when set, add attention patterns of that input
	// (the forward pass) for AttnLayers ("": every layer).
	Tokens     []int
	Text       string
	AttnLayers string
	Workers    int
	JSON       bool
	Thresholds inspect.Thresholds
}

// reportCircuitsAuto: --circuits auto computes composition scores when
// they are estimated to take less than this many seconds (a variable for
// tests).
var reportCircuitsAuto = 600.0

// NewCmdReport builds qkv report; runF (nil: reportRun) does the work.
func NewCmdReport(s *Streams, runF func(context.Context, *ReportOptions) error) *cobra.Command {
	opts := &ReportOptions{IO: s}
	var (
		mf     modelFlags
		tokens string
	)
	c := &cobra.Command{
		Use:   "report PATH -o report.html",
		Short: "One self-contained HTML page: summary, findings, spectra, ESD fits, heads, composition, attention",
		Long: `Write one self-contained HTML file (no network, no scripts, no fonts: every
figure is inline SVG drawn by qkv) about a checkpoint: the model summary and
findings first; statistics across layers; per-head heatmaps of norms,
effective ranks and QK/OV circuits; head-composition matrices (as qkv
circuits computes them); attention patterns of --text or --tokens (the real
forward pass, as qkv attn runs it); and per layer and projection the
singular-value spectrum and the eigenvalue spectral density with its fitted
power law (as inspect --esd fits it). It reads on a phone and prints.

Stdout gets the verdict, the findings and what was written (stderr when the
page itself goes to stdout, -o -).

Composition scores cost (H·d + KV·(d+dv))·d_model·H·dv multiply-adds per
pair of layers: --circuits auto (the default) computes them when that is
estimated at under ten minutes on this machine and otherwise leaves them
out, saying so on stderr and in the page; --circuits on computes them
whatever the cost, --circuits off never does. --fast skips full spectra of
large matrices (no spectrum or ESD plots for them).`,
		Example: `  qkv report testdata/tiny-llama -o report.html
  qkv report model.gguf -o report.html --text "The capital of France is"
  qkv report ./big-model -o report.html --fast --circuits off
  qkv report ./model -o - > report.html`,
		Args:    exactArgs(1),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			if opts.Out == "" {
				return usageError("-o FILE: name the HTML file to write (- for standard output)")
			}
			if err := checkOutput("-o", opts.Out); err != nil {
				return err
			}
			need := ""
			if opts.Fast {
				need = "--fast leaves it out"
			}
			if err := checkAlphaFlags(c, opts.Thresholds, need); err != nil {
				return err
			}
			switch opts.Circuits {
			case "auto", "on", "off":
			default:
				return usageError("--circuits must be auto, on or off, not %q", opts.Circuits)
			}
			if c.Flags().Changed("text") && c.Flags().Changed("tokens") {
				return usageError("give one input: --text or --tokens")
			}
			if c.Flags().Changed("text") && opts.Text == "" {
				return usageError("--text: no text")
			}
			if tokens != "" {
				var err error
				if opts.Tokens, err = parseInts("--tokens", tokens); err != nil {
					return err
				}
			}
			if opts.AttnLayers != "" && opts.Tokens == nil && opts.Text == "" {
				return usageError("--attn-layers: give --text or --tokens for the attention patterns")
			}
			in, err := mf.resolve(args[0])
			if err != nil {
				return err
			}
			opts.Model = in
			return runOr(c, runF, reportRun, opts)
		},
	}
	mf.add(c)
	f := c.Flags()
	f.StringVarP(&opts.Out, "out", "o", "", "the HTML file to write (- for standard output)")
	f.BoolVar(&opts.Fast, "fast", false, "skip full spectra of large matrices (Lanczos estimates; no spectrum or ESD plots for them)")
	f.StringVar(&opts.Circuits, "circuits", "auto", "composition scores: auto (when estimated under 10 minutes), on or off")
	f.StringVar(&opts.Text, "text", "", "attention patterns of this text, tokenized with the checkpoint's tokenizer")
	f.StringVar(&tokens, "tokens", "", "attention patterns of these comma-separated token ids")
	f.StringVar(&opts.AttnLayers, "attn-layers", "", "layers whose attention patterns are drawn, e.g. 0,5-7 (default all)")
	f.IntVar(&opts.Workers, "workers", 0, "layers analysed at once (default: number of CPUs)")
	f.BoolVar(&opts.JSON, "json", false, "print what was written as one JSON document (schema qkv.report/v1)")
	addThresholdFlags(c, &opts.Thresholds)
	addAlphaFlags(c, &opts.Thresholds)
	return c
}

// reportDoc is report's --json: what was written.
type reportDoc struct {
	Schema string `json:"schema"`
	Provenance
	Out      string `json:"out"`
	Bytes    int64  `json:"bytes"`
	Sections struct {
		Layers      int      `json:"layers"`
		Spectra     int      `json:"spectra"`
		ESDFits     int      `json:"esd_fits"`
		HeadMaps    int      `json:"head_maps"`
		Composition []string `json:"composition"`
		Attention   []int    `json:"attention_layers"`
	} `json:"sections"`
	Findings []inspect.Finding `json:"findings"`
	Notes    []string          `json:"notes"`
}

// reportRun analyses the checkpoint and writes the page.
func reportRun(ctx context.Context, o *ReportOptions) error {
	s := o.IO
	ck, m, err := o.Model.open(ctx)
	if err != nil {
		return err
	}
	defer ck.Close()
	if err := refuseCheckpointFile(ck, "-o", o.Out); err != nil {
		return err
	}
	g := m.Geometry()
	headsKnown := m.HeadsKnown() == nil
	var notes []string
	warn := func(msg string) {
		notes = append(notes, msg)
		fmt.Fprintln(s.Err, "qkv: warning: "+termui.Clean(msg))
	}

	// The attention input is resolved first: a tokenizer that is missing
	// fails before the long work.
	var tk *tokenInput
	var attnLayers []int
	if o.Tokens != nil || o.Text != "" {
		if !headsKnown {
			return m.HeadsKnown()
		}
		if tk, err = resolveTokens(ck, m, &AttnInput{Tokens: o.Tokens, Text: o.Text}); err != nil {
			return err
		}
		if attnLayers, err = parseLayers(o.AttnLayers, m.LayerIndices()); err != nil {
			return usageError("--attn-%v", strings.TrimPrefix(err.Error(), "--"))
		}
	}

	// Statistics, spectra and heavy-tail fits of every matrix.
	bar := newProgress(s, "report: inspect", "layers")
	bar.Start(len(m.LayerIndices()))
	rep, err := inspect.Run(ctx, inspect.FromFactors(m), inspect.Options{Heads: headsKnown, Spectrum: true, ESD: !o.Fast, Fast: o.Fast,
		Workers: o.Workers, Thresholds: o.Thresholds, Progress: bar.Set}, nil)
	bar.Done()
	if err != nil {
		return err
	}
	d := htmlreport.FromInspect(rep, o.Model.Path)
	d.Generator = "qkv " + Version
	for _, a := range g.Assumptions {
		warn(unsupportedText(a))
	}

	// Composition scores, when the cost allows.
	var cr *circuits.Result
	switch {
	case o.Circuits == "off":
		d.Notes = append(d.Notes, "Composition scores not computed (--circuits off).")
	case !headsKnown:
		notes = append(notes, "Composition scores need the head counts, which the checkpoint does not give (--n-heads).")
	case m.IsAdapter:
		notes = append(notes, "Composition scores are not computed for a LoRA adapter: they need a model's full weights.")
	case len(m.LayerIndices()) < 2:
		notes = append(notes, "Composition scores need two layers or more.")
	default:
		cost := circuitsCost(g, len(m.LayerIndices()), true)
		est := estimateSeconds(cost)
		if o.Circuits == "auto" && est > reportCircuitsAuto {
			warn(fmt.Sprintf("composition scores left out: %.2g multiply-adds, about %s on this machine; --circuits on computes them", cost, humanDuration(est)))
			break
		}
		if est > costNoticeSeconds {
			fmt.Fprintln(s.Err, termui.Clean(costNotice(g, len(m.LayerIndices()), true, cost, est)))
		}
		cbar := newProgress(s, "report: composition", "pairs of layers")
		n := len(m.LayerIndices())
		cbar.Start(n * (n - 1) / 2)
		cr, err = circuits.Compute(ctx, m, circuits.Options{Progress: cbar.Set})
		cbar.Done()
		if err != nil {
			return &formats.Error{File: o.Model.Path, Offset: -1, Err: err}
		}
		for _, w := range cr.Warnings {
			notes = append(notes, "Composition: "+w)
		}
		d.Composition = htmlreport.FromCircuits(cr)
	}

	// Attention patterns of the input, from the forward pass.
	if tk != nil {
		input := "tokens " + strings.Trim(strings.ReplaceAll(fmt.Sprint(tk.ids), " ", ","), "[]")
		if o.Text != "" {
			input = fmt.Sprintf("text %q (%d tokens)", o.Text, len(tk.ids))
		}
		if _, err := attn.ForwardSupported(m); err != nil {
			warn("attention patterns left out: " + err.Error())
		} else {
			abar := newProgressLine(s)
			abar.Show("report: forward pass")
			fr, err := attn.Forward(m, tk.ids, attn.ForwardOptions{Layers: attnLayers,
				Input: attn.InputInfo{Kind: "tokens", TokenIDs: tk.ids, Tokens: tk.pieces}})
			abar.Done()
			if err != nil {
				return &formats.Error{File: o.Model.Path, Offset: -1, Err: err}
			}
			d.Attention = htmlreport.FromAttn(fr.Results, tk.texts, input)
		}
	}
	d.Notes = append(d.Notes, notes...)

	// The page.
	f, err := outfile.Create(o.Out, s.Out)
	if err != nil {
		return flagged("-o", err)
	}
	defer f.Abort()
	cw := &countingWriter{w: f}
	if err := htmlreport.Render(cw, d); err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		return flagged("-o", err)
	}

	doc := reportDoc{Schema: "qkv.report/v1", Provenance: newProvenance(ck), Out: o.Out, Bytes: cw.n, Findings: rep.Findings, Notes: d.Notes}
	if doc.Notes == nil {
		doc.Notes = []string{}
	}
	sec := &doc.Sections
	sec.Layers = len(d.Layers)
	for _, l := range d.Layers {
		for _, mx := range l.Matrices {
			if len(mx.SV) > 0 {
				sec.Spectra++
			}
			if mx.ESD != nil {
				sec.ESDFits++
			}
		}
	}
	sec.HeadMaps = len(d.Heads)
	sec.Composition = []string{}
	for _, c := range d.Composition {
		sec.Composition = append(sec.Composition, c.Name)
	}
	sec.Attention = []int{}
	if d.Attention != nil {
		for _, l := range d.Attention.Layers {
			sec.Attention = append(sec.Attention, l.Index)
		}
	}
	// The summary goes where the page does not.
	out := s.Out
	if outfile.IsStdout(o.Out) {
		out = s.Err
	}
	if o.JSON {
		return termui.WriteJSON(out, doc)
	}
	if rep.Model.Arch != "" {
		rep.Model.Arch = termui.Name(rep.Model.Arch)
	}
	return reportSummary{rep: rep, doc: &doc, cr: cr}.Render(out, s.style())
}

// checkpointFiles are the files of a model folder qkv (or the model's
// other readers) read besides the tensors: an output must never replace
// one.
var checkpointFiles = []string{"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
	"special_tokens_map.json", "adapter_config.json", "tokenizer.model", "vocab.json", "vocab.txt", "merges.txt", "added_tokens.json"}

// refuseCheckpointFile refuses an output path that names one of the
// input's files: its tensor files (refuseInputAsOutput), and in the
// checkpoint's local folder the files a model is read with (config.json,
// tokenizer.json, …) and every weight or index file.
func refuseCheckpointFile(ck *formats.Checkpoint, flag, out string) error {
	if outfile.IsStdout(out) {
		return nil
	}
	if err := refuseInputAsOutput(ck, flag, out); err != nil {
		return err
	}
	ost, err := os.Stat(out)
	if err != nil || ck.Remote() || ck.Dir == "" {
		return nil // a new file, or a folder qkv does not write in
	}
	dst, err1 := os.Stat(filepath.Dir(out))
	cst, err2 := os.Stat(ck.Dir)
	if err1 != nil || err2 != nil || !os.SameFile(dst, cst) || !ost.Mode().IsRegular() {
		return nil
	}
	name := strings.ToLower(filepath.Base(out))
	for _, ext := range []string{".safetensors", ".gguf", ".index.json", ".bin", ".pt", ".pth", ".model"} {
		if strings.HasSuffix(name, ext) {
			return usageError("%s %s is one of the input's files; qkv never writes its inputs", flag, out)
		}
	}
	if slices.Contains(checkpointFiles, name) {
		return usageError("%s %s is one of the input's files; qkv never writes its inputs", flag, out)
	}
	return nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// reportSummary is report's text: the verdict and the findings (as
// inspect's report opens), then what the page holds.
type reportSummary struct {
	rep *inspect.Report
	doc *reportDoc
	cr  *circuits.Result
}

var _ termui.Renderer = reportSummary{}

func (r reportSummary) Render(w io.Writer, st termui.Style) error {
	var b strings.Builder
	if err := r.rep.RenderFindings(&b, st); err != nil {
		return err
	}
	d, sec := r.doc, r.doc.Sections
	var parts []string
	parts = append(parts, fmt.Sprintf("%s with %s", termui.Plural(int64(sec.Layers), "layer"), termui.Plural(int64(sec.Spectra), "spectrum plot")))
	if sec.ESDFits > 0 {
		parts = append(parts, termui.Plural(int64(sec.ESDFits), "power-law fit"))
	}
	if sec.HeadMaps > 0 {
		parts = append(parts, termui.Plural(int64(sec.HeadMaps), "head heatmap"))
	}
	if len(sec.Composition) > 0 {
		c := "composition (" + strings.Join(sec.Composition, ", ") + ")"
		if r.cr != nil && len(r.cr.Layers) > 1 {
			v := r.cr.Raw
			if r.cr.LNFolded != nil {
				v = r.cr.LNFolded
			}
			if top := v.Top(r.cr.Layers, 1); len(top) > 0 {
				p := top[0]
				c += fmt.Sprintf(", strongest %s %s %s → %s", p.Mode, termui.Num(p.Score), headLabel(p.Layer1, p.Head1), headLabel(p.Layer2, p.Head2))
			}
		}
		parts = append(parts, c)
	}
	if len(sec.Attention) > 0 {
		parts = append(parts, "attention patterns of "+termui.Plural(int64(len(sec.Attention)), "layer"))
	}
	where := termui.Name(d.Out)
	if outfile.IsStdout(d.Out) {
		where = "standard output"
	}
	// The path as given, whole, on its own line.
	b.WriteString("\nWrote " + where + " (" + termui.Bytes(d.Bytes) + ")\n")
	tx := func(s string) string { return s }
	if st.ASCII && !st.Styled {
		tx = inspect.ASCII
	}
	b.WriteString(termui.Wrap(tx("The page holds "+strings.Join(parts, ", ")+"."), st.Cols(), "  "))
	b.WriteString("\n")
	for _, n := range d.Notes {
		b.WriteString(termui.Wrap(tx("Note: "+termui.Clean(n)), st.Cols(), "  "))
		b.WriteString("\n")
	}
	text := b.String()
	if st.ASCII {
		text = inspect.ASCII(text)
	}
	_, err := io.WriteString(w, text)
	return err
}
