//go:build linux

package attn

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/x448/float16"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

// The 8B benchmark: the forward pass of a model with Llama-3-8B's geometry
// (d_model 4096, 32 heads, 8 KV heads, ff 14336, 32 layers, vocab 128256)
// at T = 128 through every block, from synthetic Q4_K (GGUF) and BF16
// (safetensors) weights on disk, side by side with PyTorch running the same
// BF16 weights in float32 (testdata/forward/bench_torch.py). Each run is a
// child process, so that its peak RSS is its own.
//
//	QKV_BENCH8B_WRITE=/work/bench8b go test ./attn -run TestWriteBench8B -timeout 1h   # ~4.2 GB + ~15 GB
//	QKV_BENCH8B_DIR=/work/bench8b go test ./attn -run '^$' -bench Forward8B -benchtime 1x -timeout 2h
//
// QKV_BENCH8B_LAYERS (default 32) writes fewer layers.

const (
	b8D, b8H, b8KV, b8HD, b8FF, b8Vocab = 4096, 32, 8, 128, 14336, 128256
	b8T                                 = 128
)

func b8Layers() int {
	if n, err := strconv.Atoi(os.Getenv("QKV_BENCH8B_LAYERS")); err == nil && n > 0 {
		return n
	}
	return 32
}

// b8Tensor is one tensor of the synthetic model: HF name, GGUF name, shape
// [out, in] (or [n] for norms).
type b8Tensor struct {
	hf, gguf string
	shape    []int64
}

func b8Tensors(layers int) []b8Tensor {
	ts := []b8Tensor{{"model.embed_tokens.weight", "token_embd.weight", []int64{b8Vocab, b8D}}}
	for i := 0; i < layers; i++ {
		p, g := fmt.Sprintf("model.layers.%d.", i), fmt.Sprintf("blk.%d.", i)
		ts = append(ts,
			b8Tensor{p + "input_layernorm.weight", g + "attn_norm.weight", []int64{b8D}},
			b8Tensor{p + "self_attn.q_proj.weight", g + "attn_q.weight", []int64{b8H * b8HD, b8D}},
			b8Tensor{p + "self_attn.k_proj.weight", g + "attn_k.weight", []int64{b8KV * b8HD, b8D}},
			b8Tensor{p + "self_attn.v_proj.weight", g + "attn_v.weight", []int64{b8KV * b8HD, b8D}},
			b8Tensor{p + "self_attn.o_proj.weight", g + "attn_output.weight", []int64{b8D, b8H * b8HD}},
			b8Tensor{p + "post_attention_layernorm.weight", g + "ffn_norm.weight", []int64{b8D}},
			b8Tensor{p + "mlp.gate_proj.weight", g + "ffn_gate.weight", []int64{b8FF, b8D}},
			b8Tensor{p + "mlp.up_proj.weight", g + "ffn_up.weight", []int64{b8FF, b8D}},
			b8Tensor{p + "mlp.down_proj.weight", g + "ffn_down.weight", []int64{b8D, b8FF}})
	}
	return append(ts, b8Tensor{"model.norm.weight", "output_norm.weight", []int64{b8D}},
		b8Tensor{"lm_head.weight", "output.weight", []int64{b8Vocab, b8D}})
}

func elements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// TestWriteBench8B writes the benchmark's models (only when asked).
func TestWriteBench8B(t *testing.T) {
	dir := os.Getenv("QKV_BENCH8B_WRITE")
	if dir == "" {
		t.Skip("set QKV_BENCH8B_WRITE=DIR to write the 8B benchmark models")
	}
	layers := b8Layers()
	if err := os.MkdirAll(filepath.Join(dir, "bf16"), 0o755); err != nil {
		t.Fatal(err)
	}
	ts := b8Tensors(layers)
	if err := writeB8GGUF(filepath.Join(dir, "llama8b-q4k.gguf"), ts, layers); err != nil {
		t.Fatal(err)
	}
	if err := writeB8Safetensors(filepath.Join(dir, "bf16"), ts, layers); err != nil {
		t.Fatal(err)
	}
}

// writeB8GGUF writes a GGUF v3 file: Q4_K matrices (random blocks with
// d = 1e-4, dmin = 5e-5, so weights are about ±0.05), F32 norms of 1.
func writeB8GGUF(path string, ts []b8Tensor, layers int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	le := binary.LittleEndian
	u32 := func(v uint32) { binary.Write(w, le, v) }
	u64 := func(v uint64) { binary.Write(w, le, v) }
	str := func(s string) { u64(uint64(len(s))); w.WriteString(s) }
	kvs := []struct {
		key string
		typ uint32 // 4 uint32, 6 float32, 8 string
		val any
	}{
		{"general.architecture", 8, "llama"}, {"llama.embedding_length", 4, uint32(b8D)}, {"llama.block_count", 4, uint32(layers)},
		{"llama.attention.head_count", 4, uint32(b8H)}, {"llama.attention.head_count_kv", 4, uint32(b8KV)},
		{"llama.feed_forward_length", 4, uint32(b8FF)}, {"llama.rope.freq_base", 6, float32(500000)},
		{"llama.rope.dimension_count", 4, uint32(b8HD)}, {"llama.attention.layer_norm_rms_epsilon", 6, float32(1e-5)},
		{"llama.context_length", 4, uint32(8192)},
	}
	w.WriteString("GGUF")
	u32(3)
	u64(uint64(len(ts)))
	u64(uint64(len(kvs)))
	for _, kv := range kvs {
		str(kv.key)
		u32(kv.typ)
		switch v := kv.val.(type) {
		case string:
			str(v)
		case uint32:
			u32(v)
		case float32:
			binary.Write(w, le, v)
		}
	}
	size := func(t b8Tensor) int64 {
		if len(t.shape) == 1 {
			return t.shape[0] * 4
		}
		return elements(t.shape) / 256 * 144
	}
	var off int64
	for _, t := range ts {
		str(t.gguf)
		u32(uint32(len(t.shape)))
		for i := len(t.shape) - 1; i >= 0; i-- {
			u64(uint64(t.shape[i]))
		}
		if len(t.shape) == 1 {
			u32(0) // F32
		} else {
			u32(12) // Q4_K
		}
		u64(uint64(off))
		off += (size(t) + 31) / 32 * 32
	}
	if err := w.Flush(); err != nil {
		return err
	}
	pos, _ := f.Seek(0, 1)
	w.Write(make([]byte, (32-pos%32)%32))
	// A pool of random Q4_K blocks, cycled.
	r := rand.New(rand.NewPCG(8, 8))
	pool := make([]byte, 144*4099)
	for i := range pool {
		pool[i] = byte(r.Uint32())
	}
	d, dmin := float16.Fromfloat32(1e-4).Bits(), float16.Fromfloat32(5e-5).Bits()
	for b := 0; b < len(pool)/144; b++ {
		le.PutUint16(pool[b*144:], d)
		le.PutUint16(pool[b*144+2:], dmin)
	}
	one := make([]byte, 4*b8D)
	for i := 0; i < b8D; i++ {
		le.PutUint32(one[4*i:], math.Float32bits(1))
	}
	cursor := 0
	for _, t := range ts {
		n := size(t)
		if len(t.shape) == 1 {
			w.Write(one[:n])
		} else {
			for left := n; left > 0; {
				k := min(left, int64(len(pool)-cursor))
				w.Write(pool[cursor : cursor+int(k)])
				left -= k
				cursor = (cursor + int(k)) % len(pool)
			}
		}
		w.Write(make([]byte, (32-n%32)%32))
	}
	return w.Flush()
}

// writeB8Safetensors writes config.json and a BF16 model.safetensors with
// N(0, 0.02²) matrices (a cycled pool of draws) and norms of 1.
func writeB8Safetensors(dir string, ts []b8Tensor, layers int) error {
	conf := map[string]any{"architectures": []string{"LlamaForCausalLM"}, "model_type": "llama", "hidden_size": b8D,
		"num_hidden_layers": layers, "num_attention_heads": b8H, "num_key_value_heads": b8KV, "intermediate_size": b8FF,
		"vocab_size": b8Vocab, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "max_position_embeddings": 8192,
		"hidden_act": "silu", "tie_word_embeddings": false, "torch_dtype": "bfloat16"}
	b, _ := json.MarshalIndent(conf, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		return err
	}
	var hdr strings.Builder
	hdr.WriteString("{")
	var off int64
	for i, t := range ts {
		if i > 0 {
			hdr.WriteString(",")
		}
		n := elements(t.shape) * 2
		shape, _ := json.Marshal(t.shape)
		fmt.Fprintf(&hdr, "%q:{\"dtype\":\"BF16\",\"shape\":%s,\"data_offsets\":[%d,%d]}", t.hf, shape, off, off+n)
		off += n
	}
	hdr.WriteString("}")
	h := hdr.String()
	h += strings.Repeat(" ", (8-len(h)%8)%8)
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	binary.Write(w, binary.LittleEndian, uint64(len(h)))
	w.WriteString(h)
	r := rand.New(rand.NewPCG(16, 16))
	pool := make([]byte, 2*(1<<22+7))
	for i := 0; i < len(pool)/2; i++ {
		v := float32(r.NormFloat64() * 0.02)
		binary.LittleEndian.PutUint16(pool[2*i:], uint16(math.Float32bits(v)>>16))
	}
	one := make([]byte, 2*b8D)
	for i := 0; i < b8D; i++ {
		binary.LittleEndian.PutUint16(one[2*i:], 0x3f80)
	}
	cursor := 0
	for _, t := range ts {
		n := elements(t.shape) * 2
		if len(t.shape) == 1 {
			w.Write(one[:n])
			continue
		}
		for left := n; left > 0; {
			k := min(left, int64(len(pool)-cursor))
			w.Write(pool[cursor : cursor+int(k)])
			left -= k
			cursor = (cursor + int(k)) % len(pool)
		}
	}
	return w.Flush()
}

// b8Tokens are the benchmark's token ids (seeded, the same in PyTorch).
func b8Tokens() []int {
	r := rand.New(rand.NewPCG(128, 0))
	ids := make([]int, b8T)
	for i := range ids {
		ids[i] = r.IntN(b8Vocab)
	}
	return ids
}

// TestForward8BChild is the child process of BenchmarkForward8B.
func TestForward8BChild(t *testing.T) {
	path := os.Getenv("QKV_BENCH8B_CHILD")
	if path == "" {
		t.Skip("the child of BenchmarkForward8B")
	}
	ck, err := formats.Open(path, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ForwardSupported(m)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	c0 := cpuTime()
	res, err := Forward(m, b8Tokens(), ForwardOptions{Layers: []int{spec.Layers - 1}, AllBlocks: true})
	if err != nil {
		t.Fatal(err)
	}
	sec := time.Since(t0).Seconds()
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ss float64
	for _, v := range res.Last.Data {
		ss += float64(v) * float64(v)
	}
	fmt.Printf("BENCH8B {\"seconds\": %g, \"cpu_seconds\": %g, \"maxrss_mb\": %g, \"out_rms\": %g}\n", sec, (cpuTime() - c0).Seconds(),
		float64(ru.Maxrss)/1024, math.Sqrt(ss/float64(len(res.Last.Data))))
}

type b8Result struct {
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	MaxRSSMB   float64 `json:"maxrss_mb"`
	OutRMS     float64 `json:"out_rms"`
}

func runB8Child(b *testing.B, cmd *exec.Cmd) b8Result {
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "BENCH8B "); ok {
			var r b8Result
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				b.Fatal(err)
			}
			return r
		}
	}
	b.Fatalf("%v printed no result:\n%s", cmd.Args, out)
	return b8Result{}
}

// BenchmarkForward8B runs PyTorch (BF16 weights, float32 compute), qkv on
// the BF16 safetensors and qkv on the Q4_K GGUF, each in its own process.
func BenchmarkForward8B(b *testing.B) {
	dir := os.Getenv("QKV_BENCH8B_DIR")
	if dir == "" {
		b.Skip("set QKV_BENCH8B_DIR to the folder TestWriteBench8B wrote (see forward_bench_test.go)")
	}
	script := filepath.Join(testref.RepoRoot(), "attn", "testdata", "forward", "bench_torch.py")
	ids, _ := json.Marshal(b8Tokens())
	idsPath := filepath.Join(b.TempDir(), "ids.json")
	if err := os.WriteFile(idsPath, ids, 0o644); err != nil {
		b.Fatal(err)
	}
	// Each side runs twice in a row and the second run counts: the first
	// pulls the file into the page cache (the disk's speed, not the
	// forward's), the second reads it from memory, as the other side's did.
	twice := func(name string, mk func() *exec.Cmd) b8Result {
		first := runB8Child(b, mk())
		r := runB8Child(b, mk())
		b.Logf("%s: first run %.1f s (cpu %.1f s), second %.1f s (cpu %.1f s)", name, first.Seconds, first.CPUSeconds, r.Seconds, r.CPUSeconds)
		return r
	}
	child := func(path string) func() *exec.Cmd {
		return func() *exec.Cmd {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestForward8BChild$", "-test.v")
			cmd.Env = append(os.Environ(), "QKV_BENCH8B_CHILD="+path)
			return cmd
		}
	}
	for i := 0; i < b.N; i++ {
		torch := twice("pytorch", func() *exec.Cmd {
			return exec.Command("/usr/bin/python3", script, filepath.Join(dir, "bf16"), idsPath)
		})
		bf := twice("qkv bf16", child(filepath.Join(dir, "bf16")))
		q4 := twice("qkv q4_k", child(filepath.Join(dir, "llama8b-q4k.gguf")))
		b.Logf("pytorch bf16→f32: %.1f s (cpu %.1f s), peak RSS %.0f MB, out RMS %.4g", torch.Seconds, torch.CPUSeconds, torch.MaxRSSMB, torch.OutRMS)
		b.Logf("qkv bf16:         %.1f s (cpu %.1f s), peak RSS %.0f MB, out RMS %.4g", bf.Seconds, bf.CPUSeconds, bf.MaxRSSMB, bf.OutRMS)
		b.Logf("qkv q4_k:         %.1f s (cpu %.1f s), peak RSS %.0f MB", q4.Seconds, q4.CPUSeconds, q4.MaxRSSMB)
		b.ReportMetric(torch.Seconds, "torch-s")
		b.ReportMetric(bf.Seconds, "qkv-bf16-s")
		b.ReportMetric(q4.Seconds, "qkv-q4k-s")
		b.ReportMetric(bf.Seconds/torch.Seconds, "bf16-ratio")
		b.ReportMetric(q4.Seconds/torch.Seconds, "q4k-ratio")
		b.ReportMetric(bf.MaxRSSMB, "qkv-bf16-rss-MB")
		b.ReportMetric(q4.MaxRSSMB, "qkv-q4k-rss-MB")
		b.ReportMetric(torch.MaxRSSMB, "torch-rss-MB")
		b.ReportMetric(bf.CPUSeconds/torch.CPUSeconds, "bf16-cpu-ratio")
		b.ReportMetric(q4.CPUSeconds/torch.CPUSeconds, "q4k-cpu-ratio")
		if rel := math.Abs(bf.OutRMS-torch.OutRMS) / torch.OutRMS; rel > 1e-3 {
			b.Errorf("qkv and PyTorch disagree on the output's RMS: %g vs %g", bf.OutRMS, torch.OutRMS)
		}
	}
}
