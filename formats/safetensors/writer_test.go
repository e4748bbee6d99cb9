package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/dtype"
)

// rawTensor returns a WriteTensor that writes the given bytes.
func rawTensor(name string, dt dtype.Type, shape []int64, b []byte) WriteTensor {
	return WriteTensor{Name: name, DType: dt, Shape: shape, Size: int64(len(b)),
		Write: func(w io.Writer) error { _, err := w.Write(b); return err }}
}

func TestWriteExactBytes(t *testing.T) {
	// Hand-written expected file: keys sorted with __metadata__ first, data
	// in name order, header padded with spaces to a multiple of 8.
	var buf bytes.Buffer
	err := Write(&buf, []WriteTensor{
		F32Tensor("b", []int64{1}, []float32{1}),
		rawTensor("a", dtype.FromSafetensors("U8"), []int64{2}, []byte{7, 9}),
	}, [][2]string{{"format", "pt"}})
	if err != nil {
		t.Fatal(err)
	}
	hdr := `{"__metadata__":{"format":"pt"},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}`
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	want := lenPrefix(uint64(len(hdr)), hdr)
	want = append(want, 7, 9, 0, 0, 0x80, 0x3f)
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("got\n%q\nwant\n%q", buf.Bytes(), want)
	}
}

func TestWriteRoundTrip(t *testing.T) {
	f32data := []float32{0, -0, 1.5, float32(math.Inf(1)), float32(math.NaN()), math.MaxFloat32, 1e-45, -2}
	big := make([]float32, 3000) // more than F32Tensor's chunk
	for i := range big {
		big[i] = float32(i) * 0.25
	}
	cases := []struct {
		name     string
		tensors  []WriteTensor
		metadata [][2]string
	}{
		{name: "no tensors"},
		{name: "no tensors, empty metadata", metadata: [][2]string{}},
		{name: "f32 and odd sizes", tensors: []WriteTensor{
			F32Tensor("w", []int64{2, 4}, f32data),
			F32Tensor("big", []int64{3000}, big),
			rawTensor("bf", dtype.BF16, []int64{3}, []byte{1, 2, 3, 4, 5, 6}),
			rawTensor("bool", dtype.FromSafetensors("BOOL"), []int64{1, 1, 1}, []byte{1}),
			rawTensor("scalar", dtype.F64, []int64{}, make([]byte, 8)),
			rawTensor("empty", dtype.F16, []int64{0, 5}, nil),
			rawTensor("f4", dtype.FromSafetensors("F4"), []int64{6}, []byte{1, 2, 3}),
			rawTensor("f6", dtype.FromSafetensors("F6_E3M2"), []int64{8}, []byte{1, 2, 3, 4, 5, 6}),
		}, metadata: [][2]string{{"format", "pt"}, {"z", "first"}, {"a", "\"quoted\"\n\x01<>&é"}}},
		{name: "awkward names", tensors: []WriteTensor{
			F32Tensor("a\"b\\c", []int64{1}, []float32{1}),
			F32Tensor("tab\there\x7f", []int64{1}, []float32{2}),
			F32Tensor("é😀", []int64{1}, []float32{3}),
			F32Tensor("", []int64{1}, []float32{4}),
			F32Tensor("__metadata", []int64{1}, []float32{5}),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, c.tensors, c.metadata); err != nil {
				t.Fatal(err)
			}
			data := buf.Bytes()
			f, err := Parse(data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if f.HeaderLen%8 != 0 {
				t.Errorf("header length %d is not a multiple of 8", f.HeaderLen)
			}
			if !reflect.DeepEqual(f.Metadata, c.metadata) {
				t.Errorf("metadata %q, want %q", f.Metadata, c.metadata)
			}
			if len(f.Tensors) != len(c.tensors) {
				t.Fatalf("%d tensors, want %d", len(f.Tensors), len(c.tensors))
			}
			// Header order and data order are both name order.
			var end int64
			for i, ti := range f.Tensors {
				if i > 0 && f.Tensors[i-1].Name >= ti.Name {
					t.Errorf("tensor %q after %q: not sorted", ti.Name, f.Tensors[i-1].Name)
				}
				if ti.Begin != end {
					t.Errorf("tensor %q begins at %d, want %d", ti.Name, ti.Begin, end)
				}
				end = ti.End
			}
			for _, wt := range c.tensors {
				ti, ok := f.Tensor(wt.Name)
				if !ok {
					t.Fatalf("tensor %q missing", wt.Name)
				}
				if ti.DType != wt.DType || !reflect.DeepEqual(ti.Shape, wt.Shape) && !(len(ti.Shape) == 0 && len(wt.Shape) == 0) {
					t.Errorf("%q: %s %v, want %s %v", wt.Name, ti.DType, ti.Shape, wt.DType, wt.Shape)
				}
				var want bytes.Buffer
				if wt.Write != nil {
					if err := wt.Write(&want); err != nil {
						t.Fatal(err)
					}
				}
				if got := f.TensorData(data, ti); !bytes.Equal(got, want.Bytes()) {
					t.Errorf("%q: data differs", wt.Name)
				}
			}
		})
	}
}

func TestF32TensorBytes(t *testing.T) {
	wt := F32Tensor("x", []int64{2}, []float32{1, float32(math.Copysign(0, -1))})
	var buf bytes.Buffer
	for range 2 { // Write may be called more than once
		buf.Reset()
		if err := wt.Write(&buf); err != nil {
			t.Fatal(err)
		}
		want := []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0x80}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("got % x, want % x", buf.Bytes(), want)
		}
	}
	if wt.Size != 8 || wt.DType != dtype.F32 {
		t.Errorf("size %d dtype %s", wt.Size, wt.DType)
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.after {
		return 0, errors.New("disk full")
	}
	f.after -= len(p)
	return len(p), nil
}

func TestWriteErrors(t *testing.T) {
	ok := F32Tensor("ok", []int64{1}, []float32{1})
	writes := func(n int) func(io.Writer) error {
		return func(w io.Writer) error { _, err := w.Write(make([]byte, n)); return err }
	}
	cases := []struct {
		name     string
		w        io.Writer
		tensors  []WriteTensor
		metadata [][2]string
		want     string
	}{
		{name: "short write", tensors: []WriteTensor{ok, {Name: "s", DType: dtype.F32, Shape: []int64{2}, Size: 8, Write: writes(4)}},
			want: `safetensors: tensor "s": Write wrote 4 bytes, want 8`},
		{name: "long write", tensors: []WriteTensor{{Name: "l", DType: dtype.F32, Shape: []int64{2}, Size: 8, Write: writes(12)}},
			want: `safetensors: tensor "l": Write wrote more than its 8 bytes`},
		{name: "callback error", tensors: []WriteTensor{{Name: "c", DType: dtype.F32, Shape: []int64{1}, Size: 4,
			Write: func(io.Writer) error { return errors.New("boom") }}},
			want: `safetensors: tensor "c": boom`},
		{name: "F32Tensor length mismatch", tensors: []WriteTensor{F32Tensor("m", []int64{2, 2}, []float32{1, 2, 3})},
			want: `safetensors: tensor "m": Size is 12 bytes, but F32 [2, 2] needs 16`},
		{name: "size mismatch", tensors: []WriteTensor{{Name: "z", DType: dtype.BF16, Shape: []int64{3}, Size: 8, Write: writes(8)}},
			want: `safetensors: tensor "z": Size is 8 bytes, but BF16 [3] needs 6`},
		{name: "odd F4", tensors: []WriteTensor{{Name: "f", DType: dtype.FromSafetensors("F4"), Shape: []int64{3}, Size: 2, Write: writes(2)}},
			want: `safetensors: tensor "f": 3 elements is not a whole number of F4 blocks of 2`},
		{name: "negative dimension", tensors: []WriteTensor{{Name: "n", DType: dtype.F32, Shape: []int64{-1}, Size: 4, Write: writes(4)}},
			want: `safetensors: tensor "n": negative dimension in shape [-1]`},
		{name: "shape overflow", tensors: []WriteTensor{{Name: "o", DType: dtype.F32, Shape: []int64{1 << 32, 1 << 32}, Size: 4, Write: writes(4)}},
			want: `safetensors: tensor "o": shape [4294967296, 4294967296] overflows a 64-bit element count`},
		{name: "GGML type", tensors: []WriteTensor{{Name: "q", DType: dtype.Q4_K, Shape: []int64{256}, Size: 144, Write: writes(144)}},
			want: `safetensors: tensor "q": dtype Q4_K cannot be stored in safetensors`},
		{name: "unknown dtype", tensors: []WriteTensor{{Name: "u", DType: dtype.FromSafetensors("F8_E4M3FNUZ"), Shape: []int64{1}, Size: 1, Write: writes(1)}},
			want: `safetensors: tensor "u": dtype F8_E4M3FNUZ cannot be stored in safetensors`},
		{name: "invalid dtype", tensors: []WriteTensor{{Name: "i", Shape: []int64{1}, Size: 1, Write: writes(1)}},
			want: `safetensors: tensor "i": dtype invalid cannot be stored in safetensors`},
		{name: "missing callback", tensors: []WriteTensor{{Name: "m", DType: dtype.F32, Shape: []int64{1}, Size: 4}},
			want: `safetensors: tensor "m": no Write callback for 4 bytes`},
		{name: "duplicate names", tensors: []WriteTensor{ok, ok}, want: `safetensors: duplicate tensor name "ok"`},
		{name: "reserved name", tensors: []WriteTensor{F32Tensor("__metadata__", []int64{1}, []float32{1})},
			want: `safetensors: a tensor may not be named __metadata__`},
		{name: "invalid UTF-8 name", tensors: []WriteTensor{F32Tensor("a\xff", []int64{1}, []float32{1})},
			want: `safetensors: tensor name "a\xff" is not valid UTF-8`},
		{name: "duplicate metadata key", tensors: []WriteTensor{ok}, metadata: [][2]string{{"k", "1"}, {"k", "2"}},
			want: `safetensors: duplicate __metadata__ key "k"`},
		{name: "invalid UTF-8 metadata", metadata: [][2]string{{"k", "\xff"}},
			want: `safetensors: __metadata__ entry "k" is not valid UTF-8`},
		{name: "writer fails", w: &failWriter{after: 100}, tensors: []WriteTensor{F32Tensor("big", []int64{1 << 15}, make([]float32, 1<<15))},
			want: `safetensors: tensor "big": disk full`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := c.w
			if w == nil {
				w = io.Discard
			}
			err := Write(w, c.tensors, c.metadata)
			if err == nil || err.Error() != c.want {
				t.Errorf("error %v, want %s", err, c.want)
			}
		})
	}
}

func TestWriteNothingOnBadTensor(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, []WriteTensor{F32Tensor("a", []int64{1}, []float32{1}), F32Tensor("b", []int64{2}, []float32{1})}, nil)
	if err == nil || buf.Len() != 0 {
		t.Errorf("err %v, wrote %d bytes; want an error before any byte", err, buf.Len())
	}
}

func TestWriteHeaderPadding(t *testing.T) {
	// Names of every length mod 8 give every padding from 0 to 7 spaces.
	for n := 1; n <= 8; n++ {
		var buf bytes.Buffer
		if err := Write(&buf, []WriteTensor{F32Tensor(strings.Repeat("x", n), []int64{1}, []float32{1})}, nil); err != nil {
			t.Fatal(err)
		}
		hl := binary.LittleEndian.Uint64(buf.Bytes())
		hdr := buf.Bytes()[8 : 8+hl]
		trimmed := strings.TrimRight(string(hdr), " ")
		if hl%8 != 0 || len(hdr)-len(trimmed) > 7 || !strings.HasSuffix(trimmed, "}") {
			t.Errorf("name length %d: header %q", n, hdr)
		}
	}
}
