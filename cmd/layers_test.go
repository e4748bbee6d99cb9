package cmd_test

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestLayersModern: the text of `qkv layers` shows what the modern
// architectures add — Q/K norms, sinks, the latent-attention factors with
// the rank bound of the effective matrices — and the warnings of what qkv
// assumed; the JSON carries the same (warnings, rank_bound, q_norm, mla).
func TestLayersModern(t *testing.T) {
	zoo := filepath.Join(testref.SharedDir(t), "reference", "zoo-modern")
	for _, c := range []struct {
		path     string
		text     []string
		jsonKeys []string
	}{
		{"qwen3/hf", []string{"q_norm  model.layers.0.self_attn.q_norm.weight  [32]", "k_norm  model.layers.1.self_attn.k_norm.weight"},
			[]string{`"q_norm": "model.layers.0.self_attn.q_norm.weight"`, `"warnings": []`}},
		{"gpt_oss/hf", []string{"sinks  model.layers.0.self_attn.sinks  [4]  F32"}, []string{`"sinks": "model.layers.1.self_attn.sinks"`}},
		{"deepseek_v3/hf", []string{"latent attention: q_lora_rank 32, kv_lora_rank 32", "q          from q_a, q_a_norm, q_b",
			"effective, rank ≤ 40", "kv_b       model.layers.1.self_attn.kv_b_proj.weight           [192, 32]  F32          latent factor",
			"effective q = q_b · diag(q_a_layernorm) · q_a"},
			[]string{`"rank_bound": 32`, `"rank_bound": 40`, `"name": "kv_a_norm"`}},
		{"deepseek_v3/gguf/deepseek_v3-Q8_0.gguf", []string{"k_b", "v_b", "effective, rank ≤ 32"}, []string{`"name": "k_b"`}},
		{"gemma3/gguf/gemma3-f32.gguf", []string{"warning (assumed): the GGUF does not carry query_pre_attn_scalar",
			"warning (assumed): the GGUF carries no sliding-window layer pattern"},
			[]string{`"severity": "assumption"`, `"name": "query_pre_attn_scalar"`}},
	} {
		t.Run(c.path, func(t *testing.T) {
			p := filepath.Join(zoo, filepath.FromSlash(c.path))
			// 160 columns: the whole table, notes beside the tensors.
			code, out, errs := runQKV(160, "layers", p)
			if code != cmd.ExitOK {
				t.Fatalf("exit %d: %s", code, errs)
			}
			// Columns are compared with their padding collapsed.
			squash := func(s string) string {
				lines := strings.Split(s, "\n")
				for i, l := range lines {
					lines[i] = strings.Join(strings.Fields(l), " ")
				}
				return strings.Join(lines, "\n")
			}
			for _, w := range c.text {
				if !strings.Contains(squash(out), squash(w)) {
					t.Errorf("text lacks %q:\n%s", w, out)
				}
			}
			code, js, errs := run("layers", p, "--json")
			if code != cmd.ExitOK || !json.Valid([]byte(js)) {
				t.Fatalf("--json: exit %d: %s", code, errs)
			}
			for _, w := range c.jsonKeys {
				if !strings.Contains(js, w) {
					t.Errorf("JSON lacks %s", w)
				}
			}
		})
	}
}

// TestLayersAdapterFlags: --lora-scale replaces the adapter's scale, --base
// gives a fused update's split its head counts (layers, check and the
// other commands alike), and both are refused for a model.
func TestLayersAdapterFlags(t *testing.T) {
	lora := filepath.Join(testref.RepoRoot(), "testdata", "lora")
	bloom, base := filepath.Join(lora, "bloom-qkv-peft"), filepath.Join(lora, "bloom-base")

	code, _, errs := run("layers", bloom)
	if code != cmd.ExitInput || !strings.Contains(errs, "--base PATH") {
		t.Errorf("bloom adapter without --base: exit %d, %s", code, errs)
	}
	code, out, errs := run("layers", bloom, "--base", base, "--lora-scale", "2")
	if code != cmd.ExitOK || !strings.Contains(out, "scale 2 (--lora-scale)") || !strings.Contains(out, "4 heads") ||
		!strings.Contains(out, "ΔW=2·B·A r=4") {
		t.Errorf("--base --lora-scale: exit %d, %s%s", code, out, errs)
	}
	// check treats the split fused update as layers does: unresolved
	// without the base (a structure failure naming --base), checked with it.
	code, out, _ = run("check", bloom)
	if code != cmd.ExitFindings || !strings.Contains(out, "FAIL structure") || !strings.Contains(out, "--base PATH") {
		t.Errorf("check without --base: exit %d:\n%s", code, out)
	}
	// "attention" of "2 attention layers" gives way when a long path
	// fills the width.
	if code, out, _ = run("check", bloom, "--base", base); code != cmd.ExitOK || !regexp.MustCompile(`\b2 (attention )?layers`).MatchString(out) {
		t.Errorf("check --base: exit %d:\n%s", code, out)
	}
	tiny := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	for _, args := range [][]string{{"--lora-scale", "2"}, {"--base", base}} {
		code, _, errs := run(append([]string{"layers", tiny}, args...)...)
		if code != cmd.ExitUsage || !strings.Contains(errs, "is not a LoRA adapter") {
			t.Errorf("%v on a model: exit %d, %s", args, code, errs)
		}
	}
	for _, v := range []string{"-1", "NaN", "0"} {
		if code, _, errs := run("layers", bloom, "--base", base, "--lora-scale", v); code != cmd.ExitUsage {
			t.Errorf("--lora-scale %s: exit %d, %s", v, code, errs)
		}
	}
}
