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
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/termui"
)

// Version is set at build time with -ldflags "-X github.com/qkvdev/qkv/cmd.Version=...";
// otherwise it comes from the module version or VCS revision Go recorded.
var Version = buildinfo.Read("").Version

// Build returns what the JSON "qkv" block of every report says about this build.
func Build() buildinfo.Info { return buildinfo.Read(Version) }

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
func (s *Streams) style() termui.Style { return termui.Style{Styled: s.Styled, Width: s.Width} }

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

// Execute runs qkv with the process's arguments and streams and returns the
// exit status.
func Execute() int {
	return Run(context.Background(), os.Args[1:], SystemStreams())
}

// Run runs qkv with the given arguments and streams and returns the exit
// status. It never calls os.Exit, so tests can call it.
func Run(ctx context.Context, args []string, s *Streams) int {
	err := execute(ctx, NewRoot(s), args, s)
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

// execute runs the command tree. The one error cobra makes outside a
// command's flags and arguments, an unknown command, comes from Find: it
// is asked first, so that its error is typed as a usage error here.
func execute(ctx context.Context, root *cobra.Command, args []string, s *Streams) error {
	root.SetArgs(args)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetIn(s.In)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	if _, _, err := root.Find(args); err != nil {
		return asUsage(err)
	}
	return root.ExecuteContext(ctx)
}

// NewRoot builds the command tree printing to s: every command is listed
// here, each built by its NewCmdX constructor.
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
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return asUsage(err) })
	root.SetVersionTemplate("qkv {{.Version}}\n")
	root.AddCommand(
		NewCmdLs(s, nil),
		NewCmdMeta(s, nil),
		NewCmdLayers(s, nil),
		NewCmdExtract(s, nil),
		NewCmdExport(s, nil),
		NewCmdCat(s, nil),
		NewCmdInspect(s, nil),
		NewCmdCircuits(s, nil),
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

func versionRun(_ context.Context, o *VersionOptions) error {
	if o.JSON {
		return termui.WriteJSON(o.IO.Out, map[string]string{"schema": "qkv.version/v1", "version": Version})
	}
	_, err := fmt.Fprintf(o.IO.Out, "qkv %s\n", Version)
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
