package formats

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/safetensors"
	"github.com/qkvdev/qkv/internal/testref"
)

func openModel(t *testing.T, path string, opts FindOptions) *Model {
	t.Helper()
	c, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m, err := FindModel(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestFixtureGeometry checks real third-party files: geometry, layer list
// and projection shapes.
func TestFixtureGeometry(t *testing.T) {
	fx := filepath.Join(testref.SharedDir(t), "fixtures")
	type shape [2]int
	tests := []struct {
		path                 string
		layers, d, nh, nkv   int
		hd                   int
		q, k, v, o           shape
		bias, norm, causal   bool
		rot                  int
		posEmb               bool
		normKind             NormKind
		crossAttention, alib bool
	}{
		{path: "gguf/stories260k-v1-f32/tinyllamas-stories-260k-f32.gguf", layers: 5, d: 64, nh: 8, nkv: 4, hd: 8,
			q: shape{64, 64}, k: shape{32, 64}, v: shape{32, 64}, o: shape{64, 64}, norm: true, causal: true, rot: 8, normKind: NormRMS},
		{path: "gguf/stories260k-v3-f32/stories260K.gguf", layers: 5, d: 64, nh: 8, nkv: 4, hd: 8,
			q: shape{64, 64}, k: shape{32, 64}, v: shape{32, 64}, o: shape{64, 64}, norm: true, causal: true, rot: 8, normKind: NormRMS},
		{path: "gguf/llama2-tiny-random/llama-2-tiny-random.gguf", layers: 1, d: 8, nh: 2, nkv: 2, hd: 4,
			q: shape{8, 8}, k: shape{8, 8}, v: shape{8, 8}, o: shape{8, 8}, norm: true, causal: true, rot: 4, normKind: NormRMS},
		{path: "safetensors/gpt2-tiny-random", layers: 5, d: 32, nh: 4, nkv: 4, hd: 8,
			q: shape{32, 32}, k: shape{32, 32}, v: shape{32, 32}, o: shape{32, 32}, bias: true, norm: true, causal: true, posEmb: true, normKind: NormLayerNorm},
		{path: "safetensors/gpt2-capp-4l", layers: 4, d: 64, nh: 4, nkv: 4, hd: 16,
			q: shape{64, 64}, k: shape{64, 64}, v: shape{64, 64}, o: shape{64, 64}, bias: true, norm: true, causal: true, posEmb: true, normKind: NormLayerNorm},
		{path: "safetensors/bart-tiny-random", layers: 2, d: 16, nh: 4, nkv: 4, hd: 4,
			q: shape{16, 16}, k: shape{16, 16}, v: shape{16, 16}, o: shape{16, 16}, bias: true, causal: true, posEmb: true, normKind: NormNone, crossAttention: true},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			m := openModel(t, filepath.Join(fx, tc.path), FindOptions{})
			g := m.Geometry()
			if g.NLayers != tc.layers || g.DModel != tc.d || g.NHeads != tc.nh || g.NKVHeads != tc.nkv || g.HeadDim != tc.hd {
				t.Errorf("geometry %+v; want layers %d d %d heads %d/%d head_dim %d", g, tc.layers, tc.d, tc.nh, tc.nkv, tc.hd)
			}
			if g.Causal != tc.causal || g.RotaryDims != tc.rot || g.Norm != tc.normKind || g.ALiBi != tc.alib || g.PositionEmbeddings != tc.posEmb {
				t.Errorf("geometry %+v; want causal %v rotary %d norm %s", g, tc.causal, tc.rot, tc.normKind)
			}
			if len(m.LayerIndices()) != tc.layers {
				t.Fatalf("layers %v", m.LayerIndices())
			}
			for _, i := range m.LayerIndices() {
				l, err := m.LoadLayer(i)
				if err != nil {
					t.Fatal(err)
				}
				for p, want := range map[Projection]shape{ProjQ: tc.q, ProjK: tc.k, ProjV: tc.v, ProjO: tc.o} {
					mat := l.Matrix(p)
					if (shape{mat.Rows, mat.Cols}) != want || len(mat.Data) != want[0]*want[1] {
						t.Errorf("layer %d %s: [%d, %d], want %v", i, p, mat.Rows, mat.Cols, want)
					}
					if (l.Bias(p) != nil) != tc.bias {
						t.Errorf("layer %d %s: bias present %v", i, p, l.Bias(p) != nil)
					}
				}
				if (l.NormWeight != nil) != tc.norm {
					t.Errorf("layer %d: norm present %v", i, l.NormWeight != nil)
				}
			}
			e, err := m.Embeddings([]int{0, 1, 2})
			if err != nil {
				t.Fatal(err)
			}
			if e.TokenRows.Rows != 3 || e.TokenRows.Cols != tc.d || e.Positions.Empty() == tc.posEmb {
				t.Errorf("embeddings: token rows [%d, %d], positions empty %v", e.TokenRows.Rows, e.TokenRows.Cols, e.Positions.Empty())
			}
			rep := m.Describe()
			if (len(rep.Layers[0].CrossAttention) > 0) != tc.crossAttention {
				t.Errorf("cross attention listed: %v", rep.Layers[0].CrossAttention)
			}
			if _, err := json.Marshal(rep); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestFixtureIndependentReads compares extraction from real safetensors
// fixtures with the tensors read by testref's independent reader and
// rearranged by the architectures' rules written out here.
func TestFixtureIndependentReads(t *testing.T) {
	fx := filepath.Join(testref.SharedDir(t), "fixtures", "safetensors")

	t.Run("gpt2-tiny-random", func(t *testing.T) {
		dir := filepath.Join(fx, "gpt2-tiny-random")
		raw, err := testref.ReadSafetensors(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		m := openModel(t, dir, FindOptions{})
		for _, i := range []int{0, 4} {
			l, err := m.LoadLayer(i)
			if err != nil {
				t.Fatal(err)
			}
			pre := "transformer.h." + itoa(i) + ".attn."
			cw, cb := raw[pre+"c_attn.weight"].F32(), raw[pre+"c_attn.bias"].F32() // [32, 96]
			pw, pb := raw[pre+"c_proj.weight"].F32(), raw[pre+"c_proj.bias"].F32() // [32, 32]
			for pi, p := range []Projection{ProjQ, ProjK, ProjV} {
				mat := l.Matrix(p)
				for r := 0; r < 32; r++ {
					for col := 0; col < 32; col++ {
						if !sameBits(mat.At(r, col), cw[col*96+pi*32+r]) {
							t.Fatalf("layer %d %s[%d,%d] = %v, want %v", i, p, r, col, mat.At(r, col), cw[col*96+pi*32+r])
						}
					}
					if !sameBits(l.Bias(p)[r], cb[pi*32+r]) {
						t.Fatalf("layer %d %s bias[%d]", i, p, r)
					}
				}
			}
			for r := 0; r < 32; r++ {
				for col := 0; col < 32; col++ {
					if !sameBits(l.O.At(r, col), pw[col*32+r]) {
						t.Fatalf("layer %d o[%d,%d]", i, r, col)
					}
				}
				if !sameBits(l.OBias[r], pb[r]) {
					t.Fatalf("layer %d o bias", i)
				}
			}
		}
	})

	t.Run("bart-tiny-random", func(t *testing.T) {
		dir := filepath.Join(fx, "bart-tiny-random")
		raw, err := testref.ReadSafetensors(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		m := openModel(t, dir, FindOptions{})
		if m.Geo.PreNorm || m.Geo.Norm != NormNone {
			t.Errorf("BART is post-norm: geometry %+v", m.Geo)
		}
		for _, i := range m.LayerIndices() {
			l, err := m.LoadLayer(i)
			if err != nil {
				t.Fatal(err)
			}
			pre := "model.decoder.layers." + itoa(i) + ".self_attn."
			for p, leaf := range map[Projection]string{ProjQ: "q_proj", ProjK: "k_proj", ProjV: "v_proj", ProjO: "out_proj"} {
				compareExact(t, pre+leaf+".weight", l.Matrix(p).Data, raw[pre+leaf+".weight"])
				compareExact(t, pre+leaf+".bias", l.Bias(p), raw[pre+leaf+".bias"])
			}
			if l.NormWeight != nil {
				t.Errorf("layer %d: BART has no pre-attention norm", i)
			}
			ls := m.Layer(i)
			if len(ls.CrossAttention) != 4 || !strings.Contains(ls.CrossAttention[0], "encoder_attn") {
				t.Errorf("layer %d cross attention: %v", i, ls.CrossAttention)
			}
		}
		// Learned positions start at row 2 (BartLearnedPositionalEmbedding offset).
		e, err := m.Embeddings([]int{5, 7})
		if err != nil {
			t.Fatal(err)
		}
		pos := raw["model.decoder.embed_positions.weight"].F32()
		tok := raw["model.decoder.embed_tokens.weight"].F32()
		compareExact(t, "positions", e.Positions.Data, testref.Tensor{F64: f64(pos[2*16 : 4*16])})
		compareExact(t, "tokens", e.TokenRows.Data, testref.Tensor{F64: f64(append(append([]float32{}, tok[5*16:6*16]...), tok[7*16:8*16]...))})
		if e.NormWeight == nil || e.NormBias == nil || e.NormEps != 1e-5 {
			t.Errorf("layernorm_embedding: %v %v %v", e.NormWeight != nil, e.NormBias != nil, e.NormEps)
		}
		if _, err := m.Embeddings([]int{1024}); err == nil || !strings.Contains(err.Error(), "1024") || !strings.Contains(err.Error(), "size 1024") {
			t.Errorf("out-of-range token: %v", err)
		}
	})
}

// TestStoriesUnpermute checks the GGUF Q/K un-permutation on the real
// stories260K files against the stored rows read directly, and that the
// GGUF v1 and v3 copies of the model extract to the same matrices.
func TestStoriesUnpermute(t *testing.T) {
	fx := filepath.Join(testref.SharedDir(t), "fixtures", "gguf")
	v1 := openModel(t, filepath.Join(fx, "stories260k-v1-f32", "tinyllamas-stories-260k-f32.gguf"), FindOptions{})
	v3 := openModel(t, filepath.Join(fx, "stories260k-v3-f32", "stories260K.gguf"), FindOptions{})
	c := v3.Checkpoint
	for _, i := range v3.LayerIndices() {
		l3, err := v3.LoadLayer(i)
		if err != nil {
			t.Fatal(err)
		}
		l1, err := v1.LoadLayer(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range Projections {
			a, b := l1.Matrix(p), l3.Matrix(p)
			for k := range a.Data {
				if !sameBits(a.Data[k], b.Data[k]) {
					t.Fatalf("layer %d %s: v1 and v3 differ at %d", i, p, k)
				}
			}
		}
		for _, x := range []struct {
			p     Projection
			name  string
			heads int
		}{{ProjQ, "attn_q", 8}, {ProjK, "attn_k", 4}} {
			st, err := c.DecodeNew(c.Tensor("blk." + itoa(i) + "." + x.name + ".weight"))
			if err != nil {
				t.Fatal(err)
			}
			mat := l3.Matrix(x.p)
			hd := 8
			for h := 0; h < x.heads; h++ {
				for s := 0; s < 2; s++ {
					for j := 0; j < hd/2; j++ {
						hf := h*hd + s*hd/2 + j
						stored := h*hd + 2*j + s
						for col := 0; col < 64; col++ {
							if !sameBits(mat.At(hf, col), st[stored*64+col]) {
								t.Fatalf("layer %d %s: HF row %d is not stored row %d", i, x.p, hf, stored)
							}
						}
					}
				}
			}
		}
	}
}

// TestMLXLoRA checks the MLX adapter: layers 30-31, q and v updates only,
// and one element of ΔW against a hand computation from lora_a/lora_b.
func TestMLXLoRA(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "fixtures", "lora", "mlx-llama3-8b-discollama")
	m := openModel(t, dir, FindOptions{})
	// lora_parameters {rank 8, alpha 16, scale 2}: an alpha-era MLX-LM config,
	// trained with scale × alpha / rank = 4 (issue 14).
	if !m.IsAdapter || m.Adapter == nil || m.Adapter.Kind != "mlx" || m.Adapter.Rank != 8 || m.Adapter.Scale != 4 ||
		!strings.Contains(m.Adapter.ScaleRule, "alpha / rank") {
		t.Fatalf("adapter info %+v", m.Adapter)
	}
	if got := m.LayerIndices(); len(got) != 2 || got[0] != 30 || got[1] != 31 {
		t.Fatalf("layers %v, want [30 31]", got)
	}
	g := m.Geometry()
	if g.DModel != 4096 || g.NHeads != 0 || g.Arch != "llama" || g.NLayers != 32 {
		t.Errorf("geometry %+v", g)
	}
	if err := m.HeadsKnown(); err == nil || !strings.Contains(err.Error(), "--n-heads") {
		t.Errorf("HeadsKnown: %v", err)
	}
	raw, err := testref.ReadSafetensors(filepath.Join(dir, "adapters.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{30, 31} {
		l, err := m.LoadLayer(i)
		if err != nil {
			t.Fatal(err)
		}
		if l.Q.Rows != 4096 || l.Q.Cols != 4096 || l.V.Rows != 1024 || l.V.Cols != 4096 {
			t.Errorf("layer %d: ΔW_Q [%d, %d], ΔW_V [%d, %d]", i, l.Q.Rows, l.Q.Cols, l.V.Rows, l.V.Cols)
		}
		if !l.K.Empty() || !l.O.Empty() || l.QBias != nil {
			t.Errorf("layer %d: K/O should be absent", i)
		}
		for _, x := range []struct {
			p      Projection
			name   string
			mat    Matrix
			out    int
			oi, ii int
		}{{ProjQ, "q_proj", l.Q, 4096, 1234, 567}, {ProjV, "v_proj", l.V, 1024, 1023, 4095}} {
			pre := "model.layers." + itoa(i) + ".self_attn." + x.name
			a, b := raw[pre+".lora_a"].F64, raw[pre+".lora_b"].F64 // [4096, 8], [8, out]
			sum := 0.0
			for k := 0; k < 8; k++ {
				sum += b[k*x.out+x.oi] * a[x.ii*8+k]
			}
			want := float32(4.0 * sum)
			if got := x.mat.At(x.oi, x.ii); !sameBits(got, want) || want == 0 {
				t.Errorf("layer %d ΔW_%s[%d,%d] = %v, want %v", i, x.p, x.oi, x.ii, got, want)
			}
		}
	}
	// With head counts the per-head geometry follows from the shapes.
	m2 := openModel(t, dir, FindOptions{NHeads: 32})
	if g := m2.Geometry(); g.NHeads != 32 || g.NKVHeads != 8 || g.HeadDim != 128 || m2.HeadsKnown() != nil {
		t.Errorf("with --heads 32: %+v", g)
	}
	if _, err := FindModel(m.Checkpoint, FindOptions{NHeads: 30}); err == nil {
		t.Error("--heads 30 should not fit ΔW_Q [4096, 4096]")
	}
	rep := m.Describe()
	if !rep.IsAdapter || rep.Layers[0].K != nil || rep.Layers[0].Q.LoRARank != 8 || len(rep.Layers[0].Q.Tensors) != 2 {
		b, _ := json.Marshal(rep)
		t.Errorf("Describe: %s", b)
	}
}

// TestPEFTLoRA builds a small PEFT adapter and checks ΔW = (alpha/r)·B·A.
func TestPEFTLoRA(t *testing.T) {
	dir := t.TempDir()
	r, in, out := 2, 4, 6
	A := []float32{1, 2, 3, 4, 5, 6, 7, 8}                   // [2, 4]
	B := []float32{1, 0, 0, 1, 1, 1, 2, -1, 0.5, 0.5, -3, 2} // [6, 2]
	writeST(t, filepath.Join(dir, "adapter_model.safetensors"), []safetensors.WriteTensor{
		safetensors.F32Tensor("base_model.model.model.layers.3.self_attn.k_proj.lora_A.weight", []int64{int64(r), int64(in)}, A),
		safetensors.F32Tensor("base_model.model.model.layers.3.self_attn.k_proj.lora_B.weight", []int64{int64(out), int64(r)}, B),
		safetensors.F32Tensor("base_model.model.model.layers.3.mlp.up_proj.lora_A.weight", []int64{int64(r), int64(in)}, A),
		safetensors.F32Tensor("base_model.model.model.layers.3.mlp.up_proj.lora_B.weight", []int64{int64(out), int64(r)}, B),
	})
	for _, tc := range []struct {
		conf  string
		scale float64
	}{
		{`{"r": 2, "lora_alpha": 8, "base_model_name_or_path": "meta-llama/Llama-3.2-1B"}`, 4},
		{`{"r": 2, "lora_alpha": 8, "use_rslora": true}`, 8 / math.Sqrt(2)},
		{`{"r": 2, "lora_alpha": 8, "alpha_pattern": {"k_proj": 2}}`, 1},
	} {
		if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte(tc.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		m := openModel(t, dir, FindOptions{})
		if m.Adapter.Kind != "peft" || m.Adapter.Scale != tc.scale {
			t.Errorf("%s: adapter %+v, want scale %v", tc.conf, m.Adapter, tc.scale)
		}
		if fmt := m.LayerIndices(); len(fmt) != 1 || fmt[0] != 3 {
			t.Fatalf("layers %v", fmt)
		}
		l, err := m.LoadLayer(3)
		if err != nil {
			t.Fatal(err)
		}
		if !l.Q.Empty() || l.K.Rows != out || l.K.Cols != in {
			t.Fatalf("ΔW_K [%d, %d]", l.K.Rows, l.K.Cols)
		}
		for o := 0; o < out; o++ {
			for i := 0; i < in; i++ {
				want := float32(tc.scale * (float64(B[o*r])*float64(A[i]) + float64(B[o*r+1])*float64(A[in+i])))
				if got := l.K.At(o, i); got != want {
					t.Errorf("ΔW_K[%d,%d] = %v, want %v", o, i, got, want)
				}
			}
		}
	}
}

// TestUnknownArchitecture: a model with names no table knows gives the
// guidance error; --map and --heads extract it.
func TestUnknownArchitecture(t *testing.T) {
	dir := t.TempDir()
	d, nh, hd := 8, 2, 4
	var ts []safetensors.WriteTensor
	want := map[string][]float32{}
	for layer := 0; layer < 2; layer++ {
		for pi, p := range []string{"wq", "wk", "wv", "wo"} {
			data := make([]float32, d*nh*hd)
			for k := range data {
				data[k] = float32(layer*1000 + pi*100 + k)
			}
			name := "blocks." + itoa(layer) + ".attn." + p + ".weight"
			want[name] = data
			ts = append(ts, safetensors.F32Tensor(name, []int64{8, 8}, data))
		}
		ts = append(ts, safetensors.F32Tensor("blocks."+itoa(layer)+".mlp.w1.weight", []int64{4, 8}, make([]float32, 32)))
	}
	ts = append(ts, safetensors.F32Tensor("tok.weight", []int64{3, 8}, make([]float32, 24)))
	writeST(t, filepath.Join(dir, "model.safetensors"), ts)

	c, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = FindModel(c, FindOptions{})
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("want *Error, got %v", err)
	}
	for _, s := range []string{"blocks.N.attn.wq.weight", "blocks.N.mlp.wN.weight", "--map q=REGEX,k=REGEX,v=REGEX,o=REGEX", "--n-heads"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}
	mp := map[Projection]*regexp.Regexp{
		ProjQ: regexp.MustCompile(`^blocks\.(\d+)\.attn\.wq\.weight$`),
		ProjK: regexp.MustCompile(`^blocks\.(\d+)\.attn\.wk\.weight$`),
		ProjV: regexp.MustCompile(`^blocks\.(\d+)\.attn\.wv\.weight$`),
		ProjO: regexp.MustCompile(`^blocks\.(\d+)\.attn\.wo\.weight$`),
	}
	if _, err := FindModel(c, FindOptions{Map: mp}); err == nil || !strings.Contains(err.Error(), "--n-heads") {
		t.Errorf("without head counts: %v", err)
	}
	m, err := FindModel(c, FindOptions{Map: mp, NHeads: nh})
	if err != nil {
		t.Fatal(err)
	}
	if g := m.Geometry(); g.DModel != 8 || g.NHeads != 2 || g.NKVHeads != 2 || g.HeadDim != 4 || g.NLayers != 2 {
		t.Errorf("geometry %+v", g)
	}
	for _, layer := range m.LayerIndices() {
		l, err := m.LoadLayer(layer)
		if err != nil {
			t.Fatal(err)
		}
		for pi, p := range Projections {
			name := "blocks." + itoa(layer) + ".attn." + []string{"wq", "wk", "wv", "wo"}[pi] + ".weight"
			compareExact(t, name, l.Matrix(p).Data, testref.Tensor{F64: f64(want[name])})
		}
	}
	if _, err := FindModel(c, FindOptions{Map: map[Projection]*regexp.Regexp{ProjQ: regexp.MustCompile(`^nothing\.(\d+)$`)}, NHeads: 2}); err == nil || !strings.Contains(err.Error(), "matches no tensor") {
		t.Errorf("map matching nothing: %v", err)
	}
	if _, err := FindModel(c, FindOptions{Map: map[Projection]*regexp.Regexp{ProjQ: regexp.MustCompile(`^blocks\.\d+\.attn\.wq\.weight$`)}, NHeads: 2}); err == nil || !strings.Contains(err.Error(), "capture group") {
		t.Errorf("map without a group: %v", err)
	}
	// Wrong head counts are caught by the shape check.
	if _, err := FindModel(c, FindOptions{Map: mp, NHeads: 2, HeadDim: 3}); err == nil || !strings.Contains(err.Error(), "--head-dim") {
		t.Errorf("bad head_dim: %v", err)
	}
}

// TestFusedRows checks the split rules on small symbolic layouts.
func TestFusedRows(t *testing.T) {
	tests := []struct {
		kind        FusedLayout
		nh, nkv, hd int
		q, k, v     string
	}{
		{FusedContig, 2, 1, 2, "[0 1 2 3]", "[4 5]", "[6 7]"},
		{FusedPerHead, 2, 2, 2, "[0 1 6 7]", "[2 3 8 9]", "[4 5 10 11]"},
		{FusedGrouped, 4, 2, 1, "[0 1 4 5]", "[2 6]", "[3 7]"},
	}
	for _, tc := range tests {
		q, k, v, err := fusedRows(tc.kind, tc.nh, tc.nkv, tc.hd)
		if err != nil {
			t.Fatal(err)
		}
		if fmtInts(q) != tc.q || fmtInts(k) != tc.k || fmtInts(v) != tc.v {
			t.Errorf("%s: q %v k %v v %v", tc.kind, q, k, v)
		}
	}
	if _, _, _, err := fusedRows(FusedPerHead, 4, 2, 8); err == nil {
		t.Error("per-head layout with GQA should fail")
	}
	if _, _, _, err := fusedRows(fusedUnknown, 4, 4, 8); err == nil {
		t.Error("unknown layout should fail")
	}
	rows, err := unpermuteRows(nil, 1, 4, 4)
	if err != nil || fmtInts(rows) != "[0 2 1 3]" {
		t.Errorf("unpermute: %v %v", rows, err)
	}
}

func fmtInts(x []int) string {
	b, _ := json.Marshal(x)
	return strings.ReplaceAll(strings.ReplaceAll(string(b), ",", " "), "\"", "")
}

func writeST(t *testing.T, path string, ts []safetensors.WriteTensor) {
	t.Helper()
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, ts, [][2]string{{"format", "pt"}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
