package dtype

import (
	"encoding/binary"
	"math"
)

// Kernels for GGML's 32-element block types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q8_1 and MXFP4. Each block stores its scale first; element j of the low
// nibbles and element j+16 of the high nibbles share byte j of qs.
//
// The arithmetic mirrors the reference: value = float(q) * d, or
// float(q) * d + m for the types with a minimum. float(q) * d is exact in
// float32 (an 11-bit fp16 mantissa times an integer of at most 8 bits), so
// the result is rounded at most once and FMA contraction cannot change it;
// the order of operations is kept so that Inf/NaN scales and the sign of
// zero come out as the reference's.
//
// The loops are unrolled by hand eight elements at a time, through
// fixed-size array pointers: Go neither unrolls nor vectorises, and without
// bounds checks and with fewer loop branches the kernels run about twice as
// fast. Codes become floats by table lookups (tables.go); 5-bit codes are
// assembled eight at a time in a uint64 and read back from a stack buffer
// (see kquants.go for why).

func init() {
	register(idQ4_0, decodeQ4_0)
	register(idQ4_1, decodeQ4_1)
	register(idQ5_0, decodeQ5_0)
	register(idQ5_1, decodeQ5_1)
	register(idQ8_0, decodeQ8_0)
	register(idQ8_1, decodeQ8_1)
	register(idMXFP4, decodeMXFP4)
}

// Q4_0: {fp16 d; u8 qs[16]}, value = (q - 8) * d.
func decodeQ4_0(dst []float32, src []byte) {
	lt, ht := &nibLoM8, &nibHiM8
	for len(src) >= 18 && len(dst) >= 32 {
		b := (*[18]byte)(src)
		o := (*[32]float32)(dst)
		d := fp16At(b[0:2])
		for g := range 2 {
			q := (*[8]byte)(b[2+8*g:])
			lo := (*[8]float32)(o[8*g:])
			hi := (*[8]float32)(o[16+8*g:])
			lo[0], hi[0] = lt[q[0]]*d, ht[q[0]]*d
			lo[1], hi[1] = lt[q[1]]*d, ht[q[1]]*d
			lo[2], hi[2] = lt[q[2]]*d, ht[q[2]]*d
			lo[3], hi[3] = lt[q[3]]*d, ht[q[3]]*d
			lo[4], hi[4] = lt[q[4]]*d, ht[q[4]]*d
			lo[5], hi[5] = lt[q[5]]*d, ht[q[5]]*d
			lo[6], hi[6] = lt[q[6]]*d, ht[q[6]]*d
			lo[7], hi[7] = lt[q[7]]*d, ht[q[7]]*d
		}
		src, dst = src[18:], dst[32:]
	}
}

// Q4_1: {fp16 d; fp16 m; u8 qs[16]}, value = q * d + m.
func decodeQ4_1(dst []float32, src []byte) {
	lt, ht := &nibLo, &nibHi
	for len(src) >= 20 && len(dst) >= 32 {
		b := (*[20]byte)(src)
		o := (*[32]float32)(dst)
		d, m := fp16At(b[0:2]), fp16At(b[2:4])
		for g := range 2 {
			q := (*[8]byte)(b[4+8*g:])
			lo := (*[8]float32)(o[8*g:])
			hi := (*[8]float32)(o[16+8*g:])
			lo[0], hi[0] = lt[q[0]]*d+m, ht[q[0]]*d+m
			lo[1], hi[1] = lt[q[1]]*d+m, ht[q[1]]*d+m
			lo[2], hi[2] = lt[q[2]]*d+m, ht[q[2]]*d+m
			lo[3], hi[3] = lt[q[3]]*d+m, ht[q[3]]*d+m
			lo[4], hi[4] = lt[q[4]]*d+m, ht[q[4]]*d+m
			lo[5], hi[5] = lt[q[5]]*d+m, ht[q[5]]*d+m
			lo[6], hi[6] = lt[q[6]]*d+m, ht[q[6]]*d+m
			lo[7], hi[7] = lt[q[7]]*d+m, ht[q[7]]*d+m
		}
		src, dst = src[20:], dst[32:]
	}
}

const (
	lowNibbles = 0x0f0f0f0f0f0f0f0f
	lowBits    = 0x0101010101010101
	lowPairs   = 0x0303030303030303
)

// Q5_0: {fp16 d; u8 qh[4]; u8 qs[16]}; bit j of qh is the fifth bit of
// element j, bit j+16 that of element j+16; value = (q - 16) * d.
func decodeQ5_0(dst []float32, src []byte) {
	var buf [16]byte // codes, one per byte (see kquants.go)
	t := &uint8M16
	for len(src) >= 22 && len(dst) >= 32 {
		b := (*[22]byte)(src)
		o := (*[32]float32)(dst)
		d := fp16At(b[0:2])
		qh := uint32(b[2]) | uint32(b[3])<<8 | uint32(b[4])<<16 | uint32(b[5])<<24
		for g := range 2 {
			// The 5-bit codes of elements 8g..8g+7 (l) and 16+8g.. (h),
			// one per byte.
			q := le64((*[8]byte)(b[6+8*g:]))
			binary.LittleEndian.PutUint64(buf[0:8], q&lowNibbles|spreadBits[uint8(qh>>(8*g))]<<4)
			binary.LittleEndian.PutUint64(buf[8:16], q>>4&lowNibbles|spreadBits[uint8(qh>>(16+8*g))]<<4)
			lo := (*[8]float32)(o[8*g:])
			hi := (*[8]float32)(o[16+8*g:])
			lo[0], hi[0] = t[buf[0]]*d, t[buf[8]]*d
			lo[1], hi[1] = t[buf[1]]*d, t[buf[9]]*d
			lo[2], hi[2] = t[buf[2]]*d, t[buf[10]]*d
			lo[3], hi[3] = t[buf[3]]*d, t[buf[11]]*d
			lo[4], hi[4] = t[buf[4]]*d, t[buf[12]]*d
			lo[5], hi[5] = t[buf[5]]*d, t[buf[13]]*d
			lo[6], hi[6] = t[buf[6]]*d, t[buf[14]]*d
			lo[7], hi[7] = t[buf[7]]*d, t[buf[15]]*d
		}
		src, dst = src[22:], dst[32:]
	}
}

// Q5_1: {fp16 d; fp16 m; u8 qh[4]; u8 qs[16]}, value = q * d + m.
func decodeQ5_1(dst []float32, src []byte) {
	var buf [16]byte // codes, one per byte (see kquants.go)
	t := &uint8Table
	for len(src) >= 24 && len(dst) >= 32 {
		b := (*[24]byte)(src)
		o := (*[32]float32)(dst)
		d, m := fp16At(b[0:2]), fp16At(b[2:4])
		qh := uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24
		for g := range 2 {
			// The 5-bit codes of elements 8g..8g+7 (l) and 16+8g.. (h),
			// one per byte.
			q := le64((*[8]byte)(b[8+8*g:]))
			binary.LittleEndian.PutUint64(buf[0:8], q&lowNibbles|spreadBits[uint8(qh>>(8*g))]<<4)
			binary.LittleEndian.PutUint64(buf[8:16], q>>4&lowNibbles|spreadBits[uint8(qh>>(16+8*g))]<<4)
			lo := (*[8]float32)(o[8*g:])
			hi := (*[8]float32)(o[16+8*g:])
			lo[0], hi[0] = t[buf[0]]*d+m, t[buf[8]]*d+m
			lo[1], hi[1] = t[buf[1]]*d+m, t[buf[9]]*d+m
			lo[2], hi[2] = t[buf[2]]*d+m, t[buf[10]]*d+m
			lo[3], hi[3] = t[buf[3]]*d+m, t[buf[11]]*d+m
			lo[4], hi[4] = t[buf[4]]*d+m, t[buf[12]]*d+m
			lo[5], hi[5] = t[buf[5]]*d+m, t[buf[13]]*d+m
			lo[6], hi[6] = t[buf[6]]*d+m, t[buf[14]]*d+m
			lo[7], hi[7] = t[buf[7]]*d+m, t[buf[15]]*d+m
		}
		src, dst = src[24:], dst[32:]
	}
}

// Q8_0: {fp16 d; i8 qs[32]}, value = q * d.
func decodeQ8_0(dst []float32, src []byte) {
	t := &int8Table
	for len(src) >= 34 && len(dst) >= 32 {
		b := (*[34]byte)(src)
		o := (*[32]float32)(dst)
		d := fp16At(b[0:2])
		for g := range 4 {
			q := (*[8]byte)(b[2+8*g:])
			a := (*[8]float32)(o[8*g:])
			a[0] = t[q[0]] * d
			a[1] = t[q[1]] * d
			a[2] = t[q[2]] * d
			a[3] = t[q[3]] * d
			a[4] = t[q[4]] * d
			a[5] = t[q[5]] * d
			a[6] = t[q[6]] * d
			a[7] = t[q[7]] * d
		}
		src, dst = src[34:], dst[32:]
	}
}

// Q8_1: {fp16 d; fp16 s; i8 qs[32]}, value = d * q (s = d * sum(q) is only
// used by dot products).
func decodeQ8_1(dst []float32, src []byte) {
	t := &int8Table
	for len(src) >= 36 && len(dst) >= 32 {
		b := (*[36]byte)(src)
		o := (*[32]float32)(dst)
		d := fp16At(b[0:2])
		for g := range 4 {
			q := (*[8]byte)(b[4+8*g:])
			a := (*[8]float32)(o[8*g:])
			a[0] = d * t[q[0]]
			a[1] = d * t[q[1]]
			a[2] = d * t[q[2]]
			a[3] = d * t[q[3]]
			a[4] = d * t[q[4]]
			a[5] = d * t[q[5]]
			a[6] = d * t[q[6]]
			a[7] = d * t[q[7]]
		}
		src, dst = src[36:], dst[32:]
	}
}

// mxfp4Values is the E2M1 code table doubled (so it is integral); the
// block scale is halved to match. Code 8 is +0, as in ggml's int8 table.
var mxfp4Values = [16]float32{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}

// mxfp4Lo[c] and mxfp4Hi[c] are the doubled E2M1 values of the low and high
// nibble of byte c.
var mxfp4Lo, mxfp4Hi [256]float32

func buildMXFP4Tables() {
	for c := range 256 {
		mxfp4Lo[c], mxfp4Hi[c] = mxfp4Values[c&15], mxfp4Values[c>>4]
	}
}

// e8m0Half returns 2^(e-128), half the E8M0 scale, as ggml computes it:
// codes 0 and 1 give the float32 subnormals 2^-128 and 2^-127, and 0xFF is
// the finite 2^127 (the OCP MX spec's NaN is not honoured by ggml).
func e8m0Half(e uint8) float32 {
	if e < 2 {
		return math.Float32frombits(0x00200000 << e)
	}
	return math.Float32frombits(uint32(e-1) << 23)
}

// MXFP4: {u8 e; u8 qs[16]}, value = table[q] * 2^(e-128).
func decodeMXFP4(dst []float32, src []byte) {
	lt, ht := &mxfp4Lo, &mxfp4Hi
	for len(src) >= 17 && len(dst) >= 32 {
		b := (*[17]byte)(src)
		o := (*[32]float32)(dst)
		d := e8m0Half(b[0])
		for g := range 2 {
			q := (*[8]byte)(b[1+8*g:])
			lo := (*[8]float32)(o[8*g:])
			hi := (*[8]float32)(o[16+8*g:])
			lo[0], hi[0] = lt[q[0]]*d, ht[q[0]]*d
			lo[1], hi[1] = lt[q[1]]*d, ht[q[1]]*d
			lo[2], hi[2] = lt[q[2]]*d, ht[q[2]]*d
			lo[3], hi[3] = lt[q[3]]*d, ht[q[3]]*d
			lo[4], hi[4] = lt[q[4]]*d, ht[q[4]]*d
			lo[5], hi[5] = lt[q[5]]*d, ht[q[5]]*d
			lo[6], hi[6] = lt[q[6]]*d, ht[q[6]]*d
			lo[7], hi[7] = lt[q[7]]*d, ht[q[7]]*d
		}
		src, dst = src[17:], dst[32:]
	}
}
