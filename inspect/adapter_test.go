package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/termui"
)

// hidden wraps a source without embedding it, so Run cannot see what it
// reads (as a library caller's own source might).
type hidden struct{ src LayerSource }

func (h hidden) Geometry() formats.Geometry              { return h.src.Geometry() }
func (h hidden) LayerIndices() []int                     { return h.src.LayerIndices() }
func (h hidden) LoadLayer(i int) (*formats.Layer, error) { return h.src.LoadLayer(i) }

// loraLayers is a source of LoRA updates of W_Q whose layers have their own
// ranks and scales (as PEFT's rank_pattern and alpha_pattern give).
type loraLayers struct {
	ranks  []int
	scales []float64
}

func (s loraLayers) Geometry() formats.Geometry {
	return formats.Geometry{Arch: "fake", DModel: 8, NLayers: len(s.ranks)}
}

func (s loraLayers) LayerIndices() []int {
	ix := make([]int, len(s.ranks))
	for i := range ix {
		ix[i] = i
	}
	return ix
}

func (s loraLayers) LoadLayer(i int) (*formats.Layer, error) {
	rng := rand.New(rand.NewSource(int64(i)))
	r := s.ranks[i]
	a, b := formats.NewMatrix(r, 8), formats.NewMatrix(8, r)
	for k := range a.Data {
		a.Data[k] = float32(rng.NormFloat64())
	}
	for k := range b.Data {
		b.Data[k] = float32(rng.NormFloat64())
	}
	return &formats.Layer{Index: i, LoRA: map[formats.Projection]*formats.LoRAFactors{
		formats.ProjQ: {A: a, B: b, Scale: s.scales[i]}}}, nil
}

// TestReportAdapter: the report of a LoRA adapter says so (JSON adapter,
// named as qkv.layers/v1 names it; a verdict that names the updates; ΔW in
// every table title, text and markdown), whichever wrapper the source
// comes through, and a merged sharded run keeps it; a model's report has
// none of it.
func TestReportAdapter(t *testing.T) {
	root := filepath.Join("..", "testdata")
	gpt2 := openModel(t, filepath.Join(root, "lora", "gpt2-c_attn-peft"))
	llama := openModel(t, filepath.Join(root, "tiny-llama"))
	gpt2Adapter := map[string]any{"kind": "peft", "base_model": "openai-community/gpt2", "rank": 4.0, "alpha": 16.0, "scale": 4.0, "scale_rule": "lora_alpha / r"}
	for _, tc := range []struct {
		name    string
		src     LayerSource
		adapter map[string]any // nil: no "adapter" in JSON
		verdict string         // the verdict's start
		titles  []string       // table titles the text and markdown hold
		shards  int            // > 0: also merge a run of that many shards
	}{
		{"adapter", FromFactors(gpt2), gpt2Adapter,
			"gpt2 LoRA adapter (peft, rank 4, scale 4): ΔW = s·B·A — 2 layers, d_model 16, no head geometry, full mode: ", []string{"ΔW_Q", "ΔW_K", "ΔW_V"}, 2},
		{"adapter formed", gpt2, gpt2Adapter, "gpt2 LoRA adapter (peft, rank 4, scale 4): ΔW = s·B·A — ", []string{"ΔW_Q"}, 0},
		// cmd's layer subset and check's scanning source embed the source.
		{"adapter in a subset", &subset{FromFactors(gpt2), []int{1}}, gpt2Adapter,
			"gpt2 LoRA adapter (peft, rank 4, scale 4): ΔW = s·B·A — layer 1 of 2 shown, ", []string{"ΔW_Q"}, 0},
		{"adapter hidden", hidden{gpt2}, map[string]any{"kind": "unknown", "rank": 4.0, "scale": 4.0,
			"scale_rule": "the layer source did not describe the adapter: rank and scale are its factors'"},
			"gpt2 LoRA adapter (unknown, rank 4, scale 4): ΔW = s·B·A — ", []string{"ΔW_Q"}, 0},
		{"ranks and scales", loraLayers{[]int{2, 4, 2}, []float64{1, 0.5, 1}}, map[string]any{"kind": "unknown", "rank": 2.0, "scale": 0.5,
			"scale_rule": "the layer source did not describe the adapter: rank and scale are its factors'", "ranks": []any{2.0, 4.0}, "scales": []any{0.5, 1.0}},
			"fake LoRA adapter (unknown, ranks 2–4, scales 0.5–1): ΔW = s·B·A — 3 layers, ", []string{"ΔW_Q"}, 3},
		{"model", llama, nil, "llama — 4 layers, d_model 64, 8 heads (2 KV) × 8, full mode: 3 findings", []string{"W_Q", "layer 0 W_Q heads"}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, b := runJSON(t, tc.src, runVariant{opts: Options{Heads: tc.src.Geometry().NHeads > 0}}, nil)
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			got, has := doc["adapter"]
			switch {
			case tc.adapter == nil && has:
				t.Errorf("a model's report has \"adapter\": %v", got)
			case tc.adapter != nil && !reflect.DeepEqual(got, any(tc.adapter)):
				t.Errorf("adapter = %v, want %v", got, tc.adapter)
			}
			if v := rep.Verdict(); !strings.HasPrefix(v, tc.verdict) {
				t.Errorf("verdict %q, want it to begin %q", v, tc.verdict)
			}
			var text, md bytes.Buffer
			if err := rep.Render(&text, termui.Style{Width: 160}); err != nil {
				t.Fatal(err)
			}
			if err := (View{Report: rep}).RenderMarkdown(&md); err != nil {
				t.Fatal(err)
			}
			for _, title := range tc.titles {
				if !strings.Contains(text.String(), "\n"+title+" ") {
					t.Errorf("text has no table %q:\n%s", title, text.String())
				}
				if !strings.Contains(md.String(), "**"+mdEscape(title)+" ") {
					t.Errorf("markdown has no table %q:\n%s", title, md.String())
				}
			}
			if !strings.HasPrefix(md.String(), "### qkv inspect: "+mdEscape(tc.verdict)) {
				t.Errorf("markdown begins %q", strings.SplitN(md.String(), "\n", 2)[0])
			}
			if tc.adapter != nil && strings.Contains(text.String()+md.String(), " W_") {
				t.Errorf("an adapter's report names a W_ matrix:\n%s", text.String())
			}
			if tc.shards > 0 {
				_, merged, _ := shardedJSON(t, tc.src, runVariant{opts: Options{Heads: tc.src.Geometry().NHeads > 0}}, tc.shards, "sha256:x")
				if !bytes.Equal(merged, b) {
					t.Errorf("merged %d shards: %s", tc.shards, firstDiff(merged, b))
				}
			}
		})
	}
}

// TestAdapterNoRankCollapsed: heads of a LoRA update are low-rank by
// construction, so rank_collapsed (which would flag every one) is not
// applied to an adapter.
func TestAdapterNoRankCollapsed(t *testing.T) {
	ck, err := formats.Open(filepath.Join("..", "testdata", "lora", "gpt2-c_attn-peft"), formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := formats.FindModel(ck, formats.FindOptions{NHeads: 4})
	if err != nil {
		t.Fatal(err)
	}
	th := DefaultThresholds
	th.RankCollapsed = 0.99 // every head of the rank-4 updates (4×16 heads, rank ≤ 4) is below
	rep, err := Run(context.Background(), FromFactors(m), Options{Thresholds: th, Heads: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Adapter == nil {
		t.Fatal("not reported as an adapter")
	}
	for _, f := range rep.Findings {
		if f.Kind == KindRankCollapsed {
			t.Errorf("rank_collapsed on an adapter: %s", f.Message)
		}
	}
}
