package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/x448/float16"

	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/gguf"
)

// legacyFlatRun writes a GGUF v2 Llama quantized to Q8_0 the way 2023's
// tools did for a feed-forward tensor whose rows are not whole blocks:
// blk.0.ffn_down (ne [44, 32], 1408 elements) is one flat run of 44 Q8_0
// blocks over the whole tensor. Its attention tensors are ordinary Q8_0.
// Each block is a float16 scale d then 32 int8 quants: value = d · q.
func (g *gen) legacyFlatRun() {
	r := rand.New(rand.NewPCG(2023, 8))
	const d, heads, kvHeads, hd, ff = 32, 4, 2, 8, 44
	q80 := func(n int) []byte {
		var b []byte
		for blk := 0; blk < n/32; blk++ {
			scale := float16.Fromfloat32(float32(0.001 + 0.01*r.Float64()))
			b = binary.LittleEndian.AppendUint16(b, scale.Bits())
			for i := 0; i < 32; i++ {
				b = append(b, byte(int8(r.IntN(255)-127)))
			}
		}
		return b
	}
	f32 := func(n int) []byte {
		var b []byte
		for i := 0; i < n; i++ {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(1+float32(r.NormFloat64()*0.1)))
		}
		return b
	}
	t := func(name string, typ dtype.Type, data []byte, dims ...uint64) gguf.WriterTensor {
		return gguf.WriterTensor{Name: name, Dims: dims, Type: typ, Data: data}
	}
	u32 := func(k string, v uint32) gguf.KV { return gguf.KV{Key: "llama." + k, Type: gguf.Uint32, Value: v} }
	w := &gguf.Writer{Version: 2, Alignment: 32, KVs: []gguf.KV{
		{Key: "general.architecture", Type: gguf.String, Value: "llama"},
		{Key: "general.name", Type: gguf.String, Value: "qkv legacy flat-run Q8_0"},
		u32("embedding_length", d), u32("block_count", 1), u32("feed_forward_length", ff),
		u32("attention.head_count", heads), u32("attention.head_count_kv", kvHeads), u32("rope.dimension_count", hd),
		{Key: "llama.attention.layer_norm_rms_epsilon", Type: gguf.Float32, Value: float32(1e-5)},
		{Key: "general.file_type", Type: gguf.Uint32, Value: uint32(7)},
	}, Tensors: []gguf.WriterTensor{
		t("token_embd.weight", dtype.F32, f32(16*d), d, 16),
		t("blk.0.attn_norm.weight", dtype.F32, f32(d), d),
		t("blk.0.attn_q.weight", dtype.Q8_0, q80(heads*hd*d), d, heads*hd),
		t("blk.0.attn_k.weight", dtype.Q8_0, q80(kvHeads*hd*d), d, kvHeads*hd),
		t("blk.0.attn_v.weight", dtype.Q8_0, q80(kvHeads*hd*d), d, kvHeads*hd),
		t("blk.0.attn_output.weight", dtype.Q8_0, q80(d*heads*hd), heads*hd, d),
		t("blk.0.ffn_norm.weight", dtype.F32, f32(d), d),
		t("blk.0.ffn_down.weight", dtype.Q8_0, q80(ff*d), ff, d),
		t("output_norm.weight", dtype.F32, f32(d), d),
	}}
	if (ff*d)%32 != 0 {
		panic(fmt.Sprint("flat run of ", ff*d, " elements"))
	}
	g.gguf(filepath.Join(g.root, "gguf", "legacy-q8_0-flat-run.gguf"), w)
}
