package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

// refStats is one entry of a zoo stats.json (matrix or head).
type refStats struct {
	Shape         [2]int    `json:"shape"`
	Fro           float64   `json:"fro"`
	MaxAbs        float64   `json:"max_abs"`
	Mean          float64   `json:"mean"`
	Std           float64   `json:"std"`
	NaNCount      int       `json:"nan_count"`
	InfCount      int       `json:"inf_count"`
	ZeroCount     int       `json:"zero_count"`
	SV            []float64 `json:"sv"`
	SpectralNorm  float64   `json:"spectral_norm"`
	Rank          int       `json:"rank"`
	EffectiveRank float64   `json:"effective_rank"`
	StableRank    float64   `json:"stable_rank"`
	Condition     *float64  `json:"condition"`
	Head          int       `json:"head"`
	Block         struct {
		Rows    *[2]int `json:"rows"`
		Columns *[2]int `json:"columns"`
	} `json:"block"`
	Heads []refStats `json:"heads"`
}

type refFile struct {
	NHeads   int                 `json:"n_heads"`
	NKVHeads int                 `json:"n_kv_heads"`
	HeadDim  int                 `json:"head_dim"`
	NLayers  int                 `json:"n_layers"`
	Matrices map[string]refStats `json:"matrices"`
}

// zooCases lists (projections, stats) file pairs of every zoo model.
func zooCases(t *testing.T) [][2]string {
	shared := testref.SharedDir(t)
	dirs, _ := filepath.Glob(filepath.Join(shared, "reference", "zoo", "*", "expected"))
	if len(dirs) == 0 {
		t.Fatalf("no zoo models under %s", shared)
	}
	var out [][2]string
	for _, d := range dirs {
		out = append(out, [2]string{filepath.Join(d, "projections.safetensors"), filepath.Join(d, "stats.json")})
		gg, _ := filepath.Glob(filepath.Join(d, "*.stats.json"))
		for _, s := range gg {
			p := strings.TrimSuffix(s, ".stats.json") + ".projections.safetensors"
			if _, err := os.Stat(p); err == nil {
				out = append(out, [2]string{p, s})
			}
		}
	}
	return out
}

func relDiff(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Max(math.Abs(want), 1e-300)
}

// compareStats checks one block against the reference; it returns problems.
func compareStats(name string, got Stats, want refStats) []string {
	var bad []string
	check := func(what string, g Float, w, tol float64) {
		if !g.Valid() || relDiff(float64(g), w) > tol {
			bad = append(bad, fmt.Sprintf("%s %s = %v, want %v (rel %.2g)", name, what, float64(g), w, relDiff(float64(g), w)))
		}
	}
	if got.Shape != want.Shape {
		bad = append(bad, fmt.Sprintf("%s shape %v, want %v", name, got.Shape, want.Shape))
		return bad
	}
	check("fro", got.Fro, want.Fro, 1e-9)
	check("max_abs", got.MaxAbs, want.MaxAbs, 0)
	// mean is a difference of sums: compare against the scale of the data.
	if math.Abs(float64(got.Mean)-want.Mean) > 1e-9*want.Std+1e-12*math.Abs(want.Mean) {
		bad = append(bad, fmt.Sprintf("%s mean = %v, want %v", name, float64(got.Mean), want.Mean))
	}
	check("std", got.Std, want.Std, 1e-9)
	if got.NaNCount != want.NaNCount || got.InfCount != want.InfCount || got.ZeroCount != want.ZeroCount {
		bad = append(bad, fmt.Sprintf("%s counts nan/inf/zero %d/%d/%d, want %d/%d/%d", name,
			got.NaNCount, got.InfCount, got.ZeroCount, want.NaNCount, want.InfCount, want.ZeroCount))
	}
	check("spectral_norm", got.SpectralNorm, want.SpectralNorm, 1e-6)
	check("stable_rank", got.StableRank, want.StableRank, 1e-6)
	check("effective_rank", got.EffectiveRank, want.EffectiveRank, 1e-6)
	if got.Rank == nil || *got.Rank != want.Rank {
		bad = append(bad, fmt.Sprintf("%s rank %v, want %d", name, got.Rank, want.Rank))
	}
	if len(got.SV) != len(want.SV) {
		bad = append(bad, fmt.Sprintf("%s %d singular values, want %d", name, len(got.SV), len(want.SV)))
		return bad
	}
	s0 := want.SV[0]
	tol := s0 * float64(max(want.Shape[0], want.Shape[1])) * 1.1920929e-07
	for i, w := range want.SV {
		g := got.SV[i]
		// Above the rank threshold a value is a property of the matrix and
		// must agree to 1e-6; below it, it is rounding noise of the stored
		// matrix, reproducible only to a small multiple of eps·sv[0].
		if w > tol {
			if relDiff(g, w) > 1e-6 {
				bad = append(bad, fmt.Sprintf("%s sv[%d] = %v, want %v (rel %.2g)", name, i, g, w, relDiff(g, w)))
			}
		} else if math.Abs(g-w) > 1e-9*s0 {
			bad = append(bad, fmt.Sprintf("%s tiny sv[%d] = %v, want %v (abs %.2g·sv0)", name, i, g, w, math.Abs(g-w)/s0))
		}
	}
	switch {
	case want.Condition == nil:
		// sv[last] = 0 exactly, or noise far below eps·sv[0] for another SVD.
		if got.Condition.Valid() && float64(got.Condition) < 1e13 {
			bad = append(bad, fmt.Sprintf("%s condition %v, want null", name, float64(got.Condition)))
		}
	case *want.Condition > 1/eps32:
		// sv[last] < eps32·sv[0]: a ratio to the float32 rounding of the
		// stored matrix, reported as ill-conditioned (null with a flag).
		if got.Condition.Valid() || !slices.Contains(got.Flags, FlagIllConditioned) && !slices.Contains(got.Flags, FlagSingular) {
			bad = append(bad, fmt.Sprintf("%s condition %v flags %v, want null and %q (numpy %g)", name, float64(got.Condition), got.Flags, FlagIllConditioned, *want.Condition))
		}
	default:
		check("condition", got.Condition, *want.Condition, 1e-6)
	}
	return bad
}

func TestZooStats(t *testing.T) {
	for _, c := range zooCases(t) {
		name := strings.TrimPrefix(c[1], filepath.Dir(filepath.Dir(filepath.Dir(c[1])))+"/")
		t.Run(name, func(t *testing.T) {
			tensors, err := testref.ReadSafetensors(c[0])
			if err != nil {
				t.Fatal(err)
			}
			var ref refFile
			if err := testref.ReadJSON(c[1], &ref); err != nil {
				t.Fatal(err)
			}
			g := formats.Geometry{NHeads: ref.NHeads, NKVHeads: ref.NKVHeads, HeadDim: ref.HeadDim, NLayers: ref.NLayers}
			opts := Options{Heads: true, Spectrum: true}
			var keys []string
			for k := range ref.Matrices {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for i := 0; i < ref.NLayers; i++ {
				mat := func(p string) formats.Matrix {
					tt, ok := tensors[fmt.Sprintf("layers.%d.%s", i, p)]
					if !ok || len(tt.Shape) != 2 {
						t.Fatalf("layers.%d.%s missing", i, p)
					}
					return formats.Matrix{Rows: tt.Shape[0], Cols: tt.Shape[1], Data: tt.F32()}
				}
				l := &formats.Layer{Index: i, Q: mat("q"), K: mat("k"), V: mat("v"), O: mat("o")}
				g.DModel = l.Q.Cols
				lr, err := AnalyzeLayer(l, g, opts)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range formats.Projections {
					key := fmt.Sprintf("layers.%d.%s", i, p)
					want := ref.Matrices[key]
					got := lr.Matrix(p)
					var bad []string
					bad = append(bad, compareStats(key, got.Stats, want)...)
					if len(got.Heads) != len(want.Heads) {
						bad = append(bad, fmt.Sprintf("%s: %d heads, want %d", key, len(got.Heads), len(want.Heads)))
					} else {
						for h, wh := range want.Heads {
							gh := got.Heads[h]
							hn := fmt.Sprintf("%s head %d", key, h)
							if gh.Head != wh.Head || fmt.Sprint(gh.Block.Rows, gh.Block.Columns) != fmt.Sprint(wh.Block.Rows, wh.Block.Columns) {
								bad = append(bad, fmt.Sprintf("%s: block %v/%v, want %v/%v", hn, gh.Block.Rows, gh.Block.Columns, wh.Block.Rows, wh.Block.Columns))
							}
							bad = append(bad, compareStats(hn, gh.Stats, wh)...)
						}
					}
					for _, b := range bad {
						t.Error(b)
					}
				}
			}
		})
	}
}

// zooSource serves a zoo model's expected projections as a LayerSource.
type zooSource struct {
	g       formats.Geometry
	tensors map[string]testref.Tensor
}

func (z *zooSource) Geometry() formats.Geometry { return z.g }
func (z *zooSource) LayerIndices() []int {
	out := make([]int, z.g.NLayers)
	for i := range out {
		out[i] = i
	}
	return out
}
func (z *zooSource) LoadLayer(i int) (*formats.Layer, error) {
	l := &formats.Layer{Index: i}
	for _, p := range formats.Projections {
		t, ok := z.tensors[fmt.Sprintf("layers.%d.%s", i, p)]
		if !ok || len(t.Shape) != 2 {
			return nil, fmt.Errorf("layers.%d.%s missing", i, p)
		}
		m := formats.Matrix{Rows: t.Shape[0], Cols: t.Shape[1], Data: t.F32()}
		switch p {
		case formats.ProjQ:
			l.Q = m
		case formats.ProjK:
			l.K = m
		case formats.ProjV:
			l.V = m
		case formats.ProjO:
			l.O = m
		}
	}
	return l, nil
}

// The llama zoo model's deliberate structure (its README): layer 0 Q head 1
// rank 2, last Q head = previous + 2% noise, K head 0 rank 3, W_O head 0
// rank 2; layer 1 last K head = K head 0 + 2% noise, last V head rank 2,
// W_O head 1 = W_O head 0 + 2% noise.
func TestZooLlamaFindings(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "zoo", "llama", "expected")
	tensors, err := testref.ReadSafetensors(filepath.Join(dir, "projections.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	src := &zooSource{g: formats.Geometry{Arch: "llama", DModel: 64, NLayers: 2, NHeads: 8, NKVHeads: 2, HeadDim: 32}, tensors: tensors}
	rep, err := Run(context.Background(), src, Options{Heads: true, Spectrum: true, Workers: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		kind, matrix string
		layer, head  int
	}
	got := map[key]bool{}
	for _, f := range rep.Findings {
		h := -1
		if f.Head != nil {
			h = *f.Head
		}
		got[key{f.Kind, f.Matrix, f.Layer, h}] = true
	}
	for _, w := range []key{
		{KindRankCollapsed, "q", 0, 1}, {KindDuplicateHeads, "q", 0, 6}, {KindRankCollapsed, "k", 0, 0},
		{KindRankCollapsed, "o", 0, 0}, {KindDuplicateHeads, "k", 1, 0}, {KindRankCollapsed, "v", 1, 1},
		{KindDuplicateHeads, "o", 1, 0},
	} {
		if !got[w] {
			t.Errorf("missing finding %+v", w)
		}
		delete(got, w)
	}
	for k := range got {
		t.Logf("also: %+v", k)
	}
	// The JSON document carries the reference values.
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema string `json:"schema"`
		Layers []struct {
			Index int      `json:"index"`
			K     refStats `json:"k"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var ref refFile
	if err := testref.ReadJSON(filepath.Join(dir, "stats.json"), &ref); err != nil {
		t.Fatal(err)
	}
	want := ref.Matrices["layers.0.k"]
	gotK := doc.Layers[0].K
	if doc.Schema != Schema || gotK.Rank != want.Rank || relDiff(gotK.EffectiveRank, want.EffectiveRank) > 1e-6 ||
		len(gotK.SV) != len(want.SV) || len(gotK.Heads) != 2 || gotK.Heads[0].Rank != 3 {
		t.Errorf("JSON layers.0.k: rank %d eff %g (%d sv, %d heads), want %d %g", gotK.Rank, gotK.EffectiveRank, len(gotK.SV), len(gotK.Heads), want.Rank, want.EffectiveRank)
	}
}
