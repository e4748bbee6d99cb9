package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/safetensors"
	"github.com/qkvdev/qkv/internal/outfile"
	"github.com/qkvdev/qkv/internal/termui"
)

// ExportOptions are the options of qkv export.
type ExportOptions struct {
	IO        *Streams
	Path      string
	Out       string         // a file, or "-" for standard output
	Match     *regexp.Regexp // nil: every tensor
	MaxHeader int64
}

// NewCmdExport builds qkv export; runF (nil: exportRun) does the work.
func NewCmdExport(s *Streams, runF func(context.Context, *ExportOptions) error) *cobra.Command {
	opts := &ExportOptions{IO: s}
	var match string
	c := &cobra.Command{
		Use:   "export PATH -o OUT.safetensors",
		Short: "Decode tensors to float32 and write them to a new safetensors file",
		Long: `Decode the selected tensors of a checkpoint from whatever dtype or quantization
they are stored in to float32, and write them into a new, spec-valid
safetensors file: same names, row-major shapes as 'qkv ls' prints them.
Tensors whose element type cannot be decoded are skipped with a warning.
The input is never written; OUT must not be one of its files. -o - writes
the file to standard output.`,
		Example: `  qkv export model-Q4_K_M.gguf -o weights.safetensors
  qkv export model.gguf -o attn.safetensors --match 'attn_(q|k|v|output)'
  python3 -c "import safetensors.numpy as st; print(st.load_file('attn.safetensors'))"`,
		Args:    exactArgs(1),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			if err := requireOutput("export", opts.Out); err != nil {
				return err
			}
			re, err := compileMatch(match)
			if err != nil {
				return err
			}
			opts.Path, opts.Match = args[0], re
			return runOr(c, runF, exportRun, opts)
		},
	}
	c.Flags().StringVarP(&opts.Out, "output", "o", "", `the safetensors file to write ("-": standard output)`)
	c.Flags().StringVar(&match, "match", "", "export only tensors whose name matches this regular expression")
	addMaxHeaderFlag(c, &opts.MaxHeader)
	return c
}

// exportRun decodes the selected tensors and writes them.
func exportRun(ctx context.Context, o *ExportOptions) error {
	ck, err := openCheckpoint(ctx, o.Path, o.MaxHeader)
	if err != nil {
		return err
	}
	defer ck.Close()
	if err := refuseCheckpointFile(ck, "-o", o.Out); err != nil {
		return err
	}
	var sel []*formats.Tensor
	matched := 0
	for _, t := range ck.Tensors {
		if o.Match != nil && !o.Match.MatchString(t.Name) {
			continue
		}
		matched++
		if !t.Type.Decodable() || (ck.BigEndian() && t.Type.Quantized()) {
			fmt.Fprintf(o.IO.Err, "qkv: skipping %s: cannot decode %s\n", termui.Name(t.Name), termui.Name(t.Type.Name()))
			continue
		}
		sel = append(sel, t)
	}
	switch {
	case matched == 0 && o.Match != nil:
		return usageError("--match %q matches no tensor", o.Match.String())
	case matched == 0:
		return &formats.Error{File: o.Path, Offset: -1, Err: fmt.Errorf("the checkpoint holds no tensors")}
	case len(sel) == 0:
		return &formats.Error{File: o.Path, Offset: -1, Err: fmt.Errorf("none of the %d tensors has an element type qkv can decode", matched)}
	}
	bar := newProgress(o.IO, "export", "tensors")
	size, err := writeF32Safetensors(o.IO, "-o", o.Out, decodedTensors(ck, sel, bar), [][2]string{{"source", filepath.Base(o.Path)}, {"written_by", "qkv " + Version}})
	o.IO.clearProgress()
	if err == nil {
		reportWrote(o.IO, o.Out, len(sel), size)
	}
	return err
}

// refuseInputAsOutput stops a command from writing over one of its inputs.
func refuseInputAsOutput(ck *formats.Checkpoint, flag, out string) error {
	if outfile.IsStdout(out) {
		return nil
	}
	ost, err := os.Stat(out)
	if err != nil {
		return nil
	}
	for _, f := range ck.Files {
		if ist, err := os.Stat(f.Path); err == nil && os.SameFile(ist, ost) {
			return usageError("%s %s is one of the input's files; qkv never writes its inputs", flag, out)
		}
	}
	return nil
}

// requireOutput refuses a missing -o, and an output path qkv will not write.
func requireOutput(command, out string) error {
	if out == "" {
		return usageError("%s needs -o OUT.safetensors", command)
	}
	return checkOutput("-o", out)
}

// checkOutput refuses an output path qkv will not write (a folder, a FIFO,
// a device) before any work is done; outfile.Create checks again.
func checkOutput(flag, out string) error {
	if err := outfile.Check(out); err != nil {
		return flagged(flag, err)
	}
	return nil
}

// exportChunk is how many values export decodes at once: memory stays at
// one chunk whatever the tensor's size.
const exportChunk = 1 << 22

// decodedTensors describes tensors that decode to float32 a chunk at a
// time while the file is written, so memory stays at one chunk; bar (nil:
// none) counts the tensors written.
func decodedTensors(ck *formats.Checkpoint, ts []*formats.Tensor, bar *termui.Progress) []safetensors.WriteTensor {
	var wts []safetensors.WriteTensor
	done := 0
	bar.Set(0, len(ts))
	for _, t := range ts {
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		wts = append(wts, safetensors.WriteTensor{
			Name: t.Name, DType: dtype.F32, Shape: shape, Size: 4 * t.Elements(),
			Write: func(w io.Writer) error {
				err := ck.DecodeChunks(t, exportChunk, func(_ int64, vals []float32) error { return safetensors.WriteFloat32s(w, vals) })
				done++
				bar.Set(done, len(ts))
				return err
			},
		})
	}
	return wts
}

// writeF32Safetensors writes a safetensors file through outfile: a
// temporary file renamed into place (removed on failure or a signal), or
// standard output for "-". flag names the option in messages.
func writeF32Safetensors(s *Streams, flag, path string, ts []safetensors.WriteTensor, meta [][2]string) (int64, error) {
	f, err := outfile.Create(path, s.Out)
	if err != nil {
		return 0, flagged(flag, err)
	}
	defer f.Abort()
	cw := &countingWriter{w: f} // report.go's
	if err := safetensors.Write(cw, ts, meta); err != nil {
		return cw.n, flagged(flag, err)
	}
	return cw.n, flagged(flag, f.Commit())
}

// reportWrote says on stderr what a command wrote to a file — its path as
// given, the tensors and the size — as report does; nothing when the
// output is standard output.
func reportWrote(s *Streams, path string, tensors int, size int64) {
	if outfile.IsStdout(path) {
		return
	}
	fmt.Fprintf(s.Err, "Wrote %s (%s, %s)\n", termui.Name(path), termui.Plural(int64(tensors), "tensor"), termui.Bytes(size))
}

// flagged names the flag in a refusal ("-o X: is a folder").
func flagged(flag string, err error) error {
	var oe *outfile.Error
	if errors.As(err, &oe) && oe.Refused {
		return &outfile.Error{Path: oe.Path, Refused: true, Err: fmt.Errorf("%s %s: %v", flag, oe.Path, oe.Err)}
	}
	return err
}
