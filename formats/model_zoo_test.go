package formats

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// zooSource is one checkpoint of a zoo model and the expected projections
// file it must extract to.
type zooSource struct {
	path     string // folder or file to Open
	expected string // expected/*.projections.safetensors
	gguf     bool
}

// zooSources lists every form of a zoo model: hf/ (and hf-sharded/), each
// GGUF file, and split GGUF sets (opened through a part other than the first
// as well, to show any part opens the set).
func zooSources(t *testing.T, dir string) []zooSource {
	t.Helper()
	exp := filepath.Join(dir, "expected")
	src := []zooSource{{filepath.Join(dir, "hf"), filepath.Join(exp, "projections.safetensors"), false}}
	if _, err := os.Stat(filepath.Join(dir, "hf-sharded")); err == nil {
		src = append(src, zooSource{filepath.Join(dir, "hf-sharded"), filepath.Join(exp, "projections.safetensors"), false})
	}
	ggufs, _ := filepath.Glob(filepath.Join(dir, "gguf", "*.gguf"))
	sort.Strings(ggufs)
	for _, g := range ggufs {
		stem := strings.TrimSuffix(filepath.Base(g), ".gguf")
		if m := splitName().FindStringSubmatch(filepath.Base(g)); m != nil {
			stem = m[1]
		}
		src = append(src, zooSource{g, filepath.Join(exp, stem+".projections.safetensors"), true})
	}
	return src
}

// attnJSON is the part of expected/attn.json the geometry is checked against.
// learnedPositions lists the zoo architectures with learned absolute
// position embeddings (their READMEs' "full" x recipes add them).
var learnedPositions = map[string]bool{"gpt2": true, "bert": true}

type attnJSON struct {
	Arch     string  `json:"arch"`
	DModel   int     `json:"d_model"`
	NHeads   int     `json:"n_heads"`
	NKVHeads int     `json:"n_kv_heads"`
	HeadDim  int     `json:"head_dim"`
	NLayers  int     `json:"n_layers"`
	Causal   bool    `json:"causal"`
	Scale    float64 `json:"scale"`
	Rope     *struct {
		RotaryDims int     `json:"rotary_dims"`
		Theta      float64 `json:"theta"`
	} `json:"rope"`
	ALiBi *struct {
		Slopes []float64 `json:"slopes"`
	} `json:"alibi"`
	Cases struct {
		Full struct {
			PreNorm *struct {
				Type string  `json:"type"`
				Eps  float64 `json:"eps"`
			} `json:"pre_norm"`
			TokenIDs []int `json:"token_ids"`
		} `json:"full"`
	} `json:"cases"`
}

func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

func compareExact(t *testing.T, what string, got []float32, want testref.Tensor) {
	t.Helper()
	w := want.F32()
	if len(got) != len(w) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(w))
		return
	}
	bad := 0
	for i := range w {
		if !sameBits(got[i], w[i]) {
			if bad < 3 {
				t.Errorf("%s[%d] = %v (%08x), want %v (%08x)", what, i, got[i], math.Float32bits(got[i]), w[i], math.Float32bits(w[i]))
			}
			bad++
		}
	}
	if bad > 3 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(w))
	}
}

func checkGeometry(t *testing.T, what string, g Geometry, a attnJSON, isGGUF bool) {
	t.Helper()
	type kv struct {
		name      string
		got, want any
	}
	wantRot, wantTheta := 0, 0.0
	if a.Rope != nil {
		wantRot, wantTheta = a.Rope.RotaryDims, a.Rope.Theta
	}
	if wantRot == 0 {
		wantTheta = 0
	}
	checks := []kv{
		{"d_model", g.DModel, a.DModel}, {"n_heads", g.NHeads, a.NHeads}, {"n_kv_heads", g.NKVHeads, a.NKVHeads},
		{"head_dim", g.HeadDim, a.HeadDim}, {"n_layers", g.NLayers, a.NLayers}, {"causal", g.Causal, a.Causal},
		{"rotary_dims", g.RotaryDims, wantRot}, {"rope_theta", g.RopeTheta, wantTheta}, {"alibi", g.ALiBi, a.ALiBi != nil},
	}
	pn := a.Cases.Full.PreNorm
	wantNorm := NormNone
	if pn != nil {
		switch strings.ToLower(pn.Type) {
		case "rmsnorm":
			wantNorm = NormRMS
		case "layernorm":
			wantNorm = NormLayerNorm
		}
		// GGUF stores epsilons as float32.
		if math.Abs(g.NormEps-pn.Eps) > 1e-6*pn.Eps {
			t.Errorf("%s: norm eps %v, want %v", what, g.NormEps, pn.Eps)
		}
	}
	checks = append(checks, kv{"norm", g.Norm, wantNorm}, kv{"pre_norm", g.PreNorm, pn != nil},
		kv{"position_embeddings", g.PositionEmbeddings, learnedPositions[a.Arch]})
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: geometry %s = %v, want %v", what, c.name, c.got, c.want)
		}
	}
	if math.Abs(1/math.Sqrt(float64(g.HeadDim))-a.Scale) > 1e-12 {
		t.Errorf("%s: 1/sqrt(head_dim %d) differs from attn.json scale %v", what, g.HeadDim, a.Scale)
	}
}

func TestZooProjections(t *testing.T) {
	shared := testref.SharedDir(t)
	zoo := filepath.Join(shared, "reference", "zoo")
	models, _ := filepath.Glob(filepath.Join(zoo, "*", "README.md"))
	if len(models) < 8 {
		t.Fatalf("expected 8 zoo models, found %d", len(models))
	}
	for _, readme := range models {
		dir := filepath.Dir(readme)
		name := filepath.Base(dir)
		var aj attnJSON
		if err := testref.ReadJSON(filepath.Join(dir, "expected", "attn.json"), &aj); err != nil {
			t.Fatal(err)
		}
		for _, src := range zooSources(t, dir) {
			rel, _ := filepath.Rel(zoo, src.path)
			t.Run(rel, func(t *testing.T) {
				want, err := testref.ReadSafetensors(src.expected)
				if err != nil {
					t.Fatalf("expected file: %v", err)
				}
				c, err := Open(src.path, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				m, err := FindModel(c, FindOptions{})
				if err != nil {
					t.Fatal(err)
				}
				checkGeometry(t, rel, m.Geometry(), aj, src.gguf)
				if g := m.Geometry(); len(g.Unsupported) > 0 || len(g.Assumptions) > 0 {
					t.Errorf("warnings: %+v %+v", g.Unsupported, g.Assumptions)
				}
				if v := m.Geometry().VocabSize; v != 256 { // every zoo model's vocabulary (README)
					t.Errorf("vocab_size %d, want 256", v)
				}
				if got := m.LayerIndices(); fmt.Sprint(got) != fmt.Sprint([]int{0, 1}) {
					t.Errorf("layer indices %v, want [0 1]", got)
				}
				for _, i := range m.LayerIndices() {
					l, err := m.LoadLayer(i)
					if err != nil {
						t.Fatalf("layer %d: %v", i, err)
					}
					for _, p := range Projections {
						key := fmt.Sprintf("layers.%d.%s", i, p)
						w, ok := want[key]
						mat := l.Matrix(p)
						if !ok {
							t.Errorf("%s: missing from the expected file", key)
							continue
						}
						if mat.Rows != w.Shape[0] || mat.Cols != w.Shape[1] {
							t.Errorf("%s: shape [%d, %d], want %v", key, mat.Rows, mat.Cols, w.Shape)
							continue
						}
						compareExact(t, key, mat.Data, w)
						wb, hasBias := want[key+"_bias"]
						gb := l.Bias(p)
						switch {
						case hasBias && gb == nil:
							t.Errorf("%s_bias: missing", key)
						case !hasBias && gb != nil:
							t.Errorf("%s: has a bias the model does not have", key)
						case hasBias:
							compareExact(t, key+"_bias", gb, wb)
						}
					}
					wantNorm := aj.Cases.Full.PreNorm != nil
					if (l.NormWeight != nil) != wantNorm {
						t.Errorf("layer %d: norm weight present %v, want %v", i, l.NormWeight != nil, wantNorm)
					}
					if l.NormWeight != nil && len(l.NormWeight) != aj.DModel {
						t.Errorf("layer %d: norm weight length %d", i, len(l.NormWeight))
					}
					if (l.NormBias != nil) != (m.Geo.Norm == NormLayerNorm) {
						t.Errorf("layer %d: norm bias present %v with norm %s", i, l.NormBias != nil, m.Geo.Norm)
					}
				}
				// Describe is valid JSON with the schema and row orders.
				rep := m.Describe()
				b, err := json.Marshal(rep)
				if err != nil {
					t.Fatal(err)
				}
				if rep.Schema != "qkv.layers/v1" || len(rep.Layers) != 2 || rep.Layers[0].Q == nil || rep.Layers[0].O == nil {
					t.Errorf("Describe: %s", b)
				}
				permuted := src.gguf && name == "llama"
				if ro := rep.Layers[0].Q.RowOrder; (ro != RowOrderHF) == !permuted || (permuted && !strings.HasPrefix(ro, RowOrderInterleaved)) {
					t.Errorf("Describe: q row order %q (permuted file: %v)", ro, permuted)
				}
				fused := map[string]bool{"phi3": true, "gpt2": true, "gpt_neox": true, "bloom": true, "falcon": true}[name]
				if rep.Layers[0].Q.Fused != fused || rep.Layers[0].O.Fused {
					t.Errorf("Describe: q fused %v, o fused %v; want %v, false", rep.Layers[0].Q.Fused, rep.Layers[0].O.Fused, fused)
				}
			})
		}
	}
}

// TestZooEmbeddings checks Embeddings against each model's full.x: exactly
// where no embedding LayerNorm is involved, closely where one is.
func TestZooEmbeddings(t *testing.T) {
	shared := testref.SharedDir(t)
	zoo := filepath.Join(shared, "reference", "zoo")
	for _, name := range []string{"llama", "qwen2", "phi3", "gpt2", "gpt_neox", "bloom", "falcon", "bert"} {
		dir := filepath.Join(zoo, name)
		var aj attnJSON
		if err := testref.ReadJSON(filepath.Join(dir, "expected", "attn.json"), &aj); err != nil {
			t.Fatal(err)
		}
		ref, err := testref.ReadSafetensors(filepath.Join(dir, "expected", "attn.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		var tokens []int
		for _, v := range ref["full.tokens"].F64 {
			tokens = append(tokens, int(v))
		}
		if fmt.Sprint(tokens) != fmt.Sprint(aj.Cases.Full.TokenIDs) {
			t.Fatalf("%s: full.tokens %v differ from attn.json %v", name, tokens, aj.Cases.Full.TokenIDs)
		}
		wantX := ref["full.x"].F32()
		for _, src := range []string{filepath.Join(dir, "hf"), filepath.Join(dir, "gguf", name+"-f32.gguf")} {
			rel, _ := filepath.Rel(zoo, src)
			t.Run(rel, func(t *testing.T) {
				c, err := Open(src, Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				m, err := FindModel(c, FindOptions{})
				if err != nil {
					t.Fatal(err)
				}
				e, err := m.Embeddings(tokens)
				if err != nil {
					t.Fatal(err)
				}
				d := m.Geo.DModel
				x := make([]float32, len(tokens)*d)
				for i := range x {
					x[i] = e.TokenRows.Data[i] * e.TokenScale
					if !e.Positions.Empty() {
						x[i] += e.Positions.Data[i]
					}
					if e.TokenType != nil {
						x[i] += e.TokenType[i%d]
					}
				}
				switch name {
				case "gpt2", "bert":
					if e.Positions.Empty() {
						t.Fatalf("no learned positions")
					}
				default:
					if !e.Positions.Empty() {
						t.Errorf("unexpected position embeddings")
					}
				}
				if (e.TokenType != nil) != (name == "bert") {
					t.Errorf("token type row present: %v", e.TokenType != nil)
				}
				if e.NormWeight == nil {
					if name == "bert" || name == "bloom" {
						t.Fatalf("no embedding LayerNorm")
					}
					compareExact(t, "full.x", x, ref["full.x"])
					return
				}
				if name != "bert" && name != "bloom" {
					t.Fatalf("unexpected embedding LayerNorm")
				}
				// LayerNorm in float64: agrees with the float32 reference closely.
				maxAbs, maxDiff := 0.0, 0.0
				for r := 0; r < len(tokens); r++ {
					row := x[r*d : (r+1)*d]
					mean, vr := 0.0, 0.0
					for _, v := range row {
						mean += float64(v)
					}
					mean /= float64(d)
					for _, v := range row {
						vr += (float64(v) - mean) * (float64(v) - mean)
					}
					vr /= float64(d)
					for k, v := range row {
						y := (float64(v)-mean)/math.Sqrt(vr+e.NormEps)*float64(e.NormWeight[k]) + float64(e.NormBias[k])
						w := float64(wantX[r*d+k])
						maxAbs = math.Max(maxAbs, math.Abs(w))
						maxDiff = math.Max(maxDiff, math.Abs(y-w))
					}
				}
				if maxDiff > 1e-5*maxAbs {
					t.Errorf("embedding LayerNorm: max |diff| %g (max |x| %g)", maxDiff, maxAbs)
				}
			})
		}
	}
}
