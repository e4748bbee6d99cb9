package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/dtype"
)

// build assembles GGUF bytes by hand, independently of Writer, so that the
// error tests control every field and know every offset.
type build struct {
	b  []byte
	be bool
	v1 bool
}

func (w *build) order() binary.AppendByteOrder {
	if w.be {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func (w *build) at() int64       { return int64(len(w.b)) }
func (w *build) raw(p ...byte)   { w.b = append(w.b, p...) }
func (w *build) u32(v uint32)    { w.b = w.order().AppendUint32(w.b, v) }
func (w *build) u64(v uint64)    { w.b = w.order().AppendUint64(w.b, v) }
func (w *build) zeros(n int)     { w.b = append(w.b, make([]byte, n)...) }
func (w *build) typ(t ValueType) { w.u32(uint32(t)) }
func (w *build) str(s string)    { w.n(uint64(len(s))); w.b = append(w.b, s...) }
func (w *build) padTo(align int) { w.zeros((align - len(w.b)%align) % align) }
func (w *build) kvU32(k string, v uint32) {
	w.str(k)
	w.typ(Uint32)
	w.u32(v)
}

// n writes a length/count/ne field: u32 in v1, u64 after.
func (w *build) n(v uint64) {
	if w.v1 {
		w.u32(uint32(v))
	} else {
		w.u64(v)
	}
}

// header writes magic, version, tensor count and kv count.
func (w *build) header(version uint32, nt, nkv uint64) {
	w.raw('G', 'G', 'U', 'F')
	w.u32(version)
	w.n(nt)
	w.n(nkv)
}

// tensor writes one tensor info.
func (w *build) tensor(name string, dims []uint64, typ uint32, off uint64) {
	w.str(name)
	w.u32(uint32(len(dims)))
	for _, d := range dims {
		w.n(d)
	}
	w.u32(typ)
	w.u64(off)
}

func TestValueTypeString(t *testing.T) {
	want := []string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}
	for i, w := range want {
		if got := ValueType(i).String(); got != w {
			t.Errorf("ValueType(%d) = %q, want %q", i, got, w)
		}
	}
	if got := ValueType(13).String(); got != "type 13" {
		t.Errorf("ValueType(13) = %q", got)
	}
}

// allScalars has one key of every scalar type, with values at the edges of
// their ranges.
func allScalars() []KV {
	return []KV{
		{Key: "u8", Type: Uint8, Value: uint8(255)},
		{Key: "i8", Type: Int8, Value: int8(-128)},
		{Key: "u16", Type: Uint16, Value: uint16(65535)},
		{Key: "i16", Type: Int16, Value: int16(-32768)},
		{Key: "u32", Type: Uint32, Value: uint32(4294967295)},
		{Key: "i32", Type: Int32, Value: int32(-2147483648)},
		{Key: "f32", Type: Float32, Value: float32(-1.5e-30)},
		{Key: "bool.t", Type: Bool, Value: true},
		{Key: "bool.f", Type: Bool, Value: false},
		{Key: "str", Type: String, Value: "héllo, 世界"},
		{Key: "str.empty", Type: String, Value: ""},
		{Key: "u64", Type: Uint64, Value: uint64(math.MaxUint64)},
		{Key: "i64", Type: Int64, Value: int64(math.MinInt64)},
		{Key: "f64", Type: Float64, Value: math.Inf(-1)},
	}
}

func allArrays() []KV {
	return []KV{
		{Key: "a.u8", Type: Array, ElemType: Uint8, Value: []any{uint8(0), uint8(255)}},
		{Key: "a.i8", Type: Array, ElemType: Int8, Value: []any{int8(-1), int8(127)}},
		{Key: "a.u16", Type: Array, ElemType: Uint16, Value: []any{uint16(1), uint16(65535)}},
		{Key: "a.i16", Type: Array, ElemType: Int16, Value: []any{int16(-2)}},
		{Key: "a.u32", Type: Array, ElemType: Uint32, Value: []any{uint32(7), uint32(8), uint32(9)}},
		{Key: "a.i32", Type: Array, ElemType: Int32, Value: []any{int32(-7)}},
		{Key: "a.f32", Type: Array, ElemType: Float32, Value: []any{float32(0.25), float32(math.Inf(1))}},
		{Key: "a.bool", Type: Array, ElemType: Bool, Value: []any{true, false, true}},
		{Key: "a.str", Type: Array, ElemType: String, Value: []any{"a", "", "ccc"}},
		{Key: "a.u64", Type: Array, ElemType: Uint64, Value: []any{uint64(1 << 63)}},
		{Key: "a.i64", Type: Array, ElemType: Int64, Value: []any{int64(-1 << 62)}},
		{Key: "a.f64", Type: Array, ElemType: Float64, Value: []any{1e300, -0.5}},
		{Key: "a.empty", Type: Array, ElemType: Uint32, Value: []any{}},
		{Key: "a.nested", Type: Array, ElemType: Array, Value: []any{
			[]any{int32(1), int32(2)},
			[]any{"x", "y", "z"},
			[]any{[]any{uint8(3)}},
		}},
	}
}

// lazyArrays are longer than the default LazyArrayMax.
func lazyArrays() (kvs []KV, want map[string][]any) {
	want = map[string][]any{}
	var toks, nums, rows []any
	for i := 0; i < 5000; i++ {
		toks = append(toks, strings.Repeat("t", i%7)+string(rune('a'+i%26)))
		nums = append(nums, float32(i)/4)
	}
	for i := 0; i < 70; i++ {
		rows = append(rows, []any{uint16(i), uint16(i + 1)})
	}
	want["lazy.tokens"], want["lazy.scores"], want["lazy.nested"] = toks, nums, rows
	kvs = []KV{
		{Key: "lazy.tokens", Type: Array, ElemType: String, Value: toks},
		{Key: "lazy.scores", Type: Array, ElemType: Float32, Value: nums},
		{Key: "lazy.nested", Type: Array, ElemType: Array, Value: rows},
	}
	return kvs, want
}

func testTensors() []WriterTensor {
	f32 := make([]byte, 4*6*2)
	for i := range f32 {
		f32[i] = byte(i)
	}
	q8 := make([]byte, 34*4) // 4 Q8_0 blocks
	for i := range q8 {
		q8[i] = byte(255 - i)
	}
	return []WriterTensor{
		{Name: "w.f32", Dims: []uint64{6, 2}, Type: dtype.F32, Data: f32},
		{Name: "w.q8", Dims: []uint64{64, 1, 2}, Type: dtype.Q8_0, Data: q8},
		{Name: "w.fork", Dims: []uint64{128, 3}, Type: dtype.FromGGML(45), Data: make([]byte, 48)},
		{Name: "w.4d", Dims: []uint64{1, 2, 3, 4}, Type: dtype.F16, Data: make([]byte, 48)},
	}
}

func TestRoundTrip(t *testing.T) {
	lazy, lazyWant := lazyArrays()
	kvs := append(append(allScalars(), allArrays()...), lazy...)
	for _, version := range []uint32{1, 2, 3} {
		for _, be := range []bool{false, true} {
			for _, align := range []uint64{0, 64} {
				name := map[bool]string{false: "LE", true: "BE"}[be]
				t.Run(strings.Join([]string{"v" + string(rune('0'+version)), name, map[uint64]string{0: "align32", 64: "align64"}[align]}, "-"), func(t *testing.T) {
					w := &Writer{Version: version, BigEndian: be, Alignment: align, KVs: kvs, Tensors: testTensors()}
					var buf bytes.Buffer
					n, err := w.WriteTo(&buf)
					if err != nil {
						t.Fatal(err)
					}
					data := buf.Bytes()
					if n != int64(len(data)) {
						t.Errorf("WriteTo returned %d, wrote %d", n, len(data))
					}
					f, err := Parse(data, Options{})
					if err != nil {
						t.Fatal(err)
					}
					checkRoundTrip(t, f, data, w, lazyWant)
				})
			}
		}
	}
}

func checkRoundTrip(t *testing.T, f *File, data []byte, w *Writer, lazyWant map[string][]any) {
	t.Helper()
	if f.Version != w.Version || f.BigEndian != w.BigEndian {
		t.Errorf("version %d big-endian %v, want %d %v", f.Version, f.BigEndian, w.Version, w.BigEndian)
	}
	// The version field itself is in the file's byte order.
	wantVer := []byte{byte(w.Version), 0, 0, 0}
	if w.BigEndian {
		wantVer = []byte{0, 0, 0, byte(w.Version)}
	}
	if !bytes.Equal(data[4:8], wantVer) {
		t.Errorf("version bytes % x, want % x", data[4:8], wantVer)
	}
	wantAlign := uint64(32)
	nkv := len(w.KVs)
	if w.Alignment == 64 {
		wantAlign = 64
		nkv++ // the writer adds general.alignment
	}
	if f.Alignment != wantAlign {
		t.Errorf("alignment %d, want %d", f.Alignment, wantAlign)
	}
	if len(f.KVs) != nkv {
		t.Fatalf("%d KVs, want %d", len(f.KVs), nkv)
	}
	for i, want := range w.KVs {
		got := f.KVs[i]
		if got.Key != want.Key || got.Type != want.Type {
			t.Errorf("kv %d: %q %s, want %q %s", i, got.Key, got.Type, want.Key, want.Type)
			continue
		}
		if k, ok := f.Lookup(want.Key); !ok || k != &f.KVs[i] {
			t.Errorf("Lookup(%q) = %v, %v", want.Key, k, ok)
		}
		if i > 0 && got.Offset <= f.KVs[i-1].Offset {
			t.Errorf("kv %q offset %d not after the previous", got.Key, got.Offset)
		}
		if want.Type != Array {
			if got.Count != 1 || got.Lazy || !reflect.DeepEqual(got.Value, want.Value) {
				t.Errorf("kv %q = %#v (count %d, lazy %v), want %#v", got.Key, got.Value, got.Count, got.Lazy, want.Value)
			}
			continue
		}
		if got.ElemType != want.ElemType {
			t.Errorf("kv %q element type %s, want %s", got.Key, got.ElemType, want.ElemType)
		}
		wantVals, isLazy := lazyWant[want.Key]
		if !isLazy {
			wantVals = want.Value.([]any)
		}
		if got.Count != uint64(len(wantVals)) || got.Lazy != isLazy {
			t.Errorf("kv %q count %d lazy %v, want %d %v", got.Key, got.Count, got.Lazy, len(wantVals), isLazy)
			continue
		}
		if !isLazy && !reflect.DeepEqual(got.Value, wantVals) {
			t.Errorf("kv %q = %#v, want %#v", got.Key, got.Value, wantVals)
		}
		if isLazy && got.Value != nil {
			t.Errorf("kv %q is lazy but has a value", got.Key)
		}
		all, err := f.Array(data, &got, 0, int(got.Count))
		if err != nil {
			t.Errorf("Array(%q): %v", got.Key, err)
		} else if !reflect.DeepEqual(all, wantVals) {
			t.Errorf("Array(%q) differs", got.Key)
		}
	}
	if len(f.Tensors) != len(w.Tensors) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(w.Tensors))
	}
	if f.DataOffset%int64(wantAlign) != 0 {
		t.Errorf("data offset %d not aligned to %d", f.DataOffset, wantAlign)
	}
	for i, want := range w.Tensors {
		got := &f.Tensors[i]
		if byName, ok := f.Tensor(want.Name); !ok || byName != got {
			t.Errorf("Tensor(%q) = %v, %v", want.Name, byName, ok)
		}
		if got.Name != want.Name || !reflect.DeepEqual(got.Dims, want.Dims) || got.Type != want.Type {
			t.Errorf("tensor %d: %q %v %s, want %q %v %s", i, got.Name, got.Dims, got.Type, want.Name, want.Dims, want.Type)
		}
		if got.Offset%wantAlign != 0 {
			t.Errorf("tensor %q offset %d not aligned", got.Name, got.Offset)
		}
		start := f.DataOffset + int64(got.Offset)
		if !want.Type.Known() {
			if got.Bytes != -1 {
				t.Errorf("tensor %q of unknown type: Bytes %d, want -1", got.Name, got.Bytes)
			}
			continue
		}
		if got.Bytes != int64(len(want.Data)) {
			t.Errorf("tensor %q: Bytes %d, want %d", got.Name, got.Bytes, len(want.Data))
		}
		if s, e, ok := f.DataRange(got); !ok || s != start || !bytes.Equal(data[s:e], want.Data) {
			t.Errorf("tensor %q: data at [%d, %d) differs from what was written", got.Name, s, e)
		}
	}
}

// TestLazyArrayMax checks where arrays switch from decoded to lazy.
func TestLazyArrayMax(t *testing.T) {
	w := &Writer{KVs: []KV{
		{Key: "three", Type: Array, ElemType: Int32, Value: []int32{1, 2, 3}},
		{Key: "four", Type: Array, ElemType: Int32, Value: []int32{1, 2, 3, 4}},
		// Two elements, but four inner ones: lazy at 3.
		{Key: "nested", Type: Array, ElemType: Array, Value: []any{[]int32{1, 2}, []int32{3, 4}}},
	}}
	data := writeFile(t, w)
	cases := []struct {
		max  int
		lazy []bool
	}{
		{3, []bool{false, true, true}},
		{4, []bool{false, false, true}},
		{6, []bool{false, false, false}},
		{-1, []bool{true, true, true}},
		{0, []bool{false, false, false}}, // default 64
	}
	for _, c := range cases {
		f, err := Parse(data, Options{LazyArrayMax: c.max})
		if err != nil {
			t.Fatal(err)
		}
		for i, kv := range f.KVs {
			if kv.Lazy != c.lazy[i] || (kv.Value == nil) != c.lazy[i] {
				t.Errorf("max %d: %q lazy %v value %v, want lazy %v", c.max, kv.Key, kv.Lazy, kv.Value, c.lazy[i])
			}
		}
	}
}

func writeFile(t testing.TB, w *Writer) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestArray(t *testing.T) {
	lazy, want := lazyArrays()
	for _, version := range []uint32{1, 3} {
		data := writeFile(t, &Writer{Version: version, BigEndian: version == 1, KVs: append(lazy, KV{Key: "scalar", Type: Uint8, Value: uint8(1)})})
		f, err := Parse(data, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"lazy.tokens", "lazy.scores", "lazy.nested"} {
			kv, _ := f.Lookup(key)
			w := want[key]
			// Ranges around the string checkpoints (every 1024 elements).
			for _, r := range [][2]int{{0, 0}, {0, 1}, {1023, 2}, {1024, 1}, {2047, 3}, {3000, 1000}, {4999, 1}, {len(w), 0}, {10, 60}} {
				if r[0]+r[1] > len(w) {
					continue
				}
				got, err := f.Array(data, kv, r[0], r[1])
				if err != nil {
					t.Errorf("v%d Array(%q, %d, %d): %v", version, key, r[0], r[1], err)
					continue
				}
				if !reflect.DeepEqual(got, w[r[0]:r[0]+r[1]]) {
					t.Errorf("v%d Array(%q, %d, %d) = %v..., want %v...", version, key, r[0], r[1], got[:min(len(got), 3)], w[r[0]:min(r[0]+3, len(w))])
				}
			}
		}
		tok, _ := f.Lookup("lazy.tokens")
		sc, _ := f.Lookup("scalar")
		wrong := *tok
		wrong.Count = 4000 // a KV that does not describe these bytes
		if _, ok := f.Lookup("missing"); ok {
			t.Error("Lookup found a missing key")
		}
		errCases := []struct {
			kv       *KV
			start, n int
			data     []byte
			msg      string
		}{
			{tok, -1, 1, data, `key "lazy.tokens": elements [-1, 0) out of range for an array of 5000`},
			{tok, 4990, 11, data, `key "lazy.tokens": elements [4990, 5001) out of range for an array of 5000`},
			{tok, 0, -1, data, `key "lazy.tokens": elements [0, -1) out of range for an array of 5000`},
			{sc, 0, 1, data, `key "scalar" is a uint8, not an array`},
			{&wrong, 0, 1, data, `key "lazy.tokens": data holds an array of 5000 string, the header said 4000 string`},
			{tok, 0, 1, data[:tok.ValueOffset-1], `key "lazy.tokens": value offset ` + itoa(tok.ValueOffset) + ` is outside the ` + itoa(tok.ValueOffset-1) + ` bytes of data`},
		}
		for _, c := range errCases {
			_, err := f.Array(c.data, c.kv, c.start, c.n)
			var pe *Error
			if !errors.As(err, &pe) || pe.Msg != c.msg {
				t.Errorf("v%d Array(%q, %d, %d) error %v, want %q", version, c.kv.Key, c.start, c.n, err, c.msg)
			}
		}
		// Truncated data: a bounds error, not a panic.
		if _, err := f.Array(data[:len(data)/2], tok, 4000, 10); err == nil {
			t.Errorf("v%d Array on truncated data succeeded", version)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestKVConversions(t *testing.T) {
	cases := []struct {
		v       any
		u       uint64
		uok     bool
		i       int64
		iok     bool
		f       float64
		fok     bool
		s       string
		sok     bool
		comment string
	}{
		{v: uint8(7), u: 7, uok: true, i: 7, iok: true, f: 7, fok: true},
		{v: int8(-3), i: -3, iok: true, f: -3, fok: true},
		{v: uint16(65535), u: 65535, uok: true, i: 65535, iok: true, f: 65535, fok: true},
		{v: int16(5), u: 5, uok: true, i: 5, iok: true, f: 5, fok: true},
		{v: uint32(32), u: 32, uok: true, i: 32, iok: true, f: 32, fok: true},
		{v: int32(-1), i: -1, iok: true, f: -1, fok: true},
		{v: uint64(math.MaxUint64), u: math.MaxUint64, uok: true, f: 1 << 64, fok: true},
		{v: int64(math.MinInt64), i: math.MinInt64, iok: true, f: -1 << 63, fok: true},
		{v: float32(2048), u: 2048, uok: true, i: 2048, iok: true, f: 2048, fok: true},
		{v: float32(0.5), f: 0.5, fok: true},
		{v: float64(-4), i: -4, iok: true, f: -4, fok: true},
		{v: math.NaN(), fok: true},
		{v: float64(1 << 64), f: 1 << 64, fok: true},
		{v: "s", s: "s", sok: true},
		{v: true},
		{v: []any{uint8(1)}},
	}
	for _, c := range cases {
		kv := &KV{Value: c.v}
		u, uok := kv.Uint()
		i, iok := kv.Int()
		f, fok := kv.Float()
		s, sok := kv.String()
		if u != c.u || uok != c.uok || i != c.i || iok != c.iok || sok != c.sok || s != c.s || fok != c.fok {
			t.Errorf("%T(%v): Uint %d %v, Int %d %v, String %q %v, Float ok %v", c.v, c.v, u, uok, i, iok, s, sok, fok)
		}
		if fok && !(f == c.f || math.IsNaN(f) && math.IsNaN(c.v.(float64))) {
			t.Errorf("%T(%v): Float %v, want %v", c.v, c.v, f, c.f)
		}
	}
}

// TestLookupByHand covers a File built without Parse (no index maps).
func TestLookupByHand(t *testing.T) {
	f := &File{
		KVs:     []KV{{Key: "a", Type: Bool, Value: true}, {Key: "b", Type: String, Value: "x"}},
		Tensors: []TensorInfo{{Name: "t0"}, {Name: "t1"}},
	}
	if kv, ok := f.Lookup("a"); !ok || kv != &f.KVs[0] {
		t.Errorf("Lookup(a) = %v, %v", kv, ok)
	} else if b, ok := kv.Bool(); !b || !ok {
		t.Errorf("Bool() = %v, %v", b, ok)
	}
	if _, ok := f.Lookup("c"); ok {
		t.Error("Lookup(c) found something")
	}
	if ti, ok := f.Tensor("t1"); !ok || ti != &f.Tensors[1] {
		t.Errorf("Tensor(t1) = %v, %v", ti, ok)
	}
	if _, ok := f.Tensor("t2"); ok {
		t.Error("Tensor(t2) found something")
	}
	if _, ok := (&KV{Value: "x"}).Bool(); ok {
		t.Error("Bool() of a string succeeded")
	}
}
