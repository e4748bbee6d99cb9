package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"

	"github.com/qkvdev/qkv/formats/safetensors"
)

// loraAdapters writes the adapters the formats tests split and scale by
// their documented rules (issue 14): a PEFT LoRA on GPT-2's fused c_attn
// (Conv1D, fan_in_fan_out), a PEFT LoRA on BLOOM's fused query_key_value
// (per-head interleaved; the head counts come from a base config.json in
// bloom-base/), and an MLX adapter of the alpha era.
func (g *gen) loraAdapters() {
	r := rand.New(rand.NewPCG(1414, 1))
	mat := func(rows, cols int) []float32 {
		v := make([]float32, rows*cols)
		for i := range v {
			v[i] = float32(r.NormFloat64() * 0.1)
		}
		return v
	}
	const d, rank = 16, 4
	writeJSON := func(path string, v any) {
		b, _ := json.MarshalIndent(v, "", "  ")
		g.write(path, append(b, '\n'))
	}
	peft := func(dir, module, base string, alpha int) {
		var ts []safetensors.WriteTensor
		for l := 0; l < 2; l++ {
			pre := fmt.Sprintf("base_model.model.transformer.h.%d.%s.", l, module)
			ts = append(ts, safetensors.F32Tensor(pre+"lora_A.weight", []int64{rank, d}, mat(rank, d)),
				safetensors.F32Tensor(pre+"lora_B.weight", []int64{3 * d, rank}, mat(3*d, rank)))
		}
		g.write(filepath.Join(dir, "adapter_model.safetensors"), st(ts, [][2]string{{"format", "pt"}}))
		cfg := map[string]any{"base_model_name_or_path": base, "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank,
			"lora_alpha": alpha, "lora_dropout": 0.0, "target_modules": []string{lastPart(module)},
			"fan_in_fan_out": module == "attn.c_attn", "bias": "none"}
		writeJSON(filepath.Join(dir, "adapter_config.json"), cfg)
	}
	root := filepath.Join(g.root, "lora")
	peft(filepath.Join(root, "gpt2-c_attn-peft"), "attn.c_attn", "openai-community/gpt2", 16)
	peft(filepath.Join(root, "bloom-qkv-peft"), "self_attention.query_key_value", "bigscience/bloom-560m", 8)
	writeJSON(filepath.Join(root, "bloom-base", "config.json"), map[string]any{
		"architectures": []string{"BloomForCausalLM"}, "model_type": "bloom", "hidden_size": d, "n_head": 4, "n_layer": 2,
		"layer_norm_epsilon": 1e-5, "vocab_size": 32,
	})

	// MLX-LM of 2024-01-25 to 2024-06-01: lora_a [in, r], lora_b [r, out],
	// trained with scale × alpha / rank.
	var ts []safetensors.WriteTensor
	for l := 0; l < 2; l++ {
		for _, m := range []struct {
			name string
			out  int
		}{{"q_proj", d}, {"v_proj", d / 2}} {
			pre := fmt.Sprintf("model.layers.%d.self_attn.%s.", l, m.name)
			ts = append(ts, safetensors.F32Tensor(pre+"lora_a", []int64{d, rank}, mat(d, rank)),
				safetensors.F32Tensor(pre+"lora_b", []int64{rank, int64(m.out)}, mat(rank, m.out)))
		}
	}
	dir := filepath.Join(root, "mlx-alpha-era")
	g.write(filepath.Join(dir, "adapters.safetensors"), st(ts, nil))
	writeJSON(filepath.Join(dir, "adapter_config.json"), map[string]any{"lora_layers": 2, "model": "mlx-community/tiny-llama",
		"lora_parameters": map[string]any{"rank": rank, "alpha": 16, "scale": 10.0, "dropout": 0.0}})
}

func lastPart(s string) string {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return s[i+1:]
		}
	}
	return s
}
