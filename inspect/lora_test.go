package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

// loraRef is testdata/lora/<adapter>.json, written by numpy_lora_sv.py.
type loraRef struct {
	Source  string `json:"source"`
	Modules map[string]struct {
		A, B                      string
		MLX                       bool      `json:"mlx"`
		Rank                      int       `json:"rank"`
		Shape                     [2]int    `json:"shape"`
		Rows                      []int     `json:"rows"`
		SVExact                   []float64 `json:"sv_exact"`
		SVMaterialised            []float64 `json:"sv_materialised"`
		TailMax                   float64   `json:"tail_max"`
		EffectiveRankExact        float64   `json:"effective_rank_exact"`
		EffectiveRankMaterialised float64   `json:"effective_rank_materialised"`
	} `json:"modules"`
}

// loraFactors returns a module's factors in PEFT's orientation.
func loraFactors(t testing.TB, tensors map[string]testref.Tensor, aName, bName string, mlx bool) (a, b formats.Matrix) {
	ta, tb := tensors[aName], tensors[bName]
	if len(ta.Shape) != 2 || len(tb.Shape) != 2 {
		t.Fatalf("%s %v, %s %v", aName, ta.Shape, bName, tb.Shape)
	}
	a = formats.Matrix{Rows: ta.Shape[0], Cols: ta.Shape[1], Data: ta.F32()}
	b = formats.Matrix{Rows: tb.Shape[0], Cols: tb.Shape[1], Data: tb.F32()}
	if mlx {
		a, b = transposed(a), transposed(b)
	}
	return a, b
}

func transposed(m formats.Matrix) formats.Matrix {
	t := formats.NewMatrix(m.Cols, m.Rows)
	for i := 0; i < m.Rows; i++ {
		for j := 0; j < m.Cols; j++ {
			t.Data[j*m.Rows+i] = m.Data[i*m.Cols+j]
		}
	}
	return t
}

// The spectra from the factors equal numpy's SVD of the product on the
// shared MLX adapter: the exact float64 product to 1e-10, and the product
// rounded to float32 (what materialising gives) to 1e-6 relative, its
// noise tail within 1e-6·sv[0] of our exact zeros.
func TestLoRASpectraAgainstNumpy(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "fixtures", "lora", "mlx-llama3-8b-discollama")
	tensors, err := testref.ReadSafetensors(filepath.Join(dir, "adapters.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var ref loraRef
	if err := testref.ReadJSON(filepath.Join("testdata", "lora", "mlx-llama3-8b-discollama.json"), &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Modules) != 4 {
		t.Fatalf("%d modules in the reference", len(ref.Modules))
	}
	for name, m := range ref.Modules {
		a, b := loraFactors(t, tensors, m.A, m.B, m.MLX)
		for _, scale := range []float64{1, -4} {
			sv, err := LoRASingularValues(a, b, scale)
			if err != nil {
				t.Fatal(err)
			}
			if len(sv) != min(m.Shape[0], m.Shape[1]) {
				t.Fatalf("%s: %d values", name, len(sv))
			}
			s := math.Abs(scale)
			for i, want := range m.SVExact {
				if relDiff(sv[i], s*want) > 1e-10 {
					t.Errorf("%s ×%g: sv[%d] = %.17g, numpy exact %.17g", name, scale, i, sv[i], s*want)
				}
				if relDiff(sv[i], s*m.SVMaterialised[i]) > 1e-6 {
					t.Errorf("%s ×%g: sv[%d] = %.17g, numpy materialised %.17g (rel %.2g)", name, scale, i, sv[i], s*m.SVMaterialised[i], relDiff(sv[i], s*m.SVMaterialised[i]))
				}
			}
			for i := m.Rank; i < len(sv); i++ {
				if sv[i] != 0 {
					t.Fatalf("%s: sv[%d] = %g past the rank", name, i, sv[i])
				}
			}
			if m.TailMax > 1e-6*m.SVExact[0] {
				t.Errorf("%s: numpy's float32 tail %g is not noise", name, m.TailMax)
			}
		}
		st, err := LoRAStats(a, b, 1, StatsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *st.Rank != m.Rank || st.Condition.Valid() || relDiff(float64(st.EffectiveRank), m.EffectiveRankExact) > 1e-9 ||
			st.Method != MethodFactors || strings.Join(st.Flags, ",") != FlagSingular {
			t.Errorf("%s: rank %d eff %.10g cond %v method %s flags %v, want rank %d eff %.10g", name, *st.Rank, float64(st.EffectiveRank),
				float64(st.Condition), st.Method, st.Flags, m.Rank, m.EffectiveRankExact)
		}
		t.Logf("%s %v: eff. rank %.8g exact, %.8g with float32 noise (numpy)", name, m.Shape, m.EffectiveRankExact, m.EffectiveRankMaterialised)
	}
}

// LoRAStats agrees with MatrixStats of the materialised update wherever
// the float32 rounding of ΔW does not matter, on random factors of every
// shape class (r above and below the smaller side included).
func TestLoRAStatsAgainstMaterialised(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for _, sh := range [][3]int{{40, 4, 60}, {60, 4, 40}, {30, 40, 20}, {20, 40, 30}, {7, 1, 9}, {64, 64, 64}, {0, 3, 5}} {
		out, rank, in := sh[0], sh[1], sh[2]
		a, b := randMatrix(r, rank, in, 0.1), randMatrix(r, out, rank, 0.1)
		got, err := LoRAStats(a, b, 2, StatsOptions{KeepSV: true})
		if err != nil {
			t.Fatal(err)
		}
		dw, err := LoRADelta(a, b, 2)
		if err != nil {
			t.Fatal(err)
		}
		want := MatrixStats(dw, StatsOptions{KeepSV: true})
		// Formatted, so that NaN (the mean of an empty matrix) equals NaN.
		if fmt.Sprint(got.Shape, got.Fro, got.MaxAbs, got.Mean, got.Std, got.ZeroCount) != fmt.Sprint(want.Shape, want.Fro, want.MaxAbs, want.Mean, want.Std, want.ZeroCount) {
			t.Errorf("%v: element stats %+v, want %+v", sh, got, want)
		}
		if out == 0 {
			continue
		}
		if *got.Rank != *want.Rank || *got.Rank != min(out, rank, in) {
			t.Errorf("%v: rank %d, materialised %d", sh, *got.Rank, *want.Rank)
		}
		for i := 0; i < *got.Rank; i++ {
			if relDiff(got.SV[i], want.SV[i]) > 1e-6 {
				t.Errorf("%v: sv[%d] = %g, materialised %g", sh, i, got.SV[i], want.SV[i])
			}
		}
		if relDiff(float64(got.SpectralNorm), float64(want.SpectralNorm)) > 1e-6 || relDiff(float64(got.StableRank), float64(want.StableRank)) > 1e-6 {
			t.Errorf("%v: spectral norm %g stable rank %g, materialised %g %g", sh, float64(got.SpectralNorm), float64(got.StableRank), float64(want.SpectralNorm), float64(want.StableRank))
		}
	}
	// A direct check of the product against a triple loop.
	a, b := randMatrix(r, 3, 70, 1), randMatrix(r, 130, 3, 1)
	dw, err := LoRADelta(a, b, -0.5)
	if err != nil {
		t.Fatal(err)
	}
	for o := 0; o < 130; o++ {
		for i := 0; i < 70; i++ {
			var s float64
			for k := 0; k < 3; k++ {
				s += float64(b.Data[o*3+k]) * float64(a.Data[k*70+i])
			}
			if dw.Data[o*70+i] != float32(-0.5*s) {
				t.Fatalf("ΔW[%d,%d] = %g, want %g", o, i, dw.Data[o*70+i], float32(-0.5*s))
			}
		}
	}
}

func TestLoRAErrors(t *testing.T) {
	good := formats.NewMatrix(2, 5)
	for _, c := range []struct {
		a, b  formats.Matrix
		scale float64
		want  string
	}{
		{good, formats.NewMatrix(4, 3), 1, "disagree on the rank"},
		{formats.Matrix{Rows: 2, Cols: 5, Data: make([]float32, 9)}, formats.NewMatrix(4, 2), 1, "LoRA A"},
		{good, formats.Matrix{Rows: 4, Cols: 2, Data: make([]float32, 7)}, 1, "LoRA B"},
		{good, formats.NewMatrix(4, 2), math.Inf(1), "scale"},
	} {
		if _, err := LoRAStats(c.a, c.b, c.scale, StatsOptions{}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
		if _, err := LoRASingularValues(c.a, c.b, c.scale); err == nil {
			t.Errorf("LoRASingularValues accepted %q", c.want)
		}
	}
	// Non-finite factors: counted, spectrum skipped.
	a := formats.NewMatrix(2, 5)
	a.Data[3] = float32(math.NaN())
	st, err := LoRAStats(a, formats.NewMatrix(4, 2), 1, StatsOptions{})
	if err != nil || st.Rank != nil || st.NaNCount == 0 {
		t.Errorf("NaN factor: %+v %v", st, err)
	}
}

// AnalyzeLoRA's report (heads included) agrees with the report of the
// materialised update wherever the float32 rounding of ΔW does not matter,
// for row-split (q, k) and column-split (o) projections.
func TestAnalyzeLoRA(t *testing.T) {
	g := formats.Geometry{DModel: 64, NHeads: 4, NKVHeads: 2, HeadDim: 16}
	r := rand.New(rand.NewSource(12))
	for _, c := range []struct {
		p    formats.Projection
		out  int
		rank int
	}{{formats.ProjQ, 64, 6}, {formats.ProjK, 32, 3}, {formats.ProjO, 64, 20}} {
		f := LoRAFactors{A: randMatrix(r, c.rank, 64, 0.1), B: randMatrix(r, c.out, c.rank, 0.1), Scale: 0.5}
		got, err := AnalyzeLoRA(f, c.p, g, Options{Heads: true, Spectrum: true})
		if err != nil {
			t.Fatal(err)
		}
		dw, err := LoRADelta(f.A, f.B, f.Scale)
		if err != nil {
			t.Fatal(err)
		}
		opts := Options{Heads: true, Spectrum: true}
		opts.defaults()
		want, _, err := analyzeMatrix(dw, c.p, g, &opts)
		if err != nil {
			t.Fatal(err)
		}
		// The most similar pair comes from the factors (the exact update's
		// blocks), materialised from ΔW's float32 values.
		gs, ws := got.MostSimilar, want.MostSimilar
		if len(got.Heads) != len(want.Heads) || gs == nil || ws == nil || gs.A != ws.A || gs.B != ws.B || relDiff(float64(gs.Cosine), float64(ws.Cosine)) > 1e-6 {
			t.Fatalf("%s: %d heads, most similar %v; want %d, %v", c.p, len(got.Heads), gs, len(want.Heads), ws)
		}
		pairs := [][2]Stats{{got.Stats, want.Stats}}
		for h := range got.Heads {
			gb, _ := json.Marshal(got.Heads[h].Block)
			wb, _ := json.Marshal(want.Heads[h].Block)
			if string(gb) != string(wb) {
				t.Errorf("%s head %d: block %s, want %s", c.p, h, gb, wb)
			}
			pairs = append(pairs, [2]Stats{got.Heads[h].Stats, want.Heads[h].Stats})
		}
		for i, pr := range pairs {
			g, w := pr[0], pr[1]
			// Element statistics bit for bit those of the formed update.
			if fmt.Sprint(g.Shape, g.Fro, g.MaxAbs, g.Mean, g.Std, g.ZeroCount, g.NaNCount) != fmt.Sprint(w.Shape, w.Fro, w.MaxAbs, w.Mean, w.Std, w.ZeroCount, w.NaNCount) {
				t.Errorf("%s block %d: element stats %+v, formed %+v", c.p, i, g, w)
			}
			if g.Method != MethodFactors || g.Fro != w.Fro || *g.Rank != *w.Rank || *g.Rank != min(c.rank, g.Shape[0], g.Shape[1]) {
				t.Errorf("%s block %d: method %s fro %v rank %d, materialised fro %v rank %d", c.p, i, g.Method, g.Fro, *g.Rank, w.Fro, *w.Rank)
			}
			for k := 0; k < *g.Rank; k++ {
				if relDiff(g.SV[k], w.SV[k]) > 1e-6 {
					t.Errorf("%s block %d: sv[%d] = %g, materialised %g", c.p, i, k, g.SV[k], w.SV[k])
				}
			}
		}
	}
}

// TestLoRASpectraThroughInspect: `inspect` on every adapter — the shared
// MLX fixture and testdata's generated GPT-2 fused c_attn (PEFT), BLOOM
// fused query_key_value (PEFT) and alpha-era MLX ones — gives each update
// the singular values numpy's SVD finds for it (numpy_lora_sv.py, which
// splits fused updates by the documented rules): the exact product's to
// 1e-10 relative, the materialised float32 ΔW's to 1e-6, exact zeros past
// the rank, method "factors". The report is byte for byte the same whether
// the source hands over the factors alone (FromFactors: LoadLayerFactors,
// ΔW never formed whole) or the formed updates too (LoadLayer).
func TestLoRASpectraThroughInspect(t *testing.T) {
	root := filepath.Join("..", "testdata", "lora")
	for _, ad := range []struct {
		name, dir, ref string
		opts           formats.FindOptions
	}{
		{"gpt2-c_attn-peft", filepath.Join(root, "gpt2-c_attn-peft"), "gpt2-c_attn-peft.json", formats.FindOptions{}},
		{"bloom-qkv-peft", filepath.Join(root, "bloom-qkv-peft"), "bloom-qkv-peft.json", formats.FindOptions{Base: filepath.Join(root, "bloom-base")}},
		{"mlx-alpha-era", filepath.Join(root, "mlx-alpha-era"), "mlx-alpha-era.json", formats.FindOptions{}},
		{"mlx-llama3-8b-discollama", "", "mlx-llama3-8b-discollama.json", formats.FindOptions{}},
	} {
		t.Run(ad.name, func(t *testing.T) {
			if ad.dir == "" {
				ad.dir = filepath.Join(testref.SharedDir(t), "fixtures", "lora", ad.name)
			}
			t.Setenv("HF_HUB_CACHE", t.TempDir())
			ck, err := formats.Open(ad.dir, formats.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			m, err := formats.FindModel(ck, ad.opts)
			if err != nil {
				t.Fatal(err)
			}
			var ref loraRef
			if err := testref.ReadJSON(filepath.Join("testdata", "lora", ad.ref), &ref); err != nil {
				t.Fatal(err)
			}
			opts := Options{Heads: m.HeadsKnown() == nil, Spectrum: true, ESD: true, Workers: 2}
			var docs [2][]byte
			var rep *Report
			for k, src := range []LayerSource{FromFactors(m), m} {
				r, err := Run(context.Background(), src, opts, nil)
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				if err := r.WriteJSON(&buf); err != nil {
					t.Fatal(err)
				}
				docs[k], rep = buf.Bytes(), r
			}
			if !bytes.Equal(docs[0], docs[1]) {
				t.Errorf("factors alone and formed updates give different reports: %s", firstDiff(docs[0], docs[1]))
			}
			seen := 0
			scale := math.Abs(m.Adapter.Scale)
			for _, l := range rep.Layers {
				for _, p := range formats.Projections {
					mr := l.Matrix(p)
					ps := m.Layer(l.Index).Proj(p)
					if ps == nil {
						if mr != nil {
							t.Errorf("layer %d %s: a report of an update the adapter lacks", l.Index, p)
						}
						continue
					}
					module := strings.TrimSuffix(strings.TrimSuffix(ps.LoRA.A.Name, ".weight"), ".lora_A")
					module = strings.TrimSuffix(module, ".lora_a")
					if ps.Fused {
						module += "." + string(p)
					}
					want, ok := ref.Modules[module]
					if !ok {
						t.Errorf("layer %d %s: no reference for %s", l.Index, p, module)
						continue
					}
					seen++
					if mr.Method != MethodFactors || len(mr.SV) != min(want.Shape[0], want.Shape[1]) || mr.Shape != want.Shape {
						t.Fatalf("%s: method %s, %d values, shape %v; want factors, shape %v", module, mr.Method, len(mr.SV), mr.Shape, want.Shape)
					}
					for i, w := range want.SVExact {
						if d := relDiff(mr.SV[i], scale*w); d > 1e-10 {
							t.Errorf("%s: sv[%d] = %.17g, numpy (exact product) %.17g: rel %.2g", module, i, mr.SV[i], scale*w, d)
						}
						if d := relDiff(mr.SV[i], scale*want.SVMaterialised[i]); d > 1e-6 {
							t.Errorf("%s: sv[%d] = %.17g, numpy (materialised) %.17g: rel %.2g", module, i, mr.SV[i], scale*want.SVMaterialised[i], d)
						}
					}
					for i := len(want.SVExact); i < len(mr.SV); i++ {
						if mr.SV[i] != 0 {
							t.Errorf("%s: sv[%d] = %g past the rank", module, i, mr.SV[i])
						}
					}
					if relDiff(float64(mr.EffectiveRank), want.EffectiveRankExact) > 1e-9 {
						t.Errorf("%s: effective rank %.12g, numpy %.12g", module, float64(mr.EffectiveRank), want.EffectiveRankExact)
					}
					if mr.ESD == nil || mr.ESD.MatrixRank != len(want.SVExact) {
						t.Errorf("%s: esd %+v, want matrix_rank %d", module, mr.ESD, len(want.SVExact))
					}
				}
			}
			if seen != len(ref.Modules) {
				t.Errorf("compared %d updates of the reference's %d", seen, len(ref.Modules))
			}
		})
	}
}

// TestAnalyzeLayerLoRAFactors: a layer whose four projections are LoRA
// updates gets the same report, circuits included, from its factors alone
// as from its formed updates, and spectra from the factors either way.
func TestAnalyzeLayerLoRAFactors(t *testing.T) {
	g := formats.Geometry{DModel: 64, NHeads: 4, NKVHeads: 2, HeadDim: 16}
	r := rand.New(rand.NewSource(13))
	lazy := &formats.Layer{Index: 2, LoRA: map[formats.Projection]*formats.LoRAFactors{}}
	full := &formats.Layer{Index: 2, LoRA: lazy.LoRA}
	for _, x := range []struct {
		p        formats.Projection
		out, in  int
		dst      *formats.Matrix
		rank     int
		negScale bool
	}{{formats.ProjQ, 64, 64, &full.Q, 5, false}, {formats.ProjK, 32, 64, &full.K, 3, true}, {formats.ProjV, 32, 64, &full.V, 8, false}, {formats.ProjO, 64, 64, &full.O, 6, false}} {
		f := &formats.LoRAFactors{A: randMatrix(r, x.rank, x.in, 0.2), B: randMatrix(r, x.out, x.rank, 0.2), Scale: 2}
		if x.negScale {
			f.Scale = -0.5
		}
		lazy.LoRA[x.p] = f
		d, err := f.Delta()
		if err != nil {
			t.Fatal(err)
		}
		*x.dst = d
	}
	opts := Options{Heads: true, Spectrum: true, ESD: true}
	a, err := AnalyzeLayer(lazy, g, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := AnalyzeLayer(full, g, opts)
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("factors alone %s\nformed %s", ja, jb)
	}
	if len(a.Circuits) != 4 || a.Q.Method != MethodFactors || a.O.Heads[3].Method != MethodFactors || a.Q.ESD == nil {
		t.Errorf("circuits %d, methods %s %s, esd %v", len(a.Circuits), a.Q.Method, a.O.Heads[3].Method, a.Q.ESD)
	}
}

// TestDeltaRowsBitIdentical: the rows inspect forms for element statistics
// are bit for bit formats.LoRAFactors.DeltaRows (what extract writes), for
// ranks that take the packed product (up to 256) and past it, on factors
// whose products span many exponents and signs, with row blocks that end
// inside the matrix.
func TestDeltaRowsBitIdentical(t *testing.T) {
	r := rand.New(rand.NewSource(17))
	for _, sh := range [][3]int{{1, 1, 1}, {70, 1, 33}, {130, 7, 65}, {64, 8, 4096}, {9, 64, 300}, {100, 256, 17}, {65, 257, 40}, {3, 300, 5}} {
		out, rank, in := sh[0], sh[1], sh[2]
		f := &LoRAFactors{A: formats.NewMatrix(rank, in), B: formats.NewMatrix(out, rank), Scale: -1.7}
		for _, m := range []formats.Matrix{f.A, f.B} {
			for i := range m.Data {
				m.Data[i] = float32(r.NormFloat64() * math.Pow(2, float64(r.Intn(40)-20)))
			}
		}
		want := make([]float32, out*in)
		f.DeltaRows(0, out, want, nil)
		d := newDeltaRows(f)
		for o0 := 0; o0 < out; o0 += loraRowBlock {
			o1 := min(o0+loraRowBlock, out)
			got := d.rows(o0, o1)
			for i, v := range got {
				if math.Float32bits(v) != math.Float32bits(want[o0*in+i]) {
					t.Fatalf("%v: row %d col %d: %v, DeltaRows %v", sh, o0+i/in, i%in, v, want[o0*in+i])
				}
			}
		}
	}
}
