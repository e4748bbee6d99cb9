//go:build linux

package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/formats/safetensors"
)

// `attn --all` writes each layer as it is computed and forgets it: its
// memory holds one layer's probabilities (and, in forward mode, one
// block), whatever the depth. BenchmarkAttnAllRSS measures the peak RSS of
// `qkv attn --all` on two synthetic Llama models that differ only in depth
// (4 and 16 layers), each run in a child process so that its peak is its
// own, in raw and forward mode, for text, --json and --out; the
// probabilities are 64 MiB a layer (16 heads, T = 1024), so a run that
// kept them would grow by about 768 MiB from 4 to 16 layers.
//
//	go test ./cmd -run '^$' -bench AttnAllRSS -benchtime 1x

// rssModel writes a Llama checkpoint (Hugging Face layout) with the given
// depth: d_model 64, 16 heads of 4, ff 128, vocabulary 256.
func rssModel(t testing.TB, dir string, layers int) string {
	t.Helper()
	const d, nh, hd, ff, vocab = 64, 16, 4, 128, 256
	path := filepath.Join(dir, fmt.Sprintf("llama-%dl", layers))
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{"model_type": "llama", "architectures": []string{"LlamaForCausalLM"}, "hidden_size": d,
		"num_attention_heads": nh, "num_key_value_heads": nh, "num_hidden_layers": layers, "intermediate_size": ff,
		"vocab_size": vocab, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 4096,
		"hidden_act": "silu", "tie_word_embeddings": false, "torch_dtype": "float32"}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(path, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(layers), 5))
	var ts []safetensors.WriteTensor
	mat := func(name string, rows, cols int, std float64) {
		v := make([]float32, rows*cols)
		for i := range v {
			v[i] = float32(r.NormFloat64() * std)
		}
		ts = append(ts, safetensors.F32Tensor(name, []int64{int64(rows), int64(cols)}, v))
	}
	ones := func(name string, n int) {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		ts = append(ts, safetensors.F32Tensor(name, []int64{int64(n)}, v))
	}
	mat("model.embed_tokens.weight", vocab, d, 1)
	for i := 0; i < layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		ones(p+"input_layernorm.weight", d)
		ones(p+"post_attention_layernorm.weight", d)
		mat(p+"self_attn.q_proj.weight", nh*hd, d, 0.3)
		mat(p+"self_attn.k_proj.weight", nh*hd, d, 0.3)
		mat(p+"self_attn.v_proj.weight", nh*hd, d, 0.3)
		mat(p+"self_attn.o_proj.weight", d, nh*hd, 0.1)
		mat(p+"mlp.gate_proj.weight", ff, d, 0.1)
		mat(p+"mlp.up_proj.weight", ff, d, 0.1)
		mat(p+"mlp.down_proj.weight", d, ff, 0.1)
	}
	ones("model.norm.weight", d)
	mat("lm_head.weight", vocab, d, 0.1)
	f, err := os.Create(filepath.Join(path, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := safetensors.Write(f, ts, [][2]string{{"format", "pt"}}); err != nil {
		t.Fatal(err)
	}
	return path
}

// rssTokens is a --tokens list of n ids.
func rssTokens(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.Itoa(1 + (i*37)%250)
	}
	return strings.Join(ids, ",")
}

// TestAttnRSSChild is the child of BenchmarkAttnAllRSS: it runs qkv with
// the arguments in QKV_ATTN_RSS_ARGS (a JSON array), output discarded.
func TestAttnRSSChild(t *testing.T) {
	args := os.Getenv("QKV_ATTN_RSS_ARGS")
	if args == "" {
		t.Skip("the child of BenchmarkAttnAllRSS")
	}
	var list []string
	if err := json.Unmarshal([]byte(args), &list); err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	s := &cmd.Streams{In: strings.NewReader(""), Out: discard{}, Err: &errb, Width: 160}
	if code := cmd.Run(context.Background(), list, s); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// childRSS runs qkv in a child process — the binary TestMain built, else
// this test binary (TestAttnRSSChild) — and returns its peak RSS in MiB.
func childRSS(b *testing.B, args ...string) float64 {
	b.Helper()
	var c *exec.Cmd
	if qkvBinary != "" {
		c = exec.Command(qkvBinary, args...)
		c.Env = append(os.Environ(), "COLUMNS=160")
	} else {
		c = exec.Command(os.Args[0], "-test.run=^TestAttnRSSChild$", "-test.count=1")
		list, _ := json.Marshal(args)
		c.Env = append(os.Environ(), "QKV_ATTN_RSS_ARGS="+string(list))
	}
	var errb bytes.Buffer
	c.Stdout, c.Stderr = io.Discard, &errb
	if err := c.Run(); err != nil {
		b.Fatalf("qkv %.200s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	ru := c.ProcessState.SysUsage().(*syscall.Rusage)
	return float64(ru.Maxrss) / 1024 // kilobytes on Linux
}

func BenchmarkAttnAllRSS(b *testing.B) {
	dir := os.Getenv("QKV_ATTN_RSS_DIR") // keeps the models for a look
	if dir == "" {
		dir = b.TempDir()
	}
	shallow, deep := rssModel(b, dir, 4), rssModel(b, dir, 16)
	out := filepath.Join(dir, "out.safetensors")
	const T = 1024
	for _, c := range []struct {
		name string
		args []string
	}{
		{"raw-text", []string{"--random", strconv.Itoa(T)}},
		{"raw-json", []string{"--random", strconv.Itoa(T), "--json"}},
		{"raw-out", []string{"--random", strconv.Itoa(T), "--json", "--out", out}},
		{"forward-text", []string{"--tokens", rssTokens(T)}},
		{"forward-json", []string{"--tokens", rssTokens(T), "--json", "--logits"}},
		{"forward-out", []string{"--tokens", rssTokens(T), "--json", "--logits", "--out", out}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var small, large float64
			for i := 0; i < b.N; i++ {
				small = childRSS(b, append([]string{"attn", shallow, "--all"}, c.args...)...)
				large = childRSS(b, append([]string{"attn", deep, "--all"}, c.args...)...)
			}
			b.ReportMetric(small, "MiB-4-layers")
			b.ReportMetric(large, "MiB-16-layers")
			b.ReportMetric(large/small, "ratio")
			// 12 more layers kept would add 768 MiB; flat means the deep
			// model's peak is within a quarter of the shallow one's.
			if large > 1.25*small {
				b.Errorf("peak RSS grows with depth: %.0f MiB at 4 layers, %.0f MiB at 16", small, large)
			}
		})
	}
}
