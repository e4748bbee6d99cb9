package cmd

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

// planInputs lists every model of the repository's testdata and of the
// shared fixtures and references that opens with its attention layers.
func planInputs(t *testing.T) []string {
	var paths []string
	root := testref.RepoRoot()
	for _, g := range []string{"testdata/tiny-llama", "testdata/tiny-llama-sharded", "testdata/gguf/*.gguf", "testdata/arch/*", "testdata/lora/*"} {
		m, _ := filepath.Glob(filepath.Join(root, g))
		paths = append(paths, m...)
	}
	// The shared fixtures and references, when they are there.
	dir := filepath.Join(root, "..", "shared")
	if _, err := os.Stat(dir); err != nil {
		t.Logf("no %s: testdata only", dir)
		return paths
	}
	for _, g := range []string{"fixtures/*/*", "fixtures/lora/*/*", "reference/zoo/*/hf", "reference/zoo/*/gguf/*.gguf", "reference/zoo-modern/*/hf", "reference/zoo-modern/*/gguf/*.gguf"} {
		m, _ := filepath.Glob(filepath.Join(dir, g))
		paths = append(paths, m...)
	}
	return paths
}

// TestExtractPlanMatchesLayers: the arrays extract announces in its header
// before decoding (extractPlan) are, name for name and shape for shape,
// those formats.Model.Extracted gives for every layer of every model, with
// every projection and with each alone.
func TestExtractPlanMatchesLayers(t *testing.T) {
	n := 0
	for _, path := range planInputs(t) {
		ck, err := formats.Open(path, formats.Options{})
		if err != nil {
			continue
		}
		m, err := formats.FindModel(ck, formats.FindOptions{})
		if err != nil {
			ck.Close()
			continue
		}
		if big := largestLayer(m); big > 1<<22 {
			// Decoding layers this large grows the test process, whose
			// peak RSS the memory tests' children inherit at fork.
			t.Logf("%s: skipped (%d values a layer)", path, big)
			ck.Close()
			continue
		}
		n++
		for _, projs := range [][]formats.Projection{formats.Projections, {formats.ProjQ}, {formats.ProjK}, {formats.ProjV}, {formats.ProjO}, {formats.ProjK, formats.ProjV}} {
			plan, err := extractPlan(m, m.LayerIndices(), projs)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			var got []plannedTensor
			for _, i := range m.LayerIndices() {
				l, err := m.LoadLayer(i)
				if err != nil {
					t.Fatalf("%s: layer %d: %v", path, i, err)
				}
				for _, e := range m.Extracted(l, projs) {
					got = append(got, plannedTensor{e.Name, i, e.Shape})
				}
			}
			if !slices.EqualFunc(plan, got, func(a, b plannedTensor) bool {
				return a.name == b.name && a.layer == b.layer && slices.Equal(a.shape, b.shape)
			}) {
				t.Errorf("%s %v:\nplanned %v\ndecoded %v", path, projs, plan, got)
			}
		}
		ck.Close()
	}
	if n < 5 {
		t.Errorf("only %d models opened", n)
	}
	t.Logf("%d models", n)
}

// largestLayer is the most values one layer's projections hold.
func largestLayer(m *formats.Model) int {
	most := 0
	for i := range m.Layers {
		n := 0
		for _, p := range formats.Projections {
			if ps := m.Layers[i].Proj(p); ps != nil {
				n += ps.Out * ps.In
			}
		}
		most = max(most, n)
	}
	return most
}
