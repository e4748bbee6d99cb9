package formats

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/safetensors"
)

// TestAdapterKindsRefused: adapters whose update is not scale·B·A are
// refused naming what makes them so (DoRA by config or by its magnitude
// vectors, AdaLoRA, another PEFT method, MLX DoRA). Before, qkv reported
// s·B·A for every one of them as the update.
func TestAdapterKindsRefused(t *testing.T) {
	pre := "base_model.model.model.layers.0.self_attn."
	for _, tc := range []struct {
		name, config string
		extra        []safetensors.WriteTensor
		want         string
	}{
		{"use_dora", `{"r": 8, "lora_alpha": 16, "use_dora": true}`, nil, "use_dora"},
		{"magnitude vector", `{"r": 8, "lora_alpha": 16}`,
			[]safetensors.WriteTensor{safetensors.F32Tensor(pre+"q_proj.lora_magnitude_vector.weight", []int64{8}, make([]float32, 8))}, "DoRA magnitude vector"},
		{"AdaLoRA", `{"r": 8, "lora_alpha": 16, "peft_type": "ADALORA"}`, nil, `peft_type is "ADALORA"`},
		{"AdaLoRA's E without peft_type", `{"r": 8, "lora_alpha": 16}`,
			[]safetensors.WriteTensor{safetensors.F32Tensor(pre+"q_proj.lora_E.weight", []int64{8, 1}, make([]float32, 8))}, "AdaLoRA"},
		{"LoHa", `{"r": 8, "lora_alpha": 16, "peft_type": "LOHA"}`, nil, `peft_type is "LOHA"`},
		{"MLX DoRA", `{"fine_tune_type": "dora", "lora_parameters": {"rank": 8, "scale": 2}}`, nil, `fine_tune_type is "dora"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := peftDir(t, tc.config, "", 8)
			if tc.extra != nil {
				writeST(t, filepath.Join(dir, "adapter_model.safetensors"), append(peftTensors(8), tc.extra...))
			}
			c, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = FindModel(c, FindOptions{})
			var fe *Error
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// TestAdapterExtras: what an adapter trains besides its low-rank updates
// (biases, lora_bias, modules_to_save) is reported by name; the updates
// themselves are still analysed. Before, those tensors were skipped in
// silence.
func TestAdapterExtras(t *testing.T) {
	pre := "base_model.model.model.layers.0.self_attn."
	for _, tc := range []struct {
		name  string
		extra safetensors.WriteTensor
		want  string
	}{
		{"bias all", safetensors.F32Tensor(pre+"q_proj.bias", []int64{8}, make([]float32, 8)), "projection bias"},
		{"lora_bias", safetensors.F32Tensor(pre+"q_proj.lora_B.bias", []int64{8}, make([]float32, 8)), "lora_bias"},
		{"modules_to_save projection", safetensors.F32Tensor(pre+"k_proj.weight", []int64{8, 8}, make([]float32, 64)), "replaces the whole projection"},
		{"modules_to_save lm_head", safetensors.F32Tensor("base_model.model.lm_head.weight", []int64{4, 8}, make([]float32, 32)), "lm_head.weight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := peftDir(t, `{"r": 8, "lora_alpha": 16, "bias": "all"}`, "", 8)
			writeST(t, filepath.Join(dir, "adapter_model.safetensors"), append(peftTensors(8), tc.extra))
			m := openModel(t, dir, FindOptions{})
			var msgs []string
			for _, u := range m.Geometry().Unsupported {
				msgs = append(msgs, u.Name+": "+u.Message)
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tc.want) {
				t.Errorf("unsupported %q, want one containing %q", msgs, tc.want)
			}
			if m.Adapter == nil || m.Adapter.Scale != 2 {
				t.Errorf("adapter %+v: the updates must still be read", m.Adapter)
			}
		})
	}
	// A plain adapter reports nothing.
	m := openModel(t, peftDir(t, `{"r": 8, "lora_alpha": 16}`, "", 8), FindOptions{})
	if u := m.Geometry().Unsupported; len(u) != 0 {
		t.Errorf("plain adapter: unsupported %v", u)
	}
}

// TestAlphaPatternRule: a module's alpha from alpha_pattern is named in the
// scale rule (it said "lora_alpha / r" while using the pattern's alpha).
func TestAlphaPatternRule(t *testing.T) {
	m := openModel(t, peftDir(t, `{"r": 8, "lora_alpha": 16, "alpha_pattern": {"q_proj": 4}}`, "", 8), FindOptions{})
	l := m.Layer(0)
	if l.Q.LoRA.Scale != 0.5 || l.V.LoRA.Scale != 2 {
		t.Fatalf("scales q %v v %v, want 4/8 and 16/8", l.Q.LoRA.Scale, l.V.LoRA.Scale)
	}
	// The first module (q_proj) sets the adapter's reported rule.
	if r := m.Adapter.ScaleRule; !strings.Contains(r, `alpha_pattern["q_proj"]`) {
		t.Errorf("rule %q does not name alpha_pattern", r)
	}
}

// peftTensors are peftDir's tensors.
func peftTensors(in int) []safetensors.WriteTensor {
	const r = 8
	pre := "base_model.model.model.layers.0.self_attn."
	var ts []safetensors.WriteTensor
	for _, m := range []string{"q_proj", "v_proj"} {
		ts = append(ts, safetensors.F32Tensor(pre+m+".lora_A.weight", []int64{r, int64(in)}, make([]float32, r*in)),
			safetensors.F32Tensor(pre+m+".lora_B.weight", []int64{int64(in), r}, make([]float32, r*in)))
	}
	return ts
}
