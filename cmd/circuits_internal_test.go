package cmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect/circuits"
)

// TestCircuitsCost: the estimate is inspect/circuits' count, (H·d +
// KV·(d+dv))·d_model·H·dv per pair of layers and variant plus 6%, and a
// 32-layer, 32-head, 4096-wide model is announced in hours.
func TestCircuitsCost(t *testing.T) {
	g := formats.Geometry{DModel: 4096, NLayers: 32, NHeads: 32, NKVHeads: 32, HeadDim: 128, PreNorm: true, Norm: formats.NormRMS}
	per := float64(32*128+32*(128+128)) * 4096 * 32 * 128
	if got, want := circuitsCost(g, 32, true), 1.06*per*496*2; math.Abs(got-want) > 1e-9*want {
		t.Errorf("cost %g, want %g", got, want)
	}
	if got, want := circuitsCost(g, 32, false), 1.06*per*496; math.Abs(got-want) > 1e-9*want {
		t.Errorf("raw-only cost %g, want %g", got, want)
	}
	post := g
	post.PreNorm = false
	if circuitsCost(post, 32, true) != circuitsCost(g, 32, false) {
		t.Error("a post-norm model has one variant")
	}
	// GQA with a different value head dim.
	gqa := formats.Geometry{DModel: 2048, NHeads: 16, NKVHeads: 4, HeadDim: 128, VHeadDim: 64}
	if got, want := circuitsCost(gqa, 2, false), 1.06*float64(16*128+4*(128+64))*2048*16*64; math.Abs(got-want) > 1e-9*want {
		t.Errorf("GQA cost %g, want %g", got, want)
	}
	rate := machineRate()
	if !(rate > 1e6) {
		t.Fatalf("machine rate %g multiply-adds/s", rate)
	}
	cost := circuitsCost(g, 32, true)
	msg := costNotice(g, 32, true, cost, cost/rate)
	t.Logf("%s", msg)
	if !strings.Contains(msg, "hours") && !strings.Contains(msg, "days") {
		t.Errorf("a 32-layer 4096-wide model is not announced in hours: %s", msg)
	}
	for _, want := range []string{"496 pairs of layers", "--raw-only halves it", "--layers narrows it"} {
		if !strings.Contains(msg, want) {
			t.Errorf("notice lacks %q: %s", want, msg)
		}
	}
}

// TestCircuitsScoresJSON: the line-per-head writer of a variant's scores
// gives the document encoding/json gives for circuits.Scores (every field,
// NaN as null), so a field added there is not silently left out here.
func TestCircuitsScoresJSON(t *testing.T) {
	var a circuits.Array4
	if err := json.Unmarshal([]byte(`[[[[0,0],[0.5,null]],[[0,0],[0.25,1e-300]]],[[[0,0],[0,0]],[[0,0],[0,0]]]]`), &a); err != nil {
		t.Fatal(err)
	}
	s := &circuits.Scores{Q: a, K: a, V: a, OVNorm: [][]float64{{1, 2}, {3, math.NaN()}}, QKNorm: [][]float64{{4, 5}, {6, 7}}}
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	writeScoresJSON(bw, s, "  ")
	bw.Flush()
	var got, want any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	ref, err := json.Marshal(struct {
		*circuits.Scores
		OV [][]*float64 `json:"ov_fro"`
	}{s, [][]*float64{{ptr(1), ptr(2)}, {ptr(3), nil}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("writer:\n%s\nencoding/json:\n%s", buf.String(), ref)
	}
}

func ptr(v float64) *float64 { return &v }
