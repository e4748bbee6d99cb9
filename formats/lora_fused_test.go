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
