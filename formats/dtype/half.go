package dtype

import "math"

// halfTable maps every IEEE 754 binary16 bit pattern to its float32 value.
// Every binary16 value is exact in float32, so a table is exact, and one
// load per element is faster than bit manipulation plus a subnormal fix-up.
// It is built on first use (loadTables).
var halfTable *[1 << 16]float32

func buildHalfTable() *[1 << 16]float32 {
	t := new([1 << 16]float32)
	for h := range t {
		t[h] = halfBitsToFloat32(uint16(h))
	}
	return t
}

// fp16 returns the float32 value of the binary16 bit pattern h.
func fp16(h uint16) float32 { return halfTable[h] }

// fp16At reads a little-endian binary16 at b[0:2].
func fp16At(b []byte) float32 { return halfTable[uint16(b[0])|uint16(b[1])<<8] }

// halfBitsToFloat32 converts a binary16 bit pattern to float32 by moving
// sign, exponent and mantissa into place. Subnormal halves become normal
// float32 values; NaNs are quieted (as ggml's converter does) and keep their
// payload bits otherwise.
func halfBitsToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		if man == 0 {
			return math.Float32frombits(sign | 0x7f800000)
		}
		return math.Float32frombits(sign | 0x7fc00000 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: man * 2^-24, renormalised for float32.
		e := uint32(127 - 15 + 1)
		for man&0x400 == 0 {
			man <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
	}
}
