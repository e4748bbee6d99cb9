package testref

import (
	"bytes"
	"encoding/binary"
	"math"
	"path/filepath"
	"reflect"
	"testing"
)

// handGGUF writes a small GGUF by hand, field by field, in the given
// version and byte order: 3 pairs (a string, a float32, an array of 3
// uint16) and 2 tensors.
func handGGUF(version uint32, be bool) []byte {
	var b bytes.Buffer
	var o binary.ByteOrder = binary.LittleEndian
	if be {
		o = binary.BigEndian
	}
	u32 := func(v uint32) { binary.Write(&b, o, v) }
	u64 := func(v uint64) { binary.Write(&b, o, v) }
	size := func(v uint64) {
		if version == 1 {
			u32(uint32(v))
		} else {
			u64(v)
		}
	}
	str := func(s string) { size(uint64(len(s))); b.WriteString(s) }
	b.WriteString("GGUF")
	u32(version)
	size(2) // tensors
	size(3) // kvs
	str("general.name")
	u32(GGUFString)
	str("hand")
	str("x.eps")
	u32(GGUFFloat32)
	u32(math.Float32bits(1e-5))
	str("x.arr")
	u32(GGUFArray)
	u32(GGUFUint16)
	size(3)
	binary.Write(&b, o, []uint16{7, 8, 9})
	str("a")
	u32(2)
	size(32)
	size(3)
	u32(8) // Q8_0
	u64(0)
	str("bb")
	u32(1)
	size(5)
	u32(0) // F32
	u64(3 * 34)
	return b.Bytes()
}

func TestParseGGUFByHand(t *testing.T) {
	for _, c := range []struct {
		version uint32
		be      bool
	}{
		{1, false}, {2, false}, {3, false}, {3, true}, {2, true},
	} {
		data := handGGUF(c.version, c.be)
		f, err := ParseGGUF(data, 2)
		if err != nil {
			t.Fatalf("v%d be=%v: %v", c.version, c.be, err)
		}
		if f.Version != c.version || f.BigEndian != c.be {
			t.Errorf("v%d be=%v: read version %d big-endian %v", c.version, c.be, f.Version, f.BigEndian)
		}
		if len(f.KVs) != 3 || len(f.Tensors) != 2 {
			t.Fatalf("v%d be=%v: %d kvs %d tensors", c.version, c.be, len(f.KVs), len(f.Tensors))
		}
		if f.KVs[0].Value != "hand" || f.KVs[1].Value != float32(1e-5) {
			t.Errorf("values %#v %#v", f.KVs[0].Value, f.KVs[1].Value)
		}
		arr := f.KVs[2]
		if arr.Type != GGUFArray || arr.ElemType != GGUFUint16 || arr.Count != 3 || !reflect.DeepEqual(arr.Value, []any{uint16(7), uint16(8)}) {
			t.Errorf("array %+v", arr)
		}
		if f.KVs[0].Offset != int64(8+2*sizeLen(c.version)) {
			t.Errorf("first kv offset %d", f.KVs[0].Offset)
		}
		a, bb := f.Tensors[0], f.Tensors[1]
		if a.Name != "a" || !reflect.DeepEqual(a.Dims, []uint64{32, 3}) || a.Type != 8 || a.Offset != 0 {
			t.Errorf("tensor a %+v", a)
		}
		if n, ok := a.Bytes(); !ok || n != 3*34 || !reflect.DeepEqual(a.Shape(), []int64{3, 32}) {
			t.Errorf("tensor a bytes %d shape %v", n, a.Shape())
		}
		if bb.Name != "bb" || bb.Offset != 102 || bb.Type != 0 {
			t.Errorf("tensor bb %+v", bb)
		}
		if f.DataOffset != int64((len(data)+31)/32*32) {
			t.Errorf("data offset %d for a header of %d bytes", f.DataOffset, len(data))
		}
		// Every truncation is an error, never a panic.
		for n := 0; n < len(data); n++ {
			if _, err := ParseGGUF(data[:n], -1); err == nil {
				t.Errorf("v%d be=%v: %d of %d bytes parsed without error", c.version, c.be, n, len(data))
			}
		}
	}
}

func sizeLen(version uint32) int {
	if version == 1 {
		return 4
	}
	return 8
}

// TestReadGGUFShared checks the reader on facts from the fixtures'
// VERIFY.txt (gguf-py's dump and an independent lenient parse).
func TestReadGGUFShared(t *testing.T) {
	shared := SharedDir(t)
	v3, err := ReadGGUF(filepath.Join(shared, "fixtures/gguf/stories260k-v3-f32/stories260K.gguf"), 6)
	if err != nil {
		t.Fatal(err)
	}
	if v3.Version != 3 || len(v3.KVs) != 19 || len(v3.Tensors) != 48 {
		t.Errorf("v3: version %d, %d kvs, %d tensors; want 3, 19, 48", v3.Version, len(v3.KVs), len(v3.Tensors))
	}
	tok := v3.KV("tokenizer.ggml.tokens")
	if tok == nil || tok.Count != 512 || !reflect.DeepEqual(tok.Value, []any{"<unk>", "<s>", "</s>", "<0x00>", "<0x01>", "<0x02>"}) {
		t.Errorf("tokens %+v", tok)
	}
	if kv := v3.KV("tokenizer.ggml.seperator_token_id"); kv == nil || kv.Value != uint32(4294967295) {
		t.Errorf("seperator_token_id %+v", kv)
	}
	if kv := v3.KV("llama.attention.layer_norm_rms_epsilon"); kv == nil || kv.Value != float32(9.999999747378752e-06) {
		t.Errorf("eps %+v", kv)
	}
	if tt := v3.Tensors[0]; tt.Name != "token_embd.weight" || !reflect.DeepEqual(tt.Dims, []uint64{64, 512}) || tt.Type != 0 {
		t.Errorf("first tensor %+v", tt)
	}
	v1, err := ReadGGUF(filepath.Join(shared, "fixtures/gguf/stories260k-v1-f32/tinyllamas-stories-260k-f32.gguf"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != 1 || len(v1.KVs) != 18 || len(v1.Tensors) != 48 || v1.DataOffset != 11456 || v1.Size != 1182656 {
		t.Errorf("v1: version %d, %d kvs, %d tensors, data at %d, size %d", v1.Version, len(v1.KVs), len(v1.Tensors), v1.DataOffset, v1.Size)
	}
	last := v1.Tensors[len(v1.Tensors)-1]
	if last.Name != "output.weight" || last.Offset != 1040128 || !reflect.DeepEqual(last.Dims, []uint64{64, 512}) {
		t.Errorf("v1 last tensor %+v", last)
	}
}
