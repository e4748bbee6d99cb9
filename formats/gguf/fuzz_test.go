package gguf

import (
	"errors"
	"fmt"
	"testing"

	"github.com/qkvdev/qkv/formats/dtype"
)

// fuzzSeeds are small valid files of every version and byte order, plus the
// malformed inputs of the error table.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	kvs := []KV{
		{Key: "general.architecture", Type: String, Value: "llama"},
		{Key: "n", Type: Uint32, Value: uint32(2)},
		{Key: "f", Type: Float64, Value: 0.5},
		{Key: "toks", Type: Array, ElemType: String, Value: []string{"a", "bb", "", "ccc", "d", "e"}},
		{Key: "nest", Type: Array, ElemType: Array, Value: []any{[]int8{1, -1}, []any{[]uint16{7}}}},
	}
	tensors := []WriterTensor{
		{Name: "a", Dims: []uint64{4, 2}, Type: dtype.F32, Data: make([]byte, 32)},
		{Name: "b", Dims: []uint64{32}, Type: dtype.Q8_0, Data: make([]byte, 34)},
		{Name: "c", Dims: []uint64{64}, Type: dtype.FromGGML(41), Data: make([]byte, 10)},
	}
	for _, v := range []uint32{1, 2, 3} {
		for _, be := range []bool{false, true} {
			seeds = append(seeds, writeFile(t, &Writer{Version: v, BigEndian: be, KVs: kvs, Tensors: tensors}))
		}
	}
	seeds = append(seeds, writeFile(t, &Writer{Alignment: 8, KVs: kvs[:2]}))
	for _, c := range errCases {
		w := &build{}
		c.build(w)
		seeds = append(seeds, w.b)
	}
	return seeds
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data)
		checkPrefixes(t, data)
	})
}

// checkParse asserts what must hold for any input: no panic, errors are
// *Error with an offset inside the data, and a parsed file is consistent
// and its arrays decode.
func checkParse(t *testing.T, data []byte) {
	file, err := Parse(data, Options{LazyArrayMax: 2})
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) {
			t.Fatalf("error %v is %T, not *Error", err, err)
		}
		if pe.Offset < 0 || pe.Offset > int64(len(data)) {
			t.Fatalf("error offset %d outside the %d bytes: %v", pe.Offset, len(data), err)
		}
		return
	}
	if file.Alignment == 0 || file.DataOffset%int64(file.Alignment) != 0 || file.Size != int64(len(data)) {
		t.Fatalf("alignment %d, data offset %d, size %d", file.Alignment, file.DataOffset, file.Size)
	}
	for i := range file.KVs {
		kv := &file.KVs[i]
		if kv.Type != Array {
			continue
		}
		n := int(min(kv.Count, 100))
		if _, err := file.Array(data, kv, 0, n); err != nil {
			t.Fatalf("Array(%q, 0, %d): %v", kv.Key, n, err)
		}
		if kv.Count > 0 {
			if _, err := file.Array(data, kv, int(kv.Count-1), 1); err != nil {
				t.Fatalf("Array(%q, last): %v", kv.Key, err)
			}
		}
	}
	for i := range file.Tensors {
		if s, e, ok := file.DataRange(&file.Tensors[i]); ok && (s < file.DataOffset || e > file.Size) {
			t.Fatalf("tensor %q data [%d, %d) outside the file", file.Tensors[i].Name, s, e)
		}
	}
	// Eager and lazy parses must agree.
	eager, err := Parse(data, Options{LazyArrayMax: 1 << 20})
	if err != nil || len(eager.KVs) != len(file.KVs) || len(eager.Tensors) != len(file.Tensors) {
		t.Fatalf("eager parse differs: %v", err)
	}
	// Each array decodes from a window holding just its bytes.
	for i := range file.KVs {
		kv := &file.KVs[i]
		if kv.Type != Array || kv.Count == 0 {
			continue
		}
		off, n := kv.ArrayRange()
		w := data[off : off+n]
		a, err1 := file.ArrayAt(w, off, kv, int(kv.Count-1), 1)
		b, err2 := file.Array(data, kv, int(kv.Count-1), 1)
		if err1 != nil || err2 != nil || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("ArrayAt(%q): %v %v / %v %v", kv.Key, a, err1, b, err2)
		}
	}
}

// checkPrefixes asserts that a prefix of the file parsed with the file's
// size gives either ErrTruncated or exactly what the whole file gives: a
// header read over the network behaves as the local file does.
func checkPrefixes(t *testing.T, data []byte) {
	whole, werr := Parse(data, Options{LazyArrayMax: 2})
	step := max(1, len(data)/300)
	for n := 0; n < len(data); n += step {
		f, err := Parse(data[:n], Options{LazyArrayMax: 2, Size: int64(len(data))})
		switch {
		case errors.Is(err, ErrTruncated):
			var pe *Error
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > int64(len(data)) {
				t.Fatalf("prefix %d: truncation %v is not an *Error inside the file", n, err)
			}
		case err != nil:
			if werr == nil || err.Error() != werr.Error() {
				t.Fatalf("prefix %d of %d: %v, the whole file: %v", n, len(data), err, werr)
			}
		default:
			if werr != nil {
				t.Fatalf("prefix %d of %d parses, the whole file: %v", n, len(data), werr)
			}
			if fmt.Sprintf("%+v", f) != fmt.Sprintf("%+v", whole) {
				t.Fatalf("prefix %d of %d parses differently:\n%+v\n%+v", n, len(data), f, whole)
			}
		}
	}
	if errors.Is(werr, ErrTruncated) {
		t.Fatalf("the whole file gives a truncation: %v", werr)
	}
}

// TestFuzzSeeds runs the fuzz body on the seeds and on every truncation and
// single-byte corruption of one seed, so that go test covers it without -fuzz.
func TestFuzzSeeds(t *testing.T) {
	seeds := fuzzSeeds(t)
	for _, s := range seeds {
		checkParse(t, s)
		checkPrefixes(t, s)
	}
	for _, s := range seeds[:6] {
		for n := 0; n < len(s); n++ {
			checkParse(t, s[:n])
		}
	}
	s := append([]byte(nil), seeds[5]...) // v3 big-endian
	for i := range s {
		for _, v := range []byte{0x00, 0x01, 0x7F, 0xFF} {
			old := s[i]
			s[i] = v
			checkParse(t, s)
			if i%16 == 0 {
				checkPrefixes(t, s)
			}
			s[i] = old
		}
	}
}

// TestParseVocabAllocations checks that the big token arrays are walked,
// not decoded: parsing allocates per key, never per token.
func TestParseVocabAllocations(t *testing.T) {
	data := readShared(t, "fixtures/gguf/vocab/ggml-vocab-falcon.gguf")
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := Parse(data, Options{}); err != nil {
			t.Fatal(err)
		}
	})
	// 18 keys, 130k strings in arrays.
	if allocs > 200 {
		t.Errorf("Parse made %.0f allocations, want at most 200", allocs)
	}
}

func BenchmarkParseVocab(b *testing.B) {
	data := readShared(b, "fixtures/gguf/vocab/ggml-vocab-falcon.gguf")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseModel(b *testing.B) {
	data := readShared(b, "fixtures/gguf/stories260k-v3-f32/stories260K.gguf")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
