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
// infinities. As in legacy.go, loops are unrolled eight elements at a time.
//
// Types whose codes are split over several bit fields (Q2_K, Q3_K, Q5_K,
// Q6_K) are decoded in two passes per block: first the codes of all 256
// elements are assembled eight at a time in uint64s (one code per byte) into
// a stack buffer, then each sub-block maps its codes through its scale. This
// beats extracting bytes with shifts (the compiler computes all eight up
// front and spills them) and interleaving the passes, by 20-40%.

func init() {
	register(idQ2K, decodeQ2K)
	register(idQ3K, decodeQ3K)
	register(idQ4K, decodeQ4K)
	register(idQ5K, decodeQ5K)
	register(idQ6K, decodeQ6K)
	register(idQ8K, decodeQ8K)
}

// Q2_K: {u8 scales[16]; u8 qs[64]; fp16 d; fp16 dmin} = 84 bytes. Scale
// byte i: low nibble scale, high nibble min, for sub-block i of 16 elements.
// Element 128n+32j+l (l < 32) is bits 2j..2j+1 of qs[32n+l].
func decodeQ2K(dst []float32, src []byte) {
	t := &uint8Table
	var buf [256]byte
	for len(src) >= 84 && len(dst) >= 256 {
		b := (*[84]byte)(src)
		o := (*[256]float32)(dst)
		d, dmin := fp16At(b[80:82]), fp16At(b[82:84])
		for g := range 4 {
			for n := range 2 {
				q := le64((*[8]byte)(b[16+32*n+8*g:]))
				for j := range 4 {
					binary.LittleEndian.PutUint64(buf[128*n+32*j+8*g:], q>>(2*j)&lowPairs)
				}
			}
		}
		for s := range 16 {
			sc := b[s]
			dl := d * float32(sc&15)
			ml := dmin * float32(sc>>4)
			for g := range 2 {
				c := (*[8]byte)(buf[16*s+8*g:])
				a := (*[8]float32)(o[16*s+8*g:])
				a[0] = dl*t[c[0]] - ml
				a[1] = dl*t[c[1]] - ml
				a[2] = dl*t[c[2]] - ml
				a[3] = dl*t[c[3]] - ml
				a[4] = dl*t[c[4]] - ml
				a[5] = dl*t[c[5]] - ml
				a[6] = dl*t[c[6]] - ml
				a[7] = dl*t[c[7]] - ml
			}
		}
		src, dst = src[84:], dst[256:]
	}
}

// unpackQ3Scales turns the 12 scale bytes of a Q3_K block into 16 six-bit
// scales minus 32: the low 4 bits of scale i are nibble i of bytes 0..7 (low
// nibbles for i < 8, high for i >= 8), the high 2 bits are bits
// 2*(i/4)..2*(i/4)+1 of byte 8 + i%4.
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
// Element 128n+32j+l (l < 32) has its low 2 bits q2 in bits 2j..2j+1 of
// qs[32n+l] and its high bit in bit 4n+j of hmask[l]. Its value is
// d * (scale - 32) * (q2 - (hbit ? 0 : 4)), and q2 - (hbit ? 0 : 4) =
// (q2 | hbit<<2) - 4.
func decodeQ3K(dst []float32, src []byte) {
	t := &uint8M4
	var buf [256]byte
	for len(src) >= 110 && len(dst) >= 256 {
		b := (*[110]byte)(src)
		o := (*[256]float32)(dst)
		d := fp16At(b[108:110])
		scales := unpackQ3Scales((*[12]byte)(b[96:108]))
		for g := range 4 {
			hm := le64((*[8]byte)(b[8*g:]))
			for n := range 2 {
				q := le64((*[8]byte)(b[32+32*n+8*g:]))
				for j := range 4 {
					binary.LittleEndian.PutUint64(buf[128*n+32*j+8*g:], q>>(2*j)&lowPairs|(hm>>(4*n+j)&lowBits)<<2)
				}
			}
		}
		for s := range 16 {
			dl := d * float32(scales[s])
			for g := range 2 {
				c := (*[8]byte)(buf[16*s+8*g:])
				a := (*[8]float32)(o[16*s+8*g:])
				a[0] = dl * t[c[0]]
				a[1] = dl * t[c[1]]
				a[2] = dl * t[c[2]]
				a[3] = dl * t[c[3]]
				a[4] = dl * t[c[4]]
				a[5] = dl * t[c[5]]
				a[6] = dl * t[c[6]]
				a[7] = dl * t[c[7]]
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
	lt, ht := &nibLo, &nibHi
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
			for g := range 4 {
				q := (*[8]byte)(b[16+32*j+8*g:])
				lo := (*[8]float32)(o[64*j+8*g:])
				hi := (*[8]float32)(o[64*j+32+8*g:])
				lo[0], hi[0] = d1*lt[q[0]]-ml1, d2*ht[q[0]]-ml2
				lo[1], hi[1] = d1*lt[q[1]]-ml1, d2*ht[q[1]]-ml2
				lo[2], hi[2] = d1*lt[q[2]]-ml1, d2*ht[q[2]]-ml2
				lo[3], hi[3] = d1*lt[q[3]]-ml1, d2*ht[q[3]]-ml2
				lo[4], hi[4] = d1*lt[q[4]]-ml1, d2*ht[q[4]]-ml2
				lo[5], hi[5] = d1*lt[q[5]]-ml1, d2*ht[q[5]]-ml2
				lo[6], hi[6] = d1*lt[q[6]]-ml1, d2*ht[q[6]]-ml2
				lo[7], hi[7] = d1*lt[q[7]]-ml1, d2*ht[q[7]]-ml2
			}
		}
		src, dst = src[144:], dst[256:]
	}
}

// Q5_K: {fp16 d; fp16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]} = 176
// bytes. As Q4_K, with the fifth bit of element l of sub-block k in bit k of
// qh[l].
func decodeQ5K(dst []float32, src []byte) {
	t := &uint8Table
	var buf [256]byte
	for len(src) >= 176 && len(dst) >= 256 {
		b := (*[176]byte)(src)
		o := (*[256]float32)(dst)
		d, dmin := fp16At(b[0:2]), fp16At(b[2:4])
		s := (*[12]byte)(b[4:16])
		for g := range 4 {
			qh := le64((*[8]byte)(b[16+8*g:]))
			for j := range 4 {
				q := le64((*[8]byte)(b[48+32*j+8*g:]))
				binary.LittleEndian.PutUint64(buf[64*j+8*g:], q&lowNibbles|(qh>>(2*j)&lowBits)<<4)
				binary.LittleEndian.PutUint64(buf[64*j+32+8*g:], q>>4&lowNibbles|(qh>>(2*j+1)&lowBits)<<4)
			}
		}
		for j := range 8 {
			sc, m := scaleMinK4(j, s)
			d1, ml1 := d*float32(sc), dmin*float32(m)
			for g := range 4 {
				c := (*[8]byte)(buf[32*j+8*g:])
				a := (*[8]float32)(o[32*j+8*g:])
				a[0] = d1*t[c[0]] - ml1
				a[1] = d1*t[c[1]] - ml1
				a[2] = d1*t[c[2]] - ml1
				a[3] = d1*t[c[3]] - ml1
				a[4] = d1*t[c[4]] - ml1
				a[5] = d1*t[c[5]] - ml1
				a[6] = d1*t[c[6]] - ml1
				a[7] = d1*t[c[7]] - ml1
			}
		}
		src, dst = src[176:], dst[256:]
	}
}

// Q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; fp16 d} = 210 bytes.
// Element value = d * scale * (q6 - 32). Each half of 128 elements uses 64
// bytes of ql, 32 of qh and 8 scales (one per 16 elements); byte l < 32 of
// the half's ql/qh serves elements l, l+32, l+64 and l+96.
func decodeQ6K(dst []float32, src []byte) {
	t := &uint8M32
	var buf [256]byte
	for len(src) >= 210 && len(dst) >= 256 {
		b := (*[210]byte)(src)
		o := (*[256]float32)(dst)
		d := fp16At(b[208:210])
		for n := range 2 {
			for g := range 4 {
				lq := le64((*[8]byte)(b[64*n+8*g:]))
				lr := le64((*[8]byte)(b[64*n+32+8*g:]))
				qh := le64((*[8]byte)(b[128+32*n+8*g:]))
				binary.LittleEndian.PutUint64(buf[128*n+8*g:], lq&lowNibbles|(qh&lowPairs)<<4)
				binary.LittleEndian.PutUint64(buf[128*n+32+8*g:], lr&lowNibbles|(qh>>2&lowPairs)<<4)
				binary.LittleEndian.PutUint64(buf[128*n+64+8*g:], lq>>4&lowNibbles|(qh>>4&lowPairs)<<4)
				binary.LittleEndian.PutUint64(buf[128*n+96+8*g:], lr>>4&lowNibbles|(qh>>6&lowPairs)<<4)
			}
		}
		for s := range 16 {
			dl := d * int8Table[b[192+s]]
			for g := range 2 {
				c := (*[8]byte)(buf[16*s+8*g:])
				a := (*[8]float32)(o[16*s+8*g:])
				a[0] = dl * t[c[0]]
				a[1] = dl * t[c[1]]
				a[2] = dl * t[c[2]]
				a[3] = dl * t[c[3]]
				a[4] = dl * t[c[4]]
				a[5] = dl * t[c[5]]
				a[6] = dl * t[c[6]]
				a[7] = dl * t[c[7]]
			}
		}
		src, dst = src[210:], dst[256:]
	}
}

// Q8_K: {float32 d; i8 qs[256]; i16 bsums[16]} = 292 bytes, value = d * q.
// The sums are only used by dot products.
func decodeQ8K(dst []float32, src []byte) {
	t := &int8Table
	for len(src) >= 292 && len(dst) >= 256 {
		b := (*[292]byte)(src)
		o := (*[256]float32)(dst)
		d := math.Float32frombits(binary.LittleEndian.Uint32(b[0:4]))
		for g := range 32 {
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
		src, dst = src[292:], dst[256:]
	}
}
