// Command gen writes the project's own test fixtures under testdata/: small
// checkpoints in every safetensors dtype, GGUF versions 1-3, big-endian, split
// and sharded forms, and the tiny model the README's main command inspects.
// Run it with `go generate ./...` from the repository root. Every value is
// derived from a fixed seed, so the files are the same on every run.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/x448/float16"

	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/safetensors"
)

func main() {
	out := flag.String("out", "testdata", "folder to write into")
	flag.Parse()
	g := &gen{root: *out}
	g.dtypes()
	m := newTinyLlama()
	g.writeHF(filepath.Join(g.root, "tiny-llama"), m)
	g.writeSharded(filepath.Join(g.root, "tiny-llama-sharded"), m)
	g.writeGGUFs(filepath.Join(g.root, "gguf"), m)
	for _, a := range archModels() {
		g.writeArch(a)
	}
	g.legacyFlatRun()
	g.loraAdapters()
	hostile(g)
}

type gen struct{ root string }

func (g *gen) write(path string, b []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		log.Fatal(err)
	}
}

// ---- tiny llama -------------------------------------------------------------

// tinyLlama is a small Llama-style model with deliberate structure so that
// inspect has something to find: a dead head, a duplicated head, a
// rank-collapsed head and one layer with an exploding norm.
type tinyLlama struct {
	dModel, layers, heads, kvHeads, headDim, ffn, vocab int
	tensors                                             []named // HF names, F32
}

type named struct {
	name  string
	shape []int64
	data  []float32
}

func newTinyLlama() *tinyLlama {
	m := &tinyLlama{dModel: 64, layers: 4, heads: 8, kvHeads: 2, headDim: 8, ffn: 96, vocab: 128}
	rng := rand.New(rand.NewPCG(2026, 11))
	randn := func(rows, cols int, std float64) []float32 {
		v := make([]float32, rows*cols)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
		return v
	}
	add := func(name string, data []float32, shape ...int64) {
		m.tensors = append(m.tensors, named{name, shape, data})
	}
	ones := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1 + float32(rng.NormFloat64()*0.05)
		}
		return v
	}
	d, hd := m.dModel, m.headDim
	add("model.embed_tokens.weight", randn(m.vocab, d, 0.5), int64(m.vocab), int64(d))
	for l := 0; l < m.layers; l++ {
		p := fmt.Sprintf("model.layers.%d.", l)
		q := randn(m.heads*hd, d, 0.1)
		k := randn(m.kvHeads*hd, d, 0.1)
		v := randn(m.kvHeads*hd, d, 0.06)
		o := randn(d, m.heads*hd, 0.06)
		switch l {
		case 1: // Q head 3 is dead
			for i := 3 * hd * d; i < 4*hd*d; i++ {
				q[i] = 0
			}
		case 2: // Q head 5 duplicates head 4 (tiny noise)
			for i := 0; i < hd*d; i++ {
				q[5*hd*d+i] = q[4*hd*d+i] + float32(rng.NormFloat64()*1e-4)
			}
		case 3: // K head 1 collapses to rank 1; W_O is scaled up 40x
			u, w := randn(hd, 1, 1), randn(1, d, 0.1)
			for r := 0; r < hd; r++ {
				for c := 0; c < d; c++ {
					k[(hd+r)*d+c] = u[r] * w[c]
				}
			}
			for i := range o {
				o[i] *= 40
			}
		}
		add(p+"input_layernorm.weight", ones(d), int64(d))
		add(p+"self_attn.q_proj.weight", q, int64(m.heads*hd), int64(d))
		add(p+"self_attn.k_proj.weight", k, int64(m.kvHeads*hd), int64(d))
		add(p+"self_attn.v_proj.weight", v, int64(m.kvHeads*hd), int64(d))
		add(p+"self_attn.o_proj.weight", o, int64(d), int64(m.heads*hd))
		add(p+"post_attention_layernorm.weight", ones(d), int64(d))
		add(p+"mlp.gate_proj.weight", randn(m.ffn, d, 0.1), int64(m.ffn), int64(d))
		add(p+"mlp.up_proj.weight", randn(m.ffn, d, 0.1), int64(m.ffn), int64(d))
		add(p+"mlp.down_proj.weight", randn(d, m.ffn, 0.1), int64(d), int64(m.ffn))
	}
	add("model.norm.weight", ones(d), int64(d))
	add("lm_head.weight", randn(m.vocab, d, 0.1), int64(m.vocab), int64(d))
	return m
}

func (m *tinyLlama) config() []byte {
	cfg := map[string]any{
		"architectures":           []string{"LlamaForCausalLM"},
		"model_type":              "llama",
		"hidden_size":             m.dModel,
		"num_hidden_layers":       m.layers,
		"num_attention_heads":     m.heads,
		"num_key_value_heads":     m.kvHeads,
		"head_dim":                m.headDim,
		"intermediate_size":       m.ffn,
		"vocab_size":              m.vocab,
		"rms_norm_eps":            1e-5,
		"rope_theta":              10000.0,
		"max_position_embeddings": 256,
		"hidden_act":              "silu",
		"torch_dtype":             "float32",
		"tie_word_embeddings":     false,
		"bos_token_id":            1,
		"eos_token_id":            2,
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return append(b, '\n')
}

func f32Tensor(n named) safetensors.WriteTensor {
	return safetensors.F32Tensor(n.name, n.shape, n.data)
}

func (g *gen) writeHF(dir string, m *tinyLlama) {
	var ts []safetensors.WriteTensor
	for _, n := range m.tensors {
		ts = append(ts, f32Tensor(n))
	}
	g.write(filepath.Join(dir, "model.safetensors"), st(ts, [][2]string{{"format", "pt"}}))
	g.write(filepath.Join(dir, "config.json"), m.config())
}

func (g *gen) writeSharded(dir string, m *tinyLlama) {
	half := len(m.tensors) / 2
	weightMap := map[string]string{}
	var total int64
	for i, part := range [][]named{m.tensors[:half], m.tensors[half:]} {
		name := fmt.Sprintf("model-%05d-of-00002.safetensors", i+1)
		var ts []safetensors.WriteTensor
		for _, n := range part {
			ts = append(ts, f32Tensor(n))
			weightMap[n.name] = name
			total += int64(4 * len(n.data))
		}
		g.write(filepath.Join(dir, name), st(ts, [][2]string{{"format", "pt"}}))
	}
	idx, _ := json.MarshalIndent(map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weightMap}, "", "  ")
	g.write(filepath.Join(dir, "model.safetensors.index.json"), append(idx, '\n'))
	g.write(filepath.Join(dir, "config.json"), m.config())
}

func st(ts []safetensors.WriteTensor, meta [][2]string) []byte {
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, ts, meta); err != nil {
		log.Fatal(err)
	}
	return buf.Bytes()
}

// ---- GGUF forms -------------------------------------------------------------

// ggufName maps HF names to llama.cpp's GGUF names.
func ggufName(hf string) string {
	var l int
	var rest string
	if _, err := fmt.Sscanf(hf, "model.layers.%d.%s", &l, &rest); err == nil {
		m := map[string]string{
			"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
			"self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
			"self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
			"mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
		}
		return fmt.Sprintf("blk.%d.%s", l, m[rest])
	}
	return map[string]string{"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}[hf]
}

// permuteRoPE reorders a Q or K matrix's rows as llama.cpp's converter does:
// within each head, stored row 2j+s holds Hugging Face row s*hd/2+j.
func permuteRoPE(data []float32, heads, hd, cols int) []float32 {
	out := make([]float32, len(data))
	for h := 0; h < heads; h++ {
		for j := 0; j < hd/2; j++ {
			for s := 0; s < 2; s++ {
				src := (h*hd + s*hd/2 + j) * cols
				dst := (h*hd + 2*j + s) * cols
				copy(out[dst:dst+cols], data[src:src+cols])
			}
		}
	}
	return out
}

func (m *tinyLlama) ggufKVs() []gguf.KV {
	kv := func(k string, t gguf.ValueType, v any) gguf.KV { return gguf.KV{Key: k, Type: t, Value: v} }
	tokens := make([]any, m.vocab)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("<t%d>", i)
	}
	return []gguf.KV{
		kv("general.architecture", gguf.String, "llama"),
		kv("general.name", gguf.String, "qkv tiny llama"),
		kv("llama.context_length", gguf.Uint32, uint32(256)),
		kv("llama.embedding_length", gguf.Uint32, uint32(m.dModel)),
		kv("llama.block_count", gguf.Uint32, uint32(m.layers)),
		kv("llama.feed_forward_length", gguf.Uint32, uint32(m.ffn)),
		kv("llama.attention.head_count", gguf.Uint32, uint32(m.heads)),
		kv("llama.attention.head_count_kv", gguf.Uint32, uint32(m.kvHeads)),
		kv("llama.attention.key_length", gguf.Uint32, uint32(m.headDim)),
		kv("llama.attention.value_length", gguf.Uint32, uint32(m.headDim)),
		kv("llama.rope.dimension_count", gguf.Uint32, uint32(m.headDim)),
		kv("llama.rope.freq_base", gguf.Float32, float32(10000)),
		kv("llama.attention.layer_norm_rms_epsilon", gguf.Float32, float32(1e-5)),
		kv("general.file_type", gguf.Uint32, uint32(1)),
		kv("tokenizer.ggml.model", gguf.String, "llama"),
		{Key: "tokenizer.ggml.tokens", Type: gguf.Array, ElemType: gguf.String, Value: tokens},
	}
}

// ggufTensors converts the model's tensors: GGUF names, ne = reversed shape,
// Q/K rows permuted, 2-D matrices in F16 (norms stay F32) unless allF32.
func (m *tinyLlama) ggufTensors(allF32, bigEndian bool) []gguf.WriterTensor {
	var out []gguf.WriterTensor
	order := binary.ByteOrder(binary.LittleEndian)
	if bigEndian {
		order = binary.BigEndian
	}
	for _, n := range m.tensors {
		name := ggufName(n.name)
		data := n.data
		cols := int(n.shape[len(n.shape)-1])
		switch {
		case bytes.HasSuffix([]byte(name), []byte("attn_q.weight")):
			data = permuteRoPE(data, m.heads, m.headDim, cols)
		case bytes.HasSuffix([]byte(name), []byte("attn_k.weight")):
			data = permuteRoPE(data, m.kvHeads, m.headDim, cols)
		}
		dims := make([]uint64, len(n.shape))
		for i, d := range n.shape {
			dims[len(n.shape)-1-i] = uint64(d)
		}
		var buf bytes.Buffer
		typ := dtype.F32
		if len(n.shape) == 2 && !allF32 {
			typ = dtype.F16
			for _, v := range data {
				binary.Write(&buf, order, float16.Fromfloat32(v).Bits())
			}
		} else {
			for _, v := range data {
				binary.Write(&buf, order, math.Float32bits(v))
			}
		}
		out = append(out, gguf.WriterTensor{Name: name, Dims: dims, Type: typ, Data: buf.Bytes()})
	}
	return out
}

func (g *gen) gguf(path string, w *gguf.Writer) {
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		log.Fatalf("%s: %v", path, err)
	}
	g.write(path, buf.Bytes())
}

func (g *gen) writeGGUFs(dir string, m *tinyLlama) {
	for _, v := range []uint32{1, 2, 3} {
		g.gguf(filepath.Join(dir, fmt.Sprintf("tiny-llama-v%d-f32.gguf", v)),
			&gguf.Writer{Version: v, Alignment: 32, KVs: m.ggufKVs(), Tensors: m.ggufTensors(true, false)})
	}
	g.gguf(filepath.Join(dir, "tiny-llama-f16.gguf"),
		&gguf.Writer{Version: 3, Alignment: 32, KVs: m.ggufKVs(), Tensors: m.ggufTensors(false, false)})
	g.gguf(filepath.Join(dir, "tiny-llama-be-f16.gguf"),
		&gguf.Writer{Version: 3, BigEndian: true, Alignment: 32, KVs: m.ggufKVs(), Tensors: m.ggufTensors(false, true)})
	// A split set of three parts, as llama-gguf-split writes it: metadata in
	// part 1, split.* keys in every part.
	all := m.ggufTensors(true, false)
	per := (len(all) + 2) / 3
	for i := 0; i < 3; i++ {
		part := all[i*per : min((i+1)*per, len(all))]
		var kvs []gguf.KV
		if i == 0 {
			kvs = m.ggufKVs()
		}
		kvs = append(kvs,
			gguf.KV{Key: "split.no", Type: gguf.Uint16, Value: uint16(i)},
			gguf.KV{Key: "split.count", Type: gguf.Uint16, Value: uint16(3)},
			gguf.KV{Key: "split.tensors.count", Type: gguf.Int32, Value: int32(len(all))})
		g.gguf(filepath.Join(dir, fmt.Sprintf("tiny-llama-split-%05d-of-00003.gguf", i+1)),
			&gguf.Writer{Version: 3, Alignment: 32, KVs: kvs, Tensors: part})
	}
}

// ---- one safetensors file per dtype ------------------------------------------

// dtypeCase is one dtype's fixture: raw little-endian bytes for a [4, 8]
// tensor and the float32 values they must decode to, derived independently
// of the decoder (from the encoding rule or an exactly representable input).
type dtypeCase struct {
	name string
	raw  []byte
	want []float32
	n    int
}

func dtypeCases() []dtypeCase {
	const n = 32
	var cs []dtypeCase
	le := binary.LittleEndian
	vals := func(f func(i int) float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = f(i)
		}
		return v
	}
	// Values exactly representable in every float format used: k/8 for k in [-16, 15].
	exact := vals(func(i int) float64 { return float64(i-16) / 8 })
	add := func(name string, raw []byte, want []float64) {
		w := make([]float32, len(want))
		for i, v := range want {
			w[i] = float32(v)
		}
		cs = append(cs, dtypeCase{name, raw, w, len(want)})
	}
	var b []byte
	b = nil
	for _, v := range exact {
		b = le.AppendUint64(b, math.Float64bits(v))
	}
	add("F64", b, exact)
	b = nil
	for _, v := range exact {
		b = le.AppendUint32(b, math.Float32bits(float32(v)))
	}
	add("F32", b, exact)
	b = nil
	for _, v := range exact {
		b = le.AppendUint16(b, float16.Fromfloat32(float32(v)).Bits())
	}
	add("F16", b, exact)
	b = nil
	for _, v := range exact {
		b = le.AppendUint16(b, uint16(math.Float32bits(float32(v))>>16))
	}
	add("BF16", b, exact)
	ints := vals(func(i int) float64 { return float64((i - 16) * 3) })
	uints := vals(func(i int) float64 { return float64(i * 7) })
	for _, c := range []struct {
		name string
		size int
		src  []float64
	}{{"I64", 8, ints}, {"I32", 4, ints}, {"I16", 2, ints}, {"I8", 1, ints}, {"U64", 8, uints}, {"U32", 4, uints}, {"U16", 2, uints}, {"U8", 1, uints}} {
		b = nil
		for _, v := range c.src {
			x := uint64(int64(v))
			for k := 0; k < c.size; k++ {
				b = append(b, byte(x>>(8*k)))
			}
		}
		add(c.name, b, c.src)
	}
	b = nil
	bools := vals(func(i int) float64 { return float64(i % 3 % 2) })
	for _, v := range bools {
		b = append(b, byte(v))
	}
	add("BOOL", b, bools)
	// FP8 codes 0x00..0x1F and 0x80..0x9F: sign, exponent and mantissa by the formats' definitions.
	codes := make([]byte, n)
	for i := range codes {
		codes[i] = byte(i)
		if i >= 16 {
			codes[i] = byte(0x80 + i*3)
		}
	}
	fp8 := func(c byte, ebits, mbits, bias int) float64 {
		s := 1.0
		if c&0x80 != 0 {
			s = -1
		}
		e := int(c>>mbits) & (1<<ebits - 1)
		m := float64(int(c) & (1<<mbits - 1))
		if e == 0 {
			return s * m * math.Pow(2, float64(1-bias-mbits))
		}
		return s * (1 + m/float64(int(1)<<mbits)) * math.Pow(2, float64(e-bias))
	}
	var e4, e5, e8 []float64
	for _, c := range codes {
		e4 = append(e4, fp8(c, 4, 3, 7))
		e5 = append(e5, fp8(c, 5, 2, 15))
		e8 = append(e8, math.Pow(2, float64(int(c&0x7F)-127)))
	}
	add("F8_E4M3", codes, e4)
	add("F8_E5M2", codes, e5)
	e8codes := make([]byte, n)
	for i, c := range codes {
		e8codes[i] = c & 0x7F
	}
	add("F8_E8M0", e8codes, e8)
	return cs
}

func (g *gen) dtypes() {
	var expected []safetensors.WriteTensor
	for _, c := range dtypeCases() {
		raw := c.raw
		t := dtype.FromSafetensors(c.name)
		w := safetensors.WriteTensor{Name: "x", DType: t, Shape: []int64{4, int64(c.n / 4)}, Size: int64(len(raw)),
			Write: func(w io.Writer) error { _, err := w.Write(raw); return err }}
		g.write(filepath.Join(g.root, "dtypes", c.name+".safetensors"), st([]safetensors.WriteTensor{w}, [][2]string{{"dtype", c.name}}))
		expected = append(expected, safetensors.F32Tensor(c.name, []int64{4, int64(c.n / 4)}, c.want))
	}
	g.write(filepath.Join(g.root, "dtypes", "expected.safetensors"), st(expected, [][2]string{{"note", "float32 values each dtype file must decode to"}}))
}
