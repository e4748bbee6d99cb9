// Package cmd holds qkv's cobra commands: one file per command, each a thin
// layer of flags, wiring and output choice over formats, inspect and attn.
// Commands print to injected streams so tests can run them in-process.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/outfile"
	"github.com/qkvdev/qkv/internal/termui"
)

// Exit statuses.
const (
	ExitOK       = 0
	ExitFindings = 1 // a check found problems
	ExitUsage    = 2
	ExitInput    = 3 // the input could not be read
)

// Version is set at build time with -ldflags "-X github.com/qkvdev/qkv/cmd.Version=...";
// otherwise it comes from the module version or VCS revision Go recorded.
var Version = buildVersion()

func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "dev-" + rev
}

// Streams are the command's standard streams and environment.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
	// Styled: stdout is a terminal and NO_COLOR is unset.
	Styled bool
	// Width of the terminal in columns (80 when unknown).
	Width int
	// Progress: stderr is a terminal, so progress bars may be drawn there.
	Progress bool
}

// SystemStreams returns the process's streams with styling decided from the
// terminal and NO_COLOR.
func SystemStreams() *Streams {
	s := &Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Width: 80}
	_, noColor := os.LookupEnv("NO_COLOR")
	if term.IsTerminal(int(os.Stdout.Fd())) {
		s.Styled = !noColor && os.Getenv("TERM") != "dumb"
		if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil && w > 0 {
			s.Width = w
		}
	} else if c := os.Getenv("COLUMNS"); c != "" {
		var w int
		if _, err := fmt.Sscan(c, &w); err == nil && w > 20 {
			s.Width = w
		}
	}
	s.Progress = term.IsTerminal(int(os.Stderr.Fd()))
	return s
}

// exitError carries an exit status through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks a bad flag or argument: exit status 2.
func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// findingsError reports that a check found problems (exit status 1) after
// the command printed its result.
type findingsError struct{ msg string }

func (e *findingsError) Error() string { return e.msg }

// Execute runs qkv with the process's arguments and streams and returns the
// exit status.
func Execute() int {
	return Run(context.Background(), os.Args[1:], SystemStreams())
}

// Run runs qkv with the given arguments and streams and returns the exit
// status. It never calls os.Exit, so tests can call it.
func Run(ctx context.Context, args []string, s *Streams) int {
	root := NewRoot(s)
	root.SetArgs(args)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetIn(s.In)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	var fe *findingsError
	if errors.As(err, &fe) {
		if fe.msg != "" {
			fmt.Fprintln(s.Err, "qkv: "+termui.Clean(fe.msg))
		}
		return code
	}
	// Messages quote names from files; Clean shows any escape left in them.
	msg := termui.Clean(strings.ReplaceAll(err.Error(), "\n", " "))
	fmt.Fprintln(s.Err, "qkv: "+msg)
	if code == ExitUsage {
		fmt.Fprintln(s.Err, "Run 'qkv --help' for usage.")
	}
	return code
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var fe *findingsError
	if errors.As(err, &fe) {
		return ExitFindings
	}
	var fmtErr *formats.Error
	if errors.As(err, &fmtErr) {
		return ExitInput
	}
	var oe *outfile.Error
	if errors.As(err, &oe) {
		if oe.Refused {
			return ExitUsage
		}
		return ExitInput
	}
	// Cobra's own flag and argument errors.
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand", "unknown command", "accepts ", "requires at least",
		"invalid argument", "flag needs an argument", "required flag", "if any flags in the group", "bad flag syntax"} {
		if strings.Contains(msg, p) {
			return ExitUsage
		}
	}
	return ExitInput
}

// NewRoot builds the command tree printing to s.
func NewRoot(s *Streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "qkv",
		Short: "Look inside transformer checkpoints: attention weights, spectra, heads",
		Long: `qkv opens safetensors and GGUF checkpoints without loading them, finds every
layer's attention projections W_Q, W_K, W_V and W_O, decodes them to float32
from any dtype or quantization, and reports what they look like.

Exit status: 0 success, 1 a check found problems, 2 usage error,
3 the input could not be read.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
		// Flags several commands share are validated once, here.
		PersistentPreRunE: func(c *cobra.Command, args []string) error { return checkSharedFlags(c) },
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, err: err}
	})
	root.SetVersionTemplate("qkv {{.Version}}\n")
	root.AddCommand(
		newLsCmd(s),
		newMetaCmd(s),
		newVersionCmd(s),
	)
	for _, add := range extraCommands {
		root.AddCommand(add(s))
	}
	return root
}

// extraCommands lets each command file register itself.
var extraCommands []func(*Streams) *cobra.Command

func newVersionCmd(s *Streams) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print qkv's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if asJSON {
				return writeJSON(s.Out, map[string]string{"schema": "qkv.version/v1", "version": Version})
			}
			fmt.Fprintf(s.Out, "qkv %s\n", Version)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// checkSharedFlags refuses nonsense values of the flags several commands
// share. Zero is their default ("not given"); given explicitly it is
// nonsense, so Changed tells the two apart.
func checkSharedFlags(c *cobra.Command) error {
	fl := c.Flags()
	intFlag := func(name string) (int64, bool) {
		f := fl.Lookup(name)
		if f == nil || !f.Changed {
			return 0, false
		}
		v, err := strconv.ParseInt(f.Value.String(), 10, 64)
		return v, err == nil
	}
	if v, ok := intFlag("max-header"); ok && v <= 0 {
		return usageError("--max-header must be a positive number of bytes, not %d", v)
	}
	for _, name := range []string{"n-heads", "n-kv-heads", "head-dim"} {
		if v, ok := intFlag(name); ok && v < 1 {
			return usageError("--%s must be at least 1, not %d", name, v)
		}
	}
	for _, name := range []string{"workers", "parallel"} {
		if v, ok := intFlag(name); ok && (v < 1 || v > maxWorkers) {
			return usageError("--%s must be between 1 and %d, not %d", name, maxWorkers, v)
		}
	}
	// Lists given but empty ("--layers $EMPTY" in a script) would silently
	// mean "all" or "none".
	for _, name := range []string{"layers", "heads", "tokens", "matrices"} {
		if f := fl.Lookup(name); f != nil && f.Changed && strings.Trim(f.Value.String(), " ,") == "" {
			return usageError("--%s: no values in %q", name, f.Value.String())
		}
	}
	// Thresholds and tolerances: zero means "the default"; given, a value
	// must be a positive finite number (NaN would silently never match).
	for _, name := range []string{"rank-tol", "dead", "collapsed", "duplicate", "duplicate-fail", "outlier", "drift-tol"} {
		f := fl.Lookup(name)
		if f == nil || !f.Changed {
			continue
		}
		v, err := strconv.ParseFloat(f.Value.String(), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			return usageError("--%s must be a positive finite number, not %s", name, f.Value.String())
		}
		if (name == "duplicate" || name == "duplicate-fail") && v > 1 {
			return usageError("--%s is a cosine similarity: at most 1, not %s", name, f.Value.String())
		}
	}
	return nil
}

// maxWorkers bounds --workers: each worker holds a layer's matrices.
const maxWorkers = 1024

// openCheckpoint opens PATH for a command, mapping errors to exit status 3.
func openCheckpoint(path string, maxHeader int64) (*formats.Checkpoint, error) {
	return formats.Open(path, formats.Options{MaxHeaderBytes: maxHeader})
}
