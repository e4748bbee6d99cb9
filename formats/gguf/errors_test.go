package gguf

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// errCase builds malformed bytes and says which error Parse must return.
type errCase struct {
	name  string
	build func(w *build) (off int64, msg string)
	opts  Options
}

// v3 starts a little-endian version 3 file with nt tensors and nkv pairs.
func v3(w *build, nt, nkv uint64) { w.header(3, nt, nkv) }

var errCases = []errCase{
	{"empty file", func(w *build) (int64, string) {
		return 0, "unexpected end of file reading magic: need 4 bytes, 0 remain"
	}, Options{}},
	{"bad magic", func(w *build) (int64, string) {
		w.raw('G', 'G', 'M', 'L', 3, 0, 0, 0)
		return 0, `bad magic "GGML", want "GGUF"`
	}, Options{}},
	{"no version", func(w *build) (int64, string) {
		w.raw('G', 'G', 'U', 'F', 3)
		return 4, "unexpected end of file reading version: need 4 bytes, 1 remain"
	}, Options{}},
	{"version 99", func(w *build) (int64, string) {
		w.header(99, 0, 0)
		return 4, "unsupported GGUF version 99"
	}, Options{}},
	{"version 0", func(w *build) (int64, string) {
		w.header(0, 0, 0)
		return 4, "unsupported GGUF version 0"
	}, Options{}},
	{"version 4 big-endian", func(w *build) (int64, string) {
		w.be = true
		w.header(4, 0, 0)
		return 4, "unsupported GGUF version 4 (big-endian)"
	}, Options{}},
	{"truncated tensor count", func(w *build) (int64, string) {
		w.raw('G', 'G', 'U', 'F', 3, 0, 0, 0, 1, 2, 3)
		return 8, "unexpected end of file reading tensor count: need 8 bytes, 3 remain"
	}, Options{}},
	{"kv count beyond data", func(w *build) (int64, string) {
		v3(w, 0, 1000000)
		w.zeros(100)
		return 16, "kv count 1000000 exceeds what the remaining 100 bytes can hold (at least 13 bytes each)"
	}, Options{}},
	{"kv count 2^64-1", func(w *build) (int64, string) {
		v3(w, 0, math.MaxUint64)
		return 16, "kv count 18446744073709551615 exceeds what the remaining 0 bytes can hold (at least 13 bytes each)"
	}, Options{}},
	{"tensor count beyond data", func(w *build) (int64, string) {
		v3(w, 4, 0)
		w.zeros(127)
		return 8, "tensor count 4 exceeds what the remaining 127 bytes can hold (at least 32 bytes each)"
	}, Options{}},
	{"tensor count beyond data left by kvs", func(w *build) (int64, string) {
		v3(w, 1, 5)
		w.zeros(5*13 + 31)
		return 8, "tensor count 1 exceeds what the remaining 31 bytes can hold (at least 32 bytes each)"
	}, Options{}},
	{"v1 tensor count", func(w *build) (int64, string) {
		w.v1 = true
		w.header(1, 2, 0)
		w.zeros(47)
		return 8, "tensor count 2 exceeds what the remaining 47 bytes can hold (at least 24 bytes each)"
	}, Options{}},
	{"key length beyond data", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.n(100)
		w.zeros(20)
		return 24, "key 0: string length 100 exceeds the 20 bytes remaining"
	}, Options{}},
	{"key length 2^64-1", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.n(math.MaxUint64)
		w.zeros(20)
		return 24, "key 0: string length 18446744073709551615 exceeds the 20 bytes remaining"
	}, Options{}},
	{"v1 key length beyond data", func(w *build) (int64, string) {
		w.v1 = true
		w.header(1, 0, 1)
		w.n(0xFFFFFFFF)
		w.zeros(9)
		return 16, "key 0: string length 4294967295 exceeds the 9 bytes remaining"
	}, Options{}},
	{"invalid value type", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str("k")
		at := w.at()
		w.u32(13)
		w.zeros(4)
		return at, `key "k": invalid value type 13`
	}, Options{}},
	{"truncated scalar", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str("k")
		w.typ(Uint64)
		at := w.at()
		w.zeros(4)
		return at, `unexpected end of file reading value of key "k" (uint64): need 8 bytes, 4 remain`
	}, Options{}},
	{"string value beyond data", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str("general.name")
		w.typ(String)
		at := w.at()
		w.n(1 << 40)
		w.raw('a', 'b')
		return at, `value of key "general.name": string length 1099511627776 exceeds the 2 bytes remaining`
	}, Options{}},
	{"invalid array element type", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str("arr")
		w.typ(Array)
		at := w.at()
		w.u32(77)
		w.n(1)
		w.zeros(8)
		return at, `key "arr": invalid array element type 77`
	}, Options{}},
	{"array count beyond data", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str("arr")
		w.typ(Array)
		w.typ(Uint32)
		at := w.at()
		w.n(1000)
		w.zeros(8)
		return at, `key "arr": array count 1000 exceeds what the remaining 8 bytes can hold (at least 4 bytes per uint32 element)`
	}, Options{}},
	{"array count 2^64-1 of u64", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str("arr")
		w.typ(Array)
		w.typ(Uint64)
		at := w.at()
		w.n(math.MaxUint64)
		w.zeros(8)
		return at, `key "arr": array count 18446744073709551615 exceeds what the remaining 8 bytes can hold (at least 8 bytes per uint64 element)`
	}, Options{}},
	{"string array count beyond data", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str("tokens")
		w.typ(Array)
		w.typ(String)
		at := w.at()
		w.n(3)
		w.zeros(16)
		return at, `key "tokens": array count 3 exceeds what the remaining 16 bytes can hold (at least 8 bytes per string element)`
	}, Options{}},
	{"string element beyond data", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str("tokens")
		w.typ(Array)
		w.typ(String)
		w.n(100)
		for i := 0; i < 99; i++ {
			w.str("")
		}
		at := w.at()
		w.n(9)
		w.raw(1, 2, 3)
		return at, `element 99 of key "tokens": string length 9 exceeds the 3 bytes remaining`
	}, Options{}},
	{"string element beyond data, decoded", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str("tokens")
		w.typ(Array)
		w.typ(String)
		w.n(2)
		w.str("ab")
		at := w.at()
		w.n(9)
		w.raw(1, 2, 3)
		return at, `element 1 of key "tokens": string length 9 exceeds the 3 bytes remaining`
	}, Options{}},
	{"nested array count beyond data", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str("n")
		w.typ(Array)
		w.typ(Array)
		at := w.at()
		w.n(2)
		w.typ(Uint8)
		w.n(0)
		return at, `key "n": array count 2 exceeds what the remaining 12 bytes can hold (at least 12 bytes per array element)`
	}, Options{}},
	{"arrays nested too deep", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str("deep")
		w.typ(Array)
		var at int64
		for level := 1; level <= MaxArrayDepth+1; level++ {
			at = w.at()
			w.typ(Array)
			w.n(1)
		}
		w.zeros(64)
		return at, `key "deep": arrays nested too deep (more than 8 levels)`
	}, Options{}},
	{"duplicate key", func(w *build) (int64, string) {
		v3(w, 0, 3)
		w.kvU32("a", 1)
		w.kvU32("b", 2)
		at := w.at()
		w.kvU32("a", 3)
		return at, `duplicate key "a" (first at byte 24)`
	}, Options{}},
	{"alignment not a power of two", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str(AlignmentKey)
		w.typ(Uint32)
		at := w.at()
		w.u32(48)
		return at, "general.alignment = 48 is not a non-zero power of two"
	}, Options{}},
	{"alignment zero", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str(AlignmentKey)
		w.typ(Uint64)
		at := w.at()
		w.u64(0)
		return at, "general.alignment = 0 is not a non-zero power of two"
	}, Options{}},
	{"alignment negative", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str(AlignmentKey)
		w.typ(Int32)
		at := w.at()
		w.u32(0xFFFFFFE0) // -32
		return at, "general.alignment = -32 is not a non-zero power of two"
	}, Options{}},
	{"alignment string", func(w *build) (int64, string) {
		v3(w, 0, 1)
		w.str(AlignmentKey)
		w.typ(String)
		at := w.at()
		w.str("32")
		return at, "general.alignment has type string, want an integer"
	}, Options{}},
	{"tensor name beyond data", func(w *build) (int64, string) {
		v3(w, 1, 0)
		at := w.at()
		w.n(1000)
		w.zeros(40)
		return at, "name of tensor 0: string length 1000 exceeds the 40 bytes remaining"
	}, Options{}},
	{"n_dims 0", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.str("w")
		at := w.at()
		w.u32(0)
		w.zeros(40)
		return at, `tensor "w": 0 dimensions, want 1 to 4 (GGML_MAX_DIMS is 4)`
	}, Options{}},
	{"n_dims 5", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.str("w")
		at := w.at()
		w.u32(5)
		w.zeros(60)
		return at, `tensor "w": 5 dimensions, want 1 to 4 (GGML_MAX_DIMS is 4)`
	}, Options{}},
	{"truncated dims", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.str("w")
		w.u32(4)
		w.n(2)
		w.n(2)
		at := w.at()
		w.raw(1, 2, 3, 4, 5, 6, 7)
		return at, `unexpected end of file reading ne[2] of tensor "w": need 8 bytes, 7 remain`
	}, Options{}},
	{"zero dimension", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.str("w")
		w.u32(2)
		w.n(4)
		at := w.at()
		w.n(0)
		w.u32(0)
		w.u64(0)
		return at, `tensor "w": ne[1] is 0, every dimension must be at least 1`
	}, Options{}},
	{"dimension beyond int64", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.str("w")
		w.u32(1)
		at := w.at()
		w.n(1 << 63)
		w.u32(0)
		w.u64(0)
		return at, `tensor "w": ne[0] = 9223372036854775808 does not fit in int64`
	}, Options{}},
	{"element count overflows int64", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.str("w")
		w.u32(3)
		at := w.at()
		w.n(1 << 32)
		w.n(1 << 31)
		w.n(1)
		w.u32(0)
		w.u64(0)
		return at, `tensor "w": element count of shape [4294967296 2147483648 1] overflows int64`
	}, Options{}},
	{"byte size overflows int64", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.str("w")
		w.u32(1)
		w.n(1 << 61)
		at := w.at()
		w.u32(28) // F64
		w.u64(0)
		return at, `tensor "w": byte size of shape [2305843009213693952] of F64 overflows int64`
	}, Options{}},
	{"row not a whole number of blocks", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.str("q")
		w.u32(2)
		w.n(33)
		w.n(32)
		at := w.at()
		w.u32(2) // Q4_0, block 32
		w.u64(0)
		return at, `tensor "q": row of 33 elements is not a multiple of the Q4_0 block size 32`
	}, Options{}},
	{"row not a whole number of blocks, 1-D K-quant", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.str("k")
		w.u32(1)
		w.n(512 + 32)
		at := w.at()
		w.u32(12) // Q4_K, block 256
		w.u64(0)
		return at, `tensor "k": row of 544 elements is not a multiple of the Q4_K block size 256`
	}, Options{}},
	{"duplicate tensor name", func(w *build) (int64, string) {
		v3(w, 2, 0)
		w.tensor("w", []uint64{8}, 0, 0)
		at := w.at()
		w.tensor("w", []uint64{8}, 0, 32)
		w.padTo(32)
		w.zeros(64)
		return at, `duplicate tensor name "w" (first at byte 24)`
	}, Options{}},
	{"offset not aligned", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.str("w")
		w.u32(1)
		w.n(8)
		w.u32(0)
		at := w.at()
		w.u64(36)
		w.padTo(32)
		w.zeros(96)
		return at, `tensor "w": data offset 36 is not a multiple of the alignment 32`
	}, Options{}},
	{"offset not aligned to general.alignment", func(w *build) (int64, string) {
		v3(w, 1, 1)
		w.str(AlignmentKey)
		w.typ(Uint32)
		w.u32(64)
		w.str("w")
		w.u32(1)
		w.n(8)
		w.u32(0)
		at := w.at()
		w.u64(32)
		w.padTo(64)
		w.zeros(96)
		return at, `tensor "w": data offset 32 is not a multiple of the alignment 64`
	}, Options{}},
	{"data past the end", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.str("w")
		w.u32(2)
		w.n(8)
		w.n(2)
		w.u32(0) // F32: 64 bytes
		at := w.at()
		w.u64(0)
		w.padTo(32) // data at 96
		w.zeros(63)
		return at, `tensor "w": data [96, 160) runs past the end of the file (159 bytes)`
	}, Options{}},
	{"data offset far past the end", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.tensor("w", []uint64{8}, 0, 1<<62)
		at := w.at() - 8
		w.padTo(32)
		return at, `tensor "w": data [4611686018427387968, 4611686018427388000) runs past the end of the file (64 bytes)`
	}, Options{}},
	{"data offset overflows", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.tensor("w", []uint64{8}, 0, math.MaxUint64-31)
		at := w.at() - 8
		w.padTo(32)
		return at, `tensor "w": data offset 18446744073709551584 overflows the file offset`
	}, Options{}},
	{"unknown type past the end", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.tensor("w", []uint64{128}, 45, 64)
		at := w.at() - 8
		w.padTo(32)
		w.zeros(32)
		return at, `tensor "w": data offset 128 is past the end of the file (96 bytes)`
	}, Options{}},
	{"overlap", func(w *build) (int64, string) {
		v3(w, 2, 0)
		w.tensor("a", []uint64{16}, 0, 0) // [0, 64)
		w.tensor("b", []uint64{16}, 0, 32)
		at := w.at() - 8
		w.padTo(32)
		w.zeros(96)
		return at, `tensor "b" (data offsets [32, 96)) overlaps tensor "a" ([0, 64))`
	}, Options{}},
	{"overlap out of file order", func(w *build) (int64, string) {
		v3(w, 3, 0)
		w.tensor("late", []uint64{64}, 0, 256) // [256, 512)
		at := w.at() - 8
		w.tensor("big", []uint64{96}, 0, 0) // [0, 384)
		w.tensor("small", []uint64{8}, 0, 1024)
		w.padTo(32)
		w.zeros(2048)
		return at, `tensor "late" (data offsets [256, 512)) overlaps tensor "big" ([0, 384))`
	}, Options{}},
	{"data section start overflows", func(w *build) (int64, string) {
		v3(w, 1, 1)
		w.str(AlignmentKey)
		w.typ(Uint64)
		w.u64(1 << 63)
		w.tensor("w", []uint64{8}, 0, 0)
		return w.at(), "data section start overflows (alignment 9223372036854775808)"
	}, Options{}},
	{"truncated tensor info", func(w *build) (int64, string) {
		v3(w, 1, 0)
		w.str("w")
		w.u32(1)
		w.n(8)
		w.u32(0)
		at := w.at()
		w.zeros(7)
		return at, `unexpected end of file reading offset of tensor "w": need 8 bytes, 7 remain`
	}, Options{}},
	{"big-endian bad string", func(w *build) (int64, string) {
		w.be = true
		v3(w, 0, 1)
		at := w.at()
		w.n(0x100) // little-endian would read 2^56
		w.zeros(16)
		return at, "key 0: string length 256 exceeds the 16 bytes remaining"
	}, Options{}},
	{"v1 n_dims 5", func(w *build) (int64, string) {
		w.v1 = true
		w.header(1, 1, 0)
		w.str("w")
		at := w.at()
		w.u32(5)
		w.zeros(40)
		return at, `tensor "w": 5 dimensions, want 1 to 4 (GGML_MAX_DIMS is 4)`
	}, Options{}},
}

func TestParseErrors(t *testing.T) {
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			w := &build{}
			off, msg := c.build(w)
			f, err := Parse(w.b, c.opts)
			if err == nil {
				t.Fatalf("Parse succeeded (%d KVs, %d tensors), want %q", len(f.KVs), len(f.Tensors), msg)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is %T, not *Error", err, err)
			}
			want := fmt.Sprintf("at byte %d: %s", off, msg)
			if err.Error() != want {
				t.Errorf("error\n got %s\nwant %s", err, want)
			}
		})
	}
}

// TestParseAccepts covers inputs that look odd but are valid.
func TestParseAccepts(t *testing.T) {
	t.Run("unknown and removed types are listed", func(t *testing.T) {
		w := &build{}
		v3(w, 3, 0)
		w.tensor("fork", []uint64{128, 2}, 46, 0)
		w.tensor("q4_2", []uint64{32}, 4, 64) // removed Q4_2: 16 per 10 bytes
		w.tensor("far", []uint64{1}, 1000, 96)
		w.padTo(32)
		w.zeros(128)
		f, err := Parse(w.b, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := []string{}
		for _, ti := range f.Tensors {
			got = append(got, fmt.Sprintf("%s %s %d %v", ti.Name, ti.Type.Name(), ti.Bytes, ti.Type.Known()))
		}
		want := "fork type 46 (unknown) -1 false|q4_2 Q4_2 20 true|far type 1000 (unknown) -1 false"
		if strings.Join(got, "|") != want {
			t.Errorf("got %s\nwant %s", strings.Join(got, "|"), want)
		}
	})
	t.Run("header only, with the file's size", func(t *testing.T) {
		w := &build{}
		v3(w, 1, 0)
		w.tensor("w", []uint64{1024}, 0, 0)
		f, err := Parse(w.b, Options{Size: 64 + 4096})
		if err != nil {
			t.Fatal(err)
		}
		if f.DataOffset != 64 || f.Size != 64+4096 || f.Tensors[0].Bytes != 4096 {
			t.Errorf("DataOffset %d Size %d Bytes %d", f.DataOffset, f.Size, f.Tensors[0].Bytes)
		}
		// The same header with a size one byte short is refused as a
		// whole file of that size would be.
		if _, err := Parse(w.b, Options{Size: 64 + 4095}); err == nil || errors.Is(err, ErrTruncated) ||
			!strings.Contains(err.Error(), "runs past the end of the file (4159 bytes)") {
			t.Errorf("short size: %v", err)
		}
	})
	t.Run("no tensors, no padding", func(t *testing.T) {
		w := &build{}
		v3(w, 0, 1)
		w.kvU32("k", 1)
		f, err := Parse(w.b, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if f.DataOffset != 64 || f.Size != 41 {
			t.Errorf("DataOffset %d Size %d", f.DataOffset, f.Size)
		}
	})
	t.Run("gaps and trailing bytes", func(t *testing.T) {
		w := &build{}
		v3(w, 2, 0)
		w.tensor("b", []uint64{8}, 0, 256)
		w.tensor("a", []uint64{8}, 0, 0)
		w.padTo(32)
		w.zeros(1000)
		if _, err := Parse(w.b, Options{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bool byte 2 is true", func(t *testing.T) {
		w := &build{}
		v3(w, 0, 1)
		w.str("b")
		w.typ(Bool)
		w.raw(2)
		f, err := Parse(w.b, Options{})
		if err != nil || f.KVs[0].Value != true {
			t.Fatalf("%v %v", f, err)
		}
	})
}
