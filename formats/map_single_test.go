package formats

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

func mapOf(kv ...string) map[Projection]*regexp.Regexp {
	out := map[Projection]*regexp.Regexp{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[Projection(kv[i])] = regexp.MustCompile(kv[i+1])
	}
	return out
}

// TestMapSingleTensor: a --map expression without a capture group names
// one tensor as layer 0; when no expression has one, the model is only
// those tensors, taken as stored, with head counts from the options alone.
func TestMapSingleTensor(t *testing.T) {
	shared := testref.SharedDir(t)

	// A lone tensor "weight" in a file without a config.
	file := filepath.Join(shared, "reference", "analysis", "matrices", "student_t3_512x2048.safetensors")
	want, err := testref.ReadSafetensors(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(file, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range []Projection{ProjQ, ProjO} {
		m, err := FindModel(c, FindOptions{Map: mapOf(string(p), `^weight$`)})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		g := m.Geometry()
		dm := 2048
		if p == ProjO {
			dm = 512
		}
		if m.HeadsKnown() == nil || g.NHeads != 0 || g.DModel != dm || g.NLayers != 1 || len(m.Layers) != 1 || m.Layers[0].Index != 0 {
			t.Errorf("%s: geometry %+v, %d layers", p, g, len(m.Layers))
		}
		l, err := m.LoadLayer(0)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range Projections {
			if got := l.Matrix(q); q == p {
				if got.Rows != 512 || got.Cols != 2048 {
					t.Errorf("%s: shape [%d, %d]", p, got.Rows, got.Cols)
				}
				compareExact(t, "weight as "+string(p), got.Data, want["weight"])
			} else if !got.Empty() {
				t.Errorf("mapping %s gave a %s of [%d, %d]", p, q, got.Rows, got.Cols)
			}
		}
	}

	// One tensor of a known model: only it (the architecture's layers are
	// not added), as stored; the config's head counts do not apply to it,
	// --n-heads does.
	dir := filepath.Join(shared, "reference", "zoo", "llama")
	exp, err := testref.ReadSafetensors(filepath.Join(dir, "expected", "projections.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Open(filepath.Join(dir, "hf"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	kMap := mapOf("q", `^model\.layers\.1\.self_attn\.k_proj\.weight$`)
	m, err := FindModel(c2, FindOptions{Map: kMap})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 1 || m.Geo.NHeads != 0 || m.Geo.DModel != 64 || m.Layers[0].K != nil || m.Layers[0].Q == nil {
		t.Errorf("one tensor of llama: geometry %+v, %d layers", m.Geo, len(m.Layers))
	}
	l, err := m.LoadLayer(0)
	if err != nil {
		t.Fatal(err)
	}
	compareExact(t, "layer 1's k_proj as q", l.Q.Data, exp["layers.1.k"])
	m, err = FindModel(c2, FindOptions{Map: kMap, NHeads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if m.HeadsKnown() != nil || m.Geo.NHeads != 2 || m.Geo.NKVHeads != 2 || m.Geo.HeadDim != 32 {
		t.Errorf("with --n-heads 2: %+v", m.Geo)
	}

	// Errors: an expression that names several tensors, one that names
	// none, and tensors that do not share d_model.
	for _, x := range []struct {
		mp   map[Projection]*regexp.Regexp
		want string
	}{
		{mapOf("q", `self_attn\.q_proj\.weight$`), "no capture group, so it names one tensor (as layer 0), but it matches 2"},
		{mapOf("q", `^nothing$`), "matches no tensor"},
		{mapOf("q", `^model\.layers\.0\.self_attn\.q_proj\.weight$`, "k", `^model\.layers\.0\.mlp\.down_proj\.weight$`), "does not fit d_model 64"},
	} {
		if _, err := FindModel(c2, FindOptions{Map: x.mp}); err == nil || !strings.Contains(err.Error(), x.want) {
			t.Errorf("%v: %v, want %q", x.mp, err, x.want)
		}
	}

	// A map without a group beside one with a group: layer 0 of a model.
	m, err = FindModel(c2, FindOptions{Map: mapOf("q", `^model\.layers\.(\d+)\.self_attn\.q_proj\.weight$`, "v", `^model\.layers\.1\.self_attn\.v_proj\.weight$`)})
	if err != nil {
		t.Fatal(err)
	}
	if m.single || len(m.Layers) != 2 || m.Geo.NHeads != 8 {
		t.Fatalf("mixed map: single %v, %d layers, geometry %+v", m.single, len(m.Layers), m.Geo)
	}
	l, err = m.LoadLayer(0)
	if err != nil {
		t.Fatal(err)
	}
	compareExact(t, "layer 1's v_proj as layer 0's v", l.V.Data, exp["layers.1.v"])
}
