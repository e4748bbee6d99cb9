package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/termui"
)

// arrayPreview is how many array items meta shows without --full.
const arrayPreview = 8

type metaEntry struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Count uint64 `json:"count"`
	Value any    `json:"value"`
	// Truncated: only the first items of an array are in value (use --full).
	Truncated bool `json:"truncated,omitempty"`
	// NonFinite: value held NaN or ±Inf, shown as null.
	NonFinite bool  `json:"non_finite,omitempty"`
	Offset    int64 `json:"offset"`
}

type metaGGUF struct {
	Version     uint32 `json:"version"`
	Endianness  string `json:"endianness"`
	Alignment   uint64 `json:"alignment"`
	TensorCount int    `json:"tensor_count"`
	KVCount     int    `json:"kv_count"`
	DataOffset  int64  `json:"data_offset"`
	Files       int    `json:"files"`
}

type metaReport struct {
	Schema        string             `json:"schema"`
	Source        formats.SourceInfo `json:"source"`
	QKV           buildinfo.Info     `json:"qkv"`
	IO            *source.IO         `json:"io,omitempty"`
	Format        string             `json:"format"`
	GGUF          *metaGGUF          `json:"gguf,omitempty"`
	Metadata      []metaEntry        `json:"metadata"`
	Config        map[string]any     `json:"config"`
	ConfigPath    string             `json:"config_path,omitempty"`
	AdapterConfig map[string]any     `json:"adapter_config,omitempty"`
}

// MetaOptions are the options of qkv meta.
type MetaOptions struct {
	IO        *Streams
	Path      string
	Key       string // "": every key
	Full      bool   // whole arrays (implied by Key)
	JSON      bool
	MaxHeader int64
}

// NewCmdMeta builds qkv meta; runF (nil: metaRun) does the work.
func NewCmdMeta(s *Streams, runF func(context.Context, *MetaOptions) error) *cobra.Command {
	opts := &MetaOptions{IO: s}
	c := &cobra.Command{
		Use:   "meta PATH",
		Short: "Show a checkpoint's metadata: GGUF key/values, safetensors __metadata__, config.json",
		Long: `Show a checkpoint's metadata without reading tensor data: every GGUF key/value
with its type (arrays by element type, count and first items unless --full),
the safetensors __metadata__ table, and config.json when it is beside the
weights.`,
		Example: `  qkv meta model.gguf
  qkv meta model.gguf --key tokenizer.ggml.tokens --full
  qkv meta ./my-hf-model --json`,
		Args:    exactArgs(1),
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			opts.Path = args[0]
			opts.Full = opts.Full || opts.Key != ""
			return runOr(c, runF, metaRun, opts)
		},
	}
	c.Flags().StringVar(&opts.Key, "key", "", "show only this key, with its whole value")
	c.Flags().BoolVar(&opts.Full, "full", false, "show whole arrays instead of their first items")
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document (schema qkv.meta/v1)")
	addMaxHeaderFlag(c, &opts.MaxHeader)
	return c
}

// metaRun shows the checkpoint's metadata.
func metaRun(ctx context.Context, o *MetaOptions) error {
	ck, err := openCheckpoint(ctx, o.Path, o.MaxHeader)
	if err != nil {
		return err
	}
	defer ck.Close()
	rep, err := buildMeta(ck, o.Key, o.Full)
	if err != nil {
		return err
	}
	if o.Key != "" && len(rep.Metadata) == 0 {
		return inputError("%s: no metadata key %q%s", o.Path, o.Key, keyHint(ck, o.Key))
	}
	if o.JSON {
		return termui.WriteJSON(o.IO.Out, rep)
	}
	return metaView{rep: rep, whole: o.Full, key: o.Key != ""}.Render(o.IO.Out, o.IO.style())
}

// relToCheckpoint is p relative to ck's folder when it is in it ("config.json",
// whether the folder is local or remote), else p as it is (a base model's
// config found elsewhere).
func relToCheckpoint(ck *formats.Checkpoint, p string) string {
	dir := strings.TrimSuffix(filepath.ToSlash(ck.Dir), "/")
	if q := filepath.ToSlash(p); dir != "" && dir != "." && strings.HasPrefix(q, dir+"/") {
		return strings.TrimPrefix(q, dir+"/")
	}
	return p
}

// configTitle heads config.json's table: its name, and where it is when it
// is not beside the weights.
func configTitle(p string) string {
	if p == "" || p == "config.json" {
		return "config.json"
	}
	return "config.json (" + p + ")"
}

// keyHint is what follows "no metadata key K": the keys it looks like, or
// that it is a key of config.json (which --key does not select).
func keyHint(ck *formats.Checkpoint, key string) string {
	var keys []string
	if g := ck.GGUF(); g != nil {
		for i := range g.KVs {
			keys = append(keys, g.KVs[i].Key)
		}
	}
	for _, f := range ck.Files {
		if f.Safetensors != nil {
			for _, kv := range f.Safetensors.Metadata {
				keys = append(keys, kv[0])
			}
		}
	}
	if dym := termui.DidYouMean(key, keys); dym != "" {
		return "; " + dym
	}
	if _, ok := ck.Config[key]; ok {
		return " (it is a key of config.json, shown by qkv meta without --key)"
	}
	return " (qkv meta lists them)"
}

func buildMeta(ck *formats.Checkpoint, key string, full bool) (metaReport, error) {
	rep := metaReport{Schema: "qkv.meta/v1", Source: ck.Source(), QKV: Build(), IO: ioOf(ck), Format: string(ck.Format), Metadata: []metaEntry{},
		Config: ck.Config, ConfigPath: relToCheckpoint(ck, ck.ConfigPath), AdapterConfig: ck.AdapterConfig}
	if g := ck.GGUF(); g != nil {
		end := "little"
		if g.BigEndian {
			end = "big"
		}
		rep.GGUF = &metaGGUF{Version: g.Version, Endianness: end, Alignment: g.Alignment,
			TensorCount: len(ck.Tensors), KVCount: len(g.KVs), DataOffset: g.DataOffset, Files: len(ck.Files)}
		for i := range g.KVs {
			kv := &g.KVs[i]
			if key != "" && kv.Key != key {
				continue
			}
			e := metaEntry{Key: kv.Key, Type: kv.Type.String(), Count: kv.Count, Offset: kv.Offset}
			if kv.Type == gguf.Array {
				e.Type = "array[" + kv.ElemType.String() + "]"
				n := kv.Count
				if !full && n > arrayPreview {
					n = arrayPreview
					e.Truncated = true
				}
				var vals []any
				if !kv.Lazy && kv.Value != nil {
					all, _ := kv.Value.([]any)
					vals = all[:min(int(n), len(all))]
				} else {
					var err error
					if n > math.MaxInt32 {
						n = math.MaxInt32
					}
					if vals, err = ck.MetaArray(kv, 0, int(n)); err != nil {
						return rep, err
					}
				}
				e.Value = vals
			} else {
				e.Value = kv.Value
			}
			e.Value, e.NonFinite = sanitize(e.Value)
			rep.Metadata = append(rep.Metadata, e)
		}
		return rep, nil
	}
	seen := map[string]bool{}
	for _, f := range ck.Files {
		if f.Safetensors == nil {
			continue
		}
		for _, kv := range f.Safetensors.Metadata {
			if (key != "" && kv[0] != key) || seen[kv[0]] {
				continue
			}
			seen[kv[0]] = true
			rep.Metadata = append(rep.Metadata, metaEntry{Key: kv[0], Type: "string", Count: 1, Value: kv[1], Offset: 8})
		}
	}
	return rep, nil
}

// sanitize replaces NaN/±Inf (also inside arrays) by nil for JSON.
func sanitize(v any) (any, bool) {
	switch x := v.(type) {
	case float32:
		if _, bad := termui.JSONValue(float64(x)); bad {
			return nil, true
		}
		return x, false // stays float32: JSON and the table print its shortest form (1e-05)
	case float64:
		return termui.JSONValue(x)
	case []any:
		bad := false
		out := make([]any, len(x))
		for i, e := range x {
			var b bool
			out[i], b = sanitize(e)
			bad = bad || b
		}
		return out, bad
	}
	return v, false
}

// metaView is the metadata report as text; whole shows whole values
// (--full, --key).
type metaView struct {
	rep   metaReport
	whole bool
	key   bool // --key: the one entry's value alone, whole
}

// fullValue is a value the table shows cut, printed whole below it.
type fullValue struct {
	title, value string
}

// Render writes a summary line, the metadata table, config.json's and
// adapter_config.json's tables, and with whole values (--full, --key) every
// value the tables had to cut, in full, wrapped to the width. Tables are laid
// out for st's width: values are cut at the end to the room the other
// columns leave, keys in the middle when they alone are too wide.
func (v metaView) Render(w io.Writer, st termui.Style) error {
	rep, cols, tx := v.rep, st.Cols(), textFor(st)
	var b strings.Builder
	summary := fmt.Sprintf("safetensors, %s of __metadata__", termui.Plural(int64(len(rep.Metadata)), "key"))
	if g := rep.GGUF; g != nil {
		summary = fmt.Sprintf("GGUF v%d, %s-endian, alignment %d, %d tensors, %d key/values, %s",
			g.Version, g.Endianness, g.Alignment, g.TensorCount, g.KVCount, termui.Plural(int64(g.Files), "file"))
	}
	if rep.Config != nil {
		summary += ", config.json"
	}
	if rep.AdapterConfig != nil {
		summary += ", adapter_config.json"
	}
	b.WriteString(termui.Title(termui.Wrap(tx(summary), cols, "  "), st.Styled))
	var full []fullValue
	if v.key && len(rep.Metadata) == 1 {
		e := rep.Metadata[0]
		b.WriteString(termui.Wrap(tx(termui.Name(e.Key))+" ("+entryType(e)+"):", cols, "  ") + "\n")
		b.WriteString(wrapExact(tx(termui.Clean(previewValue(e, st.ASCII))), cols, "  ") + "\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	if len(rep.Metadata) > 0 {
		title := "metadata"
		if rep.Format == "safetensors" {
			title = "__metadata__"
		}
		b.WriteString("\n" + termui.Title(title, st.Styled))
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
		b.Reset()
		keyW, typeW, countW := 3, 4, 5
		for _, e := range rep.Metadata {
			keyW = max(keyW, termui.Width(tx(termui.Name(e.Key))))
			typeW = max(typeW, len(e.Type))
			countW = max(countW, len(strconv.FormatUint(e.Count, 10)))
		}
		valueW := valueRoom(cols, st, min(keyW, max(24, cols/2)), typeW, countW)
		row := make([]string, 4)
		err := termui.TableLayout{Headers: []string{"key", "type", "count", "value"}, Right: []bool{false, false, true, false},
			Styled: st.Styled, Width: cols, ASCII: st.ASCII, Shrink: []int{0, 3}}.
			Write(w, len(rep.Metadata), func(i int) []string {
				e := rep.Metadata[i]
				count := ""
				if strings.HasPrefix(e.Type, "array") {
					count = strconv.FormatUint(e.Count, 10)
				}
				val := tx(termui.Clean(previewValue(e, st.ASCII)))
				row[0], row[1], row[2], row[3] = tx(termui.Name(e.Key)), e.Type, count, clip(val, valueW, st.ASCII)
				return row
			})
		if err != nil {
			return err
		}
		if v.whole {
			for _, e := range rep.Metadata {
				if val := tx(termui.Clean(previewValue(e, st.ASCII))); termui.Width(val) > valueW {
					full = append(full, fullValue{tx(termui.Name(e.Key)) + " (" + entryType(e) + ")", val})
				}
			}
		}
	} else if rep.GGUF == nil {
		b.WriteString(termui.Dim("no __metadata__ in the safetensors header", st.Styled) + "\n")
	}
	for _, c := range []struct {
		title string
		m     map[string]any
	}{{configTitle(rep.ConfigPath), rep.Config}, {"adapter_config.json", rep.AdapterConfig}} {
		if c.m == nil {
			continue
		}
		b.WriteString("\n" + termui.Title(termui.TruncateMiddle(tx(termui.Clean(c.title)), cols, st.ASCII), st.Styled))
		table, cut := configTable(c.m, st, tx)
		b.WriteString(table)
		if v.whole {
			full = append(full, cut...)
		}
	}
	if len(full) > 0 {
		b.WriteString("\n" + termui.Title("whole values", st.Styled))
		for _, f := range full {
			b.WriteString(termui.Wrap(f.title+":", cols, "  ") + "\n")
			b.WriteString(wrapExact(termui.Clean(f.value), cols, "  ") + "\n")
		}
	}
	_, err := fmt.Fprint(w, b.String())
	return err
}

// wrapExact breaks s into lines of at most width columns, each starting
// with indent, after commas where it can and anywhere in a piece longer
// than a line; unlike termui.Wrap it keeps every character (a whole value
// is shown as it is, its spaces included).
func wrapExact(s string, width int, indent string) string {
	room := max(width-termui.Width(indent), 8)
	var pieces []string
	for len(s) > 0 {
		i := strings.IndexByte(s, ',')
		if i < 0 {
			pieces, s = append(pieces, s), ""
			break
		}
		j := i + 1
		if j < len(s) && s[j] == ' ' {
			j++
		}
		pieces, s = append(pieces, s[:j]), s[j:]
	}
	var b strings.Builder
	line, col := "", 0
	flush := func() {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(indent + strings.TrimRight(line, " "))
		line, col = "", 0
	}
	for _, p := range pieces {
		pw := termui.Width(strings.TrimRight(p, " "))
		if col > 0 && col+pw > room {
			flush()
		}
		for termui.Width(strings.TrimRight(p, " ")) > room-col { // longer than a line
			cut, w := 0, 0
			for k, r := range p {
				rw := termui.Width(string(r))
				if w+rw > room-col {
					break
				}
				w, cut = w+rw, k+len(string(r))
			}
			line += p[:cut]
			p = p[cut:]
			flush()
		}
		line += p
		col += termui.Width(p)
	}
	if line != "" || b.Len() == 0 {
		flush()
	}
	return b.String()
}

// entryType is an entry's type for a heading: "uint32", "array[string],
// 512 items".
func entryType(e metaEntry) string {
	if strings.HasPrefix(e.Type, "array") {
		return e.Type + ", " + termui.Plural(int64(e.Count), "item")
	}
	return e.Type
}

// valueRoom is the width a table's last (value) column gets: what the
// other columns and the separators leave of cols, at least 16.
func valueRoom(cols int, st termui.Style, widths ...int) int {
	gap, edge := 2, 0
	if st.Styled {
		gap, edge = 3, 4
	}
	room := cols - edge - gap*len(widths)
	for _, w := range widths {
		room -= w
	}
	return max(room, 16)
}

// configTable is a config's keys and values (JSON), values cut to the
// width; it returns the values it cut, whole.
func configTable(m map[string]any, st termui.Style, tx func(string) string) (string, []fullValue) {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	keyW := 0
	for _, k := range keys {
		keyW = max(keyW, termui.Width(tx(termui.Name(k))))
	}
	valueW := valueRoom(st.Cols(), st, min(keyW, max(24, st.Cols()/2)))
	var rows [][]string
	var cut []fullValue
	for _, k := range keys {
		v, err := json.Marshal(m[k])
		if err != nil {
			v = []byte(fmt.Sprint(m[k]))
		}
		val := tx(termui.Clean(string(v)))
		if termui.Width(val) > valueW {
			cut = append(cut, fullValue{tx(termui.Name(k)), val})
		}
		rows = append(rows, []string{tx(termui.Name(k)), clip(val, valueW, st.ASCII)})
	}
	var b strings.Builder
	termui.TableLayout{Headers: []string{"key", "value"}, Styled: st.Styled, Width: st.Cols(), ASCII: st.ASCII, Shrink: []int{0, 1}}.
		Write(&b, len(rows), func(i int) []string { return rows[i] })
	return b.String(), cut
}

// previewValue is an entry's value as text: a scalar, or an array's items
// (those in the report: the first few unless --full) with an ellipsis when
// there are more.
func previewValue(e metaEntry, ascii bool) string {
	switch x := e.Value.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, it := range x {
			parts[i] = formatScalar(it)
		}
		v := "[" + strings.Join(parts, ", ")
		if e.Truncated {
			v += ", " + termui.Ellipsis(ascii)
		}
		return v + "]"
	default:
		return formatScalar(x)
	}
}

func formatScalar(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case nil:
		return "null"
	case []any:
		return fmt.Sprintf("[%d items]", len(x))
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	}
	return fmt.Sprint(v)
}

// clip cuts s (sanitised) to n columns, ending with an ellipsis.
func clip(s string, n int, ascii bool) string {
	s = termui.Clean(s)
	if termui.Width(s) <= n {
		return s
	}
	ell := termui.Ellipsis(ascii)
	w := 0
	for i, r := range s {
		rw := termui.Width(string(r))
		if w+rw > n-termui.Width(ell) {
			return s[:i] + ell
		}
		w += rw
	}
	return s
}
