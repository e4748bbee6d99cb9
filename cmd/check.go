package cmd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/inspect/check"
	"github.com/qkvdev/qkv/internal/infile"
)

func init() { extraCommands = append(extraCommands, newCheckCmd) }

func newCheckCmd(s *Streams) *cobra.Command {
	var (
		mf          modelFlags
		rulesPath   string
		baseline    string
		format      string
		asJSON      bool
		fast        bool
		allowDTypes []string
		failOn      []string
		warnOn      []string
		skip        []string
		driftTol    float64
		th          inspect.Thresholds
		dupFail     float64
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
Rules come from --rules FILE (JSON with // comments; see README) and flags.`,
		Example: `  qkv check model.safetensors
  qkv check ./model --rules qkv-rules.json --format github
  qkv inspect --json ./model > baseline.json && qkv check ./model --baseline baseline.json
  qkv check model.gguf --format junit > qkv-junit.xml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON {
				format = "json"
			}
			switch format {
			case "text", "json", "github", "junit":
			default:
				return usageError("--format must be text, json, github or junit, not %q", format)
			}
			rules := check.DefaultRules()
			if rulesPath != "" {
				var err error
				if rules, err = check.LoadRules(rulesPath); err != nil {
					return usageError("--rules %s: %v", rulesPath, err)
				}
			}
			if len(allowDTypes) > 0 {
				if err := check.CheckDTypeNames(allowDTypes); err != nil {
					return usageError("--allow-dtypes: %v", err)
				}
				rules.AllowedDTypes = allowDTypes
			}
			if rules.Severity == nil {
				rules.Severity = map[string]check.Severity{}
			}
			for _, x := range []struct {
				ids []string
				sev check.Severity
			}{{failOn, check.Fail}, {warnOn, check.Warn}, {skip, check.Off}} {
				for _, id := range x.ids {
					if _, ok := check.DefaultSeverity[id]; !ok {
						return usageError("unknown check %q (checks: %s)", id, strings.Join(check.AllChecks, ", "))
					}
					rules.Severity[id] = x.sev
				}
			}
			if driftTol > 0 {
				rules.DriftTolerance = driftTol
			}
			if dupFail > 0 {
				rules.DuplicateFail = dupFail
			}
			for _, x := range []struct{ flag, dst *float64 }{{&th.DeadHead, &rules.Thresholds.DeadHead},
				{&th.RankCollapsed, &rules.Thresholds.RankCollapsed}, {&th.Duplicate, &rules.Thresholds.Duplicate}, {&th.OutlierNorm, &rules.Thresholds.OutlierNorm}} {
				if *x.flag > 0 {
					*x.dst = *x.flag
				}
			}
			var base *inspect.Report
			if baseline != "" {
				b, err := infile.Read(baseline, maxBaselineBytes)
				if err != nil {
					return &exitError{code: ExitInput, err: fmt.Errorf("--baseline %s: %v", baseline, err)}
				}
				base = &inspect.Report{}
				if err := json.Unmarshal(b, base); err != nil || base.Schema != inspect.Schema {
					return &exitError{code: ExitInput, err: fmt.Errorf("--baseline %s: not a qkv inspect --json report (%v)", baseline, err)}
				}
			}
			in := check.Input{Path: args[0], Baseline: base}
			if _, err := os.Stat(args[0]); err != nil {
				return &formats.Error{File: args[0], Offset: -1, Err: statCause(err)}
			}
			mp, err := parseMap(mf.maps)
			if err != nil {
				return err
			}
			ck, err := openCheckpoint(args[0], mf.maxHeader)
			if err != nil {
				if unreadable(err) {
					return err
				}
				in.OpenErr = err
			} else {
				defer ck.Close()
				in.Checkpoint = ck
				in.Model, in.FindErr = formats.FindModel(ck, formats.FindOptions{Map: mp, NHeads: mf.heads, NKVHeads: mf.kvHeads, HeadDim: mf.headDim})
			}
			res, err := check.Run(cmd.Context(), in, rules, check.Options{Fast: fast})
			if err != nil {
				return err
			}
			switch format {
			case "json":
				err = res.WriteJSON(s.Out)
			case "github":
				err = res.WriteGitHub(s.Out)
			case "junit":
				err = res.WriteJUnit(s.Out)
			default:
				err = res.WriteText(s.Out, s.Styled)
			}
			if err != nil {
				return err
			}
			if !res.Passed {
				return &findingsError{}
			}
			return nil
		},
	}
	mf.add(c)
	f := c.Flags()
	f.StringVar(&rulesPath, "rules", "", "rules file (JSON with // comments)")
	f.StringVar(&baseline, "baseline", "", "an earlier 'qkv inspect --json' report to compare with (drift)")
	f.StringVar(&format, "format", "text", "output: text, json (qkv.check/v1), github (workflow annotations) or junit (XML)")
	f.BoolVar(&asJSON, "json", false, "same as --format json")
	f.BoolVar(&fast, "fast", false, "estimate spectra (Lanczos) instead of computing them fully")
	f.StringSliceVar(&allowDTypes, "allow-dtypes", nil, "element types tensors may have, e.g. F16,BF16,Q4_K")
	f.StringSliceVar(&failOn, "fail-on", nil, "checks whose problems fail (e.g. rank_collapsed)")
	f.StringSliceVar(&warnOn, "warn-on", nil, "checks whose problems only warn (e.g. zero_rows)")
	f.StringSliceVar(&skip, "skip", nil, "checks not to run")
	f.Float64Var(&driftTol, "drift-tol", 0, "relative change from the baseline that counts as drift (default 1e-3)")
	f.Float64Var(&th.DeadHead, "dead", 0, "dead head: fro below this × the median head's (default 1e-6)")
	f.Float64Var(&th.RankCollapsed, "collapsed", 0, "rank-collapsed head: effective rank below this × min(m, n) (default 0.1)")
	f.Float64Var(&th.Duplicate, "duplicate", 0, "duplicate heads warn above this cosine (default 0.99)")
	f.Float64Var(&dupFail, "duplicate-fail", 0, "duplicate heads fail above this cosine (default 0.99999)")
	f.Float64Var(&th.OutlierNorm, "outlier", 0, "outlier: spectral norm above this × the median of the other layers (default 5)")
	return c
}

// maxBaselineBytes bounds a --baseline report: qkv inspect --json of the
// largest models with every singular value (--spectrum) stays well below.
const maxBaselineBytes = 256 << 20

func statCause(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such file or folder")
	case errors.Is(err, fs.ErrPermission):
		return errors.New("permission denied (the file cannot be read)")
	}
	return err
}

// unreadable tells an input that cannot be read at all (exit 3) from a
// malformed checkpoint (a structure failure, exit 1). PATH itself exists
// (checked before), so a file missing now is a shard or split part the
// checkpoint names: a structure failure.
func unreadable(err error) bool {
	msg := err.Error()
	for _, s := range []string{"permission denied", "not a safetensors or GGUF file", "the file is empty", "is a folder", "no model.safetensors", "name the one to open", "not a regular file"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
