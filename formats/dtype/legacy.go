package dtype

import "math"

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

func init() {
	register(idQ4_0, decodeQ4_0)
	register(idQ4_1, decodeQ4_1)
	register(idQ5_0, decodeQ5_0)
	register(idQ5_1, decodeQ5_1)
	register(idQ8_0, decodeQ8_0)
	register(idQ8_1, decodeQ8_1)
	register(idMXFP4, decodeMXFP4)
}

// int8Table holds float32(int8(c)) for every byte c: a load instead of an
// integer-to-float conversion in the hot loops.
var int8Table = func() (t [256]float32) {
	for c := range t {
		t[c] = float32(int8(uint8(c)))
	}
	return
}()

// Q4_0: {fp16 d; u8 qs[16]}, value = (q - 8) * d.
func decodeQ4_0(dst []float32, src []byte) {
	for len(src) >= 18 && len(dst) >= 32 {
		b := (*[18]byte)(src)
		o := (*[32]float32)(dst)
		d := fp16At(b[0:2])
		for j := range 16 {
			q := b[2+j]
			o[j] = int8Table[q&15-8] * d
			o[j+16] = int8Table[q>>4-8] * d
		}
		src, dst = src[18:], dst[32:]
	}
}

// Q4_1: {fp16 d; fp16 m; u8 qs[16]}, value = q * d + m.
func decodeQ4_1(dst []float32, src []byte) {
	for len(src) >= 20 && len(dst) >= 32 {
		b := (*[20]byte)(src)
		o := (*[32]float32)(dst)
		d, m := fp16At(b[0:2]), fp16At(b[2:4])
		for j := range 16 {
			q := b[4+j]
			o[j] = int8Table[q&15]*d + m
			o[j+16] = int8Table[q>>4]*d + m
		}
		src, dst = src[20:], dst[32:]
	}
}

// Q5_0: {fp16 d; u8 qh[4]; u8 qs[16]}; bit j of qh is the fifth bit of
// element j, bit j+16 that of element j+16; value = (q - 16) * d.
func decodeQ5_0(dst []float32, src []byte) {
	for len(src) >= 22 && len(dst) >= 32 {
		b := (*[22]byte)(src)
		o := (*[32]float32)(dst)
		d := fp16At(b[0:2])
		qh := uint32(b[2]) | uint32(b[3])<<8 | uint32(b[4])<<16 | uint32(b[5])<<24
		for j := range 16 {
			q := b[6+j]
			lo := q&15 | uint8(qh>>j<<4)&16
			hi := q>>4 | uint8(qh>>(j+12))&16
			o[j] = int8Table[lo-16] * d
			o[j+16] = int8Table[hi-16] * d
		}
		src, dst = src[22:], dst[32:]
	}
}

// Q5_1: {fp16 d; fp16 m; u8 qh[4]; u8 qs[16]}, value = q * d + m.
func decodeQ5_1(dst []float32, src []byte) {
	for len(src) >= 24 && len(dst) >= 32 {
		b := (*[24]byte)(src)
		o := (*[32]float32)(dst)
		d, m := fp16At(b[0:2]), fp16At(b[2:4])
		qh := uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24
		for j := range 16 {
			q := b[8+j]
			lo := q&15 | uint8(qh>>j<<4)&16
			hi := q>>4 | uint8(qh>>(j+12))&16
			o[j] = int8Table[lo]*d + m
			o[j+16] = int8Table[hi]*d + m
		}
		src, dst = src[24:], dst[32:]
	}
}

// Q8_0: {fp16 d; i8 qs[32]}, value = q * d.
func decodeQ8_0(dst []float32, src []byte) {
	for len(src) >= 34 && len(dst) >= 32 {
		b := (*[34]byte)(src)
		o := (*[32]float32)(dst)
		d := fp16At(b[0:2])
		for j := range 32 {
			o[j] = int8Table[b[2+j]] * d
		}
		src, dst = src[34:], dst[32:]
	}
}

// Q8_1: {fp16 d; fp16 s; i8 qs[32]}, value = d * q (s = d * sum(q) is only
// used by dot products).
func decodeQ8_1(dst []float32, src []byte) {
	for len(src) >= 36 && len(dst) >= 32 {
		b := (*[36]byte)(src)
		o := (*[32]float32)(dst)
		d := fp16At(b[0:2])
		for j := range 32 {
			o[j] = d * int8Table[b[4+j]]
		}
		src, dst = src[36:], dst[32:]
	}
}

// mxfp4Values is the E2M1 code table doubled (so it is integral); the
// block scale is halved to match.
var mxfp4Values = [16]float32{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}

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
	for len(src) >= 17 && len(dst) >= 32 {
		b := (*[17]byte)(src)
		o := (*[32]float32)(dst)
		d := e8m0Half(b[0])
		for j := range 16 {
			q := b[1+j]
			o[j] = mxfp4Values[q&15] * d
			o[j+16] = mxfp4Values[q>>4] * d
		}
		src, dst = src[17:], dst[32:]
	}
}
