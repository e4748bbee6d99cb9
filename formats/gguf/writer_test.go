package gguf

import (
	"bytes"
	"testing"

	"github.com/qkvdev/qkv/formats/dtype"
)

// TestWriterBytes compares the writer's output with files assembled by hand
// field by field.
func TestWriterBytes(t *testing.T) {
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	override := uint64(4096)
	for _, c := range []struct {
		name     string
		version  uint32
		be       bool
		override *uint64
	}{
		{"v3 LE", 3, false, nil},
		{"v3 BE", 3, true, nil},
		{"v1 LE", 1, false, nil},
		{"v1 BE", 1, true, nil},
		{"v2 LE offset override", 2, false, &override},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &Writer{Version: c.version, BigEndian: c.be,
				KVs: []KV{{Key: "k", Type: Uint32, Value: 1}},
				Tensors: []WriterTensor{
					{Name: "w", Dims: []uint64{2}, Type: dtype.F32, Data: data, OffsetOverride: c.override},
					{Name: "v", Dims: []uint64{1, 1}, Type: dtype.F16, Data: data[:2]},
				}}
			got := writeFile(t, w)
			b := &build{be: c.be, v1: c.version == 1}
			b.header(c.version, 2, 1)
			b.kvU32("k", 1)
			off := uint64(0)
			if c.override != nil {
				off = *c.override
			}
			b.tensor("w", []uint64{2}, 0, off)
			b.tensor("v", []uint64{1, 1}, 1, 32)
			b.padTo(32)
			b.raw(data...)
			b.padTo(32)
			b.raw(data[:2]...)
			b.padTo(32)
			if !bytes.Equal(got, b.b) {
				t.Errorf("writer output differs from the hand-built file\n got % x\nwant % x", got, b.b)
			}
		})
	}
}

func TestWriterTypedValues(t *testing.T) {
	w := &Writer{KVs: []KV{
		{Key: "i", Type: Int16, Value: -5},          // Go int converted
		{Key: "u", Type: Uint8, Value: uint64(200)}, // range-checked
		{Key: "f", Type: Float32, Value: 0.5},       // float64 converted
		{Key: "s", Type: Array, ElemType: String, Value: []string{"a", "b"}},
		{Key: "b", Type: Array, ElemType: Uint8, Value: []byte{9}},
		{Key: "n", Type: Array, ElemType: Array, Value: []any{KV{ElemType: Int64, Value: []int64{}}, []float64{1}}},
	}}
	f, err := Parse(writeFile(t, w), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{int16(-5), uint8(200), float32(0.5), []any{"a", "b"}, []any{uint8(9)}, []any{[]any{}, []any{1.0}}}
	for i, kv := range f.KVs {
		if got := kv.Value; !equalValue(got, want[i]) {
			t.Errorf("%s = %#v, want %#v", kv.Key, got, want[i])
		}
	}
}

func equalValue(a, b any) bool {
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok != bok {
		return false
	}
	if !aok {
		return a == b
	}
	if len(as) != len(bs) {
		return false
	}
	for i := range as {
		if !equalValue(as[i], bs[i]) {
			return false
		}
	}
	return true
}

func TestWriterErrors(t *testing.T) {
	cases := []struct {
		w    Writer
		want string
	}{
		{Writer{KVs: []KV{{Key: "x", Type: Uint8, Value: 256}}}, `gguf writer: key "x": value 256 out of range for uint8`},
		{Writer{KVs: []KV{{Key: "x", Type: Int8, Value: -129}}}, `gguf writer: key "x": value -129 out of range for int8`},
		{Writer{KVs: []KV{{Key: "x", Type: String, Value: 3}}}, `gguf writer: key "x": value 3 (int) is not a string`},
		{Writer{KVs: []KV{{Key: "x", Type: Float64, Value: "1"}}}, `gguf writer: key "x": value 1 (string) is not a float`},
		{Writer{KVs: []KV{{Key: "x", Type: Array, ElemType: Bool, Value: 7}}}, `gguf writer: key "x": array value int is not a slice`},
		{Writer{KVs: []KV{{Key: "x", Type: ValueType(20), Value: 7}}}, `gguf writer: key "x": cannot encode value type type 20`},
		{Writer{Tensors: []WriterTensor{{Name: "t", Dims: []uint64{1}}}}, `gguf writer: tensor "t": type invalid has no GGML id`},
		{Writer{Version: 1, Tensors: []WriterTensor{{Name: "t", Dims: []uint64{1 << 32}, Type: dtype.F32}}}, `gguf writer: tensor "t": length 4294967296 does not fit a version 1 u32`},
		{Writer{Alignment: 1 << 33}, `gguf writer: alignment 8589934592 does not fit general.alignment (uint32)`},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		_, err := c.w.WriteTo(&buf)
		if err == nil || err.Error() != c.want {
			t.Errorf("error %v, want %q", err, c.want)
		}
		if buf.Len() != 0 { // the header is built before anything is written
			t.Errorf("wrote %d bytes on error", buf.Len())
		}
	}
}
