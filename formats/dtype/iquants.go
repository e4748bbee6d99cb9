package dtype

// Decoders for GGML's importance-matrix quantizations ("i-quants"). Each
// kernel decodes whole blocks; the block layouts are those of the block_iq*
// structs in ggml-common.h, all little-endian:
//
//	IQ2_XXS 66 B: d f16 | qs 32×u16. Per 32 elements two u32: the first holds
//	        4 grid indices (bytes), the second 4×7 sign-index bits and a 4-bit
//	        scale s in its top bits; scale = d*(0.5+s)*0.25.
//	IQ2_XS  74 B: d f16 | qs 32×u16 (9-bit grid index, 7-bit sign index) |
//	        scales 8 bytes, one 4-bit scale per 16 elements.
//	IQ2_S   82 B: d f16 | qs 32 (grid index low bytes) | signs 32 (one sign
//	        byte per 8 elements) | qh 8 (2 high index bits per 8 elements) |
//	        scales 8.
//	IQ3_XXS 98 B: d f16 | qs 64 (one index per 4 elements) | 8×u32 (4×7
//	        sign-index bits, 4-bit scale; scale = d*(0.5+s)*0.5).
//	IQ3_S  110 B: d f16 | qs 64 | qh 8 (9th index bit) | signs 32 | scales 4
//	        (4 bits per 32 elements; scale = d*(1+2s)).
//	IQ1_S   50 B: d f16 | qs 32 | qh 8×u16 (per 32 elements: 4×3 high index
//	        bits, 3-bit scale, sign of the delta); x = d*(2s+1)*(grid+delta).
//	IQ1_M   56 B: qs 32 | qh 16 (per 8 elements 3 high index bits and the
//	        delta sign) | scales 4×u16 (3-bit scales per 16 elements; the top
//	        nibbles of the four u16 form the f16 d).
//	IQ4_NL  18 B (32 elements): d f16 | qs 16 nibbles into kvalues_iq4nl;
//	        low nibbles are elements 0..15, high nibbles 16..31.
//	IQ4_XS 136 B: d f16 | scales_h u16 | scales_l 4 | qs 128: per 32 elements
//	        a 6-bit scale (4 low bits from scales_l, 2 from scales_h) minus 32.
//
// Every product in these formulas (f16 scale × small integer × grid byte ×
// ±1) is exact in float32, so the order of multiplication does not change
// the result, and the values equal ggml's bit for bit.

func init() {
	register(idIQ2XXS, decodeIQ2XXS)
	register(idIQ2XS, decodeIQ2XS)
	register(idIQ2S, decodeIQ2S)
	register(idIQ3XXS, decodeIQ3XXS)
	register(idIQ3S, decodeIQ3S)
	register(idIQ1S, decodeIQ1S)
	register(idIQ1M, decodeIQ1M)
	register(idIQ4NL, decodeIQ4NL)
	register(idIQ4XS, decodeIQ4XS)
}

func le16(b []byte) uint16 { _ = b[1]; return uint16(b[0]) | uint16(b[1])<<8 }

func le32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// gridSigned8 writes y[j] = db * g[j] * s[j] for 8 elements.
func gridSigned8(y *[8]float32, db float32, g, s *[8]float32) {
	y[0] = db * g[0] * s[0]
	y[1] = db * g[1] * s[1]
	y[2] = db * g[2] * s[2]
	y[3] = db * g[3] * s[3]
	y[4] = db * g[4] * s[4]
	y[5] = db * g[5] * s[5]
	y[6] = db * g[6] * s[6]
	y[7] = db * g[7] * s[7]
}

// gridSigned4x2 is gridSigned8 for two grid points of 4 bytes (IQ3 types).
func gridSigned4x2(y *[8]float32, db float32, g1, g2 *[4]float32, s *[8]float32) {
	y[0] = db * g1[0] * s[0]
	y[1] = db * g1[1] * s[1]
	y[2] = db * g1[2] * s[2]
	y[3] = db * g1[3] * s[3]
	y[4] = db * g2[0] * s[4]
	y[5] = db * g2[1] * s[5]
	y[6] = db * g2[2] * s[6]
	y[7] = db * g2[3] * s[7]
}

// gridDelta8 writes y[j] = dl * (g[j] + delta) for 8 elements (IQ1 types).
func gridDelta8(y *[8]float32, dl, delta float32, g *[8]float32) {
	y[0] = dl * (g[0] + delta)
	y[1] = dl * (g[1] + delta)
	y[2] = dl * (g[2] + delta)
	y[3] = dl * (g[3] + delta)
	y[4] = dl * (g[4] + delta)
	y[5] = dl * (g[5] + delta)
	y[6] = dl * (g[6] + delta)
	y[7] = dl * (g[7] + delta)
}

func decodeIQ2XXS(dst []float32, src []byte) {
	nb := min(len(src)/66, len(dst)/256)
	for i := 0; i < nb; i++ {
		b := (*[66]byte)(src[i*66:])
		o := (*[256]float32)(dst[i*256:])
		d := fp16(le16(b[0:2]))
		for ib := 0; ib < 8; ib++ {
			q := (*[8]byte)(b[2+8*ib:])
			aux := le32(q[4:8])
			db := d * (0.5 + float32(aux>>28)) * 0.25
			y := (*[32]float32)(o[32*ib:])
			gridSigned8((*[8]float32)(y[0:8]), db, &iq2xxsGrid[q[0]], &ksignMul[aux&127])
			gridSigned8((*[8]float32)(y[8:16]), db, &iq2xxsGrid[q[1]], &ksignMul[(aux>>7)&127])
			gridSigned8((*[8]float32)(y[16:24]), db, &iq2xxsGrid[q[2]], &ksignMul[(aux>>14)&127])
			gridSigned8((*[8]float32)(y[24:32]), db, &iq2xxsGrid[q[3]], &ksignMul[(aux>>21)&127])
		}
	}
}

func decodeIQ2XS(dst []float32, src []byte) {
	nb := min(len(src)/74, len(dst)/256)
	for i := 0; i < nb; i++ {
		b := (*[74]byte)(src[i*74:])
		o := (*[256]float32)(dst[i*256:])
		d := fp16(le16(b[0:2]))
		for ib := 0; ib < 8; ib++ {
			q := (*[8]byte)(b[2+8*ib:])
			sc := b[66+ib]
			db0 := d * (0.5 + float32(sc&15)) * 0.25
			db1 := d * (0.5 + float32(sc>>4)) * 0.25
			y := (*[32]float32)(o[32*ib:])
			v0, v1 := le16(q[0:2]), le16(q[2:4])
			v2, v3 := le16(q[4:6]), le16(q[6:8])
			gridSigned8((*[8]float32)(y[0:8]), db0, &iq2xsGrid[v0&511], &ksignMul[v0>>9])
			gridSigned8((*[8]float32)(y[8:16]), db0, &iq2xsGrid[v1&511], &ksignMul[v1>>9])
			gridSigned8((*[8]float32)(y[16:24]), db1, &iq2xsGrid[v2&511], &ksignMul[v2>>9])
			gridSigned8((*[8]float32)(y[24:32]), db1, &iq2xsGrid[v3&511], &ksignMul[v3>>9])
		}
	}
}

func decodeIQ2S(dst []float32, src []byte) {
	nb := min(len(src)/82, len(dst)/256)
	for i := 0; i < nb; i++ {
		b := (*[82]byte)(src[i*82:])
		o := (*[256]float32)(dst[i*256:])
		d := fp16(le16(b[0:2]))
		for ib := 0; ib < 8; ib++ {
			qs := (*[4]byte)(b[2+4*ib:])
			sg := (*[4]byte)(b[34+4*ib:])
			qh := uint16(b[66+ib])
			sc := b[74+ib]
			db0 := d * (0.5 + float32(sc&15)) * 0.25
			db1 := d * (0.5 + float32(sc>>4)) * 0.25
			y := (*[32]float32)(o[32*ib:])
			gridSigned8((*[8]float32)(y[0:8]), db0, &iq2sGrid[(uint16(qs[0])|qh<<8)&1023], &signMul[sg[0]])
			gridSigned8((*[8]float32)(y[8:16]), db0, &iq2sGrid[(uint16(qs[1])|qh<<6&0x300)&1023], &signMul[sg[1]])
			gridSigned8((*[8]float32)(y[16:24]), db1, &iq2sGrid[(uint16(qs[2])|qh<<4&0x300)&1023], &signMul[sg[2]])
			gridSigned8((*[8]float32)(y[24:32]), db1, &iq2sGrid[(uint16(qs[3])|qh<<2&0x300)&1023], &signMul[sg[3]])
		}
	}
}

func decodeIQ3XXS(dst []float32, src []byte) {
	nb := min(len(src)/98, len(dst)/256)
	for i := 0; i < nb; i++ {
		b := (*[98]byte)(src[i*98:])
		o := (*[256]float32)(dst[i*256:])
		d := fp16(le16(b[0:2]))
		for ib := 0; ib < 8; ib++ {
			q := (*[8]byte)(b[2+8*ib:])
			aux := le32(b[66+4*ib : 70+4*ib])
			db := d * (0.5 + float32(aux>>28)) * 0.5
			y := (*[32]float32)(o[32*ib:])
			gridSigned4x2((*[8]float32)(y[0:8]), db, &iq3xxsGrid[q[0]], &iq3xxsGrid[q[1]], &ksignMul[aux&127])
			gridSigned4x2((*[8]float32)(y[8:16]), db, &iq3xxsGrid[q[2]], &iq3xxsGrid[q[3]], &ksignMul[(aux>>7)&127])
			gridSigned4x2((*[8]float32)(y[16:24]), db, &iq3xxsGrid[q[4]], &iq3xxsGrid[q[5]], &ksignMul[(aux>>14)&127])
			gridSigned4x2((*[8]float32)(y[24:32]), db, &iq3xxsGrid[q[6]], &iq3xxsGrid[q[7]], &ksignMul[(aux>>21)&127])
		}
	}
}

func decodeIQ3S(dst []float32, src []byte) {
	nb := min(len(src)/110, len(dst)/256)
	for i := 0; i < nb; i++ {
		b := (*[110]byte)(src[i*110:])
		o := (*[256]float32)(dst[i*256:])
		d := fp16(le16(b[0:2]))
		for ib := 0; ib < 8; ib++ {
			q := (*[8]byte)(b[2+8*ib:])
			qh := uint16(b[66+ib])
			sg := (*[4]byte)(b[74+4*ib:])
			sc := b[106+ib/2] >> (4 * (ib & 1)) & 15
			db := d * float32(1+2*int32(sc))
			y := (*[32]float32)(o[32*ib:])
			// Bit k of qh is the 9th index bit of q[k].
			gridSigned4x2((*[8]float32)(y[0:8]), db, &iq3sGrid[uint16(q[0])|qh<<8&256], &iq3sGrid[uint16(q[1])|qh<<7&256], &signMul[sg[0]])
			gridSigned4x2((*[8]float32)(y[8:16]), db, &iq3sGrid[uint16(q[2])|qh<<6&256], &iq3sGrid[uint16(q[3])|qh<<5&256], &signMul[sg[1]])
			gridSigned4x2((*[8]float32)(y[16:24]), db, &iq3sGrid[uint16(q[4])|qh<<4&256], &iq3sGrid[uint16(q[5])|qh<<3&256], &signMul[sg[2]])
			gridSigned4x2((*[8]float32)(y[24:32]), db, &iq3sGrid[uint16(q[6])|qh<<2&256], &iq3sGrid[uint16(q[7])|qh<<1&256], &signMul[sg[3]])
		}
	}
}

func decodeIQ1S(dst []float32, src []byte) {
	nb := min(len(src)/50, len(dst)/256)
	for i := 0; i < nb; i++ {
		b := (*[50]byte)(src[i*50:])
		o := (*[256]float32)(dst[i*256:])
		d := fp16(le16(b[0:2]))
		for ib := 0; ib < 8; ib++ {
			qs := (*[4]byte)(b[2+4*ib:])
			qh := le16(b[34+2*ib : 36+2*ib])
			dl := d * float32(2*((qh>>12)&7)+1)
			delta := float32(iq1Delta)
			if qh&0x8000 != 0 {
				delta = -iq1Delta
			}
			y := (*[32]float32)(o[32*ib:])
			gridDelta8((*[8]float32)(y[0:8]), dl, delta, &iq1sGrid[(uint16(qs[0])|(qh&7)<<8)&2047])
			gridDelta8((*[8]float32)(y[8:16]), dl, delta, &iq1sGrid[(uint16(qs[1])|(qh>>3&7)<<8)&2047])
			gridDelta8((*[8]float32)(y[16:24]), dl, delta, &iq1sGrid[(uint16(qs[2])|(qh>>6&7)<<8)&2047])
			gridDelta8((*[8]float32)(y[24:32]), dl, delta, &iq1sGrid[(uint16(qs[3])|(qh>>9&7)<<8)&2047])
		}
	}
}

// iq1Deltas[bit] is the IQ1 delta for a sign bit that is clear (0) or set (1).
var iq1Deltas = [2]float32{iq1Delta, -iq1Delta}

func decodeIQ1M(dst []float32, src []byte) {
	nb := min(len(src)/56, len(dst)/256)
	for i := 0; i < nb; i++ {
		b := (*[56]byte)(src[i*56:])
		o := (*[256]float32)(dst[i*256:])
		var sc [4]uint16
		for k := range sc {
			sc[k] = le16(b[48+2*k : 50+2*k])
		}
		// The f16 super-block scale is spread over the top nibbles of sc.
		d := fp16(sc[0]>>12 | sc[1]>>8&0x00f0 | sc[2]>>4&0x0f00 | sc[3]&0xf000)
		for ib := 0; ib < 8; ib++ {
			qs := (*[4]byte)(b[4*ib:])
			h0, h1 := uint16(b[32+2*ib]), uint16(b[33+2*ib])
			s := sc[ib/2] >> (6 * (ib & 1))
			dl1 := d * float32(2*(s&7)+1)
			dl2 := d * float32(2*(s>>3&7)+1)
			y := (*[32]float32)(o[32*ib:])
			gridDelta8((*[8]float32)(y[0:8]), dl1, iq1Deltas[h0>>3&1], &iq1sGrid[(uint16(qs[0])|(h0&7)<<8)&2047])
			gridDelta8((*[8]float32)(y[8:16]), dl1, iq1Deltas[h0>>7&1], &iq1sGrid[(uint16(qs[1])|(h0>>4&7)<<8)&2047])
			gridDelta8((*[8]float32)(y[16:24]), dl2, iq1Deltas[h1>>3&1], &iq1sGrid[(uint16(qs[2])|(h1&7)<<8)&2047])
			gridDelta8((*[8]float32)(y[24:32]), dl2, iq1Deltas[h1>>7&1], &iq1sGrid[(uint16(qs[3])|(h1>>4&7)<<8)&2047])
		}
	}
}

// iq4Levels writes the 16 products dl*kvalues_iq4nl[k]; each is exact, so a
// lookup in it gives the same float32 as multiplying per element.
func iq4Levels(t *[16]float32, dl float32) {
	for k := range t {
		t[k] = dl * float32(kvaluesIQ4NL[k])
	}
}

// iq4Nibbles decodes 16 bytes of nibbles through t: low nibbles to y[0:16],
// high nibbles to y[16:32].
func iq4Nibbles(y *[32]float32, q *[16]byte, t *[16]float32) {
	for j := 0; j < 16; j++ {
		v := q[j]
		y[j] = t[v&15]
		y[j+16] = t[v>>4]
	}
}

func decodeIQ4NL(dst []float32, src []byte) {
	nb := min(len(src)/18, len(dst)/32)
	var t [16]float32
	for i := 0; i < nb; i++ {
		b := (*[18]byte)(src[i*18:])
		iq4Levels(&t, fp16(le16(b[0:2])))
		iq4Nibbles((*[32]float32)(dst[i*32:]), (*[16]byte)(b[2:18]), &t)
	}
}

func decodeIQ4XS(dst []float32, src []byte) {
	nb := min(len(src)/136, len(dst)/256)
	var t [16]float32
	for i := 0; i < nb; i++ {
		b := (*[136]byte)(src[i*136:])
		o := (*[256]float32)(dst[i*256:])
		d := fp16(le16(b[0:2]))
		sh := le16(b[2:4])
		for ib := 0; ib < 8; ib++ {
			ls := int32(b[4+ib/2]>>(4*(ib&1))&15) | int32(sh>>(2*ib)&3)<<4
			iq4Levels(&t, d*float32(ls-32))
			iq4Nibbles((*[32]float32)(o[32*ib:]), (*[16]byte)(b[8+16*ib:]), &t)
		}
	}
}
