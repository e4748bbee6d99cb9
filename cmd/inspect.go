package cmd

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/termui"
)

// InspectOptions are the options of qkv inspect.
type InspectOptions struct {
	IO         *Streams
	Model      ModelInput
	Layers     string // "0-3,7"; "": every layer
	Heads      bool   // show the per-head tables and JSON
	Spectrum   bool
	Fast       bool
	ESD        bool // heavy-tail metrics and the α findings
	JSON       bool
	Markdown   bool // --format markdown
	RankTol    float64
	Workers    int
	Thresholds inspect.Thresholds
	// Shard, when set, makes the run one part of a sharded run (a partial
	// report, always JSON); ShardSource names where it came from: the
	// flag, or the environment variable of a Kubernetes Indexed Job or a
	// Slurm array.
	Shard       *inspect.Shard
	ShardSource string
}

// NewCmdInspect builds qkv inspect; runF (nil: inspectRun) does the work.
func NewCmdInspect(s *Streams, runF func(context.Context, *InspectOptions) error) *cobra.Command {
	opts := &InspectOptions{IO: s}
	var (
		mf     modelFlags
		shard  string
		format string
	)
	c := &cobra.Command{
		Use:   "inspect PATH",
		Short: "Norms, spectra and ranks of every attention matrix and head, with findings",
		Long: `For every layer's W_Q, W_K, W_V and W_O (and with --heads every head block, the
QK and OV circuits of every head, and the most similar pair of heads):
shape, Frobenius norm, max |w|, mean, std, NaN/Inf/zero counts, singular
values, spectral norm, numerical rank, effective rank, stable rank and
condition number — definitions in the README. Findings (NaN/Inf, dead,
duplicated and rank-collapsed heads, outlier spectral norms) are listed
first, after the verdict line; thresholds are flags. Head statistics are computed whenever the
head counts are known, so head findings are complete without --heads,
which adds the per-head tables (and JSON "heads", "circuits").

Layers go through a bounded pool of workers: memory stays near workers ×
the largest layer whatever the model's size.

--shard I/N analyses only shard I's contiguous block of layers and prints a
partial report (JSON), which 'qkv merge' joins with the other parts into the
report the unsharded run gives, byte for byte. Without --shard, a Kubernetes
Indexed Job (JOB_COMPLETION_INDEX with JOB_COMPLETIONS) or a Slurm job array
(SLURM_ARRAY_TASK_ID with its MIN/MAX or COUNT) gives the shard, named on
stderr; --shard none runs whole whatever the environment says.`,
		Example: `  qkv inspect testdata/tiny-llama
  qkv inspect model.gguf --heads --layers 0-3
  qkv inspect ./model --json --heads --spectrum > report.json
  qkv inspect ./model --format markdown >> "$GITHUB_STEP_SUMMARY"
  qkv inspect big-model.gguf --fast
  qkv inspect ./model --shard 0/4 > part0.json`,
		Args:    exactArgs(1),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			need := ""
			if !opts.ESD {
				need = "give --esd"
			}
			if err := checkAlphaFlags(c, opts.Thresholds, need); err != nil {
				return err
			}
			if opts.ESD && opts.Fast {
				return usageError("%v", inspect.ErrESDFast)
			}
			switch format {
			case "text":
			case "json":
				opts.JSON = true
			case "markdown":
				if opts.JSON {
					return usageError("--json and --format markdown: give one")
				}
				opts.Markdown = true
			default:
				return usageError("--format must be text, json or markdown, not %q", format)
			}
			in, err := mf.resolve(args[0])
			if err != nil {
				return err
			}
			opts.Model = in
			sh, source, sharded, err := inspect.ShardFromEnv(shard, os.Getenv)
			if err != nil {
				return usageError("%v", err)
			}
			if sharded {
				opts.Shard, opts.ShardSource = &sh, source
			}
			return runOr(c, runF, inspectRun, opts)
		},
	}
	mf.add(c)
	f := c.Flags()
	f.StringVar(&opts.Layers, "layers", "", "layers to inspect, e.g. 0-3,7 (default all)")
	f.BoolVar(&opts.Heads, "heads", false, "the per-head tables and QK/OV circuits (head findings are computed without it)")
	f.BoolVar(&opts.Spectrum, "spectrum", false, "include every singular value in the JSON (sv)")
	f.BoolVar(&opts.Fast, "fast", false, "skip full spectra: spectral norm by Lanczos, effective rank estimated with bounds")
	f.BoolVar(&opts.ESD, "esd", false, "heavy-tail metrics of every matrix (WeightWatcher's power-law fit of the eigenvalues: α, D, xmin, α̂, …) and the α findings")
	f.BoolVar(&opts.JSON, "json", false, "print one JSON document (schema qkv.inspect/v1); the same as --format json")
	f.StringVar(&format, "format", "text", "text, json or markdown (GitHub-flavoured, for a pull request comment or a CI summary)")
	f.Float64Var(&opts.RankTol, "rank-tol", 0, "absolute tolerance for rank (default sv[0]·max(m,n)·eps(float32))")
	f.IntVar(&opts.Workers, "workers", 0, "layers analysed at once (default: number of CPUs)")
	f.StringVar(&shard, "shard", "", `run shard I of N ("I/N", 0-based) and print its partial report for qkv merge; "none": whole, whatever the environment says`)
	addThresholdFlags(c, &opts.Thresholds)
	addAlphaFlags(c, &opts.Thresholds)
	return c
}

// addAlphaFlags adds the thresholds of the α findings (inspect --esd,
// report).
func addAlphaFlags(c *cobra.Command, th *inspect.Thresholds) {
	f := c.Flags()
	f.Float64Var(&th.AlphaLow, "esd-alpha-low", 0, "with --esd: finding alpha_low when a matrix's α is below this (default 2, WeightWatcher's over-trained)")
	f.Float64Var(&th.AlphaHigh, "esd-alpha-high", 0, "with --esd: finding alpha_high when a matrix's α is above this (default 6, WeightWatcher's under-trained)")
}

// checkAlphaFlags refuses α thresholds that are not positive finite
// numbers, a low one above the high one, and (need) thresholds given
// without the fit they apply to.
func checkAlphaFlags(c *cobra.Command, th inspect.Thresholds, need string) error {
	given := false
	for _, name := range []string{"esd-alpha-low", "esd-alpha-high"} {
		f := c.Flags().Lookup(name)
		if f == nil || !f.Changed {
			continue
		}
		given = true
		v, err := strconv.ParseFloat(f.Value.String(), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			return usageError("--%s must be a positive finite number, not %s", name, f.Value.String())
		}
	}
	if given && need != "" {
		return usageError("--esd-alpha-low and --esd-alpha-high apply to the heavy-tail fit: %s", need)
	}
	lo, hi := th.AlphaLow, th.AlphaHigh
	if lo == 0 {
		lo = inspect.DefaultAlphaLow
	}
	if hi == 0 {
		hi = inspect.DefaultAlphaHigh
	}
	if lo > hi {
		return usageError("--esd-alpha-low %g is above --esd-alpha-high %g", lo, hi)
	}
	return nil
}

// addThresholdFlags adds the flags of inspect's findings (inspect, check).
func addThresholdFlags(c *cobra.Command, th *inspect.Thresholds) {
	f := c.Flags()
	f.Float64Var(&th.DeadHead, "dead", 0, "dead head: fro below this × the matrix's median head fro (default 1e-6)")
	f.Float64Var(&th.RankCollapsed, "collapsed", 0, "rank-collapsed head: effective rank below this × min(m, n) (default 0.1)")
	f.Float64Var(&th.Duplicate, "duplicate", 0, "duplicated heads: cosine above this (default 0.99)")
	f.Float64Var(&th.OutlierNorm, "outlier", 0, "outlier: spectral norm above this × the median of its kind (default 5)")
}

// inspectRun analyses the selected layers and prints the report.
func inspectRun(ctx context.Context, o *InspectOptions) error {
	s := o.IO
	ck, m, err := o.Model.open(ctx)
	if err != nil {
		return err
	}
	defer ck.Close()
	// Per-head statistics are always computed when the head counts are
	// known, so that head findings are complete; --heads shows them.
	headsKnown := m.HeadsKnown()
	if o.Heads && headsKnown != nil {
		return headsKnown
	}
	all := m.LayerIndices()
	sel, err := parseLayers(o.Layers, all)
	if err != nil {
		return err
	}
	// An adapter's updates are analysed from their factors, never formed
	// whole (a model's layers load as they are).
	src := &layerSubset{LayerSource: inspect.FromFactors(m), indices: sel}
	// Without --heads, head statistics leave each layer's report as it is
	// made (DropHeads), so memory holds a few numbers per layer.
	opts := inspect.Options{Heads: headsKnown == nil, DropHeads: !o.Heads, Spectrum: o.Spectrum, Fast: o.Fast, ESD: o.ESD, RankTol: o.RankTol,
		Workers: o.Workers, Thresholds: o.Thresholds}
	if sh := o.Shard; sh != nil {
		fp, err := inspect.Fingerprint(m)
		if err != nil {
			return err
		}
		opts.Part = &inspect.Part{Shard: *sh, Fingerprint: fp, Version: Version}
		switch o.ShardSource {
		case inspect.SourceK8s:
			fmt.Fprintf(s.Err, "qkv: shard %s, from the Kubernetes Indexed Job (%s)\n", sh, inspect.EnvK8sIndex)
		case inspect.SourceSlurm:
			fmt.Fprintf(s.Err, "qkv: shard %s, from the Slurm job array (%s)\n", sh, inspect.EnvSlurmID)
		}
	}
	bar := newProgress(s, "inspect", "layers")
	bar.Start(len(sel))
	opts.Progress = bar.Set
	rep, err := inspect.Run(ctx, src, opts, nil)
	bar.Done()
	if err != nil {
		return err
	}
	// A part is for qkv merge, which finds the cross-layer findings.
	var context string
	if o.Shard == nil && len(sel) < len(all) {
		if context, err = crossLayerContext(ctx, s, m, rep, sel, all, opts); err != nil {
			return err
		}
	}
	if o.JSON || o.Shard != nil { // a part is for qkv merge: always JSON
		p := newProvenance(ck)
		rep.Source, rep.QKV, rep.IO = &p.Source, &p.QKV, p.IO
		return rep.WriteJSON(s.Out)
	}
	// The report's text names the model_type from config.json: shown as
	// termui prints names (JSON above keeps it exact).
	if rep.Model.Arch != "" {
		rep.Model.Arch = termui.Name(rep.Model.Arch)
	}
	v := inspect.View{Report: rep, Context: context}
	if o.Markdown {
		return v.RenderMarkdown(s.Out)
	}
	return v.Render(s.Out, s.style())
}

// crossLayerContext recomputes the findings that compare layers (outlier
// norms) of a report of some layers against the whole model, so that
// --layers shows what the whole run finds there: the layers not shown get
// their spectral norms the cheap way (inspect's fast mode: block Lanczos
// with bounds for matrices wider than 160, exact below). It replaces the
// report's cross-layer findings and says what it did.
func crossLayerContext(ctx context.Context, s *Streams, m *formats.Model, rep *inspect.Report, sel, all []int, opts inspect.Options) (string, error) {
	var rest []int
	for _, i := range all {
		if !slices.Contains(sel, i) {
			rest = append(rest, i)
		}
	}
	copts := inspect.Options{Fast: true, Workers: opts.Workers, Thresholds: opts.Thresholds}
	bar := newProgress(s, "inspect: the other layers' spectral norms", "layers")
	bar.Start(len(rest))
	copts.Progress = bar.Set
	crep, err := inspect.Run(ctx, &layerSubset{LayerSource: inspect.FromFactors(m), indices: rest}, copts, nil)
	bar.Done()
	if err != nil {
		return "", err
	}
	layers := append(slices.Clone(rep.Layers), crep.Layers...)
	slices.SortFunc(layers, func(a, b inspect.LayerReport) int { return a.Index - b.Index })
	var kept []inspect.Finding
	for _, f := range rep.Findings {
		if !slices.Contains(inspect.CrossLayerKinds, f.Kind) {
			kept = append(kept, f)
		}
	}
	elsewhere := 0
	for _, f := range inspect.CrossLayerFindings(layers, opts.Thresholds) {
		if slices.Contains(sel, f.Layer) {
			kept = append(kept, f)
		} else {
			elsewhere++
		}
	}
	if kept == nil {
		kept = []inspect.Finding{}
	}
	rep.Findings = kept
	estimated := false
	for _, l := range crep.Layers {
		for _, p := range formats.Projections {
			if mr := l.Matrix(p); mr != nil && mr.Method == "lanczos" {
				estimated = true
			}
		}
	}
	how := "computed in full"
	if estimated {
		how = "estimated by Lanczos with bounds (inspect's fast mode)"
	}
	others := fmt.Sprintf("the %d layers not shown were", len(rest))
	if len(rest) == 1 {
		others = "the layer not shown was"
	}
	msg := fmt.Sprintf("Cross-layer findings (%s) compare with all %d layers: the spectral norms of %s %s.",
		strings.Join(inspect.CrossLayerKinds, ", "), len(all), others, how)
	switch elsewhere {
	case 0:
	case 1:
		msg += " 1 cross-layer finding is in a layer not shown."
	default:
		msg += fmt.Sprintf(" %d cross-layer findings are in layers not shown.", elsewhere)
	}
	return msg, nil
}

// layerSubset restricts a model to selected layers.
type layerSubset struct {
	inspect.LayerSource
	indices []int
}

func (l *layerSubset) LayerIndices() []int { return l.indices }
