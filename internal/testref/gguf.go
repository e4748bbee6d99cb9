package testref

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
)

// This file is a deliberately small GGUF header reader for tests, written
// plainly and separately from formats/gguf so that tests can compare qkv's
// parser with an independent one. It reads versions 1 to 3 in either byte
// order. It trusts nothing, but it is not meant to give good error messages:
// it only has to be right on valid files.

// GGUF metadata value types, numbered as in the GGUF specification.
const (
	GGUFUint8   = 0
	GGUFInt8    = 1
	GGUFUint16  = 2
	GGUFInt16   = 3
	GGUFUint32  = 4
	GGUFInt32   = 5
	GGUFFloat32 = 6
	GGUFBool    = 7
	GGUFString  = 8
	GGUFArray   = 9
	GGUFUint64  = 10
	GGUFInt64   = 11
	GGUFFloat64 = 12
)

// GGUFValueTypeNames are the specification's lower-case names of the value types.
var GGUFValueTypeNames = []string{"uint8", "int8", "uint16", "int16", "uint32", "int32",
	"float32", "bool", "string", "array", "uint64", "int64", "float64"}

// GGMLType is the name and block layout of one GGML tensor type, as the
// ggml headers define them.
type GGMLType struct {
	Name       string
	BlockSize  int // elements per block
	BlockBytes int // bytes per block
}

// GGMLTypes lists the upstream GGML tensor types by id (ids 0..39 that
// exist; 4, 5 and 31..33, 36..38 were removed upstream and are absent).
var GGMLTypes = map[uint32]GGMLType{
	0: {"F32", 1, 4}, 1: {"F16", 1, 2}, 2: {"Q4_0", 32, 18}, 3: {"Q4_1", 32, 20},
	6: {"Q5_0", 32, 22}, 7: {"Q5_1", 32, 24}, 8: {"Q8_0", 32, 34}, 9: {"Q8_1", 32, 36},
	10: {"Q2_K", 256, 84}, 11: {"Q3_K", 256, 110}, 12: {"Q4_K", 256, 144}, 13: {"Q5_K", 256, 176},
	14: {"Q6_K", 256, 210}, 15: {"Q8_K", 256, 292}, 16: {"IQ2_XXS", 256, 66}, 17: {"IQ2_XS", 256, 74},
	18: {"IQ3_XXS", 256, 98}, 19: {"IQ1_S", 256, 50}, 20: {"IQ4_NL", 32, 18}, 21: {"IQ3_S", 256, 110},
	22: {"IQ2_S", 256, 82}, 23: {"IQ4_XS", 256, 136}, 24: {"I8", 1, 1}, 25: {"I16", 1, 2},
	26: {"I32", 1, 4}, 27: {"I64", 1, 8}, 28: {"F64", 1, 8}, 29: {"IQ1_M", 256, 56},
	30: {"BF16", 1, 2}, 34: {"TQ1_0", 256, 54}, 35: {"TQ2_0", 256, 66}, 39: {"MXFP4", 32, 17},
}

// GGUFKV is one metadata key/value pair.
type GGUFKV struct {
	Key      string
	Offset   int64  // file offset of the record (its key length field)
	Type     uint32 // value type
	ElemType uint32 // arrays: the element type
	Count    uint64 // arrays: the element count; scalars: 1
	// Value: scalars as uint8, int8, uint16, int16, uint32, int32, float32,
	// bool, string, uint64, int64 or float64; arrays as []any holding their
	// first items (at most the limit given to ReadGGUF; nested arrays as
	// []any of their first items).
	Value any
}

// GGUFTensor is one tensor info.
type GGUFTensor struct {
	Name   string
	Dims   []uint64 // ne as stored, innermost first
	Type   uint32   // GGML type id
	Offset uint64   // relative to the data section
}

// GGUFFile is a parsed GGUF header.
type GGUFFile struct {
	Version    uint32
	BigEndian  bool
	KVs        []GGUFKV
	Tensors    []GGUFTensor
	Alignment  uint64
	DataOffset int64 // absolute offset of the data section
	Size       int64 // file size
}

// KV returns the pair with this key, nil when absent.
func (f *GGUFFile) KV(key string) *GGUFKV {
	for i := range f.KVs {
		if f.KVs[i].Key == key {
			return &f.KVs[i]
		}
	}
	return nil
}

type ggufReader struct {
	b   []byte
	p   int
	be  bool
	v1  bool
	err error
}

var errGGUFShort = errors.New("unexpected end of file")

func (r *ggufReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.p {
		r.err = fmt.Errorf("%w at byte %d (need %d)", errGGUFShort, r.p, n)
		return nil
	}
	s := r.b[r.p : r.p+n]
	r.p += n
	return s
}

func (r *ggufReader) order() binary.ByteOrder {
	if r.be {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func (r *ggufReader) u8() uint8 {
	s := r.take(1)
	if s == nil {
		return 0
	}
	return s[0]
}

func (r *ggufReader) u16() uint16 {
	s := r.take(2)
	if s == nil {
		return 0
	}
	return r.order().Uint16(s)
}

func (r *ggufReader) u32() uint32 {
	s := r.take(4)
	if s == nil {
		return 0
	}
	return r.order().Uint32(s)
}

func (r *ggufReader) u64() uint64 {
	s := r.take(8)
	if s == nil {
		return 0
	}
	return r.order().Uint64(s)
}

// size reads a count, length or dimension: u32 in version 1, u64 after.
func (r *ggufReader) size() uint64 {
	if r.v1 {
		return uint64(r.u32())
	}
	return r.u64()
}

func (r *ggufReader) str() string {
	n := r.size()
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("string length %d at byte %d is past the end", n, r.p)
		return ""
	}
	return string(r.take(int(n)))
}

// value reads one value of type typ; arrays keep their first limit items.
func (r *ggufReader) value(typ uint32, limit int, depth int) any {
	switch typ {
	case GGUFUint8:
		return r.u8()
	case GGUFInt8:
		return int8(r.u8())
	case GGUFUint16:
		return r.u16()
	case GGUFInt16:
		return int16(r.u16())
	case GGUFUint32:
		return r.u32()
	case GGUFInt32:
		return int32(r.u32())
	case GGUFFloat32:
		return math.Float32frombits(r.u32())
	case GGUFBool:
		return r.u8() != 0
	case GGUFString:
		return r.str()
	case GGUFUint64:
		return r.u64()
	case GGUFInt64:
		return int64(r.u64())
	case GGUFFloat64:
		return math.Float64frombits(r.u64())
	case GGUFArray:
		_, _, items := r.array(limit, depth+1)
		return items
	}
	if r.err == nil {
		r.err = fmt.Errorf("invalid value type %d at byte %d", typ, r.p-4)
	}
	return nil
}

// array reads an array's element type, count and elements, keeping the
// first limit items.
func (r *ggufReader) array(limit int, depth int) (uint32, uint64, []any) {
	if depth > 16 {
		r.err = fmt.Errorf("arrays nested too deeply at byte %d", r.p)
		return 0, 0, nil
	}
	elem := r.u32()
	n := r.size()
	// Each element takes at least one byte; this bounds the loop.
	if n > uint64(len(r.b)-r.p) {
		r.err = fmt.Errorf("array count %d at byte %d is past the end", n, r.p)
		return elem, n, nil
	}
	items := []any{}
	for i := uint64(0); i < n && r.err == nil; i++ {
		v := r.value(elem, limit, depth)
		if i < uint64(limit) {
			items = append(items, v)
		}
	}
	return elem, n, items
}

// ReadGGUF reads the header of a GGUF file: its key/value pairs (arrays
// with their first arrayItems items; a negative arrayItems keeps them all)
// and tensor infos.
func ReadGGUF(path string, arrayItems int) (*GGUFFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := ParseGGUF(b, arrayItems)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return f, nil
}

// ParseGGUF is ReadGGUF on bytes in memory.
func ParseGGUF(b []byte, arrayItems int) (*GGUFFile, error) {
	if arrayItems < 0 {
		arrayItems = math.MaxInt
	}
	if len(b) < 8 || string(b[:4]) != "GGUF" {
		return nil, errors.New("not a GGUF file (magic)")
	}
	r := &ggufReader{b: b, p: 4}
	// The version is small: if it reads as a huge number little-endian, the
	// file is big-endian.
	f := &GGUFFile{Size: int64(len(b)), Alignment: 32}
	le := binary.LittleEndian.Uint32(b[4:])
	bev := binary.BigEndian.Uint32(b[4:])
	switch {
	case le >= 1 && le <= 3:
		f.Version = le
	case bev >= 1 && bev <= 3:
		f.Version, f.BigEndian, r.be = bev, true, true
	default:
		return nil, fmt.Errorf("unsupported version %d", le)
	}
	r.p = 8
	r.v1 = f.Version == 1
	nTensors := r.size()
	nKV := r.size()
	if r.err != nil {
		return nil, r.err
	}
	if nKV > uint64(len(b)) || nTensors > uint64(len(b)) {
		return nil, errors.New("counts larger than the file")
	}
	for i := uint64(0); i < nKV; i++ {
		kv := GGUFKV{Offset: int64(r.p), Count: 1}
		kv.Key = r.str()
		kv.Type = r.u32()
		if kv.Type == GGUFArray {
			kv.ElemType, kv.Count, kv.Value = r.array(arrayItems, 1)
		} else {
			kv.Value = r.value(kv.Type, arrayItems, 0)
		}
		if r.err != nil {
			return nil, fmt.Errorf("key %d (%q): %v", i, kv.Key, r.err)
		}
		f.KVs = append(f.KVs, kv)
		if kv.Key == "general.alignment" {
			switch a := kv.Value.(type) {
			case uint32:
				f.Alignment = uint64(a)
			case uint64:
				f.Alignment = a
			}
		}
	}
	for i := uint64(0); i < nTensors; i++ {
		var t GGUFTensor
		t.Name = r.str()
		nd := r.u32()
		if nd > 8 {
			return nil, fmt.Errorf("tensor %q: %d dimensions", t.Name, nd)
		}
		for j := uint32(0); j < nd; j++ {
			t.Dims = append(t.Dims, r.size())
		}
		t.Type = r.u32()
		t.Offset = r.u64()
		if r.err != nil {
			return nil, fmt.Errorf("tensor %d: %v", i, r.err)
		}
		f.Tensors = append(f.Tensors, t)
	}
	if f.Alignment == 0 {
		return nil, errors.New("general.alignment is 0")
	}
	a := int64(f.Alignment)
	f.DataOffset = (int64(r.p) + a - 1) / a * a
	return f, nil
}

// Elements is the product of a tensor's dims.
func (t GGUFTensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= int64(d)
	}
	return n
}

// Bytes is the tensor's data size from its type's layout; ok is false for
// a type id GGMLTypes does not list.
func (t GGUFTensor) Bytes() (int64, bool) {
	ty, ok := GGMLTypes[t.Type]
	if !ok {
		return 0, false
	}
	return t.Elements() / int64(ty.BlockSize) * int64(ty.BlockBytes), true
}

// Shape is the tensor's row-major shape, outermost first: ne reversed.
func (t GGUFTensor) Shape() []int64 {
	s := make([]int64, len(t.Dims))
	for i, d := range t.Dims {
		s[len(t.Dims)-1-i] = int64(d)
	}
	return s
}
