package dtype

// Kernels for GGML's ternary types TQ1_0 and TQ2_0: 256 values in
// {-1, 0, 1} times an fp16 scale, value = float(t - 1) * d for a stored
// trit t in {0, 1, 2}.

func init() {
	register(idTQ1_0, decodeTQ1_0)
	register(idTQ2_0, decodeTQ2_0)
}

// tq1Trits[n][b] is trit n of a TQ1_0 byte b. TQ1_0 packs five trits per
// byte as a fixed-point fraction: multiplying by 3^n (mod 256) shifts trit
// n to the top, and (x * 3) >> 8 reads it.
var tq1Trits [5][256]uint8

func buildTernaryTables() {
	pow3 := [5]uint8{1, 3, 9, 27, 81}
	for n := range 5 {
		for b := range 256 {
			q := uint8(b) * pow3[n]
			tq1Trits[n][b] = uint8(uint16(q) * 3 >> 8)
		}
	}
}

// TQ1_0: {u8 qs[48]; u8 qh[4]; fp16 d} = 54 bytes. qs[0:32] give elements
// n*32+m (n = 0..4, trit n of byte m), qs[32:48] give 160+n*16+m, and qh
// gives 240+n*4+m for n = 0..3.
func decodeTQ1_0(dst []float32, src []byte) {
	var v [256]float32 // indexed by trit; only entries 0..2 are used
	for len(src) >= 54 && len(dst) >= 256 {
		b := (*[54]byte)(src)
		o := (*[256]float32)(dst)
		d := fp16At(b[52:54])
		v[0], v[1], v[2] = -1*d, 0*d, 1*d // float(t - 1) * d
		for n := range 5 {
			tn := &tq1Trits[n]
			for g := range 4 {
				q := (*[8]byte)(b[8*g:])
				a := (*[8]float32)(o[32*n+8*g:])
				a[0] = v[tn[q[0]]]
				a[1] = v[tn[q[1]]]
				a[2] = v[tn[q[2]]]
				a[3] = v[tn[q[3]]]
				a[4] = v[tn[q[4]]]
				a[5] = v[tn[q[5]]]
				a[6] = v[tn[q[6]]]
				a[7] = v[tn[q[7]]]
			}
			for g := range 2 {
				q := (*[8]byte)(b[32+8*g:])
				a := (*[8]float32)(o[160+16*n+8*g:])
				a[0] = v[tn[q[0]]]
				a[1] = v[tn[q[1]]]
				a[2] = v[tn[q[2]]]
				a[3] = v[tn[q[3]]]
				a[4] = v[tn[q[4]]]
				a[5] = v[tn[q[5]]]
				a[6] = v[tn[q[6]]]
				a[7] = v[tn[q[7]]]
			}
		}
		for n := range 4 {
			tn := &tq1Trits[n]
			for m := range 4 {
				o[240+4*n+m] = v[tn[b[48+m]]]
			}
		}
		src, dst = src[54:], dst[256:]
	}
}

// TQ2_0: {u8 qs[64]; fp16 d} = 66 bytes; 2 bits per element, element
// j*4+l*32+m (j = 0 or 32) in bits 2l..2l+1 of qs[j+m].
func decodeTQ2_0(dst []float32, src []byte) {
	for len(src) >= 66 && len(dst) >= 256 {
		b := (*[66]byte)(src)
		o := (*[256]float32)(dst)
		d := fp16At(b[64:66])
		// Code 3 does not occur in valid data; it decodes as (3-1)*d, as
		// the reference's formula does.
		v := [4]float32{-1 * d, 0 * d, 1 * d, 2 * d}
		for h := range 2 {
			q := (*[32]byte)(b[32*h:])
			out := (*[128]float32)(o[128*h:])
			for m := range 32 {
				x := q[m]
				out[m] = v[x&3]
				out[32+m] = v[x>>2&3]
				out[64+m] = v[x>>4&3]
				out[96+m] = v[x>>6]
			}
		}
		src, dst = src[66:], dst[256:]
	}
}
