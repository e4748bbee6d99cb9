package formats_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/safetensors"
	"github.com/qkvdev/qkv/internal/testref"
)

// Fuzz targets for everything formats reads from a stranger's disk: whole
// files through Open and Decode, config.json, and the layer finder. Each
// asserts no panic, no hang, and that every failure is a *formats.Error
// naming the file and a cause.

const fuzzSeedMax = 128 << 10 // larger seeds slow the mutator down for little gain

// addFileSeeds adds the files matching the patterns (relative to the
// repository root, or to ../shared with shared=true) as seeds.
func addFileSeeds(f *testing.F, shared bool, patterns ...string) {
	root := testref.RepoRoot()
	if shared {
		root = filepath.Join(root, "..", "shared")
		if env := os.Getenv("QKV_SHARED"); env != "" {
			root = env
		}
	}
	for _, p := range patterns {
		files, _ := filepath.Glob(filepath.Join(root, filepath.FromSlash(p)))
		for _, file := range files {
			if st, err := os.Stat(file); err != nil || st.IsDir() || st.Size() > fuzzSeedMax {
				continue
			}
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
}

// checkErr asserts err is a *formats.Error that names a file and a cause.
func checkErr(t *testing.T, what string, err error) {
	t.Helper()
	var fe *formats.Error
	if !errors.As(err, &fe) {
		t.Errorf("%s: error %q is a %T, want a *formats.Error", what, err, err)
		return
	}
	if fe.File == "" || fe.Err == nil || fe.Err.Error() == "" {
		t.Errorf("%s: error %q does not name its file and cause (%#v)", what, err, fe)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("%s: error %q spans lines", what, err)
	}
}

// withDeadline runs fn and fails when it takes longer than a hang would.
func withDeadline(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("still running after 20 s: a hang")
	}
}

// exercise opens path and reads everything a command could read from it.
func exercise(t *testing.T, path string) {
	c, err := formats.Open(path, formats.Options{})
	if err != nil {
		checkErr(t, "Open", err)
		return
	}
	defer c.Close()
	var size int64
	for _, f := range c.Files {
		size += f.Size
	}
	for _, tn := range c.Tensors {
		if tn.Elements() < 0 {
			t.Errorf("tensor %q: negative element count %d (shape %v)", tn.Name, tn.Elements(), tn.Shape)
			continue
		}
		if tn.Bytes >= 0 && (tn.Offset < 0 || tn.Offset+tn.Bytes > c.Files[tn.File].Size) {
			t.Errorf("tensor %q: [%d, +%d) outside its %d-byte file", tn.Name, tn.Offset, tn.Bytes, c.Files[tn.File].Size)
			continue
		}
		// Decoded size is bounded by the bytes the file holds (at most 256
		// elements per 50 bytes for the densest i-quant), so this cannot
		// allocate more than the input justifies.
		vals, err := c.DecodeNew(tn)
		switch {
		case err != nil:
			checkErr(t, "DecodeNew "+tn.Name, err)
		case int64(len(vals)) != tn.Elements():
			t.Errorf("tensor %q: %d values for %d elements", tn.Name, len(vals), tn.Elements())
		case tn.Elements() > 8*size+64:
			t.Errorf("tensor %q: %d elements from a %d-byte checkpoint", tn.Name, tn.Elements(), size)
		default:
			// The last row again, through the row path. (Only for tensors
			// that decoded: an unknown type's shape is not bounded by the
			// file, so a row buffer sized from it could be anything.)
			if rows := tn.Elements() / max(tn.RowLen(), 1); rows > 0 && tn.RowLen() > 0 {
				dst := make([]float32, tn.RowLen())
				if err := c.DecodeRows(tn, rows-1, rows, dst); err != nil {
					checkErr(t, "DecodeRows "+tn.Name, err)
				} else if n := int64(len(dst)); !sameBits(dst, vals[int64(len(vals))-n:]) {
					t.Errorf("tensor %q: DecodeRows of the last row differs from DecodeNew", tn.Name)
				}
			}
		}
		if err := c.ReadRaw(tn, func(b []byte) error {
			if int64(len(b)) != tn.Bytes {
				t.Errorf("tensor %q: ReadRaw gave %d bytes, want %d", tn.Name, len(b), tn.Bytes)
			}
			return nil
		}); err != nil {
			checkErr(t, "ReadRaw "+tn.Name, err)
		}
	}
	findLayers(t, c)
	if g := c.GGUF(); g != nil {
		for i := range g.KVs {
			kv := &g.KVs[i]
			if kv.Type != gguf.Array {
				continue
			}
			n := int(min(kv.Count, 16))
			if _, err := c.MetaArray(kv, 0, n); err != nil {
				checkErr(t, "MetaArray "+kv.Key, err)
			}
			if kv.Count > 16 {
				if _, err := c.MetaArray(kv, int(kv.Count)-n, n); err != nil {
					checkErr(t, "MetaArray tail "+kv.Key, err)
				}
			}
		}
	}
}

// findLayers runs the layer finder and extracts every layer it finds.
func findLayers(t *testing.T, c *formats.Checkpoint) {
	m, err := formats.FindModel(c, formats.FindOptions{})
	if err != nil {
		checkErr(t, "FindModel", err)
		return
	}
	g := m.Geometry()
	if g.NHeads < 0 || g.NKVHeads < 0 || g.HeadDim < 0 {
		t.Errorf("negative geometry %+v", g)
	}
	if err := m.HeadsKnown(); err != nil {
		checkErr(t, "HeadsKnown", err)
	}
	_ = m.Describe()
	for _, i := range m.LayerIndices() {
		if _, err := m.LoadLayer(i); err != nil {
			checkErr(t, "LoadLayer", err)
		}
	}
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// writeTemp writes b to name in dir, replacing what was there.
func writeTemp(t *testing.T, dir, name string, b []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func stSeed(f *testing.F, ts []safetensors.WriteTensor, meta [][2]string) {
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, ts, meta); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
}

func rawTensor(name string, t dtype.Type, shape []int64, b []byte) safetensors.WriteTensor {
	return safetensors.WriteTensor{Name: name, DType: t, Shape: shape, Size: int64(len(b)),
		Write: func(w io.Writer) error { _, err := w.Write(b); return err }}
}

func FuzzOpenSafetensors(f *testing.F) {
	stSeed(f, []safetensors.WriteTensor{safetensors.F32Tensor("a", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
		rawTensor("b", dtype.BF16, []int64{4}, []byte{0, 0x3f, 0, 0x40, 0x80, 0x7f, 0xc0, 0x7f}),
		rawTensor("s", dtype.F16, []int64{}, []byte{0, 0x3c})}, [][2]string{{"format", "pt"}})
	stSeed(f, nil, nil)
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\":{}}"))
	addFileSeeds(f, false, "testdata/dtypes/*.safetensors", "testdata/hostile/st-*.safetensors", "testdata/hostile/*/*.safetensors")
	addFileSeeds(f, true, "fixtures/safetensors/*/*.safetensors")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := writeTemp(t, dir, "model.safetensors", b)
		withDeadline(t, func() { exercise(t, p) })
	})
}

func ggufSeed(f *testing.F, w *gguf.Writer) {
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
}

func FuzzOpenGGUF(f *testing.F) {
	kvs := []gguf.KV{
		{Key: "general.architecture", Type: gguf.String, Value: "llama"},
		{Key: "llama.attention.head_count", Type: gguf.Uint32, Value: uint32(2)},
		{Key: "toks", Type: gguf.Array, ElemType: gguf.String, Value: []string{"a", "bb", "", "ccc"}},
		{Key: "ids", Type: gguf.Array, ElemType: gguf.Int32, Value: []int32{1, -2, 3}},
		{Key: "nest", Type: gguf.Array, ElemType: gguf.Array, Value: []any{[]uint8{1, 2}, []any{[]int16{-7}}}},
	}
	q8 := make([]byte, 34)
	q8[1] = 0x3c // scale 1.0
	for i := 2; i < 34; i++ {
		q8[i] = byte(i * 5)
	}
	f32 := make([]byte, 32)
	for i := 0; i < 8; i++ {
		binary.LittleEndian.PutUint32(f32[4*i:], math.Float32bits(float32(i)-3.5))
	}
	tensors := []gguf.WriterTensor{
		{Name: "a", Dims: []uint64{4, 2}, Type: dtype.F32, Data: f32},
		{Name: "q", Dims: []uint64{32}, Type: dtype.Q8_0, Data: q8},
		{Name: "u", Dims: []uint64{8}, Type: dtype.FromGGML(77), Data: make([]byte, 8)},
	}
	for _, v := range []uint32{1, 2, 3} {
		ggufSeed(f, &gguf.Writer{Version: v, KVs: kvs, Tensors: tensors})
	}
	ggufSeed(f, &gguf.Writer{Version: 3, BigEndian: true, KVs: kvs, Tensors: tensors[:1]})
	ggufSeed(f, &gguf.Writer{Version: 3, Alignment: 64, KVs: kvs[:1], Tensors: tensors[:2]})
	ggufSeed(f, tinyLlamaGGUF(false))
	ggufSeed(f, tinyLlamaGGUF(true))
	addFileSeeds(f, false, "testdata/hostile/gguf-*.gguf", "testdata/hostile/*/*.gguf")
	addFileSeeds(f, true, "fixtures/gguf/*/*.gguf")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := writeTemp(t, dir, "model.gguf", b)
		withDeadline(t, func() { exercise(t, p) })
	})
}

// tinyLlamaGGUF is a one-layer Llama GGUF (d_model 8, 2 query heads of 4,
// 1 KV head) small enough for the mutator, so that it reaches the layer
// finder's use of GGUF metadata.
func tinyLlamaGGUF(quant bool) *gguf.Writer {
	u32 := func(k string, v uint32) gguf.KV { return gguf.KV{Key: k, Type: gguf.Uint32, Value: v} }
	mat := func(name string, in, out uint64) gguf.WriterTensor {
		if quant && in%32 == 0 {
			b := make([]byte, out*in/32*34)
			for i := range b {
				b[i] = byte(i * 7)
			}
			return gguf.WriterTensor{Name: name, Dims: []uint64{in, out}, Type: dtype.Q8_0, Data: b}
		}
		b := make([]byte, 4*in*out)
		for i := uint64(0); i < in*out; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(i%7)-3))
		}
		return gguf.WriterTensor{Name: name, Dims: []uint64{in, out}, Type: dtype.F32, Data: b}
	}
	d := uint64(8)
	if quant {
		d = 32
	}
	return &gguf.Writer{KVs: []gguf.KV{
		{Key: "general.architecture", Type: gguf.String, Value: "llama"},
		u32("llama.embedding_length", uint32(d)), u32("llama.block_count", 1),
		u32("llama.attention.head_count", 2), u32("llama.attention.head_count_kv", 1),
		u32("llama.rope.dimension_count", uint32(d/2)),
	}, Tensors: []gguf.WriterTensor{
		mat("blk.0.attn_q.weight", d, d), mat("blk.0.attn_k.weight", d, d/2),
		mat("blk.0.attn_v.weight", d, d/2), mat("blk.0.attn_output.weight", d, d),
	}}
}

// smallModel is a valid safetensors file beside which config.json is fuzzed.
func smallModel(f *testing.F) []byte {
	var buf bytes.Buffer
	err := safetensors.Write(&buf, []safetensors.WriteTensor{
		safetensors.F32Tensor("model.layers.0.self_attn.q_proj.weight", []int64{4, 4}, make([]float32, 16)),
		safetensors.F32Tensor("model.layers.0.self_attn.k_proj.weight", []int64{4, 4}, make([]float32, 16)),
		safetensors.F32Tensor("model.layers.0.self_attn.v_proj.weight", []int64{4, 4}, make([]float32, 16)),
		safetensors.F32Tensor("model.layers.0.self_attn.o_proj.weight", []int64{4, 4}, make([]float32, 16)),
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

var configSeeds = []string{
	`{}`, `[]`, `null`, `1`, `"x"`, `{"a":1}garbage`, `{"a":`, "\xff{}", `{"a":1e999}`,
	`{"model_type":"llama","hidden_size":4,"num_attention_heads":2,"num_key_value_heads":1,"head_dim":2}`,
	`{"model_type":"llama","hidden_size":4,"num_attention_heads":0}`,
	`{"model_type":"llama","hidden_size":4,"num_attention_heads":-3,"head_dim":-1}`,
	`{"model_type":"llama","hidden_size":4,"num_attention_heads":3}`,
	`{"model_type":"llama","hidden_size":9223372036854775807,"num_attention_heads":4611686018427387904}`,
	`{"model_type":"llama","hidden_size":"4","num_attention_heads":2.5}`,
	`{"model_type":"gpt2","n_embd":4,"n_head":2}`,
	`{"text_config":{"model_type":"llama","hidden_size":4,"num_attention_heads":2}}`,
	`{"architectures":["LlamaForCausalLM"],"rope_scaling":{"type":"linear","factor":2}}`,
}

func addConfigSeeds(f *testing.F) {
	for _, s := range configSeeds {
		f.Add([]byte(s))
	}
	addFileSeeds(f, false, "testdata/tiny-llama/config.json", "testdata/hostile/*/config.json")
	addFileSeeds(f, true, "fixtures/safetensors/*/config.json", "reference/zoo/*/config.json", "reference/zoo/*/*/config.json")
}

// FuzzConfigJSON fuzzes config.json beside a valid model: Open either reads
// it as an object or says what is wrong with it, naming config.json.
func FuzzConfigJSON(f *testing.F) {
	addConfigSeeds(f)
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), smallModel(f), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := writeTemp(t, dir, "config.json", b)
		withDeadline(t, func() {
			c, err := formats.Open(dir, formats.Options{})
			if err != nil {
				checkErr(t, "Open", err)
				var fe *formats.Error
				if errors.As(err, &fe) && fe.File != cfg {
					t.Errorf("error %q names %q, want config.json", err, fe.File)
				}
				return
			}
			defer c.Close()
			if c.Config == nil || c.ConfigPath != cfg {
				t.Errorf("config.json opened but Config is %v, ConfigPath %q", c.Config, c.ConfigPath)
			}
		})
	})
}

// FuzzFindModel fuzzes config.json beside the tiny Llama of testdata and
// runs the layer finder and every layer's extraction on what it gives.
func FuzzFindModel(f *testing.F) {
	addConfigSeeds(f)
	src := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama", "model.safetensors")
	model, err := os.ReadFile(src)
	if err != nil {
		f.Skipf("%v (run go generate ./...)", err)
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), model, 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		writeTemp(t, dir, "config.json", b)
		withDeadline(t, func() {
			c, err := formats.Open(dir, formats.Options{})
			if err != nil {
				checkErr(t, "Open", err)
				return
			}
			defer c.Close()
			findLayers(t, c)
		})
	})
}

// smallAdapter is a PEFT LoRA adapter for layer 0's q_proj and v_proj
// (d_model 8, rank 2) beside which adapter_config.json is fuzzed.
func smallAdapter(f *testing.F) []byte {
	var ts []safetensors.WriteTensor
	for _, proj := range []string{"q_proj", "v_proj"} {
		p := "base_model.model.model.layers.0.self_attn." + proj
		a, b := make([]float32, 2*8), make([]float32, 8*2)
		for i := range a {
			a[i], b[i] = float32(i%5)-2, float32(i%3)-1
		}
		ts = append(ts, safetensors.F32Tensor(p+".lora_A.weight", []int64{2, 8}, a),
			safetensors.F32Tensor(p+".lora_B.weight", []int64{8, 2}, b))
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, ts, nil); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzAdapterConfig fuzzes adapter_config.json beside a small LoRA adapter:
// the scale and rank rules read numbers from it.
func FuzzAdapterConfig(f *testing.F) {
	for _, s := range []string{
		`{"r":2,"lora_alpha":4,"peft_type":"LORA","base_model_name_or_path":"x"}`,
		`{"r":2,"lora_alpha":4,"use_rslora":true}`,
		`{"r":0,"lora_alpha":0}`, `{"r":-2,"lora_alpha":1e308}`, `{"lora_alpha":"4"}`, `{}`, `[]`,
		`{"r":2,"lora_alpha":4,"rank_pattern":{"q_proj":1},"alpha_pattern":{"model.layers.0.self_attn.v_proj":8}}`,
		`{"lora_parameters":{"rank":2,"alpha":4,"scale":2.0}}`, `{"lora_parameters":{"scale":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	addFileSeeds(f, true, "fixtures/lora/*/adapter_config.json")
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), smallAdapter(f), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		writeTemp(t, dir, "adapter_config.json", b)
		withDeadline(t, func() {
			c, err := formats.Open(dir, formats.Options{})
			if err != nil {
				checkErr(t, "Open", err)
				return
			}
			defer c.Close()
			findLayers(t, c)
		})
	})
}
