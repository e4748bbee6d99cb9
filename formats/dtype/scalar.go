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

}

// buildScalarTables fills the fp8 and bool tables (loadTables).
func buildScalarTables() {
	for c := range 256 {
		f8e4m3Table[c] = f8E4M3ToFloat32(uint8(c))
		f8e5m2Table[c] = halfTable[uint16(c)<<8]
		f8e8m0Table[c] = f8E8M0ToFloat32(uint8(c))
		if c != 0 { // bool: 0x00 is false, anything else true
			boolTable[c] = 1
		}
	}
}

var f8e4m3Table, f8e5m2Table, f8e8m0Table, boolTable [256]float32

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

// Each kernel below converts eight elements per iteration through
// fixed-size array pointers (no bounds checks, one loop branch per eight),
// then the remaining tail one at a time.

func decodeF64(dst []float32, src []byte) {
	src = src[:8*len(dst)]
	for len(dst) >= 8 && len(src) >= 64 {
		d := (*[8]float32)(dst)
		s := (*[64]byte)(src)
		d[0] = float32(math.Float64frombits(binary.LittleEndian.Uint64(s[0:])))
		d[1] = float32(math.Float64frombits(binary.LittleEndian.Uint64(s[8:])))
		d[2] = float32(math.Float64frombits(binary.LittleEndian.Uint64(s[16:])))
		d[3] = float32(math.Float64frombits(binary.LittleEndian.Uint64(s[24:])))
		d[4] = float32(math.Float64frombits(binary.LittleEndian.Uint64(s[32:])))
		d[5] = float32(math.Float64frombits(binary.LittleEndian.Uint64(s[40:])))
		d[6] = float32(math.Float64frombits(binary.LittleEndian.Uint64(s[48:])))
		d[7] = float32(math.Float64frombits(binary.LittleEndian.Uint64(s[56:])))
		dst, src = dst[8:], src[64:]
	}
	for i := range dst {
		dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
	}
}

func decodeF64BE(dst []float32, src []byte) {
	src = src[:8*len(dst)]
	for len(dst) >= 8 && len(src) >= 64 {
		d := (*[8]float32)(dst)
		s := (*[64]byte)(src)
		d[0] = float32(math.Float64frombits(binary.BigEndian.Uint64(s[0:])))
		d[1] = float32(math.Float64frombits(binary.BigEndian.Uint64(s[8:])))
		d[2] = float32(math.Float64frombits(binary.BigEndian.Uint64(s[16:])))
		d[3] = float32(math.Float64frombits(binary.BigEndian.Uint64(s[24:])))
		d[4] = float32(math.Float64frombits(binary.BigEndian.Uint64(s[32:])))
		d[5] = float32(math.Float64frombits(binary.BigEndian.Uint64(s[40:])))
		d[6] = float32(math.Float64frombits(binary.BigEndian.Uint64(s[48:])))
		d[7] = float32(math.Float64frombits(binary.BigEndian.Uint64(s[56:])))
		dst, src = dst[8:], src[64:]
	}
	for i := range dst {
		dst[i] = float32(math.Float64frombits(binary.BigEndian.Uint64(src[8*i:])))
	}
}

func decodeF32(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for len(dst) >= 8 && len(src) >= 32 {
		d := (*[8]float32)(dst)
		s := (*[32]byte)(src)
		d[0] = math.Float32frombits(binary.LittleEndian.Uint32(s[0:]))
		d[1] = math.Float32frombits(binary.LittleEndian.Uint32(s[4:]))
		d[2] = math.Float32frombits(binary.LittleEndian.Uint32(s[8:]))
		d[3] = math.Float32frombits(binary.LittleEndian.Uint32(s[12:]))
		d[4] = math.Float32frombits(binary.LittleEndian.Uint32(s[16:]))
		d[5] = math.Float32frombits(binary.LittleEndian.Uint32(s[20:]))
		d[6] = math.Float32frombits(binary.LittleEndian.Uint32(s[24:]))
		d[7] = math.Float32frombits(binary.LittleEndian.Uint32(s[28:]))
		dst, src = dst[8:], src[32:]
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func decodeF32BE(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for len(dst) >= 8 && len(src) >= 32 {
		d := (*[8]float32)(dst)
		s := (*[32]byte)(src)
		d[0] = math.Float32frombits(binary.BigEndian.Uint32(s[0:]))
		d[1] = math.Float32frombits(binary.BigEndian.Uint32(s[4:]))
		d[2] = math.Float32frombits(binary.BigEndian.Uint32(s[8:]))
		d[3] = math.Float32frombits(binary.BigEndian.Uint32(s[12:]))
		d[4] = math.Float32frombits(binary.BigEndian.Uint32(s[16:]))
		d[5] = math.Float32frombits(binary.BigEndian.Uint32(s[20:]))
		d[6] = math.Float32frombits(binary.BigEndian.Uint32(s[24:]))
		d[7] = math.Float32frombits(binary.BigEndian.Uint32(s[28:]))
		dst, src = dst[8:], src[32:]
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.BigEndian.Uint32(src[4*i:]))
	}
}

func decodeF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for len(dst) >= 8 && len(src) >= 16 {
		d := (*[8]float32)(dst)
		s := (*[16]byte)(src)
		d[0] = halfTable[binary.LittleEndian.Uint16(s[0:])]
		d[1] = halfTable[binary.LittleEndian.Uint16(s[2:])]
		d[2] = halfTable[binary.LittleEndian.Uint16(s[4:])]
		d[3] = halfTable[binary.LittleEndian.Uint16(s[6:])]
		d[4] = halfTable[binary.LittleEndian.Uint16(s[8:])]
		d[5] = halfTable[binary.LittleEndian.Uint16(s[10:])]
		d[6] = halfTable[binary.LittleEndian.Uint16(s[12:])]
		d[7] = halfTable[binary.LittleEndian.Uint16(s[14:])]
		dst, src = dst[8:], src[16:]
	}
	for i := range dst {
		dst[i] = halfTable[binary.LittleEndian.Uint16(src[2*i:])]
	}
}

func decodeF16BE(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for len(dst) >= 8 && len(src) >= 16 {
		d := (*[8]float32)(dst)
		s := (*[16]byte)(src)
		d[0] = halfTable[binary.BigEndian.Uint16(s[0:])]
		d[1] = halfTable[binary.BigEndian.Uint16(s[2:])]
		d[2] = halfTable[binary.BigEndian.Uint16(s[4:])]
		d[3] = halfTable[binary.BigEndian.Uint16(s[6:])]
		d[4] = halfTable[binary.BigEndian.Uint16(s[8:])]
		d[5] = halfTable[binary.BigEndian.Uint16(s[10:])]
		d[6] = halfTable[binary.BigEndian.Uint16(s[12:])]
		d[7] = halfTable[binary.BigEndian.Uint16(s[14:])]
		dst, src = dst[8:], src[16:]
	}
	for i := range dst {
		dst[i] = halfTable[binary.BigEndian.Uint16(src[2*i:])]
	}
}

func decodeBF16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for len(dst) >= 8 && len(src) >= 16 {
		d := (*[8]float32)(dst)
		s := (*[16]byte)(src)
		d[0] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(s[0:])) << 16)
		d[1] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(s[2:])) << 16)
		d[2] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(s[4:])) << 16)
		d[3] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(s[6:])) << 16)
		d[4] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(s[8:])) << 16)
		d[5] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(s[10:])) << 16)
		d[6] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(s[12:])) << 16)
		d[7] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(s[14:])) << 16)
		dst, src = dst[8:], src[16:]
	}
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

func decodeBF16BE(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for len(dst) >= 8 && len(src) >= 16 {
		d := (*[8]float32)(dst)
		s := (*[16]byte)(src)
		d[0] = math.Float32frombits(uint32(binary.BigEndian.Uint16(s[0:])) << 16)
		d[1] = math.Float32frombits(uint32(binary.BigEndian.Uint16(s[2:])) << 16)
		d[2] = math.Float32frombits(uint32(binary.BigEndian.Uint16(s[4:])) << 16)
		d[3] = math.Float32frombits(uint32(binary.BigEndian.Uint16(s[6:])) << 16)
		d[4] = math.Float32frombits(uint32(binary.BigEndian.Uint16(s[8:])) << 16)
		d[5] = math.Float32frombits(uint32(binary.BigEndian.Uint16(s[10:])) << 16)
		d[6] = math.Float32frombits(uint32(binary.BigEndian.Uint16(s[12:])) << 16)
		d[7] = math.Float32frombits(uint32(binary.BigEndian.Uint16(s[14:])) << 16)
		dst, src = dst[8:], src[16:]
	}
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.BigEndian.Uint16(src[2*i:])) << 16)
	}
}

func decodeI64(dst []float32, src []byte) {
	src = src[:8*len(dst)]
	for len(dst) >= 8 && len(src) >= 64 {
		d := (*[8]float32)(dst)
		s := (*[64]byte)(src)
		d[0] = float32(int64(binary.LittleEndian.Uint64(s[0:])))
		d[1] = float32(int64(binary.LittleEndian.Uint64(s[8:])))
		d[2] = float32(int64(binary.LittleEndian.Uint64(s[16:])))
		d[3] = float32(int64(binary.LittleEndian.Uint64(s[24:])))
		d[4] = float32(int64(binary.LittleEndian.Uint64(s[32:])))
		d[5] = float32(int64(binary.LittleEndian.Uint64(s[40:])))
		d[6] = float32(int64(binary.LittleEndian.Uint64(s[48:])))
		d[7] = float32(int64(binary.LittleEndian.Uint64(s[56:])))
		dst, src = dst[8:], src[64:]
	}
	for i := range dst {
		dst[i] = float32(int64(binary.LittleEndian.Uint64(src[8*i:])))
	}
}

func decodeI64BE(dst []float32, src []byte) {
	src = src[:8*len(dst)]
	for len(dst) >= 8 && len(src) >= 64 {
		d := (*[8]float32)(dst)
		s := (*[64]byte)(src)
		d[0] = float32(int64(binary.BigEndian.Uint64(s[0:])))
		d[1] = float32(int64(binary.BigEndian.Uint64(s[8:])))
		d[2] = float32(int64(binary.BigEndian.Uint64(s[16:])))
		d[3] = float32(int64(binary.BigEndian.Uint64(s[24:])))
		d[4] = float32(int64(binary.BigEndian.Uint64(s[32:])))
		d[5] = float32(int64(binary.BigEndian.Uint64(s[40:])))
		d[6] = float32(int64(binary.BigEndian.Uint64(s[48:])))
		d[7] = float32(int64(binary.BigEndian.Uint64(s[56:])))
		dst, src = dst[8:], src[64:]
	}
	for i := range dst {
		dst[i] = float32(int64(binary.BigEndian.Uint64(src[8*i:])))
	}
}

func decodeU64(dst []float32, src []byte) {
	src = src[:8*len(dst)]
	for len(dst) >= 8 && len(src) >= 64 {
		d := (*[8]float32)(dst)
		s := (*[64]byte)(src)
		d[0] = u64ToFloat32(binary.LittleEndian.Uint64(s[0:]))
		d[1] = u64ToFloat32(binary.LittleEndian.Uint64(s[8:]))
		d[2] = u64ToFloat32(binary.LittleEndian.Uint64(s[16:]))
		d[3] = u64ToFloat32(binary.LittleEndian.Uint64(s[24:]))
		d[4] = u64ToFloat32(binary.LittleEndian.Uint64(s[32:]))
		d[5] = u64ToFloat32(binary.LittleEndian.Uint64(s[40:]))
		d[6] = u64ToFloat32(binary.LittleEndian.Uint64(s[48:]))
		d[7] = u64ToFloat32(binary.LittleEndian.Uint64(s[56:]))
		dst, src = dst[8:], src[64:]
	}
	for i := range dst {
		dst[i] = u64ToFloat32(binary.LittleEndian.Uint64(src[8*i:]))
	}
}

func decodeU64BE(dst []float32, src []byte) {
	src = src[:8*len(dst)]
	for len(dst) >= 8 && len(src) >= 64 {
		d := (*[8]float32)(dst)
		s := (*[64]byte)(src)
		d[0] = u64ToFloat32(binary.BigEndian.Uint64(s[0:]))
		d[1] = u64ToFloat32(binary.BigEndian.Uint64(s[8:]))
		d[2] = u64ToFloat32(binary.BigEndian.Uint64(s[16:]))
		d[3] = u64ToFloat32(binary.BigEndian.Uint64(s[24:]))
		d[4] = u64ToFloat32(binary.BigEndian.Uint64(s[32:]))
		d[5] = u64ToFloat32(binary.BigEndian.Uint64(s[40:]))
		d[6] = u64ToFloat32(binary.BigEndian.Uint64(s[48:]))
		d[7] = u64ToFloat32(binary.BigEndian.Uint64(s[56:]))
		dst, src = dst[8:], src[64:]
	}
	for i := range dst {
		dst[i] = u64ToFloat32(binary.BigEndian.Uint64(src[8*i:]))
	}
}

func decodeI32(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for len(dst) >= 8 && len(src) >= 32 {
		d := (*[8]float32)(dst)
		s := (*[32]byte)(src)
		d[0] = float32(int32(binary.LittleEndian.Uint32(s[0:])))
		d[1] = float32(int32(binary.LittleEndian.Uint32(s[4:])))
		d[2] = float32(int32(binary.LittleEndian.Uint32(s[8:])))
		d[3] = float32(int32(binary.LittleEndian.Uint32(s[12:])))
		d[4] = float32(int32(binary.LittleEndian.Uint32(s[16:])))
		d[5] = float32(int32(binary.LittleEndian.Uint32(s[20:])))
		d[6] = float32(int32(binary.LittleEndian.Uint32(s[24:])))
		d[7] = float32(int32(binary.LittleEndian.Uint32(s[28:])))
		dst, src = dst[8:], src[32:]
	}
	for i := range dst {
		dst[i] = float32(int32(binary.LittleEndian.Uint32(src[4*i:])))
	}
}

func decodeI32BE(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for len(dst) >= 8 && len(src) >= 32 {
		d := (*[8]float32)(dst)
		s := (*[32]byte)(src)
		d[0] = float32(int32(binary.BigEndian.Uint32(s[0:])))
		d[1] = float32(int32(binary.BigEndian.Uint32(s[4:])))
		d[2] = float32(int32(binary.BigEndian.Uint32(s[8:])))
		d[3] = float32(int32(binary.BigEndian.Uint32(s[12:])))
		d[4] = float32(int32(binary.BigEndian.Uint32(s[16:])))
		d[5] = float32(int32(binary.BigEndian.Uint32(s[20:])))
		d[6] = float32(int32(binary.BigEndian.Uint32(s[24:])))
		d[7] = float32(int32(binary.BigEndian.Uint32(s[28:])))
		dst, src = dst[8:], src[32:]
	}
	for i := range dst {
		dst[i] = float32(int32(binary.BigEndian.Uint32(src[4*i:])))
	}
}

func decodeU32(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for len(dst) >= 8 && len(src) >= 32 {
		d := (*[8]float32)(dst)
		s := (*[32]byte)(src)
		d[0] = float32(binary.LittleEndian.Uint32(s[0:]))
		d[1] = float32(binary.LittleEndian.Uint32(s[4:]))
		d[2] = float32(binary.LittleEndian.Uint32(s[8:]))
		d[3] = float32(binary.LittleEndian.Uint32(s[12:]))
		d[4] = float32(binary.LittleEndian.Uint32(s[16:]))
		d[5] = float32(binary.LittleEndian.Uint32(s[20:]))
		d[6] = float32(binary.LittleEndian.Uint32(s[24:]))
		d[7] = float32(binary.LittleEndian.Uint32(s[28:]))
		dst, src = dst[8:], src[32:]
	}
	for i := range dst {
		dst[i] = float32(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func decodeU32BE(dst []float32, src []byte) {
	src = src[:4*len(dst)]
	for len(dst) >= 8 && len(src) >= 32 {
		d := (*[8]float32)(dst)
		s := (*[32]byte)(src)
		d[0] = float32(binary.BigEndian.Uint32(s[0:]))
		d[1] = float32(binary.BigEndian.Uint32(s[4:]))
		d[2] = float32(binary.BigEndian.Uint32(s[8:]))
		d[3] = float32(binary.BigEndian.Uint32(s[12:]))
		d[4] = float32(binary.BigEndian.Uint32(s[16:]))
		d[5] = float32(binary.BigEndian.Uint32(s[20:]))
		d[6] = float32(binary.BigEndian.Uint32(s[24:]))
		d[7] = float32(binary.BigEndian.Uint32(s[28:]))
		dst, src = dst[8:], src[32:]
	}
	for i := range dst {
		dst[i] = float32(binary.BigEndian.Uint32(src[4*i:]))
	}
}

func decodeI16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for len(dst) >= 8 && len(src) >= 16 {
		d := (*[8]float32)(dst)
		s := (*[16]byte)(src)
		d[0] = float32(int16(binary.LittleEndian.Uint16(s[0:])))
		d[1] = float32(int16(binary.LittleEndian.Uint16(s[2:])))
		d[2] = float32(int16(binary.LittleEndian.Uint16(s[4:])))
		d[3] = float32(int16(binary.LittleEndian.Uint16(s[6:])))
		d[4] = float32(int16(binary.LittleEndian.Uint16(s[8:])))
		d[5] = float32(int16(binary.LittleEndian.Uint16(s[10:])))
		d[6] = float32(int16(binary.LittleEndian.Uint16(s[12:])))
		d[7] = float32(int16(binary.LittleEndian.Uint16(s[14:])))
		dst, src = dst[8:], src[16:]
	}
	for i := range dst {
		dst[i] = float32(int16(binary.LittleEndian.Uint16(src[2*i:])))
	}
}

func decodeI16BE(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for len(dst) >= 8 && len(src) >= 16 {
		d := (*[8]float32)(dst)
		s := (*[16]byte)(src)
		d[0] = float32(int16(binary.BigEndian.Uint16(s[0:])))
		d[1] = float32(int16(binary.BigEndian.Uint16(s[2:])))
		d[2] = float32(int16(binary.BigEndian.Uint16(s[4:])))
		d[3] = float32(int16(binary.BigEndian.Uint16(s[6:])))
		d[4] = float32(int16(binary.BigEndian.Uint16(s[8:])))
		d[5] = float32(int16(binary.BigEndian.Uint16(s[10:])))
		d[6] = float32(int16(binary.BigEndian.Uint16(s[12:])))
		d[7] = float32(int16(binary.BigEndian.Uint16(s[14:])))
		dst, src = dst[8:], src[16:]
	}
	for i := range dst {
		dst[i] = float32(int16(binary.BigEndian.Uint16(src[2*i:])))
	}
}

func decodeU16(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for len(dst) >= 8 && len(src) >= 16 {
		d := (*[8]float32)(dst)
		s := (*[16]byte)(src)
		d[0] = float32(binary.LittleEndian.Uint16(s[0:]))
		d[1] = float32(binary.LittleEndian.Uint16(s[2:]))
		d[2] = float32(binary.LittleEndian.Uint16(s[4:]))
		d[3] = float32(binary.LittleEndian.Uint16(s[6:]))
		d[4] = float32(binary.LittleEndian.Uint16(s[8:]))
		d[5] = float32(binary.LittleEndian.Uint16(s[10:]))
		d[6] = float32(binary.LittleEndian.Uint16(s[12:]))
		d[7] = float32(binary.LittleEndian.Uint16(s[14:]))
		dst, src = dst[8:], src[16:]
	}
	for i := range dst {
		dst[i] = float32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func decodeU16BE(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for len(dst) >= 8 && len(src) >= 16 {
		d := (*[8]float32)(dst)
		s := (*[16]byte)(src)
		d[0] = float32(binary.BigEndian.Uint16(s[0:]))
		d[1] = float32(binary.BigEndian.Uint16(s[2:]))
		d[2] = float32(binary.BigEndian.Uint16(s[4:]))
		d[3] = float32(binary.BigEndian.Uint16(s[6:]))
		d[4] = float32(binary.BigEndian.Uint16(s[8:]))
		d[5] = float32(binary.BigEndian.Uint16(s[10:]))
		d[6] = float32(binary.BigEndian.Uint16(s[12:]))
		d[7] = float32(binary.BigEndian.Uint16(s[14:]))
		dst, src = dst[8:], src[16:]
	}
	for i := range dst {
		dst[i] = float32(binary.BigEndian.Uint16(src[2*i:]))
	}
}

func decodeI8(dst []float32, src []byte) {
	src = src[:len(dst)]
	for len(dst) >= 8 && len(src) >= 8 {
		d := (*[8]float32)(dst)
		s := (*[8]byte)(src)
		d[0] = int8Table[s[0]]
		d[1] = int8Table[s[1]]
		d[2] = int8Table[s[2]]
		d[3] = int8Table[s[3]]
		d[4] = int8Table[s[4]]
		d[5] = int8Table[s[5]]
		d[6] = int8Table[s[6]]
		d[7] = int8Table[s[7]]
		dst, src = dst[8:], src[8:]
	}
	for i := range dst {
		dst[i] = int8Table[src[i]]
	}
}

func decodeU8(dst []float32, src []byte) {
	src = src[:len(dst)]
	for len(dst) >= 8 && len(src) >= 8 {
		d := (*[8]float32)(dst)
		s := (*[8]byte)(src)
		d[0] = uint8Table[s[0]]
		d[1] = uint8Table[s[1]]
		d[2] = uint8Table[s[2]]
		d[3] = uint8Table[s[3]]
		d[4] = uint8Table[s[4]]
		d[5] = uint8Table[s[5]]
		d[6] = uint8Table[s[6]]
		d[7] = uint8Table[s[7]]
		dst, src = dst[8:], src[8:]
	}
	for i := range dst {
		dst[i] = uint8Table[src[i]]
	}
}

func decodeBool(dst []float32, src []byte) {
	src = src[:len(dst)]
	for len(dst) >= 8 && len(src) >= 8 {
		d := (*[8]float32)(dst)
		s := (*[8]byte)(src)
		d[0] = boolTable[s[0]]
		d[1] = boolTable[s[1]]
		d[2] = boolTable[s[2]]
		d[3] = boolTable[s[3]]
		d[4] = boolTable[s[4]]
		d[5] = boolTable[s[5]]
		d[6] = boolTable[s[6]]
		d[7] = boolTable[s[7]]
		dst, src = dst[8:], src[8:]
	}
	for i := range dst {
		dst[i] = boolTable[src[i]]
	}
}

func decodeF8E4M3(dst []float32, src []byte) {
	src = src[:len(dst)]
	for len(dst) >= 8 && len(src) >= 8 {
		d := (*[8]float32)(dst)
		s := (*[8]byte)(src)
		d[0] = f8e4m3Table[s[0]]
		d[1] = f8e4m3Table[s[1]]
		d[2] = f8e4m3Table[s[2]]
		d[3] = f8e4m3Table[s[3]]
		d[4] = f8e4m3Table[s[4]]
		d[5] = f8e4m3Table[s[5]]
		d[6] = f8e4m3Table[s[6]]
		d[7] = f8e4m3Table[s[7]]
		dst, src = dst[8:], src[8:]
	}
	for i := range dst {
		dst[i] = f8e4m3Table[src[i]]
	}
}

func decodeF8E5M2(dst []float32, src []byte) {
	src = src[:len(dst)]
	for len(dst) >= 8 && len(src) >= 8 {
		d := (*[8]float32)(dst)
		s := (*[8]byte)(src)
		d[0] = f8e5m2Table[s[0]]
		d[1] = f8e5m2Table[s[1]]
		d[2] = f8e5m2Table[s[2]]
		d[3] = f8e5m2Table[s[3]]
		d[4] = f8e5m2Table[s[4]]
		d[5] = f8e5m2Table[s[5]]
		d[6] = f8e5m2Table[s[6]]
		d[7] = f8e5m2Table[s[7]]
		dst, src = dst[8:], src[8:]
	}
	for i := range dst {
		dst[i] = f8e5m2Table[src[i]]
	}
}

func decodeF8E8M0(dst []float32, src []byte) {
	src = src[:len(dst)]
	for len(dst) >= 8 && len(src) >= 8 {
		d := (*[8]float32)(dst)
		s := (*[8]byte)(src)
		d[0] = f8e8m0Table[s[0]]
		d[1] = f8e8m0Table[s[1]]
		d[2] = f8e8m0Table[s[2]]
		d[3] = f8e8m0Table[s[3]]
		d[4] = f8e8m0Table[s[4]]
		d[5] = f8e8m0Table[s[5]]
		d[6] = f8e8m0Table[s[6]]
		d[7] = f8e8m0Table[s[7]]
		dst, src = dst[8:], src[8:]
	}
	for i := range dst {
		dst[i] = f8e8m0Table[src[i]]
	}
}

// u64ToFloat32 is float32(x) without the branch Go's conversion takes on
// the top bit (a misprediction per element on mixed data). Values of 2^63 and
// more are halved first, keeping the shifted-out bit as a sticky bit so that
// the single rounding is unchanged, and doubled after by raising the
// exponent (exact: the result is at least 2^62 and at most 2^64).
func u64ToFloat32(x uint64) float32 {
	top := x >> 63
	f := float32(int64(x>>top | x&top))
	return math.Float32frombits(math.Float32bits(f) + uint32(top)<<23)
}
