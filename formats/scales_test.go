package formats

import (
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/safetensors"
)

// e4m3 decodes one OCP FP8 E4M3 byte (bias 7, no infinities) — the
// reference the scaled weights are checked against, written from the
// format's definition rather than the dtype package.
func e4m3(b byte) float64 {
	e, m := int(b>>3&15), float64(b&7)
	v := math.Ldexp(1+m/8, e-7)
	if e == 0 {
		v = math.Ldexp(m/8, -6)
	}
	if b&0x80 != 0 {
		v = -v
	}
	return v
}

// fp8Weights returns rows×cols random E4M3 bytes (no NaN) and their values.
func fp8Weights(r *rand.Rand, rows, cols int) ([]byte, []float64) {
	b := make([]byte, rows*cols)
	v := make([]float64, rows*cols)
	for i := range b {
		for {
			b[i] = byte(r.IntN(256))
			if b[i]&0x7f != 0x7f {
				break
			}
		}
		v[i] = e4m3(b[i])
	}
	return b, v
}

// TestScaledFP8Weights: an 8-bit weight stored with a scale tensor is the
// product of the two (block scales of transformers' fp8 format with a
// partial edge block, compressed-tensors' per-tensor and per-row scales),
// and its scale tensors are consumed, not reported as unknown tensors.
// Before scales were applied, qkv decoded the raw FP8 values and inspect
// printed their statistics with no warning.
func TestScaledFP8Weights(t *testing.T) {
	const d, nh, nkv, hd = 8, 2, 1, 4
	config := `{"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1, "num_hidden_layers": 1, "rms_norm_eps": 1e-5, "vocab_size": 4, "intermediate_size": 4,
		"quantization_config": {"quant_method": "fp8", "weight_block_size": [3, 4]}}`
	shapes := map[Projection][2]int{ProjQ: {nh * hd, d}, ProjK: {nkv * hd, d}, ProjV: {nkv * hd, d}, ProjO: {d, nh * hd}}
	modules := map[Projection]string{ProjQ: "q_proj", ProjK: "k_proj", ProjV: "v_proj", ProjO: "o_proj"}
	for _, tc := range []struct {
		name, suffix, config string
		// scaleShape gives the scale tensor's shape for a weight, index the
		// scale that element (i, j) uses.
		scaleShape func(rows, cols int) []int64
		index      func(i, j, rows, cols int) int
	}{
		{"fp8 block scales (weight_scale_inv, 3×4 blocks)", "weight_scale_inv", config,
			func(rows, cols int) []int64 { return []int64{int64((rows + 2) / 3), int64((cols + 3) / 4)} },
			func(i, j, rows, cols int) int { return (i/3)*((cols+3)/4) + j/4 }},
		{"compressed-tensors per-tensor scale", "weight_scale", strings.Replace(config, `"weight_block_size": [3, 4]`, `"format": "float-quantized"`, 1),
			func(int, int) []int64 { return []int64{1} },
			func(int, int, int, int) int { return 0 }},
		{"compressed-tensors per-channel scale", "weight_scale", strings.Replace(config, `"weight_block_size": [3, 4]`, `"format": "float-quantized"`, 1),
			func(rows, cols int) []int64 { return []int64{int64(rows), 1} },
			func(i, j, rows, cols int) int { return i }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 9))
			var ts []safetensors.WriteTensor
			want := map[Projection][]float64{}
			for _, p := range Projections {
				rows, cols := shapes[p][0], shapes[p][1]
				b, v := fp8Weights(r, rows, cols)
				sshape := tc.scaleShape(rows, cols)
				n := 1
				for _, x := range sshape {
					n *= int(x)
				}
				sv := make([]float32, n)
				for i := range sv {
					sv[i] = float32(math.Ldexp(1+r.Float64(), r.IntN(5)-8))
				}
				w := make([]float64, len(v))
				for i := 0; i < rows; i++ {
					for j := 0; j < cols; j++ {
						w[i*cols+j] = float64(float32(v[i*cols+j]) * sv[tc.index(i, j, rows, cols)])
					}
				}
				want[p] = w
				name := "model.layers.0.self_attn." + modules[p]
				ts = append(ts, rawWrite(name+".weight", dtype.FromSafetensors("F8_E4M3"), []int64{int64(rows), int64(cols)}, b),
					safetensors.F32Tensor(name+"."+tc.suffix, sshape, sv))
			}
			ts = append(ts, safetensors.F32Tensor("model.layers.0.input_layernorm.weight", []int64{d}, make([]float32, d)))
			m := openModel(t, writeModel(t, tc.config, ts), FindOptions{})
			for _, u := range m.Geometry().Unsupported {
				t.Errorf("unsupported: %s: %s", u.Name, u.Message)
			}
			l, err := m.LoadLayer(0)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range Projections {
				got := l.Matrix(p).Data
				for i, w := range want[p] {
					if float64(got[i]) != w {
						t.Fatalf("%s element %d = %v, want %v (fp8 × scale)", p, i, got[i], w)
					}
				}
				// Row by row decoding applies the same scales.
				ten := m.Checkpoint.Tensor("model.layers.0.self_attn." + modules[p] + ".weight")
				row := make([]float32, shapes[p][1])
				if err := m.Checkpoint.DecodeRows(ten, 2, 3, row); err != nil {
					t.Fatal(err)
				}
				for j, v := range row {
					if float64(v) != want[p][2*shapes[p][1]+j] {
						t.Fatalf("%s row 2 col %d = %v, want %v", p, j, v, want[p][2*shapes[p][1]+j])
					}
				}
				if !strings.Contains(ten.Note, tc.suffix) {
					t.Errorf("%s note %q does not name its scale", ten.Name, ten.Note)
				}
			}
			spec, err := m.ForwardSpec()
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range spec.Unsupported {
				if strings.Contains(u.Name, "scale") {
					t.Errorf("forward lists the attached scale %s: %s", u.Name, u.Message)
				}
			}
		})
	}
}

// TestScaledWeightRefusals: a zero point (asymmetric) is not modeled, so
// the scale is not applied and the layer's tensors are reported; a scale
// whose shape does not fit the weight is an error naming it.
func TestScaledWeightRefusals(t *testing.T) {
	config := `{"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 2, "num_hidden_layers": 1}`
	r := rand.New(rand.NewPCG(1, 2))
	base := func(extra ...safetensors.WriteTensor) []safetensors.WriteTensor {
		var ts []safetensors.WriteTensor
		for _, mod := range []string{"q_proj", "k_proj", "v_proj", "o_proj"} {
			b, _ := fp8Weights(r, 8, 8)
			ts = append(ts, rawWrite("model.layers.0.self_attn."+mod+".weight", dtype.FromSafetensors("F8_E4M3"), []int64{8, 8}, b))
		}
		return append(ts, extra...)
	}
	t.Run("zero point", func(t *testing.T) {
		m := openModel(t, writeModel(t, config, base(
			safetensors.F32Tensor("model.layers.0.self_attn.q_proj.weight_scale", []int64{8, 1}, make([]float32, 8)),
			safetensors.F32Tensor("model.layers.0.self_attn.q_proj.weight_zero_point", []int64{8, 1}, make([]float32, 8)))), FindOptions{})
		var names []string
		for _, u := range m.Geometry().Unsupported {
			names = append(names, u.Name)
		}
		if !strings.Contains(strings.Join(names, " "), "weight_zero_point") || !strings.Contains(strings.Join(names, " "), "q_proj.weight_scale") {
			t.Errorf("unsupported %v: want the zero point and the unapplied scale named", names)
		}
	})
	t.Run("scale shape", func(t *testing.T) {
		dir := writeModel(t, config, base(safetensors.F32Tensor("model.layers.0.self_attn.q_proj.weight_scale_inv", []int64{3, 1}, make([]float32, 3))))
		_, err := Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), "q_proj.weight_scale_inv") || !strings.Contains(err.Error(), "128×128") {
			t.Fatalf("err = %v, want the scale's shape refused, naming it", err)
		}
	})
}

func rawWrite(name string, t dtype.Type, shape []int64, b []byte) safetensors.WriteTensor {
	return safetensors.WriteTensor{Name: name, DType: t, Shape: shape, Size: int64(len(b)),
		Write: func(w io.Writer) error { _, err := w.Write(b); return err }}
}

// TestQuantMethods: a quantization_config whose packing qkv does not decode
// is reported by name (bitsandbytes, GPTQ, AWQ, packed compressed-tensors);
// the ones it decodes exactly are not. Before, config.json's
// quantization_config was not read at all.
func TestQuantMethods(t *testing.T) {
	for _, tc := range []struct {
		qc, want string
	}{
		{`{"quant_method": "bitsandbytes", "load_in_4bit": true}`, "quantization_config.quant_method"},
		{`{"quant_method": "gptq", "bits": 4}`, "quantization_config.quant_method"},
		{`{"bits": 4}`, "quantization_config"},
		{`{"quant_method": "compressed-tensors", "format": "pack-quantized"}`, "quantization_config.format"},
		{`{"quant_method": "compressed-tensors", "format": "float-quantized"}`, ""},
		{`{"quant_method": "fp8", "weight_block_size": [128, 128]}`, ""},
		{`{"quant_method": "mxfp4"}`, ""},
	} {
		conf := `{"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1, "quantization_config": ` + tc.qc + `}`
		var ts []safetensors.WriteTensor
		for _, mod := range []string{"q_proj", "k_proj", "v_proj", "o_proj"} {
			ts = append(ts, safetensors.F32Tensor("model.layers.0.self_attn."+mod+".weight", []int64{8, 8}, make([]float32, 64)))
		}
		m := openModel(t, writeModel(t, conf, ts), FindOptions{})
		got := ""
		for _, u := range m.Geometry().Unsupported {
			got = u.Name
		}
		if got != tc.want {
			t.Errorf("%s: unsupported %q, want %q", tc.qc, got, tc.want)
		}
	}
}
