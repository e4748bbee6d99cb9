package attn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/termui"
)

// Document is the "qkv.attn/v1" JSON document: which checkpoint and which
// qkv, the settings shared by every layer, then per layer the head metrics
// and, when asked for, the patterns; the forward pass's part; and for a
// remote checkpoint the reads it took. DocWriter writes it layer by layer,
// byte for byte as WriteJSON writes it whole.
type Document struct {
	Schema string `json:"schema"`
	// Source is the checkpoint (formats.Checkpoint.Source).
	Source formats.SourceInfo `json:"source"`
	// QKV is the build that wrote the document.
	QKV      buildinfo.Info `json:"qkv"`
	Settings Settings       `json:"settings"`
	Layers   []LayerDoc     `json:"layers"`
	// Forward describes the forward pass when the layers read the real
	// residual stream (input mode "forward"), nil otherwise.
	Forward *ForwardDoc `json:"forward,omitempty"`
	// IO counts a remote checkpoint's reads (nil for a local one). It comes
	// last: a streamed document knows it only at the end.
	IO *source.IO `json:"io,omitempty"`
}

// ForwardDoc is the forward-pass part of a Document: the spec it ran by
// and, with logits, the top predictions after the last position.
type ForwardDoc struct {
	Spec formats.ForwardSpec `json:"spec"`
	// Predictions follow position PredictionsAfter (the last), when logits
	// were computed.
	PredictionsAfter *int         `json:"predictions_after,omitempty"`
	Predictions      []Prediction `json:"predictions,omitempty"`
}

// LayerDoc is one layer of a Document.
type LayerDoc struct {
	Index int `json:"index"`
	// Attention is the layer's mask and rotary embedding, set when the
	// document's layers differ in them (Settings.PerLayer).
	Attention *LayerAttention `json:"attention,omitempty"`
	Heads     []HeadMetrics   `json:"heads"`
	// NonFiniteProbs and NonFiniteOut count NaN/Inf values in the layer's
	// probabilities and output.
	NonFiniteProbs int `json:"non_finite_probs"`
	NonFiniteOut   int `json:"non_finite_out"`
	// Patterns[h][i][j] are the probabilities, only when asked for.
	Patterns Patterns `json:"patterns,omitempty"`
}

// Patterns marshals [head][query][key] probabilities, writing non-finite
// values as null.
type Patterns [][][]float32

// PerLayerNote is Settings.PerLayer in a Document whose layers differ.
const PerLayerNote = "layers differ in their mask or rotary embedding: see each layer's attention"

// NewDocument builds the JSON document for results of one run (the settings
// are taken from the first result). The mask and rotary embedding stay in
// the settings when every layer shares them; otherwise the settings leave
// them out and set per_layer, and each layer states its own. withPatterns
// includes every head's T×T probabilities. Source, QKV, Forward and IO are
// the caller's to fill.
func NewDocument(results []*Result, withPatterns bool) Document {
	results = nonNil(results)
	var all []Settings
	for _, r := range results {
		all = append(all, r.Settings)
	}
	d := Document{Schema: Schema, Layers: []LayerDoc{}}
	d.Settings, _ = docSettings(all)
	for _, r := range results {
		d.Layers = append(d.Layers, layerDoc(r, d.Settings.PerLayer != "", withPatterns))
	}
	return d
}

// docSettings returns a document's settings for layers with the given
// settings, in order: the first layer's, without the mask and rotary
// embedding (and with PerLayer set) when the layers differ in them.
func docSettings(layers []Settings) (Settings, bool) {
	if len(layers) == 0 {
		return Settings{}, false
	}
	s := layers[0]
	for _, o := range layers[1:] {
		if !reflect.DeepEqual(s.attention(), o.attention()) {
			s.LayerType, s.SlidingWindow, s.Mask, s.RoPE = "", 0, "", nil
			s.PerLayer = PerLayerNote
			return s, true
		}
	}
	return s, false
}

// layerDoc is one result as a layer of a document; perLayer includes its
// mask and rotary embedding.
func layerDoc(r *Result, perLayer, withPatterns bool) LayerDoc {
	ld := LayerDoc{Index: r.Layer, Heads: r.Heads, NonFiniteProbs: r.NonFiniteProbs, NonFiniteOut: r.NonFiniteOut}
	if perLayer {
		a := r.Settings.attention()
		ld.Attention = &a
	}
	if withPatterns {
		ld.Patterns = r.Probs
	}
	return ld
}

// DocWriter writes a Document as its layers are computed: the opening (up
// to the settings) first, each layer as it comes, then the rest. The bytes
// are those WriteJSON writes for the whole document, so that a reader
// cannot tell; memory holds one layer.
type DocWriter struct {
	w        io.Writer
	head     Document // without layers, forward and io
	layers   []Settings
	perLayer bool
	patterns bool
	n        int
	buf      bytes.Buffer
	err      error
}

// layersKey is how the indented document opens its layers: the key at the
// top level, as WriteJSON writes an empty array.
const layersKey = "\n  \"layers\": []"

// StartDocument writes the opening of d — schema, source, qkv and the
// settings — for a run whose layers will have the given settings, in
// order (LayerSettings), and returns the writer of the layers. d's Layers,
// Forward and IO are ignored: Layer and Finish write them.
func StartDocument(w io.Writer, d Document, layers []Settings, withPatterns bool) (*DocWriter, error) {
	if d.Schema == "" {
		return nil, errors.New("attn: document has no schema")
	}
	if len(layers) == 0 {
		return nil, errors.New("attn: a document needs at least one layer")
	}
	dw := &DocWriter{w: w, layers: layers, patterns: withPatterns}
	d.Settings, dw.perLayer = docSettings(layers)
	d.Layers, d.Forward, d.IO = []LayerDoc{}, nil, nil
	dw.head = d
	open, _, err := dw.split(d)
	if err != nil {
		return nil, err
	}
	_, err = io.WriteString(w, open)
	return dw, err
}

// split writes d (with no layers) and cuts it where its layers go: before
// and after the empty array's brackets.
func (dw *DocWriter) split(d Document) (string, string, error) {
	var b bytes.Buffer
	if err := termui.WriteJSON(&b, d); err != nil {
		return "", "", err
	}
	s := b.String()
	i := strings.Index(s, layersKey)
	if i < 0 {
		return "", "", errors.New("attn: document without its layers key")
	}
	i += len(layersKey) - 1 // at "]"
	return s[:i], s[i+1:], nil
}

// Layer writes the next layer's result. Its settings must be those given
// to StartDocument for it: a document states its settings before its
// layers.
func (dw *DocWriter) Layer(r *Result) error {
	if dw.err != nil {
		return dw.err
	}
	if dw.n >= len(dw.layers) {
		return errors.New("attn: more layers than the document announced")
	}
	if !reflect.DeepEqual(dw.layers[dw.n], r.Settings) {
		dw.err = fmt.Errorf("attn: layer %d ran with settings other than the document announced", r.Layer)
		return dw.err
	}
	dw.buf.Reset()
	enc := json.NewEncoder(&dw.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(layerDoc(r, dw.perLayer, dw.patterns)); err != nil {
		dw.err = err
		return err
	}
	sep := ",\n    "
	if dw.n == 0 {
		sep = "\n    "
	}
	var out bytes.Buffer
	out.Grow(dw.buf.Len() * 2)
	out.WriteString(sep)
	if err := json.Indent(&out, bytes.TrimRight(dw.buf.Bytes(), "\n"), "    ", "  "); err != nil {
		dw.err = err
		return err
	}
	dw.n++
	_, dw.err = dw.w.Write(out.Bytes())
	return dw.err
}

// Finish closes the layers and writes the rest of the document: the
// forward part (nil: none) and the reads (nil: a local checkpoint).
func (dw *DocWriter) Finish(fwd *ForwardDoc, reads *source.IO) error {
	if dw.err != nil {
		return dw.err
	}
	if dw.n != len(dw.layers) {
		return fmt.Errorf("attn: %d layers written of the %d the document announced", dw.n, len(dw.layers))
	}
	d := dw.head
	d.Forward, d.IO = fwd, reads
	_, rest, err := dw.split(d)
	if err != nil {
		return err
	}
	_, err = io.WriteString(dw.w, "\n  ]"+rest)
	return err
}

// WriteJSON writes the document as indented JSON followed by a newline.
func WriteJSON(w io.Writer, d Document) error {
	if d.Schema == "" {
		return errors.New("attn: document has no schema")
	}
	return termui.WriteJSON(w, d)
}

// MarshalJSON writes non-finite metrics as null and then sets "non_finite".
func (h HeadMetrics) MarshalJSON() ([]byte, error) {
	type F = termui.Float // null when not finite
	opt := func(v *float64) *F {
		if v == nil {
			return nil
		}
		f := F(*v)
		return &f
	}
	out := struct {
		Head      int  `json:"head"`
		KVHead    int  `json:"kv_head"`
		Entropy   F    `json:"entropy"`
		MaxProb   F    `json:"max_prob"`
		SinkMass  F    `json:"sink_mass"`
		PrevToken F    `json:"prev_token"`
		Diagonal  F    `json:"diagonal"`
		MaxLogit  F    `json:"max_logit"`
		Learned   *F   `json:"learned_sink_mass,omitempty"`
		Induction *F   `json:"induction_score,omitempty"`
		NonFinite bool `json:"non_finite,omitempty"`
	}{h.Head, h.KVHead, F(h.Entropy), F(h.MaxProb), F(h.SinkMass), F(h.PrevToken), F(h.Diagonal), F(h.MaxLogit), opt(h.LearnedSink), opt(h.Induction), false}
	// prev_token is null without being a fault when T < 2: flag only the
	// metrics that are always defined, and those present.
	out.NonFinite = !out.Entropy.Valid() || !out.MaxProb.Valid() || !out.SinkMass.Valid() || !out.Diagonal.Valid() || !out.MaxLogit.Valid() ||
		(out.Learned != nil && !out.Learned.Valid()) || (out.Induction != nil && !out.Induction.Valid())
	return json.Marshal(out)
}

// MarshalJSON writes the nested arrays with float32 precision, null for
// NaN/Inf.
func (p Patterns) MarshalJSON() ([]byte, error) {
	return termui.AppendJSONArrays(nil, [][][]float32(p)), nil
}

func nonNil(results []*Result) []*Result {
	var out []*Result
	for _, r := range results {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}
