package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"
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
		return inputError("%s: no metadata key %q", o.Path, o.Key)
	}
	if o.JSON {
		return termui.WriteJSON(o.IO.Out, rep)
	}
	return metaView{rep, o.Key != ""}.Render(o.IO.Out, o.IO.style())
}

func buildMeta(ck *formats.Checkpoint, key string, full bool) (metaReport, error) {
	rep := metaReport{Schema: "qkv.meta/v1", Source: ck.Source(), QKV: Build(), IO: ioOf(ck), Format: string(ck.Format), Metadata: []metaEntry{},
		Config: ck.Config, ConfigPath: ck.ConfigPath, AdapterConfig: ck.AdapterConfig}
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

// metaView is the metadata report as text; whole shows whole values.
type metaView struct {
	rep   metaReport
	whole bool
}

// Render writes the metadata tables.
func (v metaView) Render(w io.Writer, st termui.Style) error {
	rep, whole := v.rep, v.whole
	var b strings.Builder
	if g := rep.GGUF; g != nil {
		b.WriteString(termui.Title(fmt.Sprintf("GGUF v%d, %s-endian, alignment %d, %d tensors, %d key/values, %s",
			g.Version, g.Endianness, g.Alignment, g.TensorCount, g.KVCount, termui.Plural(int64(g.Files), "file")), st.Styled))
	}
	if len(rep.Metadata) > 0 {
		// The value column gets what the other columns leave of the width.
		keyW, typeW, countW := 3, 4, 5
		for _, e := range rep.Metadata {
			keyW = max(keyW, lipgloss.Width(termui.Name(e.Key)))
			typeW = max(typeW, len(e.Type))
			countW = max(countW, len(strconv.FormatUint(e.Count, 10)))
		}
		valueW := max(st.Width-keyW-typeW-countW-6, 24)
		if st.Styled {
			valueW = max(valueW-10, 24) // borders and padding
		}
		title := "metadata"
		if rep.Format == "safetensors" {
			title = "__metadata__"
		}
		b.WriteString(termui.Title(title, st.Styled))
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
		b.Reset()
		row := make([]string, 4)
		err := termui.TableLayout{Headers: []string{"key", "type", "count", "value"}, Right: []bool{false, false, true, false}, Styled: st.Styled}.
			Write(w, len(rep.Metadata), func(i int) []string {
				e := rep.Metadata[i]
				count := ""
				if strings.HasPrefix(e.Type, "array") {
					count = strconv.FormatUint(e.Count, 10)
				}
				row[0], row[1], row[2], row[3] = termui.Name(e.Key), e.Type, count, previewValue(e, whole, valueW)
				return row
			})
		if err != nil {
			return err
		}
	} else if rep.GGUF == nil {
		b.WriteString(termui.Dim("no __metadata__ in the safetensors header", st.Styled) + "\n")
	}
	if rep.Config != nil {
		b.WriteString("\n" + termui.Title("config.json ("+rep.ConfigPath+")", st.Styled))
		b.WriteString(configTable(rep.Config, st))
	}
	if rep.AdapterConfig != nil {
		b.WriteString("\n" + termui.Title("adapter_config.json", st.Styled))
		b.WriteString(configTable(rep.AdapterConfig, st))
	}
	_, err := fmt.Fprint(w, b.String())
	return err
}

func configTable(m map[string]any, st termui.Style) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var rows [][]string
	for _, k := range keys {
		v, err := json.Marshal(m[k])
		if err != nil {
			v = []byte(fmt.Sprint(m[k]))
		}
		rows = append(rows, []string{termui.Name(k), clip(string(v), max(st.Width-keyWidth(keys)-4, 24))})
	}
	return termui.Table([]string{"key", "value"}, rows, nil, st.Styled)
}

func keyWidth(keys []string) int {
	w := 0
	for _, k := range keys {
		w = max(w, lipgloss.Width(termui.Name(k)))
	}
	return w
}

func previewValue(e metaEntry, whole bool, width int) string {
	var v string
	switch x := e.Value.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, it := range x {
			parts[i] = formatScalar(it)
		}
		v = "[" + strings.Join(parts, ", ")
		if e.Truncated {
			v += ", …"
		}
		v += "]"
	default:
		v = formatScalar(x)
	}
	if whole {
		return v
	}
	return clip(v, width)
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

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
