package dtype

import (
	"encoding/binary"
	"math"
)

// Kernels for GGML's K-quants: 256-element super-blocks split into
// sub-blocks of 16 or 32 elements, each with its own quantized scale (and
// minimum). Scales are combined with the fp16 super-block scale first
// (dl = d * sc, exact) and then applied as dl * q - ml, in the reference's
// order, so that Inf/NaN super-block scales give the reference's NaNs and
// infinities.

func init() {
	register(idQ2K, decodeQ2K)
	register(idQ3K, decodeQ3K)
	register(idQ4K, decodeQ4K)
	register(idQ5K, decodeQ5K)
	register(idQ6K, decodeQ6K)
	register(idQ8K, decodeQ8K)
}

// Q2_K: {u8 scales[16]; u8 qs[64]; fp16 d; fp16 dmin} = 84 bytes. Scale
// byte i: low nibble scale, high nibble min, for sub-block i of 16. The 2-bit
// quants of sub-blocks 0..7 are in qs[0:32] (bits 2k..2k+1 for sub-blocks
// 2k and 2k+1 in halves of 16 bytes), those of 8..15 in qs[32:64].
func decodeQ2K(dst []float32, src []byte) {
	for len(src) >= 84 && len(dst) >= 256 {
		b := (*[84]byte)(src)
		o := (*[256]float32)(dst)
		d, dmin := fp16At(b[80:82]), fp16At(b[82:84])
		for n := range 2 {
			q := (*[32]byte)(b[16+32*n:])
			for j := range 4 {
				shift := uint(2 * j)
				for h := range 2 {
					sc := b[n*8+j*2+h]
					dl := d * float32(sc&15)
					ml := dmin * float32(sc>>4)
					var vals [4]float32
					for k := range 4 {
						vals[k] = dl*float32(k) - ml
					}
					out := (*[16]float32)(o[n*128+j*32+h*16:])
					qq := (*[16]byte)(q[h*16:])
					for l := range 16 {
						out[l] = vals[qq[l]>>shift&3]
					}
				}
			}
		}
		src, dst = src[84:], dst[256:]
	}
}

// unpackQ3Scales turns the 12 scale bytes of a Q3_K block into 16 six-bit
// scales: the low 4 bits of scale i are nibble i of bytes 0..7 (low nibbles
// for i < 8, high for i >= 8), the high 2 bits come from bytes 8..11.
func unpackQ3Scales(s *[12]byte) [16]int8 {
	a0 := binary.LittleEndian.Uint32(s[0:4])
	a1 := binary.LittleEndian.Uint32(s[4:8])
	tmp := binary.LittleEndian.Uint32(s[8:12])
	const k1, k2 = 0x03030303, 0x0f0f0f0f
	w := [4]uint32{
		a0&k2 | (tmp>>0&k1)<<4,
		a1&k2 | (tmp>>2&k1)<<4,
		a0>>4&k2 | (tmp>>4&k1)<<4,
		a1>>4&k2 | (tmp>>6&k1)<<4,
	}
	var out [16]int8
	for i := range 16 {
		out[i] = int8(uint8(w[i/4]>>(8*(i%4)))) - 32
	}
	return out
}

// Q3_K: {u8 hmask[32]; u8 qs[64]; u8 scales[12]; fp16 d} = 110 bytes.
// Element value = d * (scale - 32) * (q2 - (hbit ? 0 : 4)).
func decodeQ3K(dst []float32, src []byte) {
	for len(src) >= 110 && len(dst) >= 256 {
		b := (*[110]byte)(src)
		o := (*[256]float32)(dst)
		d := fp16At(b[108:110])
		scales := unpackQ3Scales((*[12]byte)(b[96:108]))
		hm := (*[32]byte)(b[0:32])
		for n := range 2 {
			q := (*[32]byte)(b[32+32*n:])
			for j := range 4 {
				shift := uint(2 * j)
				mbit := uint(4*n + j)
				for h := range 2 {
					dl := d * float32(scales[n*8+j*2+h])
					var vals [8]float32 // index: q2 | hbit<<2
					for k := range 8 {
						v := k & 3
						if k < 4 {
							v -= 4
						}
						vals[k] = dl * float32(v)
					}
					out := (*[16]float32)(o[n*128+j*32+h*16:])
					qq := (*[16]byte)(q[h*16:])
					hh := (*[16]byte)(hm[h*16:])
					for l := range 16 {
						out[l] = vals[(qq[l]>>shift&3)|(hh[l]>>mbit&1)<<2]
					}
				}
			}
		}
		src, dst = src[110:], dst[256:]
	}
}

// scaleMinK4 returns the 6-bit scale and min of sub-block j (0..7) from the
// 12 packed bytes shared by Q4_K and Q5_K: for j < 4 the low 6 bits of bytes
// j and j+4; for j >= 4 a nibble of byte j+4 plus the top 2 bits of bytes
// j-4 and j.
func scaleMinK4(j int, s *[12]byte) (sc, m uint8) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&15 | s[j-4]>>6<<4, s[j+4]>>4 | s[j]>>6<<4
}

// Q4_K: {fp16 d; fp16 dmin; u8 scales[12]; u8 qs[128]} = 144 bytes.
// Sub-block pairs of 32 share 32 bytes of qs: low nibbles, then high.
func decodeQ4K(dst []float32, src []byte) {
	for len(src) >= 144 && len(dst) >= 256 {
		b := (*[144]byte)(src)
		o := (*[256]float32)(dst)
		d, dmin := fp16At(b[0:2]), fp16At(b[2:4])
		s := (*[12]byte)(b[4:16])
		for j := range 4 {
			sc1, m1 := scaleMinK4(2*j, s)
			sc2, m2 := scaleMinK4(2*j+1, s)
			d1, ml1 := d*float32(sc1), dmin*float32(m1)
			d2, ml2 := d*float32(sc2), dmin*float32(m2)
			var lo, hi [16]float32
			for k := range 16 {
				lo[k] = d1*float32(k) - ml1
				hi[k] = d2*float32(k) - ml2
			}
			q := (*[32]byte)(b[16+32*j:])
			out := (*[64]float32)(o[64*j:])
			for l := range 32 {
				out[l] = lo[q[l]&15]
				out[l+32] = hi[q[l]>>4]
			}
		}
		src, dst = src[144:], dst[256:]
	}
}

// Q5_K: {fp16 d; fp16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]} = 176
// bytes. As Q4_K, with the fifth bit of element l of sub-block k in bit k of
// qh[l].
func decodeQ5K(dst []float32, src []byte) {
	for len(src) >= 176 && len(dst) >= 256 {
		b := (*[176]byte)(src)
		o := (*[256]float32)(dst)
		d, dmin := fp16At(b[0:2]), fp16At(b[2:4])
		s := (*[12]byte)(b[4:16])
		qh := (*[32]byte)(b[16:48])
		for j := range 4 {
			sc1, m1 := scaleMinK4(2*j, s)
			sc2, m2 := scaleMinK4(2*j+1, s)
			d1, ml1 := d*float32(sc1), dmin*float32(m1)
			d2, ml2 := d*float32(sc2), dmin*float32(m2)
			var lo, hi [32]float32
			for k := range 32 {
				lo[k] = d1*float32(k) - ml1
				hi[k] = d2*float32(k) - ml2
			}
			q := (*[32]byte)(b[48+32*j:])
			out := (*[64]float32)(o[64*j:])
			s1, s2 := uint(2*j), uint(2*j+1)
			for l := range 32 {
				out[l] = lo[q[l]&15|(qh[l]>>s1&1)<<4]
				out[l+32] = hi[q[l]>>4|(qh[l]>>s2&1)<<4]
			}
		}
		src, dst = src[176:], dst[256:]
	}
}

// Q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; fp16 d} = 210 bytes.
// Element value = d * scale * (q6 - 32); each half of 128 elements uses 64
// bytes of ql, 32 of qh and 8 scales (one per 16 elements).
func decodeQ6K(dst []float32, src []byte) {
	for len(src) >= 210 && len(dst) >= 256 {
		b := (*[210]byte)(src)
		o := (*[256]float32)(dst)
		d := fp16At(b[208:210])
		for n := range 2 {
			ql := (*[64]byte)(b[64*n:])
			qh := (*[32]byte)(b[128+32*n:])
			sc := (*[8]byte)(b[192+8*n:])
			out := (*[128]float32)(o[128*n:])
			for h := range 2 {
				d0 := d * int8Table[sc[h]]
				d1 := d * int8Table[sc[h+2]]
				d2 := d * int8Table[sc[h+4]]
				d3 := d * int8Table[sc[h+6]]
				for l := h * 16; l < h*16+16; l++ {
					a, c, hb := ql[l], ql[l+32], qh[l]
					q1 := int8(a&15|(hb&3)<<4) - 32
					q2 := int8(c&15|(hb>>2&3)<<4) - 32
					q3 := int8(a>>4|(hb>>4&3)<<4) - 32
					q4 := int8(c>>4|(hb>>6&3)<<4) - 32
					out[l] = d0 * float32(q1)
					out[l+32] = d1 * float32(q2)
					out[l+64] = d2 * float32(q3)
					out[l+96] = d3 * float32(q4)
				}
			}
		}
		src, dst = src[210:], dst[256:]
	}
}

// Q8_K: {float32 d; i8 qs[256]; i16 bsums[16]} = 292 bytes, value = d * q.
// The sums are only used by dot products.
func decodeQ8K(dst []float32, src []byte) {
	for len(src) >= 292 && len(dst) >= 256 {
		b := (*[292]byte)(src)
		o := (*[256]float32)(dst)
		d := math.Float32frombits(binary.LittleEndian.Uint32(b[0:4]))
		q := (*[256]byte)(b[4:260])
		for j := range 256 {
			o[j] = d * int8Table[q[j]]
		}
		src, dst = src[292:], dst[256:]
	}
}
