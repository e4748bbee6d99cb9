package termui

import (
	"fmt"
	"reflect"
	"testing"
)

func TestSuggest(t *testing.T) {
	names := []string{"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
		"model.layers.0.self_attn.k_proj.weight", "model.layers.1.self_attn.q_proj.weight", "lm_head.weight"}
	keys := []string{"general.architecture", "general.name", "llama.context_length", "llama.block_count", "tokenizer.ggml.tokens"}
	for _, c := range []struct {
		name  string
		cands []string
		want  []string
	}{
		{"model.layers.0.self_attn.q_proj.weigth", names, []string{"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight", "model.layers.1.self_attn.q_proj.weight"}},
		{"lm_head", names, []string{"lm_head.weight"}},
		{"general.archtecture", keys, []string{"general.architecture"}},
		{"LLAMA.BLOCK_COUNT", keys, []string{"llama.block_count"}},
		{"block_count", keys, []string{"llama.block_count"}},
		{"zzzz", keys, nil},
		{"general.name", keys, nil}, // present: nothing to suggest
	} {
		got := Suggest(c.name, c.cands, 3)
		if len(got) == 0 && len(c.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Suggest(%q) = %q, want %q", c.name, got, c.want)
		}
	}
	if got := DidYouMean("general.nme", keys); got != `did you mean "general.name"?` {
		t.Errorf("DidYouMean: %q", got)
	}
	if got := DidYouMean("q", keys); got != "" {
		t.Errorf("DidYouMean of a short unrelated name: %q", got)
	}
}

func BenchmarkSuggestMillion(b *testing.B) {
	names := make([]string, 1_000_000)
	for i := range names {
		names[i] = fmt.Sprintf("model.layers.%d.mlp.experts.%d.down_proj.weight", i/1000, i%1000)
	}
	for b.Loop() {
		Suggest("model.layers.3.mlp.experts.7.dwn_proj.weight", names, 3)
	}
}
