package formats

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/safetensors"
)

// peftDir writes a PEFT adapter for q_proj and v_proj of layer 0 (rank 8,
// factors width in) with the given adapter_config.json and optional
// config.json.
func peftDir(t *testing.T, adapterConfig, config string, in int) string {
	t.Helper()
	dir := t.TempDir()
	const r = 8
	pre := "base_model.model.model.layers.0.self_attn."
	var ts []safetensors.WriteTensor
	for _, m := range []string{"q_proj", "v_proj"} {
		ts = append(ts, safetensors.F32Tensor(pre+m+".lora_A.weight", []int64{r, int64(in)}, make([]float32, r*in)),
			safetensors.F32Tensor(pre+m+".lora_B.weight", []int64{int64(in), r}, make([]float32, r*in)))
	}
	writeST(t, filepath.Join(dir, "adapter_model.safetensors"), ts)
	if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte(adapterConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if config != "" {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestAdapterConfigChecks: nonsense in an adapter's configuration is refused
// with one line naming the key (issue 11), not accepted or misreported.
func TestAdapterConfigChecks(t *testing.T) {
	tests := []struct {
		name, adapter, config string
		want                  string
	}{
		{"r 0", `{"r": 0, "lora_alpha": 16}`, "", "adapter_config.json r is 0, which is not a positive rank"},
		{"r 2^40", `{"r": 1099511627776, "lora_alpha": 16}`, "", "adapter_config.json r is 1099511627776, which is not a positive rank"},
		{"r not the factors' rank", `{"r": 16, "lora_alpha": 16}`, "", "adapter_config.json r is 16, but the factors of"},
		{"lora_alpha 1e400", `{"r": 8, "lora_alpha": 1e400}`, "", "adapter_config.json lora_alpha is 1e400, which is not a finite number"},
		{"MLX rank 0", `{"lora_parameters": {"rank": 0, "scale": 2}}`, "", "adapter_config.json lora_parameters.rank is 0, which is not a positive rank"},
		{"lora_A narrower than the model", `{"r": 8, "lora_alpha": 16}`, `{"model_type": "llama", "hidden_size": 16, "num_attention_heads": 2}`,
			"the LoRA factors are 8 wide but the base model's hidden_size is 16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(peftDir(t, tc.adapter, tc.config, 8), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = FindModel(c, FindOptions{})
			var fe *Error
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line containing %q", err, tc.want)
			}
		})
	}
	// The same adapter with sane numbers opens.
	c, err := Open(peftDir(t, `{"r": 8, "lora_alpha": 16}`, "", 8), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, err := FindModel(c, FindOptions{})
	if err != nil || m.Adapter.Scale != 2 {
		t.Fatalf("sane adapter: %v", err)
	}
}

// TestIndexDotSlash: a weight_map naming "./model-00002-of-00002.safetensors"
// names a file in the folder.
func TestIndexDotSlash(t *testing.T) {
	dir := t.TempDir()
	writeST(t, filepath.Join(dir, "model-00001-of-00002.safetensors"), []safetensors.WriteTensor{safetensors.F32Tensor("a", []int64{2}, []float32{1, 2})})
	writeST(t, filepath.Join(dir, "model-00002-of-00002.safetensors"), []safetensors.WriteTensor{safetensors.F32Tensor("b", []int64{2}, []float32{3, 4})})
	idx, _ := json.Marshal(map[string]any{"weight_map": map[string]string{"a": "model-00001-of-00002.safetensors", "b": "./model-00002-of-00002.safetensors"}})
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Tensor("b") == nil || len(c.Files) != 2 {
		t.Errorf("tensors %v", c.Tensors)
	}
	// Escapes stay refused.
	idx, _ = json.Marshal(map[string]any{"weight_map": map[string]string{"a": "../model-00001-of-00002.safetensors"}})
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "not a file in this folder") {
		t.Errorf("escape: %v", err)
	}
}

// mlxDir writes an MLX adapter (lora_a [in, r], lora_b [r, out]) of q_proj.
func mlxDir(t *testing.T, adapterConfig string) string {
	t.Helper()
	dir := t.TempDir()
	a := []float32{1, 0, 0, 1, 0, 0, 0, 0} // [4, 2]
	b := []float32{1, 2, 3, 4, 5, 6, 7, 8} // [2, 4]
	writeST(t, filepath.Join(dir, "adapters.safetensors"), []safetensors.WriteTensor{
		safetensors.F32Tensor("model.layers.0.self_attn.q_proj.lora_a", []int64{4, 2}, a),
		safetensors.F32Tensor("model.layers.0.self_attn.q_proj.lora_b", []int64{2, 4}, b),
	})
	if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), []byte(adapterConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestMLXScaleRules: MLX-LM's scale by era (issue 14), and --lora-scale.
func TestMLXScaleRules(t *testing.T) {
	tests := []struct {
		config string
		opt    float64
		scale  float64
		rule   string
	}{
		{`{"lora_parameters": {"rank": 2, "alpha": 16, "scale": 10}}`, 0, 80, "scale × alpha / rank"},
		{`{"num_layers": 4, "lora_parameters": {"rank": 2, "scale": 10}}`, 0, 10, "after 2024-06-01"},
		{`{"lora_layers": 4, "lora_parameters": {"rank": 2, "scale": 10}}`, 0, 10, "old lora_layers key but no alpha"},
		{`{"lora_parameters": {"rank": 2, "alpha": 16, "scale": 10}}`, 3, 3, "--lora-scale"},
	}
	for _, tc := range tests {
		c, err := Open(mlxDir(t, tc.config), Options{})
		if err != nil {
			t.Fatal(err)
		}
		m, err := FindModel(c, FindOptions{LoRAScale: tc.opt})
		if err != nil {
			t.Fatal(err)
		}
		if m.Adapter.Scale != tc.scale || !strings.Contains(m.Adapter.ScaleRule, tc.rule) {
			t.Errorf("%s: scale %v (%s), want %v (%s)", tc.config, m.Adapter.Scale, m.Adapter.ScaleRule, tc.scale, tc.rule)
		}
		l, err := m.LoadLayer(0)
		if err != nil {
			t.Fatal(err)
		}
		// ΔW = s · B^T-stored · A: ΔW[o][i] = s · Σ_k lora_b[k][o] · lora_a[i][k].
		if got, want := l.Q.At(1, 0), float32(tc.scale*2); got != want {
			t.Errorf("%s: ΔW[1][0] = %v, want %v", tc.config, got, want)
		}
		c.Close()
	}
}
