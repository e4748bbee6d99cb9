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
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/termui"
)

type lsFile struct {
	// Path is the file's name relative to the checkpoint's folder (as in
	// source.files), so that a model read locally or remotely lists the
	// same files.
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
	File   string  `json:"file"`  // one of files[].path
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
	src    formats.SourceInfo
	files  []lsFile
	sel    []int
	totals lsTotals
}

func buildLs(ck *formats.Checkpoint, re *regexp.Regexp) *lsListing {
	l := &lsListing{ck: ck, src: ck.Source(), files: []lsFile{}, totals: lsTotals{BytesByType: map[string]int64{}, CountByType: map[string]int{}}}
	for i, f := range ck.Files {
		lf := lsFile{Path: l.fileName(i), Size: f.Size, Format: string(ck.Format)}
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
	lt := lsTensor{Name: t.Name, DType: t.Type.Name(), Shape: t.Shape, File: l.fileName(t.File), Offset: t.Offset, Note: t.Note}
	if lt.Shape == nil {
		lt.Shape = []int64{}
	}
	if t.Bytes >= 0 {
		b := t.Bytes
		lt.Bytes = &b
	}
	return lt
}

// fileName is the i-th file's name relative to the checkpoint's folder.
func (l *lsListing) fileName(i int) string {
	if i >= 0 && i < len(l.src.Files) {
		return l.src.Files[i].Name
	}
	return filepath.ToSlash(l.ck.Files[i].Path)
}

// report is the whole qkv.ls/v1 document in memory (tests compare the
// streamed JSON with it).
func (l *lsListing) report() lsReport {
	rep := lsReport{Schema: "qkv.ls/v1", Source: l.src, QKV: Build(), IO: ioOf(l.ck), Format: string(l.ck.Format),
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
	enc("  ", l.src)
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

// Render writes the listing: a summary line, the table, the notes and
// file names under it, and the totals by dtype. The table is laid out for
// st's width: the parameters column, then the offsets, are left out while
// it is too wide, then long tensor names are cut in the middle.
func (l *lsListing) Render(w io.Writer, st termui.Style) error {
	cols, tx := st.Cols(), textFor(st)
	multi := len(l.files) > 1
	var b strings.Builder
	b.WriteString(termui.Title(termui.Wrap(tx(fmt.Sprintf("%s, %s parameters, %s in %s (%s)", termui.Plural(int64(l.totals.Tensors), "tensor"),
		termui.Count(l.totals.Parameters), termui.Bytes(l.totals.Bytes), termui.Plural(int64(len(l.files)), "file"), l.ck.Format)), cols, "  "), st.Styled))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	b.Reset()
	// Files are numbered in the table and named once below it, so that long
	// shard names do not widen every row.
	headers := []string{"tensor", "dtype", "shape", "params", "bytes", "offset"}
	right := []bool{false, false, false, true, true, true}
	if multi {
		headers = append(headers, "file")
		right = append(right, true)
	}
	row := make([]string, len(headers))
	cells := func(i int) []string {
		t := l.ck.Tensors[l.sel[i]]
		size := "?"
		if t.Bytes >= 0 {
			size = termui.Bytes(t.Bytes)
		}
		row[0], row[1], row[2] = termui.Name(t.Name), termui.Name(t.Type.Name()), termui.Shape(t.Shape)
		row[3], row[4], row[5] = termui.Count(t.Elements()), size, strconv.FormatInt(t.Offset, 10)
		if multi {
			row[6] = strconv.Itoa(t.File + 1)
		}
		return row
	}
	if st.ASCII && !st.Styled {
		cells = rowsThrough(tx, cells)
	}
	err := termui.TableLayout{Headers: headers, Right: right, Styled: st.Styled, Width: cols, ASCII: st.ASCII,
		Drop: []int{3, 5}, Shrink: []int{0, 2}}.Write(w, len(l.sel), cells)
	if err != nil {
		return err
	}
	// Notes go under the table, wrapped to the width, so that a long note
	// does not widen every row.
	for _, i := range l.sel {
		if t := l.ck.Tensors[i]; t.Note != "" {
			b.WriteString(termui.Dim(termui.Wrap(tx(fmt.Sprintf("note: %s: %s", termui.Name(t.Name), termui.Clean(t.Note))), cols, "  "), st.Styled) + "\n")
		}
	}
	if multi {
		for i, f := range l.files {
			label := fmt.Sprintf("file %d: ", i+1)
			name := termui.TruncateMiddle(tx(termui.Name(f.Path)), cols-termui.Width(label), st.ASCII)
			b.WriteString(termui.Dim(label+name, st.Styled) + "\n")
		}
	}
	var types []string
	for k := range l.totals.CountByType {
		types = append(types, k)
	}
	sort.Strings(types)
	if len(types) > 0 {
		b.WriteString("\n")
	}
	typeW := 10
	for _, k := range types {
		typeW = max(typeW, termui.Width(tx(termui.Name(k))))
	}
	typeW = min(typeW, cols-30)
	for _, k := range types {
		name := termui.TruncateMiddle(tx(termui.Name(k)), typeW, st.ASCII)
		b.WriteString(termui.Dim(fmt.Sprintf("  %-*s %5d tensors  %s", typeW, name, l.totals.CountByType[k], termui.Bytes(l.totals.BytesByType[k])), st.Styled) + "\n")
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

// textFor returns how the text of ls, meta, layers, tokenize and verify is
// written for st: on an ASCII terminal (TERM=dumb, unstyled) through
// inspect.ASCII — qkv's symbols as ASCII stand-ins, any other character
// from a file as a \u escape — before it is measured and wrapped; as it is
// otherwise.
func textFor(st termui.Style) func(string) string {
	if st.ASCII && !st.Styled {
		return func(s string) string { return inspect.ASCII(asciiSymbols.Replace(s)) }
	}
	return func(s string) string { return s }
}

// asciiSymbols are stand-ins for symbols inspect.ASCII leaves escaped.
var asciiSymbols = strings.NewReplacer("ΔW", "dW", "Δ", "d", "σ₁", "sigma1", "₁", "1", "✗", "x", "✓", "ok")

// rowsThrough applies tx to every cell row returns.
func rowsThrough(tx func(string) string, row func(i int) []string) func(i int) []string {
	return func(i int) []string {
		r := row(i)
		out := make([]string, len(r))
		for j, c := range r {
			out[j] = tx(c)
		}
		return out
	}
}

// headersThrough applies tx to a table's headers.
func headersThrough(tx func(string) string, hs []string) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = tx(h)
	}
	return out
}
