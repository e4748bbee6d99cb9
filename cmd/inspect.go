package cmd

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/termui"
)

func init() { extraCommands = append(extraCommands, newInspectCmd) }

func newInspectCmd(s *Streams) *cobra.Command {
	var (
		mf       modelFlags
		layers   string
		heads    bool
		spectrum bool
		fast     bool
		asJSON   bool
		rankTol  float64
		workers  int
		th       inspect.Thresholds
	)
	c := &cobra.Command{
		Use:   "inspect PATH",
		Short: "Norms, spectra and ranks of every attention matrix and head, with findings",
		Long: `For every layer's W_Q, W_K, W_V and W_O (and with --heads every head block, the
QK and OV circuits of every head, and the most similar pair of heads):
shape, Frobenius norm, max |w|, mean, std, NaN/Inf/zero counts, singular
values, spectral norm, numerical rank, effective rank, stable rank and
condition number — definitions in the README. Findings (NaN/Inf, dead,
duplicated and rank-collapsed heads, outlier spectral norms) are listed at
the end; thresholds are flags. Head statistics are computed whenever the
head counts are known, so head findings are complete without --heads,
which adds the per-head tables (and JSON "heads", "circuits").

Layers go through a bounded pool of workers: memory stays near workers ×
the largest layer whatever the model's size.`,
		Example: `  qkv inspect testdata/tiny-llama
  qkv inspect model.gguf --heads --layers 0-3
  qkv inspect ./model --json --heads --spectrum > report.json
  qkv inspect big-model.gguf --fast`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rankTol < 0 {
				return usageError("--rank-tol must be positive")
			}
			ck, m, err := openModel(args[0], &mf)
			if err != nil {
				return err
			}
			defer ck.Close()
			// Per-head statistics are always computed when the head counts
			// are known, so that head findings are complete; --heads shows them.
			headsKnown := m.HeadsKnown()
			if heads && headsKnown != nil {
				return headsKnown
			}
			sel, err := parseLayers(layers, m.LayerIndices())
			if err != nil {
				return err
			}
			src := &layerSubset{LayerSource: m, indices: sel}
			opts := inspect.Options{Heads: headsKnown == nil, Spectrum: spectrum, Fast: fast, RankTol: rankTol, Workers: workers, Thresholds: th}
			var bar *progressBar
			if s.Progress && !asJSON {
				bar = newProgressBar(s, "inspect", len(sel))
				opts.Progress = bar.set
			}
			rep, err := inspect.Run(cmd.Context(), src, opts, nil)
			bar.done()
			if err != nil {
				return err
			}
			if !heads {
				rep.DropHeads()
			}
			if asJSON {
				return rep.WriteJSON(s.Out)
			}
			// The report's text names the model_type from config.json: shown
			// as termui prints names (JSON above keeps it exact).
			if rep.Model.Arch != "" {
				rep.Model.Arch = termui.Name(rep.Model.Arch)
			}
			return rep.Render(s.Out, s.Styled, s.Width)
		},
	}
	mf.add(c)
	f := c.Flags()
	f.StringVar(&layers, "layers", "", "layers to inspect, e.g. 0-3,7 (default all)")
	f.BoolVar(&heads, "heads", false, "per-head statistics, QK/OV circuits and head findings")
	f.BoolVar(&spectrum, "spectrum", false, "include every singular value in the JSON (sv)")
	f.BoolVar(&fast, "fast", false, "skip full spectra: spectral norm by Lanczos, effective rank estimated with bounds")
	f.BoolVar(&asJSON, "json", false, "print one JSON document (schema qkv.inspect/v1)")
	f.Float64Var(&rankTol, "rank-tol", 0, "absolute tolerance for rank (default sv[0]·max(m,n)·eps(float32))")
	f.IntVar(&workers, "workers", 0, "layers analysed at once (default: number of CPUs)")
	f.Float64Var(&th.DeadHead, "dead", 0, "dead head: fro below this × the matrix's median head fro (default 1e-6)")
	f.Float64Var(&th.RankCollapsed, "collapsed", 0, "rank-collapsed head: effective rank below this × min(m, n) (default 0.1)")
	f.Float64Var(&th.Duplicate, "duplicate", 0, "duplicated heads: cosine above this (default 0.99)")
	f.Float64Var(&th.OutlierNorm, "outlier", 0, "outlier: spectral norm above this × the median of its kind (default 5)")
	return c
}

// layerSubset restricts a model to selected layers.
type layerSubset struct {
	inspect.LayerSource
	indices []int
}

func (l *layerSubset) LayerIndices() []int { return l.indices }

// progressBar draws "inspect ███░░░ 12/32 layers" on stderr when it is a terminal.
type progressBar struct {
	s      *Streams
	label  string
	total  int
	start  time.Time
	active bool
}

func newProgressBar(s *Streams, label string, total int) *progressBar {
	return &progressBar{s: s, label: label, total: total, start: time.Now()}
}

func (p *progressBar) set(done, total int) {
	if p == nil || total <= 1 {
		return
	}
	const width = 30
	filled := width * done / total
	fmt.Fprintf(p.s.Err, "\r%s %s%s %d/%d layers  %s", p.label, strings.Repeat("█", filled), strings.Repeat("░", width-filled),
		done, total, time.Since(p.start).Round(100*time.Millisecond))
	p.active = true
}

func (p *progressBar) done() {
	if p != nil && p.active {
		fmt.Fprint(p.s.Err, "\r\033[K")
	}
}
