// Package cmd holds qkv's cobra commands: one file per command, each a thin
// layer of flags, wiring and output choice over formats, inspect and attn.
// Commands print to injected streams so tests can run them in-process.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/termui"
)

// Version is the version of this build: stamped with -ldflags
// "-X github.com/qkvdev/qkv/internal/buildinfo.version=v0.1.0" (and .commit,
// .date), else the module version, else "dev-COMMIT" from the VCS
// revision Go recorded, else "dev".
var Version = buildinfo.Read("").Version

// Build returns what the JSON "qkv" block of every report says about this build.
func Build() buildinfo.Info { return buildinfo.Read(Version) }

// Streams are the command's standard streams and environment.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
	// Styled: colours and borders on stdout (a terminal, or forced by
	// --color=always or CLICOLOR_FORCE; never with NO_COLOR or --color=never).
	Styled bool
	// Width of the terminal in columns (80 when unknown).
	Width int
	// ASCII: the terminal shows ASCII only (TERM=dumb).
	ASCII bool
	// Progress: stderr is a terminal, so progress bars may be drawn there.
	Progress bool

	// remote is the run's remote reading (NewRoot makes it; see remote.go).
	remote *remoteEnv
}

// Every text view of a command renders through the one signature.
var (
	_ termui.Renderer = (*lsListing)(nil)
	_ termui.Renderer = metaView{}
	_ termui.Renderer = layersView{}
	_ termui.Renderer = catReport{}
	_ termui.Renderer = tokenizeReport{}
	_ termui.Renderer = verifyView{}
)

// style is how results are written to Out: styled or not, and its width.
func (s *Streams) style() termui.Style {
	return termui.Style{Styled: s.Styled, Width: s.Width, ASCII: s.ASCII}
}

// SystemStreams returns the process's streams with styling decided from the
// terminal and the environment (colorAuto).
func SystemStreams() *Streams {
	s := &Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr, Width: 80}
	outTTY := term.IsTerminal(int(os.Stdout.Fd()))
	s.Styled = colorAuto(outTTY, os.Getenv)
	s.ASCII = os.Getenv("TERM") == "dumb"
	if w, _, err := term.GetSize(int(os.Stdout.Fd())); outTTY && err == nil && w > 0 {
		s.Width = w
	} else if w, err := strconv.Atoi(strings.TrimSpace(os.Getenv("COLUMNS"))); err == nil && w > 20 {
		s.Width = w
	}
	s.Progress = term.IsTerminal(int(os.Stderr.Fd()))
	if s.Progress && !outTTY {
		// stdout is piped: the progress line fits stderr's terminal.
		if w, _, err := term.GetSize(int(os.Stderr.Fd())); err == nil && w > 0 {
			s.Width = w
		}
	}
	return s
}

// colorAuto decides styling when --color is auto: NO_COLOR (set and not
// empty) turns it off; CLICOLOR_FORCE (set, not "0") forces it on even
// when stdout is not a terminal; CLICOLOR=0 turns it off; otherwise a
// terminal that is not TERM=dumb is styled.
func colorAuto(tty bool, getenv func(string) string) bool {
	switch {
	case getenv("NO_COLOR") != "":
		return false
	case getenv("CLICOLOR_FORCE") != "" && getenv("CLICOLOR_FORCE") != "0":
		return true
	case getenv("CLICOLOR") == "0":
		return false
	}
	return tty && getenv("TERM") != "dumb"
}

// colorValues are the values of --color.
var colorValues = []string{"auto", "always", "never"}

// applyColor applies --color to the streams.
func (s *Streams) applyColor(v string) error {
	switch v {
	case "auto":
	case "always":
		s.Styled = true
	case "never":
		s.Styled = false
	default:
		return usageError("--color must be auto, always or never, not %q", v)
	}
	return nil
}

// Execute runs qkv with the process's arguments and streams and returns the
// exit status.
func Execute() int {
	return Run(context.Background(), os.Args[1:], SystemStreams())
}

// Run runs qkv with the given arguments and streams and returns the exit
// status. It never calls os.Exit, so tests can call it.
func Run(ctx context.Context, args []string, s *Streams) int {
	root := newRoot(s, commandNamed(args))
	sub, err := execute(withStreams(ctx, s), root, args, s)
	s.clearProgress()
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
	var ee *exitError
	if errors.As(err, &ee) && ee.hint != "" {
		fmt.Fprintln(s.Err, termui.Clean(ee.hint))
	}
	if code == ExitUsage {
		fmt.Fprintf(s.Err, "Run '%s --help' for usage.\n", sub.CommandPath())
	}
	return code
}

// execute runs the command tree and returns the command the arguments
// name (the root when they name none) for the usage hint. The one error
// cobra makes outside a command's flags and arguments, an unknown command,
// comes from Find: it is asked first, so that its error is typed as a
// usage error here, with the suggestion on a line of its own.
func execute(ctx context.Context, root *cobra.Command, args []string, s *Streams) (*cobra.Command, error) {
	root.SetArgs(args)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetIn(s.In)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	completionNeedsShell(root)
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		registerCompletions(root)
		return root, root.ExecuteContext(ctx) // shell completion: cobra's hidden command
	}
	sub, _, err := root.Find(args)
	if err != nil {
		return root, unknownCommand(root, args)
	}
	return sub, root.ExecuteContext(ctx)
}

// completionNeedsShell makes qkv completion without a shell, or with one
// cobra has no script for, a usage error naming the shells (cobra's
// command only prints its help and succeeds).
func completionNeedsShell(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "completion" || c.Runnable() {
			continue
		}
		var shells []string
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				shells = append(shells, sub.Name())
			}
		}
		names := strings.Join(shells, ", ")
		if i := strings.LastIndex(names, ", "); i >= 0 {
			names = names[:i] + " or " + names[i+2:]
		}
		c.Use, c.Args = "completion SHELL", cobra.ArbitraryArgs
		c.RunE = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("completion needs a shell: %s", names)
			}
			return usageError("completion: no script for shell %q (qkv has %s)", args[0], names)
		}
	}
}

// unknownCommand is the usage error for a first argument that names no
// command, with cobra's suggestions.
func unknownCommand(root *cobra.Command, args []string) error {
	name := ""
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			name = a
			break
		}
	}
	e := &exitError{code: ExitUsage, err: fmt.Errorf("unknown command %q for %q", name, root.CommandPath())}
	if sug := root.SuggestionsFor(name); len(sug) > 0 {
		for i, c := range sug {
			sug[i] = "'" + root.CommandPath() + " " + c + "'"
		}
		e.hint = "Did you mean " + strings.Join(sug, " or ") + "?"
	}
	return e
}

// NewRoot builds the command tree printing to s: every command is listed
// here, each built by its NewCmdX constructor.
func NewRoot(s *Streams) *cobra.Command { return newRoot(s, nil) }

// newRoot builds the root with every command, or with only the command
// only builds when it is not nil: a run names its command, and building
// the fifteen others (their flags, defaults and help) would cost more than
// the start of a Go program (see commandNamed).
func newRoot(s *Streams, only func(*Streams) *cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:   "qkv",
		Short: "Look inside transformer checkpoints: attention weights, spectra, heads",
		Long: `qkv opens safetensors and GGUF checkpoints without loading them, finds every
layer's attention projections W_Q, W_K, W_V and W_O, decodes them to float32
from any dtype or quantization, and reports what they look like.

` + remoteHelp + `

Exit status: 0 success, 1 a check found problems, 2 usage error,
3 the input could not be read.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Build().Line(),
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return asUsage(err) })
	root.SetVersionTemplate("qkv {{.Version}}\n")
	setHelp(root, s)
	// One run, one remote client: the persistent flags bind to a new
	// remoteEnv (a test's source options are kept).
	var opts func() source.Options
	if s.remote != nil {
		opts = s.remote.options
	}
	s.remote = &remoteEnv{options: opts}
	s.remote.flags.addPersistent(root)
	color := "auto"
	root.PersistentFlags().StringVar(&color, "color", "auto", "colour and borders on stdout: auto (on a terminal, unless NO_COLOR; CLICOLOR_FORCE forces), always or never")
	root.PersistentPreRunE = func(c *cobra.Command, args []string) error { return s.applyColor(color) }
	if only != nil {
		root.CompletionOptions.DisableDefaultCmd = true
		root.AddCommand(only(s))
		return root
	}
	root.AddCommand(
		NewCmdLs(s, nil),
		NewCmdMeta(s, nil),
		NewCmdLayers(s, nil),
		NewCmdExtract(s, nil),
		NewCmdExport(s, nil),
		NewCmdCat(s, nil),
		NewCmdInspect(s, nil),
		NewCmdCircuits(s, nil),
		NewCmdReport(s, nil),
		NewCmdMerge(s, nil),
		NewCmdAttn(s, nil),
		NewCmdCheck(s, nil),
		NewCmdDiff(s, nil),
		NewCmdTokenize(s, nil),
		NewCmdVerify(s, nil),
		NewCmdVersion(s, nil),
	)
	return root
}

// commandsByName are the commands a run may build alone (newRoot), by the
// name their first argument gives; a command missing here is built with all
// the others (TestCommandsByName keeps the two lists equal).
var commandsByName = map[string]func(*Streams) *cobra.Command{
	"ls":       func(s *Streams) *cobra.Command { return NewCmdLs(s, nil) },
	"meta":     func(s *Streams) *cobra.Command { return NewCmdMeta(s, nil) },
	"layers":   func(s *Streams) *cobra.Command { return NewCmdLayers(s, nil) },
	"extract":  func(s *Streams) *cobra.Command { return NewCmdExtract(s, nil) },
	"export":   func(s *Streams) *cobra.Command { return NewCmdExport(s, nil) },
	"cat":      func(s *Streams) *cobra.Command { return NewCmdCat(s, nil) },
	"inspect":  func(s *Streams) *cobra.Command { return NewCmdInspect(s, nil) },
	"circuits": func(s *Streams) *cobra.Command { return NewCmdCircuits(s, nil) },
	"merge":    func(s *Streams) *cobra.Command { return NewCmdMerge(s, nil) },
	"attn":     func(s *Streams) *cobra.Command { return NewCmdAttn(s, nil) },
	"check":    func(s *Streams) *cobra.Command { return NewCmdCheck(s, nil) },
	"diff":     func(s *Streams) *cobra.Command { return NewCmdDiff(s, nil) },
	"tokenize": func(s *Streams) *cobra.Command { return NewCmdTokenize(s, nil) },
	"verify":   func(s *Streams) *cobra.Command { return NewCmdVerify(s, nil) },
	"report":   func(s *Streams) *cobra.Command { return NewCmdReport(s, nil) },
	"version":  func(s *Streams) *cobra.Command { return NewCmdVersion(s, nil) },
}

// commandNamed is the constructor of the command args name when the first
// argument names one (flags before it, help and completion need the whole
// tree), else nil.
func commandNamed(args []string) func(*Streams) *cobra.Command {
	if len(args) == 0 {
		return nil
	}
	return commandsByName[args[0]]
}

// VersionOptions are the options of qkv version.
type VersionOptions struct {
	IO   *Streams
	JSON bool
}

// NewCmdVersion builds qkv version; runF (nil: versionRun) does the work.
func NewCmdVersion(s *Streams, runF func(context.Context, *VersionOptions) error) *cobra.Command {
	opts := &VersionOptions{IO: s}
	c := &cobra.Command{
		Use:   "version",
		Short: "Print qkv's version",
		Args:  noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			return runOr(c, runF, versionRun, opts)
		},
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	return c
}

// versionReport is qkv version --json: the version, and the build's
// "qkv" block every document carries (commit, date, Go).
type versionReport struct {
	Schema  string         `json:"schema"`
	Version string         `json:"version"`
	QKV     buildinfo.Info `json:"qkv"`
}

func versionRun(_ context.Context, o *VersionOptions) error {
	if o.JSON {
		return termui.WriteJSON(o.IO.Out, versionReport{Schema: "qkv.version/v1", Version: Version, QKV: Build()})
	}
	_, err := fmt.Fprintf(o.IO.Out, "qkv %s\n", Build().Line())
	return err
}

// runOr calls runF, or def when runF is nil, with the command's context.
func runOr[O any](c *cobra.Command, runF, def func(context.Context, *O) error, opts *O) error {
	if runF == nil {
		runF = def
	}
	ctx := c.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	return runF(ctx, opts)
}
