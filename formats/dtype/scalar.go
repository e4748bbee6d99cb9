package dtype

import (
	"encoding/binary"
	"math"
)

// Kernels for plain scalar types (block size 1). Integer conversions use Go's
// direct conversions, which round once to nearest-even (float32(int64) is
// not float32(float64(int64)), which would round twice); float64 -> float32
// rounds to nearest-even, overflows to ±Inf and keeps subnormals, like a C
// cast.

func init() {
	register(idF64, decodeF64)
	register(idF32, decodeF32)
	register(idF16, decodeF16)
	register(idBF16, decodeBF16)
	register(idI64, decodeI64)
	register(idI32, decodeI32)
	register(idI16, decodeI16)
	register(idI8, decodeI8)
	register(idU64, decodeU64)
	register(idU32, decodeU32)
	register(idU16, decodeU16)
	register(idU8, decodeU8)
	register(idBool, decodeBool)
	register(idF8E4M3, decodeF8E4M3)
	register(idF8E5M2, decodeF8E5M2)
	register(idF8E8M0, decodeF8E8M0)

	registerBE(idF64, decodeF64BE)
	registerBE(idF32, decodeF32BE)
	registerBE(idF16, decodeF16BE)
	registerBE(idBF16, decodeBF16BE)
	registerBE(idI64, decodeI64BE)
	registerBE(idI32, decodeI32BE)
	registerBE(idI16, decodeI16BE)
	registerBE(idI8, decodeI8) // one byte: no byte order
	registerBE(idU64, decodeU64BE)
	registerBE(idU32, decodeU32BE)
	registerBE(idU16, decodeU16BE)
	registerBE(idU8, decodeU8)

	for c := range 256 {
		f8e4m3Table[c] = f8E4M3ToFloat32(uint8(c))
		f8e5m2Table[c] = halfTable[uint16(c)<<8]
		f8e8m0Table[c] = f8E8M0ToFloat32(uint8(c))
	}
}

var f8e4m3Table, f8e5m2Table, f8e8m0Table [256]float32

// f8E4M3ToFloat32 decodes OCP E4M3FN: bias 7, 3 mantissa bits, no Inf,
// NaN only for S.1111.111, exponent 0 is subnormal (m * 2^-9).
func f8E4M3ToFloat32(c uint8) float32 {
	sign := float32(1)
	if c&0x80 != 0 {
		sign = -1
	}
	e := int(c>>3) & 0xf
	m := int(c) & 7
	switch {
	case e == 0xf && m == 7:
		return float32(math.NaN())
	case e == 0:
		return sign * float32(math.Ldexp(float64(m), -9))
	default:
		return sign * float32(math.Ldexp(float64(8+m), e-7-3))
	}
}

// f8E8M0ToFloat32 decodes the exponent-only E8M0 scale: 2^(e-127), with
// 0xFF = NaN. Code 0 is 2^-127, a float32 subnormal.
func f8E8M0ToFloat32(c uint8) float32 {
	if c == 0xff {
		return float32(math.NaN())
	}
	return float32(math.Ldexp(1, int(c)-127))
}

func decodeF64(dst []float32, src []byte) {
	src = src[:8*len(dst)]
	for i := range dst {
		dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
	}
}

func decodeF64BE(dst []float32, src []byte) {
	src = src[:8*len(dst)]
	for i := range dst {
		dst[i] = float32(math.Float64frombits(binary.BigEndian.Uint64(src[8*i:])))
	}
}

func decodeF32(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for len(dst) >= 8 {
		d := (*[8]float32)(dst)
		s := (*[32]byte)(src)
		for j := range 8 {
			d[j] = math.Float32frombits(binary.LittleEndian.Uint32(s[4*j:]))
		}
		dst, src = dst[8:], src[32:]
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func decodeF32BE(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.BigEndian.Uint32(src[4*i:]))
	}
}

func decodeF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for len(dst) >= 8 {
		d := (*[8]float32)(dst)
		s := (*[16]byte)(src)
		for j := range 8 {
			d[j] = halfTable[binary.LittleEndian.Uint16(s[2*j:])]
		}
		dst, src = dst[8:], src[16:]
	}
	for i := range dst {
		dst[i] = halfTable[binary.LittleEndian.Uint16(src[2*i:])]
	}
}

func decodeF16BE(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = halfTable[binary.BigEndian.Uint16(src[2*i:])]
	}
}

func decodeBF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for len(dst) >= 8 {
		d := (*[8]float32)(dst)
		s := (*[16]byte)(src)
		for j := range 8 {
			d[j] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(s[2*j:])) << 16)
		}
		dst, src = dst[8:], src[16:]
	}
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

func decodeBF16BE(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.BigEndian.Uint16(src[2*i:])) << 16)
	}
}

func decodeI64(dst []float32, src []byte) {
	src = src[:8*len(dst)]
	for i := range dst {
		dst[i] = float32(int64(binary.LittleEndian.Uint64(src[8*i:])))
	}
}

func decodeI64BE(dst []float32, src []byte) {
	src = src[:8*len(dst)]
	for i := range dst {
		dst[i] = float32(int64(binary.BigEndian.Uint64(src[8*i:])))
	}
}

func decodeU64(dst []float32, src []byte) {
	src = src[:8*len(dst)]
	for i := range dst {
		dst[i] = float32(binary.LittleEndian.Uint64(src[8*i:]))
	}
}

func decodeU64BE(dst []float32, src []byte) {
	src = src[:8*len(dst)]
	for i := range dst {
		dst[i] = float32(binary.BigEndian.Uint64(src[8*i:]))
	}
}

func decodeI32(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = float32(int32(binary.LittleEndian.Uint32(src[4*i:])))
	}
}

func decodeI32BE(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = float32(int32(binary.BigEndian.Uint32(src[4*i:])))
	}
}

func decodeU32(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = float32(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func decodeU32BE(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = float32(binary.BigEndian.Uint32(src[4*i:]))
	}
}

func decodeI16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = float32(int16(binary.LittleEndian.Uint16(src[2*i:])))
	}
}

func decodeI16BE(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = float32(int16(binary.BigEndian.Uint16(src[2*i:])))
	}
}

func decodeU16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = float32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func decodeU16BE(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = float32(binary.BigEndian.Uint16(src[2*i:]))
	}
}

func decodeI8(dst []float32, src []byte) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = float32(int8(src[i]))
	}
}

func decodeU8(dst []float32, src []byte) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = float32(src[i])
	}
}

// decodeBool maps 0x00 to 0 and any other byte to 1 (safetensors writes
// only 0x00 and 0x01).
func decodeBool(dst []float32, src []byte) {
	src = src[:len(dst)]
	for i := range dst {
		if src[i] != 0 {
			dst[i] = 1
		} else {
			dst[i] = 0
		}
	}
}

func decodeF8E4M3(dst []float32, src []byte) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = f8e4m3Table[src[i]]
	}
}

func decodeF8E5M2(dst []float32, src []byte) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = f8e5m2Table[src[i]]
	}
}

func decodeF8E8M0(dst []float32, src []byte) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] = f8e8m0Table[src[i]]
	}
}
