package formats

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// deltaRows computes scale · (B·A) rows in float64 from PEFT factors
// (lora_A [r, in], lora_B [out, r]), the documented rule, independently of
// the extraction code.
func deltaRows(a, b testref.Tensor, scale float64, rows []int) [][]float64 {
	r, in := a.Shape[0], a.Shape[1]
	out := make([][]float64, len(rows))
	for i, o := range rows {
		out[i] = make([]float64, in)
		for j := 0; j < in; j++ {
			s := 0.0
			for k := 0; k < r; k++ {
				s += b.F64[o*r+k] * a.F64[k*in+j]
			}
			out[i][j] = scale * s
		}
	}
	return out
}

func checkDelta(t *testing.T, what string, got Matrix, want [][]float64) {
	t.Helper()
	if got.Rows != len(want) || got.Cols != len(want[0]) {
		t.Fatalf("%s: [%d, %d], want [%d, %d]", what, got.Rows, got.Cols, len(want), len(want[0]))
	}
	for i := range want {
		for j, w := range want[i] {
			if math.Abs(float64(got.At(i, j))-w) > 1e-7*math.Max(1, math.Abs(w)) {
				t.Fatalf("%s[%d][%d] = %v, want %v", what, i, j, got.At(i, j), w)
			}
		}
	}
}

// TestFusedLoRA: PEFT updates of fused QKV modules are split by the base
// architecture's rule (issue 14): GPT-2's c_attn by thirds without head
// counts; BLOOM's query_key_value per head, with the head counts from
// --n-heads or the base model's config.json (--base), and refused without.
func TestFusedLoRA(t *testing.T) {
	root := filepath.Join("..", "testdata", "lora")
	seq := func(start, n int) []int { return seqRows(start, n) }
	perHead := func(kind, nh, hd int) []int { // BLOOM: per head [q_h; k_h; v_h]
		var rows []int
		for h := 0; h < nh; h++ {
			rows = append(rows, seq(3*h*hd+kind*hd, hd)...)
		}
		return rows
	}
	tests := []struct {
		dir   string
		opts  FindOptions
		scale float64
		rows  func(p Projection) []int
		err   string
	}{
		{"gpt2-c_attn-peft", FindOptions{}, 16.0 / 4, func(p Projection) []int {
			return seq(map[Projection]int{ProjQ: 0, ProjK: 16, ProjV: 32}[p], 16)
		}, ""},
		{"bloom-qkv-peft", FindOptions{NHeads: 4}, 8.0 / 4, func(p Projection) []int {
			return perHead(map[Projection]int{ProjQ: 0, ProjK: 1, ProjV: 2}[p], 4, 4)
		}, ""},
		{"bloom-qkv-peft", FindOptions{Base: filepath.Join(root, "bloom-base")}, 8.0 / 4, func(p Projection) []int {
			return perHead(map[Projection]int{ProjQ: 0, ProjK: 1, ProjV: 2}[p], 4, 4)
		}, ""},
		{"bloom-qkv-peft", FindOptions{}, 0, nil, "needs the base model's head counts"},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			t.Setenv("HF_HUB_CACHE", t.TempDir()) // no cached base model
			dir := filepath.Join(root, tc.dir)
			c, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			m, err := FindModel(c, tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "--base") {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Adapter.Scale != tc.scale {
				t.Errorf("scale %v, want %v", m.Adapter.Scale, tc.scale)
			}
			raw, err := testref.ReadSafetensors(filepath.Join(dir, "adapter_model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			module := map[string]string{"gpt2-c_attn-peft": "attn.c_attn", "bloom-qkv-peft": "self_attention.query_key_value"}[tc.dir]
			for _, i := range m.LayerIndices() {
				l, err := m.LoadLayer(i)
				if err != nil {
					t.Fatal(err)
				}
				pre := "base_model.model.transformer.h." + itoa(i) + "." + module
				a, b := raw[pre+".lora_A.weight"], raw[pre+".lora_B.weight"]
				for _, p := range []Projection{ProjQ, ProjK, ProjV} {
					checkDelta(t, "ΔW_"+string(p), l.Matrix(p), deltaRows(a, b, tc.scale, tc.rows(p)))
				}
				if !l.O.Empty() {
					t.Errorf("W_O update from nowhere")
				}
			}
			if rep := m.Describe(); !rep.Layers[0].Q.Fused || !strings.Contains(rep.Layers[0].Q.Split, "rule") {
				t.Errorf("describe: %+v", rep.Layers[0].Q)
			}
		})
	}
}

// TestHubBaseConfig: the base model named in adapter_config.json is found in
// the Hugging Face cache (refs/main's snapshot).
func TestHubBaseConfig(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	snap := filepath.Join(cache, "models--bigscience--bloom-560m", "snapshots", "abc123")
	copyFile(t, filepath.Join("..", "testdata", "lora", "bloom-base", "config.json"), filepath.Join(snap, "config.json"))
	writeFile(t, filepath.Join(cache, "models--bigscience--bloom-560m", "refs", "main"), "abc123\n")
	m := openModel(t, filepath.Join("..", "testdata", "lora", "bloom-qkv-peft"), FindOptions{})
	if m.Geo.NHeads != 4 || !strings.HasSuffix(m.Adapter.BaseConfig, filepath.Join("abc123", "config.json")) {
		t.Errorf("geometry %+v, base config %q", m.Geo, m.Adapter.BaseConfig)
	}
}

// TestMLXAlphaEraFile: the generated alpha-era MLX adapter gets
// scale × alpha / rank = 10 × 16 / 4.
func TestMLXAlphaEraFile(t *testing.T) {
	dir := filepath.Join("..", "testdata", "lora", "mlx-alpha-era")
	m := openModel(t, dir, FindOptions{})
	if m.Adapter.Scale != 40 || m.Adapter.Kind != "mlx" {
		t.Fatalf("adapter %+v", m.Adapter)
	}
	raw, err := testref.ReadSafetensors(filepath.Join(dir, "adapters.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.LoadLayer(1)
	if err != nil {
		t.Fatal(err)
	}
	a, b := raw["model.layers.1.self_attn.v_proj.lora_a"], raw["model.layers.1.self_attn.v_proj.lora_b"] // [in, r], [r, out]
	for o := 0; o < 8; o++ {
		for i := 0; i < 16; i++ {
			s := 0.0
			for k := 0; k < 4; k++ {
				s += b.F64[k*8+o] * a.F64[i*4+k]
			}
			if got := l.V.At(o, i); math.Abs(float64(got)-40*s) > 1e-6 {
				t.Fatalf("ΔW_V[%d][%d] = %v, want %v", o, i, got, 40*s)
			}
		}
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

// TestLoRAFactors: every adapter's layers carry their updates' factors in
// PEFT's orientation — A [r, in] as stored (PEFT) or transposed (MLX), B
// [out, r] with a fused split's rows, the resolved scale — whose product is
// bit for bit the ΔW LoadLayer forms (which TestFusedLoRA and the zoo
// tests check against the documented rule); LoadLayerFactors leaves the
// updates unformed.
func TestLoRAFactors(t *testing.T) {
	type adapter struct {
		dir, file string
		opts      FindOptions
	}
	root := filepath.Join("..", "testdata", "lora")
	adapters := []adapter{
		{filepath.Join(root, "gpt2-c_attn-peft"), "adapter_model.safetensors", FindOptions{}},
		{filepath.Join(root, "bloom-qkv-peft"), "adapter_model.safetensors", FindOptions{Base: filepath.Join(root, "bloom-base")}},
		{filepath.Join(root, "mlx-alpha-era"), "adapters.safetensors", FindOptions{}},
	}
	// The shared MLX fixture: its folder is resolved inside its subtest,
	// which skips when ../shared is absent.
	adapters = append(adapters, adapter{"", "adapters.safetensors", FindOptions{}})
	for _, ad := range adapters {
		name := filepath.Base(ad.dir)
		if ad.dir == "" {
			name = "mlx-llama3-8b-discollama"
		}
		t.Run(name, func(t *testing.T) {
			if ad.dir == "" {
				ad.dir = filepath.Join(testref.SharedDir(t), "fixtures", "lora", name)
			}
			t.Setenv("HF_HUB_CACHE", t.TempDir())
			m := openModel(t, ad.dir, ad.opts)
			raw, err := testref.ReadSafetensors(filepath.Join(ad.dir, ad.file))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, i := range m.LayerIndices() {
				full, err := m.LoadLayer(i)
				if err != nil {
					t.Fatal(err)
				}
				lazy, err := m.LoadLayerFactors(i)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range Projections {
					ps := m.Layer(i).Proj(p)
					f, g := full.LoRA[p], lazy.LoRA[p]
					if ps == nil {
						if f != nil || g != nil {
							t.Errorf("layer %d %s: factors of an update the adapter lacks", i, p)
						}
						continue
					}
					n++
					if f == nil || g == nil || !lazy.Matrix(p).Empty() {
						t.Fatalf("layer %d %s: factors %v %v, unformed %v", i, p, f != nil, g != nil, lazy.Matrix(p).Empty())
					}
					if f.Scale != ps.LoRA.Scale || f.Scale != m.Adapter.Scale || f.A.Rows != ps.LoRA.Rank || f.A.Cols != ps.In || f.B.Rows != ps.Out || f.B.Cols != ps.LoRA.Rank {
						t.Errorf("layer %d %s: A [%d, %d] B [%d, %d] scale %v; want rank %d, [%d, %d], scale %v", i, p, f.A.Rows, f.A.Cols, f.B.Rows, f.B.Cols, f.Scale, ps.LoRA.Rank, ps.Out, ps.In, m.Adapter.Scale)
					}
					// A and B against the stored tensors, read independently.
					ra, rb := raw[ps.LoRA.A.Name], raw[ps.LoRA.B.Name]
					r := ps.LoRA.Rank
					for k := 0; k < r; k++ {
						for j := 0; j < ps.In; j++ {
							want := ra.F64[k*ps.In+j]
							if ps.LoRA.MLX {
								want = ra.F64[j*r+k]
							}
							if float64(f.A.At(k, j)) != want {
								t.Fatalf("layer %d %s: A[%d][%d] = %v, stored %v", i, p, k, j, f.A.At(k, j), want)
							}
						}
					}
					outAll := len(rb.F64) / r
					for o := 0; o < ps.Out; o++ {
						src := o
						if ps.Rows != nil {
							src = ps.Rows[o]
						}
						for k := 0; k < r; k++ {
							want := rb.F64[src*r+k]
							if ps.LoRA.MLX {
								want = rb.F64[k*outAll+src]
							}
							if float64(f.B.At(o, k)) != want {
								t.Fatalf("layer %d %s: B[%d][%d] = %v, stored %v", i, p, o, k, f.B.At(o, k), want)
							}
						}
					}
					d, err := g.Delta()
					if err != nil {
						t.Fatal(err)
					}
					w := full.Matrix(p)
					if d.Rows != w.Rows || d.Cols != w.Cols {
						t.Fatalf("layer %d %s: Delta [%d, %d], LoadLayer [%d, %d]", i, p, d.Rows, d.Cols, w.Rows, w.Cols)
					}
					for k := range d.Data {
						if math.Float32bits(d.Data[k]) != math.Float32bits(w.Data[k]) {
							t.Fatalf("layer %d %s: ΔW[%d] = %v from the factors, %v from LoadLayer", i, p, k, d.Data[k], w.Data[k])
						}
					}
				}
			}
			if n == 0 {
				t.Fatalf("no LoRA projections")
			}
		})
	}
}
