package attn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/testref"
)

// streamGeometry has what makes layers' settings differ: a sliding first
// layer with a local RoPE base, a YaRN-scaled global one, Q/K norms.
func streamGeometry() formats.Geometry {
	g := testGeometry()
	g.LayerTypes = []string{"sliding_attention", "full_attention", "sliding_attention"}
	g.NLayers = 3
	g.SlidingWindow, g.LocalRopeTheta, g.RopeTheta = 3, 10000, 1e6
	g.RopeScaling = &formats.RopeScaling{Type: "yarn", Factor: 4, OriginalMaxPositions: 16, MaxPositions: 64}
	g.QKNorm, g.QKNormEps = formats.QKNormPerHead, 1e-6
	return g
}

// streamResults runs layers of g on one random input.
func streamResults(t *testing.T, g formats.Geometry, layers []int, opt Options) []*Result {
	t.Helper()
	x, info, err := RandomInput(5, g.DModel, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if opt.Input.Kind == "" {
		opt.Input = info
	}
	var out []*Result
	for _, i := range layers {
		l := settingsModel(uint64(i), g)
		l.Index = i
		r, err := Run(g, l, x, opt)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestLayerSettingsMatchRun: the settings a document announces before its
// layers run are the ones each run records.
func TestLayerSettingsMatchRun(t *testing.T) {
	f := false
	for _, opt := range []Options{{}, {NoNorm: true}, {Causal: &f}} {
		g := streamGeometry()
		for _, r := range streamResults(t, g, []int{0, 1, 2}, opt) {
			opt.Input = r.Settings.Input
			s, err := LayerSettings(g, r.Layer, r.Settings.T, opt)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s, r.Settings) {
				t.Errorf("layer %d, %+v: LayerSettings\n%+v\nRun\n%+v", r.Layer, opt, s, r.Settings)
			}
		}
	}
}

// TestDocWriterMatchesWholeDocument: a document written layer by layer is
// byte for byte the one WriteJSON writes whole — one layer, layers that
// share their settings or differ in them, with patterns, with the forward
// part and remote reads, and with names JSON must not HTML-escape.
func TestDocWriterMatchesWholeDocument(t *testing.T) {
	src := formats.SourceInfo{Input: "m<&>.gguf", Kind: "local", Format: "gguf", Files: []formats.SourceFile{{Name: "m<&>.gguf", Size: 12}}}
	qkv := buildinfo.Info{Version: "v1.2.3", Go: "go1.26"}
	tokens := InputInfo{Kind: "tokens", TokenIDs: []int{1, 2, 3, 4, 5}, Tokens: []string{"<s>", "a&b", "\x1b[2J", "\"", "é"}}
	predsAfter := 4
	for _, c := range []struct {
		name     string
		layers   []int
		geometry func() formats.Geometry
		patterns bool
		input    InputInfo
		forward  *ForwardDoc
		io       *source.IO
	}{
		{"one", []int{1}, streamGeometry, false, InputInfo{}, nil, nil},
		{"shared", []int{0, 2}, streamGeometry, false, InputInfo{}, nil, nil},
		{"per-layer", []int{0, 1, 2}, streamGeometry, false, tokens, nil, nil},
		{"patterns", []int{0, 1}, streamGeometry, true, InputInfo{}, nil, nil},
		{"forward-io", []int{0, 1, 2}, testGeometry3, false, tokens,
			&ForwardDoc{Spec: formats.ForwardSpec{Arch: "llama", Layers: 3}, PredictionsAfter: &predsAfter,
				Predictions: []Prediction{{ID: 3, Piece: "<eos>", Logit: 2.5, Prob: 0.75}}},
			&source.IO{Requests: 3, BytesFetched: 1 << 20}},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := c.geometry()
			results := streamResults(t, g, c.layers, Options{Input: c.input})
			whole := NewDocument(results, c.patterns)
			whole.Source, whole.QKV, whole.Forward, whole.IO = src, qkv, c.forward, c.io
			var want bytes.Buffer
			if err := WriteJSON(&want, whole); err != nil {
				t.Fatal(err)
			}
			var settings []Settings
			for _, r := range results {
				settings = append(settings, r.Settings)
			}
			var got bytes.Buffer
			dw, err := StartDocument(&got, Document{Schema: Schema, Source: src, QKV: qkv}, settings, c.patterns)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				if err := dw.Layer(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := dw.Finish(c.forward, c.io); err != nil {
				t.Fatal(err)
			}
			if got.String() != want.String() {
				t.Errorf("streamed document differs from the whole one:\n%s\nwant\n%s", got.String(), want.String())
			}
			if !json.Valid(got.Bytes()) {
				t.Error("streamed document is not valid JSON")
			}
			if !strings.Contains(got.String(), `"m<&>.gguf"`) {
				t.Error("names HTML-escaped")
			}
		})
	}
}

// testGeometry3 is testGeometry with three layers that share their settings.
func testGeometry3() formats.Geometry {
	g := testGeometry()
	g.NLayers = 3
	return g
}

// TestDocWriterRefuses: a layer run with other settings than announced,
// too many layers, or too few at the end are errors, never a document
// that contradicts itself.
func TestDocWriterRefuses(t *testing.T) {
	g := streamGeometry()
	results := streamResults(t, g, []int{0, 1}, Options{})
	start := func() *DocWriter {
		dw, err := StartDocument(&bytes.Buffer{}, Document{Schema: Schema}, []Settings{results[0].Settings, results[1].Settings}, false)
		if err != nil {
			t.Fatal(err)
		}
		return dw
	}
	if err := start().Layer(results[1]); err == nil {
		t.Error("a layer with other settings than announced: no error")
	}
	dw := start()
	if err := dw.Layer(results[0]); err != nil {
		t.Fatal(err)
	}
	if err := dw.Finish(nil, nil); err == nil {
		t.Error("finished with a layer missing: no error")
	}
	if err := dw.Layer(results[1]); err != nil {
		t.Fatal(err)
	}
	if err := dw.Layer(results[1]); err == nil {
		t.Error("more layers than announced: no error")
	}
	if _, err := StartDocument(&bytes.Buffer{}, Document{}, []Settings{results[0].Settings}, false); err == nil {
		t.Error("no schema: no error")
	}
}

// TestForwardStreamOut: a streamed forward pass (nothing kept) written
// through OutWriter as `attn --out` does gives, read back by the
// independent reader, exactly the values of a pass that keeps everything.
func TestForwardStreamOut(t *testing.T) {
	path := filepath.Join(testref.SharedDir(t), "reference", "zoo", "qwen2", "hf")
	ck, err := formats.Open(path, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ids := []int{1, 9, 77}
	full, err := Forward(m, ids, ForwardOptions{Layers: []int{1}, Logits: true})
	if err != nil {
		t.Fatal(err)
	}
	T, d, nh, vocab := int64(3), int64(64), int64(4), int64(full.Logits.Cols)
	blocks := full.Spec.Layers
	layout := []OutTensor{{"x", []int64{T, d}}}
	for i := 0; i < blocks; i++ {
		layout = append(layout, OutTensor{fmt.Sprintf("layers.%d.hidden", i), []int64{T, d}})
		if i == 1 {
			layout = append(layout, OutTensor{"layers.1.probs", []int64{nh, T, T}}, OutTensor{"layers.1.out", []int64{T, d}})
		}
	}
	layout = append(layout, OutTensor{"logits", []int64{T, vocab}})
	out := filepath.Join(t.TempDir(), "out.safetensors")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	ow, err := NewOutWriter(f, layout, [][2]string{{"source", "qwen2"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Forward(m, ids, ForwardOptions{Layers: []int{1}, Logits: true, Stream: true, OnBlock: func(rec *BlockRecord) error {
		if rec.Index == 0 {
			if err := ow.Write("x", rec.Hidden.Data); err != nil {
				return err
			}
		}
		if err := ow.Write(fmt.Sprintf("layers.%d.hidden", rec.Index), rec.Hidden.Data); err != nil {
			return err
		}
		if rec.Index == 1 {
			if err := ow.Write("layers.1.probs", ProbsParts(rec.Attn)...); err != nil {
				return err
			}
			return ow.Write("layers.1.out", rec.Attn.Out.Data)
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 0 || len(res.Hidden) != 0 {
		t.Errorf("a streamed pass kept %d results and %d hidden states", len(res.Results), len(res.Hidden))
	}
	if err := ow.Write("logits", res.Logits.Data); err != nil {
		t.Fatal(err)
	}
	if err := ow.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := testref.ReadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(layout) {
		t.Errorf("tensors %v", testref.Names(got))
	}
	for _, c := range []struct {
		name string
		want []float32
	}{{"x", full.Hidden[0].Data}, {"layers.0.hidden", full.Hidden[0].Data}, {"layers.1.hidden", full.Hidden[1].Data},
		{"layers.1.probs", flatProbs(full.Results[0])}, {"layers.1.out", full.Results[0].Out.Data}, {"logits", full.Logits.Data}} {
		if g, ok := got[c.name]; !ok || len(g.F64) != len(c.want) || maxAbsDiff(g.F32(), c.want) != 0 {
			t.Errorf("%s differs from the pass that keeps everything", c.name)
		}
	}
	if fmt.Sprint(got["layers.1.probs"].Shape) != "[4 3 3]" {
		t.Errorf("probs shape %v", got["layers.1.probs"].Shape)
	}
	preds := res.Predictions(3, func(id int) string { return fmt.Sprint("t", id) })
	if len(preds) != 3 || preds[0].Piece != fmt.Sprint("t", preds[0].ID) || preds[0].Prob < preds[1].Prob {
		t.Errorf("predictions %+v", preds)
	}
}

// TestOutWriterRefuses: tensors out of the announced order, of the wrong
// size, or missing at the end are errors.
func TestOutWriterRefuses(t *testing.T) {
	layout := []OutTensor{{"a", []int64{2, 2}}, {"b", []int64{3}}}
	start := func() *OutWriter {
		ow, err := NewOutWriter(&bytes.Buffer{}, layout, nil)
		if err != nil {
			t.Fatal(err)
		}
		return ow
	}
	if err := start().Write("b", make([]float32, 3)); err == nil {
		t.Error("out of order: no error")
	}
	if err := start().Write("a", make([]float32, 3)); err == nil {
		t.Error("short: no error")
	}
	if err := start().Write("a", make([]float32, 3), make([]float32, 2)); err == nil {
		t.Error("too many values: no error")
	}
	ow := start()
	if err := ow.Write("a", make([]float32, 2), make([]float32, 2)); err != nil {
		t.Fatal(err)
	}
	if err := ow.Close(); err == nil {
		t.Error("closed with a tensor missing: no error")
	}
	if _, err := NewOutWriter(&bytes.Buffer{}, []OutTensor{{"a", []int64{1}}, {"a", []int64{1}}}, nil); err == nil {
		t.Error("a name twice: no error")
	}
	if _, err := NewOutWriter(&bytes.Buffer{}, []OutTensor{{"a", []int64{1 << 40, 1 << 40}}}, nil); err == nil {
		t.Error("an overflowing shape: no error")
	}
}

// TestPredictionJSON: a probability float32 cannot resolve is null with
// its flag; non-finite values are null with theirs; others are numbers.
func TestPredictionJSON(t *testing.T) {
	for _, c := range []struct {
		p    Prediction
		want string
	}{
		{Prediction{ID: 1, Piece: "a", Logit: 2.5, Prob: 0.75}, `{"id":1,"piece":"a","logit":2.5,"prob":0.75}`},
		{Prediction{ID: 2, Logit: -90, Prob: 1e-50}, `{"id":2,"logit":-90,"prob":null,"prob_beyond_float32":true}`},
		{Prediction{ID: 3, Logit: -80, Prob: 2e-38}, `{"id":3,"logit":-80,"prob":2e-38}`},
		{Prediction{ID: 4, Logit: math.NaN(), Prob: math.NaN()}, `{"id":4,"logit":null,"prob":null,"non_finite":true}`},
	} {
		b, err := json.Marshal(c.p)
		if err != nil || string(b) != c.want {
			t.Errorf("%+v: %s (%v), want %s", c.p, b, err, c.want)
		}
	}
}
