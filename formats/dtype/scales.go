package dtype

import (
	"encoding/binary"
	"fmt"
)

// Where each block-quantized type keeps its scales, from the block_* structs
// in ggml-common.h (see the layouts in legacy.go, kquants.go, ternary.go and
// iquants.go). A NaN or Inf scale makes a whole block decode to NaN/Inf, but
// a checker also wants to name it when it does not: a scale the decoder does
// not read (Q8_1's s, used only by llama.cpp's dot products) still breaks
// inference.

type scaleKind uint8

const (
	scaleF16  scaleKind = iota // IEEE binary16, little-endian
	scaleF32                   // IEEE binary32, little-endian
	scaleIQ1M                  // IQ1_M's fp16 d, spread over the top nibbles of four u16 at the offset
)

type scaleField struct {
	off  int
	kind scaleKind
}

// blockScales lists every scale field of a block of each quantized type.
// A type with no entry (and not in noScales) has no known scale layout.
var blockScales = map[id][]scaleField{
	idQ4_0:   {{0, scaleF16}},                  // d
	idQ4_1:   {{0, scaleF16}, {2, scaleF16}},   // d, m
	idQ5_0:   {{0, scaleF16}},                  // d
	idQ5_1:   {{0, scaleF16}, {2, scaleF16}},   // d, m
	idQ8_0:   {{0, scaleF16}},                  // d
	idQ8_1:   {{0, scaleF16}, {2, scaleF16}},   // d, s = d*sum(q)
	idQ2K:    {{80, scaleF16}, {82, scaleF16}}, // d, dmin after scales[16], qs[64]
	idQ3K:    {{108, scaleF16}},                // d after hmask[32], qs[64], scales[12]
	idQ4K:    {{0, scaleF16}, {2, scaleF16}},   // d, dmin
	idQ5K:    {{0, scaleF16}, {2, scaleF16}},   // d, dmin
	idQ6K:    {{208, scaleF16}},                // d after ql[128], qh[64], scales[16]
	idQ8K:    {{0, scaleF32}},                  // float32 d
	idIQ2XXS: {{0, scaleF16}},
	idIQ2XS:  {{0, scaleF16}},
	idIQ2S:   {{0, scaleF16}},
	idIQ3XXS: {{0, scaleF16}},
	idIQ3S:   {{0, scaleF16}},
	idIQ1S:   {{0, scaleF16}},
	idIQ1M:   {{48, scaleIQ1M}}, // scales 4×u16 after qs[32], qh[16]
	idIQ4NL:  {{0, scaleF16}},
	idIQ4XS:  {{0, scaleF16}},
	idTQ1_0:  {{52, scaleF16}}, // d after qs[48], qh[4]
	idTQ2_0:  {{64, scaleF16}}, // d after qs[64]
	idQ4_2:   {{0, scaleF16}},  // removed upstream: {fp16 d; qs[8]}
	idQ4_3:   {{0, scaleF16}, {2, scaleF16}},
}

// noScales are quantized types whose scales cannot be NaN or Inf as ggml
// decodes them: MXFP4's E8M0 exponent 0xFF is NaN in the OCP MX spec, but
// ggml reads it as the finite 2^127 (see e8m0Half), so nothing is counted.
var noScales = map[id]bool{idMXFP4: true}

// NonFiniteScales counts the blocks of src, the stored bytes of a tensor of
// type t, that have a NaN or ±Inf scale field (d, dmin, m, s, or Q8_K's
// float32 d), whatever the blocks decode to. Types without block scales
// (F32, F16, BF16, integers, fp8) and MXFP4 give 0. It is an error when src
// is not a whole number of blocks, or when the type's scale layout is not
// known (GGML's removed repacked types such as Q4_0_4_4).
func NonFiniteScales(t Type, src []byte) (blocks int64, err error) {
	if !t.Known() {
		return 0, fmt.Errorf("scales of %s: its layout is unknown", t.Name())
	}
	if !t.Quantized() || noScales[t.id] {
		return 0, nil
	}
	fields, ok := blockScales[t.id]
	if !ok {
		return 0, fmt.Errorf("scales of %s: the block layout of this removed GGML type is not known", t.Name())
	}
	bb := t.BlockBytes()
	if len(src)%bb != 0 {
		return 0, fmt.Errorf("scales of %s: %d bytes is not a whole number of %d-byte blocks (%d bytes left over at offset %d)",
			t.Name(), len(src), bb, len(src)%bb, len(src)-len(src)%bb)
	}
	for off := 0; off < len(src); off += bb {
		b := src[off : off+bb]
		for _, f := range fields {
			if nonFinite(b, f) {
				blocks++
				break
			}
		}
	}
	return blocks, nil
}

// nonFinite reports whether a scale field has an all-ones exponent (NaN or
// Inf), from its bits.
func nonFinite(b []byte, f scaleField) bool {
	switch f.kind {
	case scaleF32:
		return binary.LittleEndian.Uint32(b[f.off:])&0x7f800000 == 0x7f800000
	case scaleIQ1M:
		var h uint16
		for k := range 4 {
			h |= binary.LittleEndian.Uint16(b[f.off+2*k:]) >> 12 << (4 * k)
		}
		return h&0x7c00 == 0x7c00
	}
	return binary.LittleEndian.Uint16(b[f.off:])&0x7c00 == 0x7c00
}
