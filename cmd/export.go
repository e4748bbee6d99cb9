package cmd

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/safetensors"
)

func init() { extraCommands = append(extraCommands, newExportCmd, newCatCmd) }

func newExportCmd(s *Streams) *cobra.Command {
	var (
		out       string
		match     string
		maxHeader int64
	)
	c := &cobra.Command{
		Use:   "export PATH -o OUT.safetensors",
		Short: "Decode tensors to float32 and write them to a new safetensors file",
		Long: `Decode the selected tensors of a checkpoint from whatever dtype or quantization
they are stored in to float32, and write them into a new, spec-valid
safetensors file: same names, row-major shapes as 'qkv ls' prints them.
Tensors whose element type cannot be decoded are skipped with a warning.
The input is never written; OUT must not be one of its files.`,
		Example: `  qkv export model-Q4_K_M.gguf -o weights.safetensors
  qkv export model.gguf -o attn.safetensors --match 'attn_(q|k|v|output)'
  python3 -c "from safetensors.numpy import load_file; print(load_file('attn.safetensors').keys())"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError("export needs -o OUT.safetensors")
			}
			re, err := compileMatch(match)
			if err != nil {
				return err
			}
			ck, err := openCheckpoint(args[0], maxHeader)
			if err != nil {
				return err
			}
			defer ck.Close()
			if err := refuseInputAsOutput(ck, out); err != nil {
				return err
			}
			var sel []*formats.Tensor
			matched := 0
			for _, t := range ck.Tensors {
				if re != nil && !re.MatchString(t.Name) {
					continue
				}
				matched++
				if !t.Type.Decodable() || (ck.BigEndian() && t.Type.Quantized()) {
					fmt.Fprintf(s.Err, "qkv: skipping %s: cannot decode %s\n", t.Name, t.Type.Name())
					continue
				}
				sel = append(sel, t)
			}
			switch {
			case matched == 0 && re != nil:
				return usageError("--match %q matches no tensor", match)
			case matched == 0:
				return &formats.Error{File: args[0], Offset: -1, Err: fmt.Errorf("the checkpoint holds no tensors")}
			case len(sel) == 0:
				return &formats.Error{File: args[0], Offset: -1, Err: fmt.Errorf("none of the %d tensors has an element type qkv can decode", matched)}
			}
			return writeF32Safetensors(out, decodedTensors(ck, sel), [][2]string{{"source", filepath.Base(args[0])}, {"written_by", "qkv " + Version}})
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "the safetensors file to write")
	c.Flags().StringVar(&match, "match", "", "export only tensors whose name matches this regular expression")
	addMaxHeaderFlag(c, &maxHeader)
	return c
}

// refuseInputAsOutput stops a command from writing over one of its inputs.
func refuseInputAsOutput(ck *formats.Checkpoint, out string) error {
	ost, err := os.Stat(out)
	if err != nil {
		return nil
	}
	for _, f := range ck.Files {
		if ist, err := os.Stat(f.Path); err == nil && os.SameFile(ist, ost) {
			return usageError("-o %s is one of the input's files; qkv never writes its inputs", out)
		}
	}
	return nil
}

// decodedTensors describes tensors that decode to float32 one at a time
// while the file is written, so memory stays at one tensor.
func decodedTensors(ck *formats.Checkpoint, ts []*formats.Tensor) []safetensors.WriteTensor {
	var wts []safetensors.WriteTensor
	for _, t := range ts {
		t := t
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		wts = append(wts, safetensors.WriteTensor{
			Name: t.Name, DType: dtype.F32, Shape: shape, Size: 4 * t.Elements(),
			Write: func(w io.Writer) error {
				vals, err := ck.DecodeNew(t)
				if err != nil {
					return err
				}
				return writeFloat32s(w, vals)
			},
		})
	}
	return wts
}

func writeFloat32s(w io.Writer, vals []float32) error {
	buf := make([]byte, 0, 1<<16)
	for _, v := range vals {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		if len(buf) == cap(buf) {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	_, err := w.Write(buf)
	return err
}

// writeF32Safetensors writes a safetensors file through a temporary file
// renamed into place, so a failed write leaves no half file behind.
func writeF32Safetensors(path string, ts []safetensors.WriteTensor, meta [][2]string) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".qkv-*.safetensors")
	if err != nil {
		return &exitError{code: ExitInput, err: fmt.Errorf("cannot write %s: %v", path, err)}
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := safetensors.Write(bw, ts, meta); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return &exitError{code: ExitInput, err: fmt.Errorf("cannot write %s: %v", path, err)}
	}
	if err := tmp.Close(); err != nil {
		return &exitError{code: ExitInput, err: fmt.Errorf("cannot write %s: %v", path, err)}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return &exitError{code: ExitInput, err: fmt.Errorf("cannot write %s: %v", path, err)}
	}
	return nil
}
