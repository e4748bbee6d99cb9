package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect/check"
	"github.com/qkvdev/qkv/internal/outfile"
)

// TestExitCodeFromTypes: the exit status comes from an error's type, never
// from its text — an EINVAL from the system ("invalid argument", cobra's
// words for a bad flag value) is an input that could not be read.
func TestExitCodeFromTypes(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("read model.gguf: %w", syscall.EINVAL), ExitInput},
		{errors.New(`unknown flag: --x accepts 1 arg(s) invalid argument`), ExitInput},
		{usageError("--rows must be 0 or more"), ExitUsage},
		{asUsage(errors.New("x")), ExitUsage},
		{inputError("x"), ExitInput},
		{&findingsError{}, ExitFindings},
		{fmt.Errorf("wrapped: %w", &findingsError{msg: "m"}), ExitFindings},
		{&formats.Error{File: "f", Offset: -1, Err: errors.New("bad")}, ExitInput},
		{&outfile.Error{Path: "p", Refused: true, Err: errors.New("is a folder")}, ExitUsage},
		{&outfile.Error{Path: "p", Err: errors.New("disk full")}, ExitInput},
	} {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestCobraErrorsAreUsage: every error cobra itself makes — an unknown
// command, flag or shorthand, a bad flag value, a missing flag value, the
// wrong number of arguments — exits 2 with one line and the usage hint
// naming the subcommand's help (an unknown command's suggestion on a line of
// its own).
func TestCobraErrorsAreUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		help string
	}{
		{[]string{"ls", "--nope", "x"}, "qkv ls"}, {[]string{"ls", "-z", "x"}, "qkv ls"}, {[]string{"cat", "x", "t", "--rows", "many"}, "qkv cat"},
		{[]string{"cat", "x", "t", "--rows"}, "qkv cat"}, {[]string{"ls"}, "qkv ls"}, {[]string{"ls", "a", "b"}, "qkv ls"}, {[]string{"diff", "a"}, "qkv diff"},
		{[]string{"version", "extra"}, "qkv version"}, {[]string{"ls", "---x", "a"}, "qkv ls"}, {[]string{"--nope"}, "qkv"},
		{[]string{"ls", "--color", "sometimes", "x"}, "qkv ls"},
	} {
		var out, errb bytes.Buffer
		code := Run(context.Background(), c.args, &Streams{In: strings.NewReader(""), Out: &out, Err: &errb, Width: 80})
		if code != ExitUsage || out.Len() != 0 || !strings.HasSuffix(errb.String(), "\nRun '"+c.help+" --help' for usage.\n") || strings.Count(errb.String(), "\n") != 2 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", c.args, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	code := Run(context.Background(), []string{"lss", "x"}, &Streams{In: strings.NewReader(""), Out: &out, Err: &errb, Width: 80})
	if want := "qkv: unknown command \"lss\" for \"qkv\"\nDid you mean 'qkv ls'?\nRun 'qkv --help' for usage.\n"; code != ExitUsage || errb.String() != want {
		t.Errorf("lss: exit %d, stderr %q, want %q", code, errb.String(), want)
	}
	// The help command and --help still work.
	out.Reset()
	if code := Run(context.Background(), []string{"help", "ls"}, &Streams{Out: &out, Err: &out, Width: 80}); code != ExitOK || !strings.Contains(out.String(), "qkv ls PATH") {
		t.Errorf("help ls: exit %d: %s", code, out.String())
	}
}

// TestCommandsParseIntoOptions: each NewCmdX parses and validates its
// flags into its options and hands them to runF; the run function needs no
// cobra. runF here records the options instead of doing the work.
func TestCommandsParseIntoOptions(t *testing.T) {
	s := &Streams{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Width: 80}
	execute := func(c *cobra.Command, args ...string) error {
		c.SetArgs(args)
		c.SetOut(s.Out)
		c.SetErr(s.Err)
		c.SilenceErrors, c.SilenceUsage = true, true
		return c.Execute()
	}

	var at *AttnOptions
	c := NewCmdAttn(s, func(_ context.Context, o *AttnOptions) error { at = o; return nil })
	if err := execute(c, "m.gguf", "--tokens", "1, 5,9", "--heads", "0,3", "--causal", "false", "--map", `q=a\.(\d+)`, "--n-heads", "4"); err != nil {
		t.Fatal(err)
	}
	if at.Model.Path != "m.gguf" || fmt.Sprint(at.Input.Tokens) != "[1 5 9]" || !at.Norm || at.Causal == nil || *at.Causal ||
		fmt.Sprint(at.Heads) != "[0 3]" || at.Model.Find.NHeads != 4 || at.Model.Find.Map[formats.ProjQ] == nil || at.Input.Random != 0 {
		t.Errorf("attn options: %+v", at)
	}
	at = nil
	c = NewCmdAttn(s, func(_ context.Context, o *AttnOptions) error { at = o; return nil })
	if err := execute(c, "m.gguf"); err != nil || at.Input.Random != 8 || at.Norm || at.Causal != nil {
		t.Errorf("attn defaults: %v %+v", err, at)
	}
	for _, args := range [][]string{{"m", "--random", "4", "--tokens", "1"}, {"m", "--random", "0"}, {"m", "--scale", "NaN"},
		{"m", "--norm", "maybe"}, {"m", "--tokens", ","}, {"m", "--out", "-"}, {"m", "--n-heads", "0"}, {"m", "--map", "x=y"}} {
		c = NewCmdAttn(s, func(context.Context, *AttnOptions) error { t.Errorf("%v: runF called", args); return nil })
		if err := execute(c, args...); exitCode(err) != ExitUsage {
			t.Errorf("%v: %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}

	var ck *CheckOptions
	c = NewCmdCheck(s, func(_ context.Context, o *CheckOptions) error { ck = o; return nil })
	if err := execute(c, "m", "--json", "--skip", "drift", "--fail-on", "rank_collapsed", "--dead", "0.5", "--duplicate-fail", "0.9"); err != nil {
		t.Fatal(err)
	}
	r := ck.Rules
	if ck.Format != "json" || r.SeverityOf("drift") != "off" || r.SeverityOf("rank_collapsed") != "fail" ||
		r.Thresholds.DeadHead != 0.5 || r.DuplicateFail != 0.9 || r.Thresholds.Duplicate != 0.99 {
		t.Errorf("check options: %+v", ck)
	}
	for _, args := range [][]string{{"m", "--format", "xml"}, {"m", "--skip", "nope"}, {"m", "--allow-dtypes", "F17"}, {"m", "--dead", "-1"}} {
		c = NewCmdCheck(s, func(context.Context, *CheckOptions) error { t.Errorf("%v: runF called", args); return nil })
		if err := execute(c, args...); exitCode(err) != ExitUsage {
			t.Errorf("check %v: %v, want a usage error", args, err)
		}
	}

	var ex *ExtractOptions
	c = NewCmdExtract(s, func(_ context.Context, o *ExtractOptions) error { ex = o; return nil })
	if err := execute(c, "m", "-o", "-", "--matrices", "k,q,k", "--lora-scale", "2", "--base", "b"); err != nil {
		t.Fatal(err)
	}
	if ex.Out != "-" || fmt.Sprint(ex.Matrices) != "[k q]" || ex.Model.Find.LoRAScale != 2 || ex.Model.Find.Base != "b" {
		t.Errorf("extract options: %+v", ex)
	}
}

// TestRunWithoutCobra: a command's work is a function of its options; tests
// (and other programs) call it without cobra, flags or argument parsing.
func TestRunWithoutCobra(t *testing.T) {
	var out, errb bytes.Buffer
	s := &Streams{Out: &out, Err: &errb, Width: 80}
	ctx := context.Background()
	tiny := "../testdata/tiny-llama"
	if err := lsRun(ctx, &LsOptions{IO: s, Path: tiny, JSON: true}); err != nil || !strings.Contains(out.String(), `"schema": "qkv.ls/v1"`) {
		t.Fatalf("lsRun: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := layersRun(ctx, &LayersOptions{IO: s, Model: ModelInput{Path: tiny}}); err != nil || !strings.Contains(out.String(), "model.layers.3.self_attn.o_proj.weight") {
		t.Fatalf("layersRun: %v\n%s", err, out.String())
	}
	out.Reset()
	rules := check.DefaultRules()
	if err := rules.Apply(check.Overrides{Skip: []string{check.CheckDeadHead, check.CheckDuplicateHeads, check.CheckOutlierNorm}}); err != nil {
		t.Fatal(err)
	}
	err := checkRun(ctx, &CheckOptions{IO: s, Model: ModelInput{Path: tiny}, Rules: rules, Format: "text"})
	if err != nil || !strings.Contains(out.String(), "PASS") {
		t.Errorf("checkRun with the planted checks skipped: %v\n%s", err, out.String())
	}
	out.Reset()
	err = checkRun(ctx, &CheckOptions{IO: s, Model: ModelInput{Path: tiny}, Rules: check.DefaultRules(), Format: "text"})
	if exitCode(err) != ExitFindings || !strings.Contains(out.String(), "FAIL dead_head") {
		t.Errorf("checkRun: %v (exit %d)\n%s", err, exitCode(err), out.String())
	}
	if err := lsRun(ctx, &LsOptions{IO: s, Path: "../testdata/no-such-model"}); exitCode(err) != ExitInput {
		t.Errorf("lsRun on a missing path: %v", err)
	}
}
