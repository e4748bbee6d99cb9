package htmlreport

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/testref"
)

// inspectTiny runs inspect on the project's own tiny-llama fixture, whose
// generator planted a dead query head (layer 1), a duplicated query head
// (layer 2) and an exploding W_O (layer 3).
func inspectTiny(t *testing.T, spectrum bool) *inspect.Report {
	t.Helper()
	ck, err := formats.Open(filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama"), formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := inspect.Run(context.Background(), m, inspect.Options{Heads: true, Spectrum: spectrum, Workers: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestFromInspect(t *testing.T) {
	rep := inspectTiny(t, true)
	d := FromInspect(rep, "testdata/tiny-llama")
	g := rep.Model
	if d.Model.Arch != g.Arch || d.Model.DModel != g.DModel || d.Model.NHeads != g.NHeads || d.Model.NKVHeads != g.NKVHeads || d.Model.HeadDim != g.HeadDim {
		t.Errorf("model %+v from geometry %+v", d.Model, g)
	}
	if len(d.Findings) != len(rep.Findings) {
		t.Fatalf("%d findings, the report has %d", len(d.Findings), len(rep.Findings))
	}
	// The page lists them worst kind first, as inspect's text does.
	for i, f := range inspect.ByWorstKind(rep.Findings) {
		h := -1
		if f.Head != nil {
			h = *f.Head
		}
		got := d.Findings[i]
		if got.Kind != f.Kind || got.Layer != f.Layer || got.Matrix != f.Matrix || got.Head != h || got.Message != f.Message {
			t.Errorf("finding %d: %+v from %+v", i, got, f)
		}
	}
	if len(d.Layers) != len(rep.Layers) {
		t.Fatalf("%d layers, the report has %d", len(d.Layers), len(rep.Layers))
	}
	for i, l := range rep.Layers {
		dl := d.Layers[i]
		if dl.Index != l.Index || len(dl.Matrices) != 4 {
			t.Fatalf("layer %d: index %d, %d matrices", l.Index, dl.Index, len(dl.Matrices))
		}
		for j, p := range formats.Projections {
			m, dm := l.Matrix(p), dl.Matrices[j]
			if dm.Name != string(p) || dm.Shape != m.Shape || len(dm.SV) != len(m.SV) || len(dm.SV) == 0 ||
				dm.Fro != float64(m.Fro) || dm.SpectralNorm != float64(m.SpectralNorm) || dm.Rank != *m.Rank {
				t.Errorf("layer %d %s: %+v", l.Index, p, dm)
			}
		}
	}
	// 4 projections × (norm, effective rank) + QK/OV × (norm, effective rank)
	if len(d.Heads) != 12 {
		t.Fatalf("%d head maps, want 12", len(d.Heads))
	}
	for _, h := range d.Heads {
		if len(h.Values) != 4 || len(h.Layers) != 4 {
			t.Errorf("%s: %d rows", h.Title, len(h.Values))
		}
		want := g.NHeads
		if strings.HasPrefix(h.Title, "W_K") || strings.HasPrefix(h.Title, "W_V") {
			want = g.NKVHeads
		}
		for _, row := range h.Values {
			if len(row) != want {
				t.Errorf("%s: row of %d, want %d", h.Title, len(row), want)
			}
		}
	}
	// the dead head is a zero in the W_Q norm map at layer 1, head 3
	if v := d.Heads[0].Values[1][3]; d.Heads[0].Title != "W_Q heads: Frobenius norm" || v != 0 {
		t.Errorf("%s [1][3] = %g, want the dead head's 0", d.Heads[0].Title, v)
	}
	var b bytes.Buffer
	if err := Render(&b, d); err != nil {
		t.Fatal(err)
	}
	p := checkStructure(t, b.Bytes())
	text := p.text.String()
	for _, want := range []string{"dead_head", "duplicate_heads", "outlier_norm", "Layer 3: singular values", "QK circuits: spectral norm", "rmsnorm"} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestFromInspectNoSpectrum: without kept singular values the page says
// so and draws no spectra.
func TestFromInspectNoSpectrum(t *testing.T) {
	d := FromInspect(inspectTiny(t, false), "tiny")
	var b bytes.Buffer
	if err := Render(&b, d); err != nil {
		t.Fatal(err)
	}
	text := checkStructure(t, b.Bytes()).text.String()
	if !strings.Contains(text, "singular values were not kept") {
		t.Error("no note about the missing spectra")
	}
	if strings.Contains(text, "singular values σ") && strings.Contains(text, "against rank i") {
		t.Error("a spectrum drawn without singular values")
	}
}
