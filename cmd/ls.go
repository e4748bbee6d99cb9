package cmd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/internal/buildinfo"
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
	// Note says what is unusual about how the tensor is stored.
	Note string `json:"note,omitempty"`
}

type lsTotals struct {
	Tensors     int              `json:"tensors"`
	Parameters  int64            `json:"parameters"`
	Bytes       int64            `json:"bytes"`
	BytesByType map[string]int64 `json:"bytes_by_dtype"`
	CountByType map[string]int   `json:"tensors_by_dtype"`
}

type lsReport struct {
	Schema  string             `json:"schema"`
	Source  formats.SourceInfo `json:"source"`
	QKV     buildinfo.Info     `json:"qkv"`
	IO      *source.IO         `json:"io,omitempty"`
	Format  string             `json:"format"`
	Files   []lsFile           `json:"files"`
	Tensors []lsTensor         `json:"tensors"`
	Totals  lsTotals           `json:"totals"`
}

// LsOptions are the options of qkv ls.
type LsOptions struct {
	IO        *Streams
	Path      string
	Match     *regexp.Regexp // nil: every tensor
	JSON      bool
	MaxHeader int64
}

// NewCmdLs builds qkv ls; runF (nil: lsRun) does the work.
func NewCmdLs(s *Streams, runF func(context.Context, *LsOptions) error) *cobra.Command {
	opts := &LsOptions{IO: s}
	var match string
	c := &cobra.Command{
		Use:   "ls PATH",
		Short: "List a checkpoint's tensors: name, dtype, shape, bytes, file and offset",
		Long: `List every tensor of a checkpoint without reading tensor data: name, element
type, shape (row-major, outermost first, for both formats), byte size, file and
byte offset, then totals by dtype. A tensor qkv reads in a way worth knowing
(a legacy layout, for example) carries a note.

PATH is a .safetensors or .gguf file, a Hugging Face model folder, a
model.safetensors.index.json, or any part of a split GGUF set.`,
		Example: `  qkv ls testdata/tiny-llama
  qkv ls model.gguf --match 'attn_(q|k)'
  qkv ls model.safetensors --json | jq '.totals'`,
		Args:    exactArgs(1),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			re, err := compileMatch(match)
			if err != nil {
				return err
			}
			opts.Path, opts.Match = args[0], re
			return runOr(c, runF, lsRun, opts)
		},
	}
	c.Flags().StringVar(&match, "match", "", "list only tensors whose name matches this regular expression")
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document (schema qkv.ls/v1)")
	addMaxHeaderFlag(c, &opts.MaxHeader)
	return c
}

// lsRun lists the checkpoint's tensors.
func lsRun(ctx context.Context, o *LsOptions) error {
	ck, err := openCheckpoint(ctx, o.Path, o.MaxHeader)
	if err != nil {
		return err
	}
	defer ck.Close()
	l := buildLs(ck, o.Match)
	if o.JSON {
		return l.writeJSON(o.IO.Out)
	}
	return l.Render(o.IO.Out, o.IO.style())
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

// lsListing is what ls shows: the files, the selected tensors (by index
// into the checkpoint, so that a header of a million tensors is not copied)
// and the totals. JSON and text are both written from it row by row.
type lsListing struct {
	ck     *formats.Checkpoint
	files  []lsFile
	sel    []int
	totals lsTotals
}

func buildLs(ck *formats.Checkpoint, re *regexp.Regexp) *lsListing {
	l := &lsListing{ck: ck, files: []lsFile{}, totals: lsTotals{BytesByType: map[string]int64{}, CountByType: map[string]int{}}}
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
		l.files = append(l.files, lf)
	}
	for i, t := range ck.Tensors {
		if re != nil && !re.MatchString(t.Name) {
			continue
		}
		dt := t.Type.Name()
		if t.Bytes >= 0 {
			l.totals.Bytes = addSaturating(l.totals.Bytes, t.Bytes)
			l.totals.BytesByType[dt] = addSaturating(l.totals.BytesByType[dt], t.Bytes)
		}
		l.totals.CountByType[dt]++
		l.totals.Parameters = addSaturating(l.totals.Parameters, t.Elements())
		l.sel = append(l.sel, i)
	}
	l.totals.Tensors = len(l.sel)
	return l
}

// tensor is the listing's entry for the i-th selected tensor.
func (l *lsListing) tensor(i int) lsTensor {
	t := l.ck.Tensors[l.sel[i]]
	lt := lsTensor{Name: t.Name, DType: t.Type.Name(), Shape: t.Shape, File: l.ck.Files[t.File].Path, Offset: t.Offset, Note: t.Note}
	if lt.Shape == nil {
		lt.Shape = []int64{}
	}
	if t.Bytes >= 0 {
		b := t.Bytes
		lt.Bytes = &b
	}
	return lt
}

// report is the whole qkv.ls/v1 document in memory (tests compare the
// streamed JSON with it).
func (l *lsListing) report() lsReport {
	rep := lsReport{Schema: "qkv.ls/v1", Source: l.ck.Source(), QKV: Build(), IO: ioOf(l.ck), Format: string(l.ck.Format),
		Files: l.files, Tensors: make([]lsTensor, len(l.sel)), Totals: l.totals}
	for i := range l.sel {
		rep.Tensors[i] = l.tensor(i)
	}
	return rep
}

// writeJSON streams the qkv.ls/v1 document tensor by tensor: the same
// bytes as encoding the whole report at once, without holding it.
func (l *lsListing) writeJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := func(prefix string, v any) {
		var b bytes.Buffer
		e := json.NewEncoder(&b)
		e.SetEscapeHTML(false)
		e.SetIndent(prefix, "  ")
		e.Encode(v) // values of these types always encode
		bw.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	}
	bw.WriteString("{\n  \"schema\": \"qkv.ls/v1\",\n  \"source\": ")
	enc("  ", l.ck.Source())
	bw.WriteString(",\n  \"qkv\": ")
	enc("  ", Build())
	if io := ioOf(l.ck); io != nil {
		bw.WriteString(",\n  \"io\": ")
		enc("  ", io)
	}
	bw.WriteString(",\n  \"format\": ")
	enc("  ", string(l.ck.Format))
	bw.WriteString(",\n  \"files\": ")
	enc("  ", l.files)
	bw.WriteString(",\n  \"tensors\": [")
	for i := range l.sel {
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n    ")
		enc("    ", l.tensor(i))
	}
	if len(l.sel) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("],\n  \"totals\": ")
	enc("  ", l.totals)
	bw.WriteString("\n}\n")
	return bw.Flush()
}

// Render writes the listing as a table and its totals.
func (l *lsListing) Render(w io.Writer, st termui.Style) error {
	multi := len(l.files) > 1
	// Files are numbered in the table and named once below it, so that long
	// shard names do not widen every row.
	headers := []string{"tensor", "dtype", "shape", "bytes", "offset"}
	right := []bool{false, false, false, true, true}
	if multi {
		headers = append(headers, "file")
		right = append(right, true)
	}
	row := make([]string, len(headers))
	err := termui.TableLayout{Headers: headers, Right: right, Styled: st.Styled}.Write(w, len(l.sel), func(i int) []string {
		t := l.ck.Tensors[l.sel[i]]
		size := "?"
		if t.Bytes >= 0 {
			size = termui.Bytes(t.Bytes)
		}
		row[0], row[1], row[2], row[3], row[4] = termui.Name(t.Name), termui.Name(t.Type.Name()), termui.Shape(t.Shape), size, strconv.FormatInt(t.Offset, 10)
		if multi {
			row[5] = strconv.Itoa(t.File + 1)
		}
		return row
	})
	if err != nil {
		return err
	}
	var b strings.Builder
	// Notes go under the table, one line each, so that a long note does
	// not widen every row.
	for _, i := range l.sel {
		if t := l.ck.Tensors[i]; t.Note != "" {
			b.WriteString(termui.Dim(fmt.Sprintf("note: %s: %s", termui.Name(t.Name), t.Note), st.Styled) + "\n")
		}
	}
	if multi {
		for i, f := range l.files {
			b.WriteString(termui.Dim(fmt.Sprintf("file %d: %s", i+1, termui.Name(filepath.Base(f.Path))), st.Styled) + "\n")
		}
	}
	var types []string
	for k := range l.totals.CountByType {
		types = append(types, k)
	}
	sort.Strings(types)
	fmt.Fprintf(&b, "\n%d tensors, %s parameters, %s in %s (%s)\n", l.totals.Tensors,
		termui.Count(l.totals.Parameters), termui.Bytes(l.totals.Bytes), termui.Plural(int64(len(l.files)), "file"), l.ck.Format)
	for _, k := range types {
		b.WriteString(termui.Dim(fmt.Sprintf("  %-10s %5d tensors  %s", termui.Name(k), l.totals.CountByType[k], termui.Bytes(l.totals.BytesByType[k])), st.Styled) + "\n")
	}
	_, err = io.WriteString(w, b.String())
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
