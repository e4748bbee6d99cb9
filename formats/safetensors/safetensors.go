// Package safetensors reads and writes the safetensors checkpoint format: an
// 8-byte little-endian header length, a JSON header naming every tensor's
// dtype, shape and byte range, then the tensor bytes.
//
// Parse reads only the header of a file the caller has mapped into memory and
// checks it as strictly as the specification and the reference Rust crate
// (huggingface/safetensors) do: the header must be a UTF-8 JSON object that
// starts with '{' and is padded only with spaces, keys must be unique, every
// tensor must have a dtype, a shape of non-negative integers and data_offsets
// whose length matches the shape and dtype, and the tensors' byte ranges must
// tile the data buffer exactly, from 0 to its end, with no gap and no overlap.
// Every problem is an *Error naming the tensor and the byte offset.
//
// Write produces files that pass those checks, streaming each tensor's bytes
// so that large exports need no full buffer.
package safetensors

import (
	"fmt"

	"github.com/qkvdev/qkv/formats/dtype"
)

// DefaultMaxHeaderBytes is the header size above which Parse refuses a file
// unless Options says otherwise; it is the reference crate's limit.
const DefaultMaxHeaderBytes = 100_000_000

// TensorInfo is one tensor as its header entry describes it.
type TensorInfo struct {
	Name  string
	DType dtype.Type
	Shape []int64 // as in the header (row-major, outermost first); [] for scalars
	// Begin and End are the data_offsets, relative to the data buffer (which
	// starts at File.DataOffset).
	Begin, End int64
}

// Elements returns the number of elements the shape holds (1 for a scalar).
// Parse has already checked that it does not overflow.
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Bytes returns End-Begin, the tensor's size in bytes.
func (t TensorInfo) Bytes() int64 { return t.End - t.Begin }

// File is a parsed safetensors header.
type File struct {
	HeaderLen  int64       // the u64 at byte 0
	DataOffset int64       // 8 + HeaderLen: where the data buffer starts in the file
	Metadata   [][2]string // __metadata__ entries in header order (key, value); nil when absent
	Tensors    []TensorInfo
	Size       int64 // the file's size (Options.Size, or len(data))
}

// Tensor returns the tensor with the given name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// MetadataValue returns the __metadata__ value for key.
func (f *File) MetadataValue(key string) (string, bool) {
	for _, kv := range f.Metadata {
		if kv[0] == key {
			return kv[1], true
		}
	}
	return "", false
}

// TensorData returns the bytes of t within data, the same slice Parse was
// given. It returns nil when the range does not fit, which cannot happen for a
// TensorInfo that Parse returned for that data.
func (f *File) TensorData(data []byte, t TensorInfo) []byte {
	lo, hi := f.DataOffset+t.Begin, f.DataOffset+t.End
	if t.Begin < 0 || t.Begin > t.End || lo < f.DataOffset || hi > int64(len(data)) {
		return nil
	}
	return data[lo:hi]
}

// Options tune Parse.
type Options struct {
	// MaxHeaderBytes is the largest header accepted; 0 (or less) means
	// DefaultMaxHeaderBytes.
	MaxHeaderBytes int64
	// Size is the file's size when data is only its beginning (a header
	// read over the network): data must then hold the whole header (8 +
	// HeaderLen bytes). 0 means len(data). The header-length, layout and
	// File.Size checks use it as they use the size of a whole file.
	Size int64
}

// Error is a problem found in a safetensors file: what is wrong, the tensor
// it concerns ("" when none) and the byte offset in the file where it is.
type Error struct {
	Offset int64
	Tensor string
	Msg    string
}

func (e *Error) Error() string {
	if e.Tensor != "" {
		return fmt.Sprintf("tensor %q: %s (at byte %d)", e.Tensor, e.Msg, e.Offset)
	}
	return fmt.Sprintf("%s (at byte %d)", e.Msg, e.Offset)
}
