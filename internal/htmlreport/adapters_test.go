package htmlreport

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/attn"
	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/inspect/circuits"
	"github.com/qkvdev/qkv/inspect/esd"
	"github.com/qkvdev/qkv/internal/testref"
)

func TestFromESD(t *testing.T) {
	rng := splitmix(3)
	sv := spectrum(64, 3, 1, &rng)
	r, err := esd.Analyze(sv, 64, 64, esd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := FromESD(r)
	if e.Status != esd.StatusSuccess || e.Alpha != *r.Alpha || e.XMin != *r.Xmin || e.XMax != *r.Xmax || e.D != *r.D ||
		e.Sigma != *r.Sigma || e.AlphaWeighted != *r.AlphaWeighted || e.NumSpikes != *r.NumPLSpikes || e.Warning != *r.Warning {
		t.Errorf("%+v from %+v", e, r)
	}
	// rank 1: one eigenvalue above the cut, the fit fails
	one := make([]float64, 16)
	one[0] = 2
	r, err = esd.Analyze(one, 16, 64, esd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e = FromESD(r)
	if e.Status != esd.StatusFailed || e.Reason == "" || !math.IsNaN(e.Alpha) || !math.IsNaN(e.XMin) || e.NumSpikes != -1 || e.Warning != "" {
		t.Errorf("failed fit: %+v from %+v", e, r)
	}
	if FromESD(nil) != nil {
		t.Error("FromESD(nil) is not nil")
	}
}

// pipelineReport makes the report `qkv report --tokens` will: inspect with
// spectra and heads (fast mode for adapters, whose deltas are d_model-wide
// matrices), the heavy-tail fit of every fully known spectrum, composition
// scores when the head counts are known, and the attention rerun of the
// first and last layer on the first 12 token ids (a random input when the
// checkpoint has no embeddings), labelled from a GGUF vocabulary.
func pipelineReport(path, source string) (*Data, error) {
	ck, err := formats.Open(path, formats.Options{})
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	heads := m.HeadsKnown() == nil
	rep, err := inspect.Run(ctx, m, inspect.Options{Heads: heads, Spectrum: true, Fast: m.IsAdapter, Workers: 2}, nil)
	if err != nil {
		return nil, err
	}
	d := FromInspect(rep, source)
	d.Generator = "qkv tests"
	for li := range d.Layers {
		for mi := range d.Layers[li].Matrices {
			mx := &d.Layers[li].Matrices[mi]
			if len(mx.SV) != min(mx.Shape[0], mx.Shape[1]) {
				continue
			}
			if r, err := esd.Analyze(mx.SV, mx.Shape[0], mx.Shape[1], esd.Options{}); err == nil {
				mx.ESD = FromESD(r)
			}
		}
	}
	if !heads {
		return d, nil
	}
	cr, err := circuits.Compute(ctx, m, circuits.Options{BaselineSamples: 50, Seed: 1})
	if err != nil {
		return nil, err
	}
	d.Composition = FromCircuits(cr)
	g := m.Geometry()
	ids := make([]int, 12)
	for i := range ids {
		ids[i] = 1 + i
		if g.VocabSize > 0 {
			ids[i] %= g.VocabSize
		}
	}
	var x formats.Matrix
	var tokens []string
	input := "tokens " + strings.Trim(strings.ReplaceAll(fmt.Sprint(ids), " ", ","), "[]")
	opts := attn.Options{}
	if e, err := m.Embeddings(ids); err == nil {
		x, err = attn.BuildInput(attn.EmbeddingInput{TokenRows: e.TokenRows, TokenScale: e.TokenScale, Positions: e.Positions,
			TokenType: e.TokenType, NormWeight: e.NormWeight, NormBias: e.NormBias, NormEps: e.NormEps})
		if err != nil {
			return nil, err
		}
		tokens = vocabLabels(ck, ids)
	} else {
		x, _, err = attn.RandomInput(len(ids), g.DModel, 1, 1)
		if err != nil {
			return nil, err
		}
		input, opts.NoNorm = "random normal input, 12 positions, seed 1", true
	}
	idx := m.LayerIndices()
	var results []*attn.Result
	for i, li := range []int{idx[0], idx[len(idx)-1]} {
		if i == 1 && li == idx[0] {
			break
		}
		l, err := m.LoadLayer(li)
		if err != nil {
			return nil, err
		}
		r, err := attn.Run(g, l, x, opts)
		if err != nil {
			// attn refuses what it does not model (named in the error)
			d.Notes = append(d.Notes, "Attention not rerun: "+err.Error())
			return d, nil
		}
		results = append(results, r)
	}
	d.Attention = FromAttn(results, tokens, input)
	return d, nil
}

// vocabLabels names token ids from a GGUF vocabulary, else by number.
func vocabLabels(ck *formats.Checkpoint, ids []int) []string {
	labels := make([]string, len(ids))
	for i, id := range ids {
		labels[i] = fmt.Sprint(id)
	}
	g := ck.GGUF()
	if g == nil {
		return labels
	}
	kv, ok := g.Lookup("tokenizer.ggml.tokens")
	if !ok || kv.Type != gguf.Array || kv.ElemType != gguf.String {
		return labels
	}
	for i, id := range ids {
		if uint64(id) < kv.Count {
			if vals, err := ck.MetaArray(kv, id, 1); err == nil && len(vals) == 1 {
				if s, ok := vals[0].(string); ok {
					labels[i] = s
				}
			}
		}
	}
	return labels
}

// TestPipelineTiny: every producer wired into a report of the project's
// tiny-llama.
func TestPipelineTiny(t *testing.T) {
	d, err := pipelineReport(filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama"), "testdata/tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	fits := 0
	for _, l := range d.Layers {
		for _, m := range l.Matrices {
			if m.ESD != nil {
				fits++
			}
		}
	}
	if fits != 16 || len(d.Composition) != 2 || d.Attention == nil || len(d.Attention.Layers) != 2 {
		t.Fatalf("%d fits, %d composition variants, attention %+v", fits, len(d.Composition), d.Attention)
	}
	if c := d.Composition[0]; len(c.Q) != 4 || len(c.Q[0]) != 8 || !(c.Baseline > 0) || len(c.Layers) != 4 {
		t.Fatalf("composition %q: %d layers × %d heads, baseline %g", c.Name, len(c.Q), len(c.Q[0]), c.Baseline)
	}
	d.Attention.Tokens[1] = " the"
	d.Attention.Tokens[2] = "\n"
	var b bytes.Buffer
	if err := Render(&b, d); err != nil {
		t.Fatal(err)
	}
	text := checkStructure(t, b.Bytes()).text.String()
	for _, want := range []string{"Power-law exponent α by layer", "Q-composition (raw)", "K-composition (ln_folded)",
		"Strongest head pairs (raw)", "Layer 3 attention patterns, 8 heads.", "␣the", `\n`, "Layer 2 W_O: eigenvalue spectrum (ESD). Power law α ="} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
