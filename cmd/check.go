package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/inspect/check"
	"github.com/qkvdev/qkv/internal/infile"
	"github.com/qkvdev/qkv/internal/termui"
)

// CheckOptions are the options of qkv check.
type CheckOptions struct {
	IO           *Streams
	Model        ModelInput
	Rules        check.Rules // the rules file with the flags' overrides applied
	BaselinePath string      // "": no drift check
	Format       string      // text, json, github, junit or markdown
	Exact        bool        // full spectra instead of bounds
	// Shard, when set, makes the run one part of a sharded check (a
	// qkv.check.partial/v1 document, always JSON); ShardSource names where
	// it came from (the flag, a Kubernetes Indexed Job, a Slurm array).
	Shard       *inspect.Shard
	ShardSource string
	// Getenv reads GITHUB_STEP_SUMMARY (os.Getenv when nil).
	Getenv func(string) string
}

// NewCmdCheck builds qkv check; runF (nil: checkRun) does the work.
func NewCmdCheck(s *Streams, runF func(context.Context, *CheckOptions) error) *cobra.Command {
	opts := &CheckOptions{IO: s}
	var (
		mf        modelFlags
		rulesPath string
		asJSON    bool
		shard     string
		ov        check.Overrides
	)
	c := &cobra.Command{
		Use:   "check PATH",
		Short: "Gate a checkpoint in CI: exit 1 when a check fails",
		Long: `Check every tensor of a checkpoint — structure, element types, NaN/Inf, all-zero
tensors and rows — and its attention matrices — dead, duplicated and
rank-collapsed heads, outlier spectral norms, expected geometry, bounds on
statistics, drift from a baseline 'qkv inspect --json' report — and exit 0
when nothing fails, 1 when something fails (warnings alone do not fail),
2 on a usage error and 3 when PATH cannot be read at all.

A checkpoint that exists but is malformed (a truncated or missing shard,
overlapping ranges, an undecodable projection, attention layers whose
geometry cannot be resolved: head counts that do not fit the tensors, of
the wrong type or missing, LoRA factors whose ranks disagree) is a failure
of the "structure" check: exit 1 with the reason — 'qkv layers' refuses the
same files. Give missing head counts with --n-heads. A checkpoint with no
attention layers at all only warns ("no_attention"). For quantized tensors,
blocks whose scales are NaN or Inf fail the "nan" check even when their
values decode to finite numbers.

Checks: ` + strings.Join(check.AllChecks, ", ") + `.
Rules come from --rules FILE (JSON with // comments; see README) and flags.

One pass at decode speed: every tensor is decoded once; spectral norms are
bracketed by block Lanczos (exact where a bounds rule falls between the
bounds, and with --exact or a --baseline, every spectrum in full as qkv
inspect computes it); per-head statistics only for the head checks.

--shard I/N checks shard I's contiguous block of layers and a share of the
other tensors and prints a part (JSON) that 'qkv merge' joins with the
others into the result the unsharded check gives, byte for byte; as for
inspect, a Kubernetes Indexed Job or a Slurm array gives the shard. A part
exits 0 once written: the merge decides.`,
		Example: `  qkv check model.safetensors
  qkv check ./model --rules qkv-rules.json --format github
  qkv inspect --json ./model > baseline.json && qkv check ./model --baseline baseline.json
  qkv check model.gguf --format junit > qkv-junit.xml
  qkv check ./model --shard 0/4 > part0.json   # ... then: qkv merge part*.json`,
		Args:    exactArgs(1),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			if asJSON {
				opts.Format = "json"
			}
			switch opts.Format {
			case "text", "json", "github", "junit", "markdown":
			default:
				return usageError("--format must be text, json, github, junit or markdown, not %q", opts.Format)
			}
			sh, source, sharded, err := inspect.ShardFromEnv(shard, os.Getenv)
			if err != nil {
				return usageError("%v", err)
			}
			if sharded {
				opts.Shard, opts.ShardSource = &sh, source
			}
			rules := check.DefaultRules()
			if rulesPath != "" {
				var err error
				if rules, err = check.LoadRules(rulesPath); err != nil {
					return usageError("--rules %s: %v", rulesPath, err)
				}
			}
			if err := rules.Apply(ov); err != nil {
				return usageError("%v", err)
			}
			in, err := mf.resolve(args[0])
			if err != nil {
				return err
			}
			opts.Model, opts.Rules = in, rules
			return runOr(c, runF, checkRun, opts)
		},
	}
	mf.add(c)
	f := c.Flags()
	f.StringVar(&rulesPath, "rules", "", "rules file (JSON with // comments)")
	f.StringVar(&opts.BaselinePath, "baseline", "", "an earlier 'qkv inspect --json' report to compare with (drift)")
	f.StringVar(&opts.Format, "format", "text", "output: text, json (qkv.check/v1), github (workflow annotations; the markdown summary also to $GITHUB_STEP_SUMMARY), junit (XML) or markdown")
	f.StringVar(&shard, "shard", "", `run shard I of N ("I/N", 0-based) and print its part (qkv.check.partial/v1) for qkv merge; "none": whole, whatever the environment says`)
	f.BoolVar(&asJSON, "json", false, "same as --format json")
	f.BoolVar(&opts.Exact, "exact", false, "compute every matrix's full spectrum (as qkv inspect does) instead of spectral norms' bounds")
	var fast bool
	f.BoolVar(&fast, "fast", false, "spectral norms' bounds (the default now)")
	f.MarkHidden("fast")
	f.StringSliceVar(&ov.AllowDTypes, "allow-dtypes", nil, "element types tensors may have, e.g. F16,BF16,Q4_K")
	f.StringSliceVar(&ov.FailOn, "fail-on", nil, "checks whose problems fail (e.g. rank_collapsed)")
	f.StringSliceVar(&ov.WarnOn, "warn-on", nil, "checks whose problems only warn (e.g. zero_rows)")
	f.StringSliceVar(&ov.Skip, "skip", nil, "checks not to run")
	f.Float64Var(&ov.DriftTolerance, "drift-tol", 0, "relative change from the baseline that counts as drift (default 1e-3)")
	f.Float64Var(&ov.Thresholds.DeadHead, "dead", 0, "dead head: fro below this × the median head's (default 1e-6)")
	f.Float64Var(&ov.Thresholds.RankCollapsed, "collapsed", 0, "rank-collapsed head: effective rank below this × min(m, n) (default 0.1)")
	f.Float64Var(&ov.Thresholds.Duplicate, "duplicate", 0, "duplicate heads warn above this cosine (default 0.99)")
	f.Float64Var(&ov.DuplicateFail, "duplicate-fail", 0, "duplicate heads fail above this cosine (default 0.99999)")
	f.Float64Var(&ov.Thresholds.OutlierNorm, "outlier", 0, "outlier: spectral norm above this × the median of the other layers (default 5)")
	return c
}

// checkRun opens the checkpoint, checks it and prints the result. A
// checkpoint that cannot be read at all is an error (exit 3; with --format
// junit a report with one failing test case is written first); one that is
// malformed is a structure failure in the result (exit 1).
func checkRun(ctx context.Context, o *CheckOptions) error {
	err := checkRunInput(ctx, o)
	var fe *findingsError
	if err != nil && o.Format == "junit" && o.Shard == nil && !errors.As(err, &fe) && exitCode(err) == ExitInput {
		o.IO.clearProgress()
		reason := termui.Clean(strings.ReplaceAll(err.Error(), "\n", " "))
		if werr := check.WriteJUnitUnreadable(o.IO.Out, o.Model.Path, reason); werr != nil {
			return werr
		}
	}
	return err
}

func checkRunInput(ctx context.Context, o *CheckOptions) error {
	var (
		base     *inspect.Report
		baseHash string
	)
	if o.BaselinePath != "" {
		var err error
		if base, baseHash, err = readBaseline(o.BaselinePath); err != nil {
			return err
		}
	}
	path := o.Model.Path
	in := check.Input{Path: path, Baseline: base}
	// PATH must exist (or, remote, resolve): a checkpoint that does not is
	// unreadable (exit 3), while a part of one that is missing later is a
	// structure failure.
	if source.IsRemote(path) {
		cl, err := source.Default()
		if err == nil {
			_, err = cl.Resolve(ctx, path)
		}
		if err != nil {
			return inputError("%v", err) // the source's error names the input
		}
	} else if _, err := os.Stat(path); err != nil {
		return &formats.Error{File: path, Offset: -1, Err: statCause(err)}
	}
	ck, err := openCheckpoint(ctx, path, o.Model.MaxHeader)
	prov := Provenance{Source: unopenedSource(path), QKV: Build()}
	if err != nil {
		if unreadable(err) {
			return err
		}
		in.OpenErr = err
	} else {
		defer ck.Close()
		in.Checkpoint = ck
		in.Model, in.FindErr = o.Model.find(ck)
		var ee *exitError
		if errors.As(in.FindErr, &ee) {
			return in.FindErr // a flag that does not apply (--lora-scale on a model)
		}
	}
	opts := check.Options{Exact: o.Exact}
	bar := newProgress(o.IO, "check", "tensors")
	if bar != nil {
		opts.Progress = bar.Set
	}
	if sh := o.Shard; sh != nil {
		switch o.ShardSource {
		case inspect.SourceK8s:
			fmt.Fprintf(o.IO.Err, "qkv: shard %s, from the Kubernetes Indexed Job (%s)\n", sh, inspect.EnvK8sIndex)
		case inspect.SourceSlurm:
			fmt.Fprintf(o.IO.Err, "qkv: shard %s, from the Slurm job array (%s)\n", sh, inspect.EnvSlurmID)
		}
		opts.Part = &inspect.Part{Shard: *sh, Version: Version}
		part, err := check.RunPart(ctx, in, o.Rules, opts, baseHash)
		o.IO.clearProgress()
		if err != nil {
			return err
		}
		if ck != nil {
			prov = newProvenance(ck)
		}
		part.Source, part.QKV = &prov.Source, &prov.QKV
		return termui.WriteJSON(o.IO.Out, part) // for qkv merge: always JSON
	}
	res, err := check.Run(ctx, in, o.Rules, opts)
	o.IO.clearProgress()
	if err != nil {
		return err
	}
	if ck != nil {
		prov = newProvenance(ck)
	}
	res.Source, res.QKV, res.IO = &prov.Source, &prov.QKV, prov.IO
	return writeCheckResult(o.IO, res, o.Format, o.Getenv)
}

// writeCheckResult prints a check's result in the format asked (qkv check
// and qkv merge) and says whether it failed (exit 1). --format github also
// appends the markdown summary to $GITHUB_STEP_SUMMARY when it is set.
func writeCheckResult(s *Streams, res *check.Result, format string, getenv func(string) string) error {
	var err error
	switch format {
	case "json":
		err = res.WriteJSON(s.Out)
	case "github":
		if err = res.WriteGitHub(s.Out); err == nil {
			err = appendStepSummary(res, getenv)
		}
	case "junit":
		err = res.WriteJUnit(s.Out)
	case "markdown":
		err = res.WriteMarkdown(s.Out)
	default:
		err = res.Render(s.Out, s.style())
	}
	if err != nil {
		return err
	}
	if !res.Passed {
		return &findingsError{}
	}
	return nil
}

// appendStepSummary appends the markdown summary to the file GitHub
// Actions names in GITHUB_STEP_SUMMARY (nothing when it is unset).
func appendStepSummary(res *check.Result, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	path := getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return inputError("GITHUB_STEP_SUMMARY %s: %v", path, infile.Cause(err))
	}
	werr := res.WriteMarkdown(f)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return inputError("GITHUB_STEP_SUMMARY %s: %v", path, werr)
	}
	return nil
}

// readBaseline reads a --baseline report and the SHA-256 of its file.
func readBaseline(path string) (*inspect.Report, string, error) {
	b, err := infile.Read(path, maxBaselineBytes)
	if err != nil {
		return nil, "", inputError("--baseline %s: %v", path, err)
	}
	switch kind, schema := partKind(b); {
	case kind == kindInspectPart:
		return nil, "", inputError("--baseline %s: %s, not a whole report: join the parts with qkv merge first", path, kind)
	case kind == kindCheckPart:
		return nil, "", inputError("--baseline %s: %s, not a qkv inspect --json report", path, kind)
	case kind == "" && schema != nil:
		return nil, "", inputError("--baseline %s: not a qkv inspect --json report: its schema is %q, not %s", path, *schema, inspect.Schema)
	}
	base, err := inspect.ReadReport(b)
	if err != nil {
		return nil, "", inputError("--baseline %s: not a qkv inspect --json report: %v", path, err)
	}
	return base, check.BaselineHash(b), nil
}

// unopenedSource is the source block of a checkpoint that did not open:
// the input as given, and where it was to come from.
func unopenedSource(path string) formats.SourceInfo {
	s := formats.SourceInfo{Input: path, Kind: "local", Files: []formats.SourceFile{}}
	switch {
	case strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://"):
		s.Kind = "url"
	case source.IsRemote(path):
		s.Kind = "hub"
	}
	return s
}

// maxBaselineBytes bounds a --baseline report: qkv inspect --json of the
// largest models with every singular value (--spectrum) stays well below.
const maxBaselineBytes = 256 << 20

// statCause says why PATH cannot be stat'ed, in the words formats uses
// for a file it cannot read.
func statCause(err error) error { return infile.ReadCause(err) }

// unreadable tells an input that cannot be read at all (exit 3) from a
// malformed checkpoint (a structure failure, exit 1). PATH itself exists
// (checked before, or resolved for a remote PATH), so a file missing now is
// a shard or split part the checkpoint names: a structure failure.
//
// formats has no sentinel for these yet (ErrNoAttention is the only one),
// so its messages are matched here: a file of another format (pickle,
// ONNX, NumPy, an LFS pointer, a web page), an empty file, a folder
// without weights, an ambiguous folder, a file that is not regular or may
// not be read. Tests pin each outcome.
func unreadable(err error) bool {
	msg := err.Error()
	for _, s := range []string{"permission denied", "not a safetensors or GGUF file", "which qkv does not read", "a Git LFS pointer, not the file itself",
		"an HTML page, not a model", "the file is empty", "is a folder", "no model.safetensors", "name the one to open", "not a regular file"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
