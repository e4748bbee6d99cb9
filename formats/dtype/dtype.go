// Package dtype knows every element type qkv can meet in a checkpoint — the
// safetensors dtypes and the GGML tensor types — with its name, block size and
// bytes per block, and decodes raw little-endian bytes of those types to
// float32 exactly as the reference decoders do.
//
// It is the leaf of the formats tree: it imports nothing from qkv and knows
// nothing about files. Callers hand it whole blocks and a destination buffer;
// it never allocates per element.
package dtype

import (
	"errors"
	"fmt"
)

// Type identifies an element type. The zero value is Invalid.
type Type struct {
	id    id
	ggml  int32  // GGML type id, or -1 when the type has none
	extra int32  // for unknown GGML ids: the id as read
	unk   string // for unknown safetensors dtypes: the name as written
}

type id uint8

const (
	idInvalid id = iota
	// Plain scalar types (block size 1).
	idF64
	idF32
	idF16
	idBF16
	idI64
	idI32
	idI16
	idI8
	idU64
	idU32
	idU16
	idU8
	idBool
	idF8E4M3
	idF8E5M2
	idF8E8M0
	// Sub-byte and complex safetensors types (listed, not decoded).
	idF4
	idF6E2M3
	idF6E3M2
	idC64
	// GGML block-quantized types.
	idQ4_0
	idQ4_1
	idQ5_0
	idQ5_1
	idQ8_0
	idQ8_1
	idQ2K
	idQ3K
	idQ4K
	idQ5K
	idQ6K
	idQ8K
	idIQ2XXS
	idIQ2XS
	idIQ3XXS
	idIQ1S
	idIQ4NL
	idIQ3S
	idIQ2S
	idIQ4XS
	idIQ1M
	idTQ1_0
	idTQ2_0
	idMXFP4
	// GGML ids that upstream removed; known by name, not decodable.
	idQ4_2
	idQ4_3
	idQ4_0_4_4
	idQ4_0_4_8
	idQ4_0_8_8
	idIQ4NL_4_4
	idIQ4NL_4_8
	idIQ4NL_8_8
	idUnknownGGML
	idUnknownST
	numIDs
)

type info struct {
	name        string // canonical name: GGML's for GGML types, safetensors' otherwise
	stName      string // safetensors dtype name, "" when safetensors has none
	blockSize   int    // elements per block
	blockBytes  int    // bytes per block
	ggml        int32  // GGML type id, -1 when none
	decodable   bool
	removed     bool // a GGML id upstream no longer defines
	quantized   bool // block-quantized with per-block scales
	description string
}

var infos = [numIDs]info{
	idInvalid:     {name: "invalid", ggml: -1},
	idF64:         {name: "F64", stName: "F64", blockSize: 1, blockBytes: 8, ggml: 28, decodable: true},
	idF32:         {name: "F32", stName: "F32", blockSize: 1, blockBytes: 4, ggml: 0, decodable: true},
	idF16:         {name: "F16", stName: "F16", blockSize: 1, blockBytes: 2, ggml: 1, decodable: true},
	idBF16:        {name: "BF16", stName: "BF16", blockSize: 1, blockBytes: 2, ggml: 30, decodable: true},
	idI64:         {name: "I64", stName: "I64", blockSize: 1, blockBytes: 8, ggml: 27, decodable: true},
	idI32:         {name: "I32", stName: "I32", blockSize: 1, blockBytes: 4, ggml: 26, decodable: true},
	idI16:         {name: "I16", stName: "I16", blockSize: 1, blockBytes: 2, ggml: 25, decodable: true},
	idI8:          {name: "I8", stName: "I8", blockSize: 1, blockBytes: 1, ggml: 24, decodable: true},
	idU64:         {name: "U64", stName: "U64", blockSize: 1, blockBytes: 8, ggml: -1, decodable: true},
	idU32:         {name: "U32", stName: "U32", blockSize: 1, blockBytes: 4, ggml: -1, decodable: true},
	idU16:         {name: "U16", stName: "U16", blockSize: 1, blockBytes: 2, ggml: -1, decodable: true},
	idU8:          {name: "U8", stName: "U8", blockSize: 1, blockBytes: 1, ggml: -1, decodable: true},
	idBool:        {name: "BOOL", stName: "BOOL", blockSize: 1, blockBytes: 1, ggml: -1, decodable: true},
	idF8E4M3:      {name: "F8_E4M3", stName: "F8_E4M3", blockSize: 1, blockBytes: 1, ggml: -1, decodable: true},
	idF8E5M2:      {name: "F8_E5M2", stName: "F8_E5M2", blockSize: 1, blockBytes: 1, ggml: -1, decodable: true},
	idF8E8M0:      {name: "F8_E8M0", stName: "F8_E8M0", blockSize: 1, blockBytes: 1, ggml: -1, decodable: true},
	idF4:          {name: "F4", stName: "F4", blockSize: 2, blockBytes: 1, ggml: -1},
	idF6E2M3:      {name: "F6_E2M3", stName: "F6_E2M3", blockSize: 4, blockBytes: 3, ggml: -1},
	idF6E3M2:      {name: "F6_E3M2", stName: "F6_E3M2", blockSize: 4, blockBytes: 3, ggml: -1},
	idC64:         {name: "C64", stName: "C64", blockSize: 1, blockBytes: 8, ggml: -1},
	idQ4_0:        {name: "Q4_0", blockSize: 32, blockBytes: 18, ggml: 2, decodable: true, quantized: true},
	idQ4_1:        {name: "Q4_1", blockSize: 32, blockBytes: 20, ggml: 3, decodable: true, quantized: true},
	idQ5_0:        {name: "Q5_0", blockSize: 32, blockBytes: 22, ggml: 6, decodable: true, quantized: true},
	idQ5_1:        {name: "Q5_1", blockSize: 32, blockBytes: 24, ggml: 7, decodable: true, quantized: true},
	idQ8_0:        {name: "Q8_0", blockSize: 32, blockBytes: 34, ggml: 8, decodable: true, quantized: true},
	idQ8_1:        {name: "Q8_1", blockSize: 32, blockBytes: 36, ggml: 9, decodable: true, quantized: true},
	idQ2K:         {name: "Q2_K", blockSize: 256, blockBytes: 84, ggml: 10, decodable: true, quantized: true},
	idQ3K:         {name: "Q3_K", blockSize: 256, blockBytes: 110, ggml: 11, decodable: true, quantized: true},
	idQ4K:         {name: "Q4_K", blockSize: 256, blockBytes: 144, ggml: 12, decodable: true, quantized: true},
	idQ5K:         {name: "Q5_K", blockSize: 256, blockBytes: 176, ggml: 13, decodable: true, quantized: true},
	idQ6K:         {name: "Q6_K", blockSize: 256, blockBytes: 210, ggml: 14, decodable: true, quantized: true},
	idQ8K:         {name: "Q8_K", blockSize: 256, blockBytes: 292, ggml: 15, decodable: true, quantized: true},
	idIQ2XXS:      {name: "IQ2_XXS", blockSize: 256, blockBytes: 66, ggml: 16, decodable: true, quantized: true},
	idIQ2XS:       {name: "IQ2_XS", blockSize: 256, blockBytes: 74, ggml: 17, decodable: true, quantized: true},
	idIQ3XXS:      {name: "IQ3_XXS", blockSize: 256, blockBytes: 98, ggml: 18, decodable: true, quantized: true},
	idIQ1S:        {name: "IQ1_S", blockSize: 256, blockBytes: 50, ggml: 19, decodable: true, quantized: true},
	idIQ4NL:       {name: "IQ4_NL", blockSize: 32, blockBytes: 18, ggml: 20, decodable: true, quantized: true},
	idIQ3S:        {name: "IQ3_S", blockSize: 256, blockBytes: 110, ggml: 21, decodable: true, quantized: true},
	idIQ2S:        {name: "IQ2_S", blockSize: 256, blockBytes: 82, ggml: 22, decodable: true, quantized: true},
	idIQ4XS:       {name: "IQ4_XS", blockSize: 256, blockBytes: 136, ggml: 23, decodable: true, quantized: true},
	idIQ1M:        {name: "IQ1_M", blockSize: 256, blockBytes: 56, ggml: 29, decodable: true, quantized: true},
	idTQ1_0:       {name: "TQ1_0", blockSize: 256, blockBytes: 54, ggml: 34, decodable: true, quantized: true},
	idTQ2_0:       {name: "TQ2_0", blockSize: 256, blockBytes: 66, ggml: 35, decodable: true, quantized: true},
	idMXFP4:       {name: "MXFP4", blockSize: 32, blockBytes: 17, ggml: 39, decodable: true, quantized: true},
	idQ4_2:        {name: "Q4_2", blockSize: 16, blockBytes: 10, ggml: 4, removed: true, quantized: true},
	idQ4_3:        {name: "Q4_3", blockSize: 16, blockBytes: 12, ggml: 5, removed: true, quantized: true},
	idQ4_0_4_4:    {name: "Q4_0_4_4", blockSize: 32, blockBytes: 18, ggml: 31, removed: true, quantized: true},
	idQ4_0_4_8:    {name: "Q4_0_4_8", blockSize: 32, blockBytes: 18, ggml: 32, removed: true, quantized: true},
	idQ4_0_8_8:    {name: "Q4_0_8_8", blockSize: 32, blockBytes: 18, ggml: 33, removed: true, quantized: true},
	idIQ4NL_4_4:   {name: "IQ4_NL_4_4", blockSize: 32, blockBytes: 18, ggml: 36, removed: true, quantized: true},
	idIQ4NL_4_8:   {name: "IQ4_NL_4_8", blockSize: 32, blockBytes: 18, ggml: 37, removed: true, quantized: true},
	idIQ4NL_8_8:   {name: "IQ4_NL_8_8", blockSize: 32, blockBytes: 18, ggml: 38, removed: true, quantized: true},
	idUnknownGGML: {name: "unknown", ggml: -1},
	idUnknownST:   {name: "unknown", ggml: -1},
}

// Named types, for callers that build tensors or compare types.
var (
	Invalid = Type{}
	F64     = Type{id: idF64, ggml: 28}
	F32     = Type{id: idF32, ggml: 0}
	F16     = Type{id: idF16, ggml: 1}
	BF16    = Type{id: idBF16, ggml: 30}
	Q8_0    = Type{id: idQ8_0, ggml: 8}
	Q4_K    = Type{id: idQ4K, ggml: 12}
)

// The lookup maps are built by variable initialisers, not init, so that
// package-level variables anywhere in this package may call FromGGML.
var (
	byGGML   = buildIndex(func(in info) (int32, bool) { return in.ggml, in.ggml >= 0 })
	bySTName = buildIndex(func(in info) (string, bool) { return in.stName, in.stName != "" })
)

func buildIndex[K comparable](key func(info) (K, bool)) map[K]id {
	m := map[K]id{}
	for i := id(1); i < numIDs; i++ {
		if k, ok := key(infos[i]); ok {
			m[k] = i
		}
	}
	return m
}

// FromGGML returns the type with the given GGML type id. An id that upstream
// ggml does not define (forks use ids above 39) gives a type whose Known
// reports false and whose Name is "type N (unknown)"; it is not an error, so
// that a listing can go on.
func FromGGML(ggmlID uint32) Type {
	if ggmlID <= 1<<31-1 {
		if i, ok := byGGML[int32(ggmlID)]; ok {
			return Type{id: i, ggml: int32(ggmlID)}
		}
	}
	return Type{id: idUnknownGGML, ggml: -1, extra: int32(ggmlID)}
}

// FromSafetensors returns the type with the given safetensors dtype name. An
// unknown name gives a type whose Known reports false and whose Name is the
// name as written.
func FromSafetensors(name string) Type {
	if i, ok := bySTName[name]; ok {
		return Type{id: i, ggml: infos[i].ggml}
	}
	return Type{id: idUnknownST, ggml: -1, unk: name}
}

// Name is the type's name: GGML's spelling for GGML types ("Q4_K"), the
// safetensors spelling otherwise ("F8_E4M3"), "type N (unknown)" for an
// unknown GGML id and the name as written for an unknown safetensors dtype.
func (t Type) Name() string {
	switch t.id {
	case idUnknownGGML:
		return fmt.Sprintf("type %d (unknown)", uint32(t.extra))
	case idUnknownST:
		return t.unk
	}
	return infos[t.id].name
}

func (t Type) String() string { return t.Name() }

// Known reports whether the type's layout (block size and bytes) is known.
func (t Type) Known() bool { return t.id != idInvalid && infos[t.id].blockSize > 0 }

// Decodable reports whether Decode can turn this type into float32.
func (t Type) Decodable() bool { return t.id < numIDs && kernels[t.id] != nil }

// Quantized reports whether the type stores blocks with their own scales.
func (t Type) Quantized() bool { return infos[t.id].quantized }

// Removed reports whether this is a GGML id that upstream ggml no longer
// defines (Q4_2, Q4_0_4_4, ...): its name is known, its data is not decoded.
func (t Type) Removed() bool { return infos[t.id].removed }

// GGMLID returns the GGML type id and whether the type has one.
func (t Type) GGMLID() (uint32, bool) {
	if t.id == idUnknownGGML {
		return uint32(t.extra), true
	}
	g := infos[t.id].ggml
	return uint32(g), g >= 0
}

// SafetensorsName returns the safetensors dtype name, "" when there is none.
func (t Type) SafetensorsName() string {
	if t.id == idUnknownST {
		return t.Name()
	}
	return infos[t.id].stName
}

// BlockSize is the number of elements in one block (1 for scalar types), 0
// when unknown.
func (t Type) BlockSize() int { return infos[t.id].blockSize }

// BlockBytes is the number of bytes one block occupies, 0 when unknown.
func (t Type) BlockBytes() int { return infos[t.id].blockBytes }

// ErrUnknownLayout is returned when a size is asked of a type whose layout is unknown.
var ErrUnknownLayout = errors.New("element type has no known layout")

// ByteSize returns how many bytes n elements of this type occupy. It fails
// when n is negative, not a whole number of blocks, or the size overflows int64.
func (t Type) ByteSize(n int64) (int64, error) {
	bs, bb := int64(t.BlockSize()), int64(t.BlockBytes())
	if bs == 0 {
		return 0, fmt.Errorf("%s: %w", t.Name(), ErrUnknownLayout)
	}
	if n < 0 {
		return 0, fmt.Errorf("negative element count %d", n)
	}
	if n%bs != 0 {
		return 0, fmt.Errorf("%d elements is not a whole number of %s blocks of %d", n, t.Name(), bs)
	}
	blocks := n / bs
	if blocks > (1<<63-1)/bb {
		return 0, fmt.Errorf("%d elements of %s overflow a 64-bit byte size", n, t.Name())
	}
	return blocks * bb, nil
}

// All returns every known type (not the unknown placeholders), in id order:
// scalar types, sub-byte types, then GGML quantized and removed ids.
func All() []Type {
	var out []Type
	for i := id(1); i < idUnknownGGML; i++ {
		out = append(out, Type{id: i, ggml: infos[i].ggml})
	}
	return out
}
