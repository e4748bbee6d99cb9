package attn

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/tokenizer"
	"github.com/qkvdev/qkv/internal/termui"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestRoute checks each routing rule on hand-computed cases.
func TestRoute(t *testing.T) {
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	tests := []struct {
		name   string
		spec   formats.MoESpec
		logits []float64
		corr   []float32
		want   []ExpertWeight
	}{
		{"mixtral: softmax, top-2, renormalised", formats.MoESpec{TopK: 2, Scoring: "softmax", NormTopK: true, Scale: 1},
			[]float64{0, math.Log(3), math.Log(2), -5},
			nil, []ExpertWeight{{1, 0.6}, {2, 0.4}}},
		{"qwen3-moe without renormalisation", formats.MoESpec{TopK: 1, Scoring: "softmax", Scale: 1},
			[]float64{0, math.Log(3)}, nil, []ExpertWeight{{1, 0.75}}},
		{"gpt-oss: top-k of logits, softmax over them", formats.MoESpec{TopK: 2, SoftmaxAfterTopK: true, Scale: 1},
			[]float64{5, 1, 5 + math.Log(3), -2}, nil, []ExpertWeight{{2, 0.75}, {0, 0.25}}},
		{"ties go to the lower index", formats.MoESpec{TopK: 1, Scoring: "softmax", Scale: 1},
			[]float64{1, 2, 2}, nil, []ExpertWeight{{1, math.Exp(2) / (math.Exp(1) + 2*math.Exp(2))}}},
		{"deepseek v3: the correction bias picks, the plain score weighs",
			formats.MoESpec{TopK: 1, Scoring: "sigmoid", ScoreCorrection: true, NormTopK: true, NormDenomEps: 1e-20, Scale: 2.5},
			[]float64{1, 0}, []float32{0, 1}, []ExpertWeight{{1, 2.5}}},
		{"deepseek v3: group-limited, masked scores become 0",
			// selections 0.2, −0.5, 0.1, 0.05: group {0,1} sums −0.3, group
			// {2,3} 0.15 and is kept; expert 2 wins with weight sigmoid(0).
			formats.MoESpec{TopK: 1, Scoring: "sigmoid", ScoreCorrection: true, Scale: 1, Groups: 2, TopKGroups: 1, GroupScore: "top2_sum"},
			[]float64{0, 0, 0, 0}, []float32{-0.3, -1.0, -0.4, -0.45}, []ExpertWeight{{2, sig(0)}}},
		{"deepseek v2: group maximum, no renormalisation, scaled", formats.MoESpec{TopK: 2, Scoring: "softmax", Scale: 2, Groups: 2, TopKGroups: 1, GroupScore: "max"},
			[]float64{0, 0, math.Log(4), math.Log(2)}, nil, []ExpertWeight{{2, 2 * 4.0 / 8}, {3, 2 * 2.0 / 8}}},
	}
	for _, tc := range tests {
		got := route(&tc.spec, tc.logits, tc.corr)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i].Expert != tc.want[i].Expert || math.Abs(got[i].Weight-tc.want[i].Weight) > 1e-12 {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
			}
		}
	}
	// Group scores use the corrected selection: a group whose experts
	// are all masked contributes 0s, which can beat negative selections.
	spec := formats.MoESpec{TopK: 2, Scoring: "sigmoid", ScoreCorrection: true, Scale: 1, Groups: 2, TopKGroups: 1, GroupScore: "top2_sum"}
	got := route(&spec, []float64{0, 0, 0, 0}, []float32{-0.7, -0.8, 0.1, -0.9})
	// selections: 0.5-0.7=-0.2, -0.3, 0.6, -0.4; group sums -0.5 vs 0.2:
	// group 1 kept; masked: [0, 0, 0.6, -0.4] → experts 2 then 0 (0 > -0.4).
	if got[0].Expert != 2 || got[1].Expert != 0 {
		t.Errorf("masked experts: %v, want experts 2 and 0 (a masked 0 beats a negative selection, as in transformers)", got)
	}
}

func TestInductionScores(t *testing.T) {
	ids, start, err := RandomRepeatTokens(5, 100, 3, 7, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 11 || start != 1 || ids[0] != 1 {
		t.Fatalf("ids %v start %d", ids, start)
	}
	for j := 0; j < 5; j++ {
		if ids[1+j] != ids[6+j] || ids[1+j] < 3 || ids[1+j] >= 100 {
			t.Fatalf("not a repeated sequence from [3, 100): %v", ids)
		}
	}
	// Head 0: perfect induction; head 1: attends to itself.
	T := len(ids)
	r := &Result{Probs: make([][][]float32, 2), Heads: make([]HeadMetrics, 2)}
	for h := range r.Probs {
		r.Probs[h] = make([][]float32, T)
		for i := range r.Probs[h] {
			r.Probs[h][i] = make([]float32, T)
			r.Probs[h][i][i] = 1
		}
	}
	for j := 0; j < 5; j++ {
		q := start + 5 + j
		row := r.Probs[0][q]
		clear(row)
		row[start+j+1] = 1
	}
	got, err := InductionScores(r, start, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 1 || got[1] != 0 || r.Heads[0].Induction == nil || *r.Heads[0].Induction != 1 {
		t.Errorf("scores %v, metrics %v", got, r.Heads[0].Induction)
	}
	if _, err := InductionScores(r, start, 6); err == nil {
		t.Error("a sequence longer than the input was accepted")
	}
	if _, _, err := RandomRepeatTokens(4, 3, 2, 1, -1); err == nil {
		t.Error("one token id to draw from was accepted")
	}
}

func TestTopPredictions(t *testing.T) {
	l := formats.Matrix{Rows: 1, Cols: 4, Data: []float32{0, float32(math.Log(3)), 0, float32(math.Log(2))}}
	p := TopPredictions(l, 0, 2)
	if len(p) != 2 || p[0].ID != 1 || p[1].ID != 3 || math.Abs(p[0].Prob-3.0/7) > 1e-6 || math.Abs(p[1].Prob-2.0/7) > 1e-6 {
		t.Errorf("%+v", p)
	}
	if TopPredictions(l, 1, 2) != nil {
		t.Error("row out of range")
	}
}

// TestForwardRefusesUnsupported: the forward of a model it does not model
// is an *UnsupportedError naming the item, before any weight is decoded.
func TestForwardRefusesUnsupported(t *testing.T) {
	path := filepath.Join(testref.RepoRoot(), "testdata", "arch", "llama4", "hf")
	ck, err := formats.Open(path, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Forward(m, []int{1, 2, 3}, ForwardOptions{Logits: true})
	var ue *UnsupportedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "llama4") {
		t.Fatalf("llama4: %v", err)
	}
}

// TestForwardOptions covers the layer selection: the pass stops at the
// last layer asked for (its attention only), and the hidden states it
// returns are the ones a full pass computes.
func TestForwardOptions(t *testing.T) {
	path := filepath.Join(testref.SharedDir(t), "reference", "zoo", "llama", "hf")
	ck, err := formats.Open(path, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ids := []int{1, 9, 77, 157}
	part, err := Forward(m, ids, ForwardOptions{Layers: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	full, err := Forward(m, ids, ForwardOptions{Layers: []int{0, 1}, Logits: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(part.Results) != 1 || part.Results[0].Layer != 1 || len(part.Hidden) != 2 || !part.Logits.Empty() {
		t.Fatalf("partial pass: %d results, %d hidden", len(part.Results), len(part.Hidden))
	}
	if maxAbsDiff(part.Hidden[1].Data, full.Hidden[1].Data) != 0 || maxAbsDiff(flatProbs(part.Results[0]), flatProbs(full.Results[1])) != 0 {
		t.Error("the partial pass differs from the full one")
	}
	if full.Logits.Rows != len(ids) || full.Logits.Cols != 256 {
		t.Errorf("logits [%d, %d]", full.Logits.Rows, full.Logits.Cols)
	}
	for _, bad := range []ForwardOptions{{Layers: []int{2}}, {Layers: []int{-1}}, {}} {
		if _, err := Forward(m, ids, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := Forward(m, nil, ForwardOptions{Logits: true}); err == nil {
		t.Error("no tokens accepted")
	}
	if _, err := Forward(m, []int{1, 256}, ForwardOptions{Logits: true}); err == nil {
		t.Error("a token outside the vocabulary accepted")
	}
}

func flatProbs(r *Result) []float32 {
	var out []float32
	for _, h := range r.Probs {
		for _, row := range h {
			out = append(out, row...)
		}
	}
	return out
}

func TestPredictionsViewAndInduction(t *testing.T) {
	var b strings.Builder
	preds := []Prediction{{ID: 5, Piece: ",", Logit: 2.5, Prob: 0.75}, {ID: 7, Piece: "\x1b[31m", Logit: 1.4, Prob: 0.25}}
	if err := (PredictionsView{After: " said", Predictions: preds}).Render(&b, termui.Style{}); err != nil {
		t.Fatal(err)
	}
	want := "next token after ␣said (softmax over the whole vocabulary)\n" +
		"#  id  token        p  logit\n" +
		"1   5  ,         0.75    2.5\n" +
		"2   7  \\x1b[31m  0.25    1.4\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	r := fixedResult(4)
	v := 0.5
	r.Heads[0].Induction = &v
	b.Reset()
	if err := renderView(&b, r, renderOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "induction") || !strings.Contains(b.String(), "0.5000") {
		t.Errorf("no induction column:\n%s", b.String())
	}
}

// TestForwardStories260K runs a trained model (stories260K, TinyStories) on
// real text with its own tokenizer: its predictions must be the story's
// (a sanity check a person can read), and the induction lookup the README
// describes must be there.
func TestForwardStories260K(t *testing.T) {
	path := filepath.Join(testref.SharedDir(t), "fixtures", "gguf", "stories260k-v3-f32", "stories260K.gguf")
	ck, err := formats.Open(path, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromCheckpoint(ck)
	if err != nil {
		t.Fatal(err)
	}
	text := "Lily and Tom went to the park. Lily saw a big red ball. She gave the ball to Tom. Tom said"
	ids, err := tok.Encode(text, tokenizer.EncodeOptions{AddSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Forward(m, ids, ForwardOptions{Layers: []int{4}, Logits: true})
	if err != nil {
		t.Fatal(err)
	}
	next := func(pos int) (string, float64) {
		p := TopPredictions(res.Logits, pos, 1)[0]
		return tok.Text(p.ID), p.Prob
	}
	for _, c := range []struct {
		pos  int
		want string
	}{{len(ids) - 1, ","}, {30, "om"}, {33, "om"}} {
		if got, p := next(c.pos); got != c.want || p < 0.5 {
			t.Errorf("after position %d (%q): %q (%.2f), want %q", c.pos, tok.Text(ids[c.pos]), got, p, c.want)
		}
	}
	// Layer 4 heads 0 and 1: from the later " T" to the "om" after the first.
	if tok.Text(ids[3]) != " T" || tok.Text(ids[4]) != "om" || tok.Text(ids[30]) != " T" {
		t.Fatalf("the tokenization changed: %v", ids)
	}
	p := res.Results[0].Probs
	for _, h := range []int{0, 1} {
		if p[h][30][4] < 0.3 || p[h][33][4] < 0.3 {
			t.Errorf("layer 4 head %d: %.2f and %.2f from the later \" T\" to the first \"om\"", h, p[h][30][4], p[h][33][4])
		}
	}
}

// TestForwardJSON: the forward part of the document and the induction score
// reach the JSON.
func TestForwardJSON(t *testing.T) {
	r := fixedResult(4)
	v := 0.25
	r.Heads[1].Induction = &v
	d := NewDocument([]*Result{r}, false)
	after := 3
	d.Forward = &ForwardDoc{Spec: formats.ForwardSpec{Arch: "llama", Placement: formats.PlacementPre, Activation: formats.ActSiLU, LMHead: formats.LMHeadTied, Layers: 2},
		PredictionsAfter: &after, Predictions: []Prediction{{ID: 7, Piece: "▁time", Logit: 3, Prob: 0.9}}}
	var b strings.Builder
	if err := WriteJSON(&b, d); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"induction_score": 0.25`, `"forward": {`, `"placement": "pre_norm"`, `"predictions_after": 3`, `"piece": "▁time"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %s in\n%s", want, b.String())
		}
	}
	if strings.Count(b.String(), "induction_score") != 1 {
		t.Error("induction_score written for a head without one")
	}
}
