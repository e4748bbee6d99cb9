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
// Codes are assembled eight at a time in a uint64 (one per byte), stored to
// a small stack buffer and read back byte by byte: extracting the bytes with
// shifts instead makes the compiler compute all of them up front and spill
// them, which is about 25% slower.

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
	var buf [32]byte // codes, one per byte, read back as bytes
	t := &uint8Table
	for len(src) >= 84 && len(dst) >= 256 {
		b := (*[84]byte)(src)
		o := (*[256]float32)(dst)
		d, dmin := fp16At(b[80:82]), fp16At(b[82:84])
		for s := range 16 { // sub-block s: 16 elements
			n, j, h := s/8, s/2%4, s%2
			sc := b[s]
			dl := d * float32(sc&15)
			ml := dmin * float32(sc>>4)
			for g := range 2 {
				binary.LittleEndian.PutUint64(buf[:], le64((*[8]byte)(b[16+32*n+16*h+8*g:]))>>(2*j)&lowPairs)
				a := (*[8]float32)(o[16*s+8*g:])
				a[0] = dl*t[buf[0]] - ml
				a[1] = dl*t[buf[1]] - ml
				a[2] = dl*t[buf[2]] - ml
				a[3] = dl*t[buf[3]] - ml
				a[4] = dl*t[buf[4]] - ml
				a[5] = dl*t[buf[5]] - ml
				a[6] = dl*t[buf[6]] - ml
				a[7] = dl*t[buf[7]] - ml
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
// Element value = d * (scale - 32) * (q2 - (hbit ? 0 : 4)), and
// q2 - (hbit ? 0 : 4) = (q2 | hbit<<2) - 4.
func decodeQ3K(dst []float32, src []byte) {
	var buf [32]byte // codes, one per byte, read back as bytes
	t := &uint8M4
	for len(src) >= 110 && len(dst) >= 256 {
		b := (*[110]byte)(src)
		o := (*[256]float32)(dst)
		d := fp16At(b[108:110])
		scales := unpackQ3Scales((*[12]byte)(b[96:108]))
		for s := range 16 { // sub-block s: 16 elements
			n, j, h := s/8, s/2%4, s%2
			dl := d * float32(scales[s])
			for g := range 2 {
				q := le64((*[8]byte)(b[32+32*n+16*h+8*g:]))
				hm := le64((*[8]byte)(b[16*h+8*g:]))
				binary.LittleEndian.PutUint64(buf[:], q>>(2*j)&lowPairs|(hm>>(4*n+j)&lowBits)<<2)
				a := (*[8]float32)(o[16*s+8*g:])
				a[0] = dl * t[buf[0]]
				a[1] = dl * t[buf[1]]
				a[2] = dl * t[buf[2]]
				a[3] = dl * t[buf[3]]
				a[4] = dl * t[buf[4]]
				a[5] = dl * t[buf[5]]
				a[6] = dl * t[buf[6]]
				a[7] = dl * t[buf[7]]
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
	var buf [32]byte // codes, one per byte, read back as bytes
	t := &uint8Table
	for len(src) >= 176 && len(dst) >= 256 {
		b := (*[176]byte)(src)
		o := (*[256]float32)(dst)
		d, dmin := fp16At(b[0:2]), fp16At(b[2:4])
		s := (*[12]byte)(b[4:16])
		for j := range 4 {
			sc1, m1 := scaleMinK4(2*j, s)
			sc2, m2 := scaleMinK4(2*j+1, s)
			d1, ml1 := d*float32(sc1), dmin*float32(m1)
			d2, ml2 := d*float32(sc2), dmin*float32(m2)
			for g := range 4 {
				q := le64((*[8]byte)(b[48+32*j+8*g:]))
				qh := le64((*[8]byte)(b[16+8*g:]))
				binary.LittleEndian.PutUint64(buf[0:8], q&lowNibbles|(qh>>(2*j)&lowBits)<<4)
				binary.LittleEndian.PutUint64(buf[8:16], q>>4&lowNibbles|(qh>>(2*j+1)&lowBits)<<4)
				lo := (*[8]float32)(o[64*j+8*g:])
				hi := (*[8]float32)(o[64*j+32+8*g:])
				lo[0], hi[0] = d1*t[buf[0]]-ml1, d2*t[buf[8]]-ml2
				lo[1], hi[1] = d1*t[buf[1]]-ml1, d2*t[buf[9]]-ml2
				lo[2], hi[2] = d1*t[buf[2]]-ml1, d2*t[buf[10]]-ml2
				lo[3], hi[3] = d1*t[buf[3]]-ml1, d2*t[buf[11]]-ml2
				lo[4], hi[4] = d1*t[buf[4]]-ml1, d2*t[buf[12]]-ml2
				lo[5], hi[5] = d1*t[buf[5]]-ml1, d2*t[buf[13]]-ml2
				lo[6], hi[6] = d1*t[buf[6]]-ml1, d2*t[buf[14]]-ml2
				lo[7], hi[7] = d1*t[buf[7]]-ml1, d2*t[buf[15]]-ml2
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
	var buf [32]byte // codes, one per byte, read back as bytes
	t := &uint8M32
	for len(src) >= 210 && len(dst) >= 256 {
		b := (*[210]byte)(src)
		o := (*[256]float32)(dst)
		d := fp16At(b[208:210])
		for n := range 2 {
			sc := (*[8]byte)(b[192+8*n:])
			for g := range 4 { // elements l = 8g..8g+7 of each quarter
				h := g / 2
				d0 := d * int8Table[sc[h]]
				d1 := d * int8Table[sc[h+2]]
				d2 := d * int8Table[sc[h+4]]
				d3 := d * int8Table[sc[h+6]]
				lq := le64((*[8]byte)(b[64*n+8*g:]))
				lr := le64((*[8]byte)(b[64*n+32+8*g:]))
				qh := le64((*[8]byte)(b[128+32*n+8*g:]))
				binary.LittleEndian.PutUint64(buf[0:8], lq&lowNibbles|(qh&lowPairs)<<4)
				binary.LittleEndian.PutUint64(buf[8:16], lr&lowNibbles|(qh>>2&lowPairs)<<4)
				binary.LittleEndian.PutUint64(buf[16:24], lq>>4&lowNibbles|(qh>>4&lowPairs)<<4)
				binary.LittleEndian.PutUint64(buf[24:32], lr>>4&lowNibbles|(qh>>6&lowPairs)<<4)
				a0 := (*[8]float32)(o[128*n+8*g:])
				a1 := (*[8]float32)(o[128*n+32+8*g:])
				a2 := (*[8]float32)(o[128*n+64+8*g:])
				a3 := (*[8]float32)(o[128*n+96+8*g:])
				a0[0] = d0 * t[buf[0]]
				a0[1] = d0 * t[buf[1]]
				a0[2] = d0 * t[buf[2]]
				a0[3] = d0 * t[buf[3]]
				a0[4] = d0 * t[buf[4]]
				a0[5] = d0 * t[buf[5]]
				a0[6] = d0 * t[buf[6]]
				a0[7] = d0 * t[buf[7]]
				a1[0] = d1 * t[buf[8]]
				a1[1] = d1 * t[buf[9]]
				a1[2] = d1 * t[buf[10]]
				a1[3] = d1 * t[buf[11]]
				a1[4] = d1 * t[buf[12]]
				a1[5] = d1 * t[buf[13]]
				a1[6] = d1 * t[buf[14]]
				a1[7] = d1 * t[buf[15]]
				a2[0] = d2 * t[buf[16]]
				a2[1] = d2 * t[buf[17]]
				a2[2] = d2 * t[buf[18]]
				a2[3] = d2 * t[buf[19]]
				a2[4] = d2 * t[buf[20]]
				a2[5] = d2 * t[buf[21]]
				a2[6] = d2 * t[buf[22]]
				a2[7] = d2 * t[buf[23]]
				a3[0] = d3 * t[buf[24]]
				a3[1] = d3 * t[buf[25]]
				a3[2] = d3 * t[buf[26]]
				a3[3] = d3 * t[buf[27]]
				a3[4] = d3 * t[buf[28]]
				a3[5] = d3 * t[buf[29]]
				a3[6] = d3 * t[buf[30]]
				a3[7] = d3 * t[buf[31]]
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
