package attn

import (
	"encoding/json"
	"errors"
	"io"
	"reflect"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/termui"
)

// Document is the "qkv.attn/v1" JSON document: the settings shared by every
// layer, then per layer the head metrics and, when asked for, the patterns.
type Document struct {
	Schema   string     `json:"schema"`
	Settings Settings   `json:"settings"`
	Layers   []LayerDoc `json:"layers"`
	// Forward describes the forward pass when the layers read the real
	// residual stream (input mode "forward"), nil otherwise.
	Forward *ForwardDoc `json:"forward,omitempty"`
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
// includes every head's T×T probabilities.
func NewDocument(results []*Result, withPatterns bool) Document {
	d := Document{Schema: Schema, Layers: []LayerDoc{}}
	first := true
	for _, r := range results {
		if r == nil {
			continue
		}
		if first {
			d.Settings, first = r.Settings, false
		} else if !reflect.DeepEqual(d.Settings.attention(), r.Settings.attention()) && d.Settings.PerLayer == "" {
			d.Settings.LayerType, d.Settings.SlidingWindow, d.Settings.Mask, d.Settings.RoPE = "", 0, "", nil
			d.Settings.PerLayer = PerLayerNote
		}
		ld := LayerDoc{Index: r.Layer, Heads: r.Heads, NonFiniteProbs: r.NonFiniteProbs, NonFiniteOut: r.NonFiniteOut}
		if withPatterns {
			ld.Patterns = r.Probs
		}
		d.Layers = append(d.Layers, ld)
	}
	if d.Settings.PerLayer != "" {
		for i, r := range nonNil(results) {
			a := r.Settings.attention()
			d.Layers[i].Attention = &a
		}
	}
	return d
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
		Entropy   F    `json:"entropy"`
		MaxProb   F    `json:"max_prob"`
		SinkMass  F    `json:"sink_mass"`
		PrevToken F    `json:"prev_token"`
		Diagonal  F    `json:"diagonal"`
		MaxLogit  F    `json:"max_logit"`
		Learned   *F   `json:"learned_sink_mass,omitempty"`
		Induction *F   `json:"induction_score,omitempty"`
		NonFinite bool `json:"non_finite,omitempty"`
	}{h.Head, F(h.Entropy), F(h.MaxProb), F(h.SinkMass), F(h.PrevToken), F(h.Diagonal), F(h.MaxLogit), opt(h.LearnedSink), opt(h.Induction), false}
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
