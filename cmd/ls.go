package cmd

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/termui"
)

type lsFile struct {
	Path       string `json:"path"`
	Size       int64  `json:"size"`
	Format     string `json:"format"`
	Version    uint32 `json:"version,omitempty"`    // GGUF version
	Endianness string `json:"endianness,omitempty"` // GGUF
	DataOffset int64  `json:"data_offset"`
}

type lsTensor struct {
	Name   string  `json:"name"`
	DType  string  `json:"dtype"`
	Shape  []int64 `json:"shape"`
	Bytes  *int64  `json:"bytes"` // null when the type's layout is unknown
	File   string  `json:"file"`
	Offset int64   `json:"offset"`
}

type lsTotals struct {
	Tensors     int              `json:"tensors"`
	Parameters  int64            `json:"parameters"`
	Bytes       int64            `json:"bytes"`
	BytesByType map[string]int64 `json:"bytes_by_dtype"`
	CountByType map[string]int   `json:"tensors_by_dtype"`
}

type lsReport struct {
	Schema  string     `json:"schema"`
	Format  string     `json:"format"`
	Files   []lsFile   `json:"files"`
	Tensors []lsTensor `json:"tensors"`
	Totals  lsTotals   `json:"totals"`
}

func newLsCmd(s *Streams) *cobra.Command {
	var (
		match     string
		asJSON    bool
		maxHeader int64
	)
	c := &cobra.Command{
		Use:   "ls PATH",
		Short: "List a checkpoint's tensors: name, dtype, shape, bytes, file and offset",
		Long: `List every tensor of a checkpoint without reading tensor data: name, element
type, shape (row-major, outermost first, for both formats), byte size, file and
byte offset, then totals by dtype.

PATH is a .safetensors or .gguf file, a Hugging Face model folder, a
model.safetensors.index.json, or any part of a split GGUF set.`,
		Example: `  qkv ls testdata/tiny-llama
  qkv ls model.gguf --match 'attn_(q|k)'
  qkv ls model.safetensors --json | jq '.totals'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			re, err := compileMatch(match)
			if err != nil {
				return err
			}
			ck, err := openCheckpoint(args[0], maxHeader)
			if err != nil {
				return err
			}
			defer ck.Close()
			rep := buildLs(ck, re)
			if asJSON {
				return writeJSON(s.Out, rep)
			}
			return printLs(s, rep)
		},
	}
	c.Flags().StringVar(&match, "match", "", "list only tensors whose name matches this regular expression")
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON document (schema qkv.ls/v1)")
	addMaxHeaderFlag(c, &maxHeader)
	return c
}

// compileMatch compiles a --match expression; "" matches everything (nil).
func compileMatch(expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, usageError("--match: %v", err)
	}
	return re, nil
}

func addMaxHeaderFlag(c *cobra.Command, v *int64) {
	c.Flags().Int64Var(v, "max-header", 0, "largest safetensors header to accept, in bytes (default 100000000)")
}

func buildLs(ck *formats.Checkpoint, re *regexp.Regexp) lsReport {
	rep := lsReport{Schema: "qkv.ls/v1", Format: string(ck.Format), Files: []lsFile{}, Tensors: []lsTensor{},
		Totals: lsTotals{BytesByType: map[string]int64{}, CountByType: map[string]int{}}}
	for _, f := range ck.Files {
		lf := lsFile{Path: f.Path, Size: f.Size, Format: string(ck.Format)}
		if f.GGUF != nil {
			lf.Version = f.GGUF.Version
			lf.Endianness = "little"
			if f.GGUF.BigEndian {
				lf.Endianness = "big"
			}
			lf.DataOffset = f.GGUF.DataOffset
		} else if f.Safetensors != nil {
			lf.DataOffset = f.Safetensors.DataOffset
		}
		rep.Files = append(rep.Files, lf)
	}
	for _, t := range ck.Tensors {
		if re != nil && !re.MatchString(t.Name) {
			continue
		}
		lt := lsTensor{Name: t.Name, DType: t.Type.Name(), Shape: t.Shape, File: ck.Files[t.File].Path, Offset: t.Offset}
		if lt.Shape == nil {
			lt.Shape = []int64{}
		}
		if t.Bytes >= 0 {
			b := t.Bytes
			lt.Bytes = &b
			rep.Totals.Bytes = addSaturating(rep.Totals.Bytes, b)
			rep.Totals.BytesByType[lt.DType] = addSaturating(rep.Totals.BytesByType[lt.DType], b)
		}
		rep.Totals.CountByType[lt.DType]++
		rep.Totals.Parameters = addSaturating(rep.Totals.Parameters, t.Elements())
		rep.Tensors = append(rep.Tensors, lt)
	}
	rep.Totals.Tensors = len(rep.Tensors)
	return rep
}

func printLs(s *Streams, rep lsReport) error {
	multi := len(rep.Files) > 1
	// Files are numbered in the table and named once below it, so that long
	// shard names do not widen every row.
	fileNumber := map[string]int{}
	for i, f := range rep.Files {
		fileNumber[f.Path] = i + 1
	}
	var rows [][]string
	for _, t := range rep.Tensors {
		size := "?"
		if t.Bytes != nil {
			size = humanBytes(*t.Bytes)
		}
		row := []string{t.Name, t.DType, shapeString(t.Shape), size, fmt.Sprint(t.Offset)}
		if multi {
			row = append(row, fmt.Sprint(fileNumber[t.File]))
		}
		rows = append(rows, row)
	}
	headers := []string{"tensor", "dtype", "shape", "bytes", "offset"}
	right := []bool{false, false, false, true, true}
	if multi {
		headers = append(headers, "file")
	}
	if multi {
		right = append(right, true)
	}
	out := termui.Table(headers, rows, right, s.Styled)
	if multi {
		for i, f := range rep.Files {
			out += termui.Dim(fmt.Sprintf("file %d: %s", i+1, filepath.Base(f.Path)), s.Styled) + "\n"
		}
	}
	var types []string
	for k := range rep.Totals.CountByType {
		types = append(types, k)
	}
	sort.Strings(types)
	out += fmt.Sprintf("\n%d tensors, %s parameters, %s in %s (%s)\n", rep.Totals.Tensors,
		humanCount(rep.Totals.Parameters), humanBytes(rep.Totals.Bytes), plural(int64(len(rep.Files)), "file"), rep.Format)
	for _, k := range types {
		out += termui.Dim(fmt.Sprintf("  %-10s %5d tensors  %s", k, rep.Totals.CountByType[k], humanBytes(rep.Totals.BytesByType[k])), s.Styled) + "\n"
	}
	_, err := fmt.Fprint(s.Out, out)
	return err
}

// addSaturating adds non-negative counts, stopping at the largest int64: a
// hostile header may declare tensors whose sizes add up past it.
func addSaturating(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}
