package dtype

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/x448/float16"
)

// These tests run on generated data and need nothing outside the repository.

func f32bits(b uint32) float32 { return math.Float32frombits(b) }

// TestHalfAllCodes checks the fp16 table against x448/float16 for all 65536
// patterns (NaN matches any NaN; signs of zero must agree).
func TestHalfAllCodes(t *testing.T) {
	bad := 0
	for h := range 1 << 16 {
		got := fp16(uint16(h))
		want := float16.Frombits(uint16(h)).Float32()
		if !sameFloat(got, want) {
			if bad < 5 {
				t.Errorf("fp16(0x%04x) = %g (0x%08x), want %g", h, got, math.Float32bits(got), want)
			}
			bad++
		}
	}
}

func TestScalarKnownValues(t *testing.T) {
	le16 := func(v ...uint16) []byte {
		b := make([]byte, 0, 2*len(v))
		for _, x := range v {
			b = binary.LittleEndian.AppendUint16(b, x)
		}
		return b
	}
	le32 := func(v ...uint32) []byte {
		b := make([]byte, 0, 4*len(v))
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, x)
		}
		return b
	}
	le64 := func(v ...uint64) []byte {
		b := make([]byte, 0, 8*len(v))
		for _, x := range v {
			b = binary.LittleEndian.AppendUint64(b, x)
		}
		return b
	}
	f64 := func(v ...float64) []byte {
		u := make([]uint64, len(v))
		for i, x := range v {
			u[i] = math.Float64bits(x)
		}
		return le64(u...)
	}
	i64 := func(v ...int64) []byte {
		u := make([]uint64, len(v))
		for i, x := range v {
			u[i] = uint64(x)
		}
		return le64(u...)
	}
	nan := float32(math.NaN())
	inf := float32(math.Inf(1))
	negZero := f32bits(0x80000000)
	const fltMax = math.MaxFloat32
	tests := []struct {
		typ  Type
		src  []byte
		want []float32
	}{
		{F32, le32(0x3f800000, 0x80000000, 0x7fc00001, 0x00000001), []float32{1, negZero, nan, f32bits(1)}},
		{F16, le16(0x3c00, 0x8000, 0x0001, 0x7c00, 0xfc00, 0x7c01, 0x7bff, 0x0400),
			[]float32{1, negZero, float32(math.Ldexp(1, -24)), inf, -inf, nan, 65504, float32(math.Ldexp(1, -14))}},
		{BF16, le16(0x3f80, 0x8000, 0x0001, 0x7f80, 0x7f81, 0xc000),
			[]float32{1, negZero, f32bits(0x10000), inf, nan, -2}},
		{F64, f64(1e300, -1e300, math.Ldexp(1, -150), 3*math.Ldexp(1, -150), fltMax*(1+math.Ldexp(1, -25)),
			fltMax+math.Ldexp(1, 103), math.Copysign(0, -1), math.NaN(), 0.1),
			[]float32{inf, -inf, 0, float32(math.Ldexp(1, -148)), fltMax, inf, negZero, nan, 0.1}},
		// Direct rounding, not through float64: 2^60+2^36+1 -> 2^60+2^37.
		{FromSafetensors("I64"), i64(1152921573326323713, math.MaxInt64, math.MinInt64, -1, 16777217),
			[]float32{float32(math.Ldexp(1, 60) + math.Ldexp(1, 37)), float32(math.Ldexp(1, 63)), float32(math.Ldexp(-1, 63)), -1, 16777216}},
		{FromSafetensors("U64"), le64(math.MaxUint64, 18446743523953737727, 1152921573326323713, 1<<63+1<<39, 0),
			[]float32{float32(math.Ldexp(1, 64)), float32(math.Ldexp(1, 64) - math.Ldexp(1, 40)),
				float32(math.Ldexp(1, 60) + math.Ldexp(1, 37)), float32(math.Ldexp(1, 63)), 0}},
		{FromSafetensors("I32"), le32(2147483647, 16777217, 0x80000000, 0xffffffff), []float32{2147483648, 16777216, -2147483648, -1}},
		{FromSafetensors("U32"), le32(4294967295, 16777219, 7), []float32{4294967296, 16777220, 7}},
		{FromSafetensors("I16"), le16(0x8000, 0x7fff, 0xffff), []float32{-32768, 32767, -1}},
		{FromSafetensors("U16"), le16(0x8000, 0xffff), []float32{32768, 65535}},
		{FromSafetensors("I8"), []byte{0x80, 0x7f, 0xff, 0}, []float32{-128, 127, -1, 0}},
		{FromSafetensors("U8"), []byte{0x80, 0xff, 0}, []float32{128, 255, 0}},
		{FromSafetensors("BOOL"), []byte{0, 1, 2}, []float32{0, 1, 1}},
		{FromSafetensors("F8_E4M3"), []byte{0x38, 0x7e, 0x01, 0x08, 0x7f, 0xff, 0x80, 0xb8},
			[]float32{1, 448, float32(math.Ldexp(1, -9)), float32(math.Ldexp(1, -6)), nan, nan, negZero, -1}},
		{FromSafetensors("F8_E5M2"), []byte{0x3c, 0x7b, 0x01, 0x7c, 0xfc, 0x7d, 0x80},
			[]float32{1, 57344, float32(math.Ldexp(1, -16)), inf, -inf, nan, negZero}},
		{FromSafetensors("F8_E8M0"), []byte{0x7f, 0x00, 0xfe, 0xff, 0x80},
			[]float32{1, float32(math.Ldexp(1, -127)), float32(math.Ldexp(1, 127)), nan, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.typ.Name(), func(t *testing.T) {
			got := make([]float32, len(tc.want))
			if err := Decode(tc.typ, got, tc.src); err != nil {
				t.Fatal(err)
			}
			compareExact(t, tc.typ.Name(), got, tc.want)
		})
	}
}

// quantCase builds one random block of a quantized type from the layout
// description, independently of the kernels, together with the values the
// reference formula gives.
type quantCase struct {
	ggml  uint32 // GGML type id (resolved in the test: the id map is built in init)
	build func(r *rand.Rand, block []byte, want []float32)
}

func putF16(b []byte, h uint16) float32 {
	binary.LittleEndian.PutUint16(b, h)
	return float16.Frombits(h).Float32()
}

// randScale is a random finite fp16 of either sign, sometimes subnormal.
func randScale(r *rand.Rand) uint16 {
	for {
		h := uint16(r.Uint32())
		if h&0x7c00 != 0x7c00 {
			return h
		}
	}
}

// packK4 stores eight 6-bit scales and mins the way Q4_K/Q5_K do.
func packK4(s []byte, sc, mn [8]uint8) {
	for j := range 4 {
		s[j] = sc[j]&63 | (sc[j+4]>>4)<<6
		s[j+4] = mn[j]&63 | (mn[j+4]>>4)<<6
		s[j+8] = sc[j+4]&15 | (mn[j+4]&15)<<4
	}
}

var quantCases = []quantCase{
	{2, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b, randScale(r))
		for i := range 32 {
			q := r.IntN(16)
			setNibble(b[2:], i, q)
			w[i] = float32(q-8) * d
		}
	}},
	{3, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b, randScale(r))
		m := putF16(b[2:], randScale(r))
		for i := range 32 {
			q := r.IntN(16)
			setNibble(b[4:], i, q)
			w[i] = float32(q)*d + m
		}
	}},
	{6, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b, randScale(r))
		var qh uint32
		for i := range 32 {
			q := r.IntN(32)
			setNibble(b[6:], i, q&15)
			qh |= uint32(q>>4) << i
			w[i] = float32(q-16) * d
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}},
	{7, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b, randScale(r))
		m := putF16(b[2:], randScale(r))
		var qh uint32
		for i := range 32 {
			q := r.IntN(32)
			setNibble(b[8:], i, q&15)
			qh |= uint32(q>>4) << i
			w[i] = float32(q)*d + m
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}},
	{8, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b, randScale(r))
		for i := range 32 {
			q := int8(r.Uint32())
			b[2+i] = byte(q)
			w[i] = float32(q) * d
		}
	}},
	{9, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b, randScale(r))
		putF16(b[2:], randScale(r)) // s: unused by decoding
		for i := range 32 {
			q := int8(r.Uint32())
			b[4+i] = byte(q)
			w[i] = float32(q) * d
		}
	}},
	{39, func(r *rand.Rand, b []byte, w []float32) {
		e := uint8(r.Uint32())
		b[0] = e
		// E2M1 values (sign, 2-bit exponent, 1-bit mantissa) times the
		// E8M0 scale; ggml reads 0xFF as 2^128, not NaN.
		e2m1 := [8]float64{0, 0.5, 1, 1.5, 2, 3, 4, 6}
		for i := range 32 {
			q := r.IntN(16)
			setNibble(b[1:], i, q)
			v := e2m1[q&7]
			if q&8 != 0 && v != 0 { // code 8 is +0 in ggml's table
				v = -v
			}
			w[i] = float32(v * math.Ldexp(1, int(e)-127))
		}
	}},
	{15, func(r *rand.Rand, b []byte, w []float32) {
		d := math.Float32frombits(r.Uint32()&0x3fffffff | r.Uint32()&0x80000000)
		binary.LittleEndian.PutUint32(b, math.Float32bits(d))
		for i := range 256 {
			q := int8(r.Uint32())
			b[4+i] = byte(q)
			w[i] = d * float32(q)
		}
		for i := range 32 {
			b[260+i] = byte(r.Uint32()) // bsums: unused
		}
	}},
	{10, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b[80:], randScale(r))
		dmin := putF16(b[82:], randScale(r))
		for s := range 16 {
			sc, mn := r.IntN(16), r.IntN(16)
			b[s] = byte(sc | mn<<4)
			for l := range 16 {
				i := s*16 + l
				q := r.IntN(4)
				// Element i: byte 16+32*(i/128)+ i%32, bits 2*((i%128)/32).
				b[16+32*(i/128)+i%32] |= byte(q << (2 * ((i % 128) / 32)))
				w[i] = d*float32(sc)*float32(q) - dmin*float32(mn)
			}
		}
	}},
	{11, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b[108:], randScale(r))
		var sc [16]int
		for s := range 16 {
			sc[s] = r.IntN(64)
			// Low 4 bits: nibble s of bytes 0..7; high 2 bits: bits
			// 2*(s/4) of byte 8 + s%4.
			if s < 8 {
				b[96+s] |= byte(sc[s] & 15)
			} else {
				b[96+s-8] |= byte(sc[s]&15) << 4
			}
			b[104+s%4] |= byte(sc[s]>>4) << (2 * (s / 4))
		}
		for i := range 256 {
			q := r.IntN(8) - 4 // q2 - 4*(1-hbit)
			hbit := 0
			if q >= 0 {
				hbit = 1
			}
			q2 := q + 4*(1-hbit)
			b[32+32*(i/128)+i%32] |= byte(q2 << (2 * ((i % 128) / 32)))
			b[i%32] |= byte(hbit << (i / 32))
			w[i] = d * float32(sc[i/16]-32) * float32(q)
		}
	}},
	{12, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b, randScale(r))
		dmin := putF16(b[2:], randScale(r))
		var sc, mn [8]uint8
		for s := range 8 {
			sc[s], mn[s] = uint8(r.IntN(64)), uint8(r.IntN(64))
		}
		packK4(b[4:16], sc, mn)
		for i := range 256 {
			q := r.IntN(16)
			s := i / 32
			// Sub-block pair j uses qs[32j:32j+32]: low nibbles, then high.
			b[16+32*(s/2)+i%32] |= byte(q << (4 * (s % 2)))
			w[i] = d*float32(sc[s])*float32(q) - dmin*float32(mn[s])
		}
	}},
	{13, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b, randScale(r))
		dmin := putF16(b[2:], randScale(r))
		var sc, mn [8]uint8
		for s := range 8 {
			sc[s], mn[s] = uint8(r.IntN(64)), uint8(r.IntN(64))
		}
		packK4(b[4:16], sc, mn)
		for i := range 256 {
			q := r.IntN(32)
			s := i / 32
			b[48+32*(s/2)+i%32] |= byte((q & 15) << (4 * (s % 2)))
			b[16+i%32] |= byte(q>>4) << s
			w[i] = d*float32(sc[s])*float32(q) - dmin*float32(mn[s])
		}
	}},
	{14, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b[208:], randScale(r))
		var sc [16]int8
		for s := range 16 {
			sc[s] = int8(r.Uint32())
			b[192+s] = byte(sc[s])
		}
		for i := range 256 {
			q := r.IntN(64)
			half, k := i/128, i%128
			quarter, l := k/32, k%32
			// Low 4 bits: ql[64*half + l + 32*(quarter&1)], nibble quarter/2;
			// high 2 bits: qh[32*half + l], bits 2*quarter.
			b[64*half+l+32*(quarter&1)] |= byte(q&15) << (4 * (quarter / 2))
			b[128+32*half+l] |= byte(q>>4) << (2 * quarter)
			w[i] = d * float32(sc[i/16]) * float32(q-32)
		}
	}},
	{35, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b[64:], randScale(r))
		for i := range 256 {
			q := r.IntN(3)
			b[32*(i/128)+i%32] |= byte(q << (2 * ((i % 128) / 32)))
			w[i] = float32(q-1) * d
		}
	}},
	{34, func(r *rand.Rand, b []byte, w []float32) {
		d := putF16(b[52:], randScale(r))
		// Five trits per byte, most significant first, stored as the
		// fixed-point fraction ceil(value * 256 / 243).
		var trits [256]int
		for i := range trits {
			trits[i] = r.IntN(3)
			w[i] = float32(trits[i]-1) * d
		}
		pack := func(ts []int) byte {
			v := 0
			for _, t := range ts {
				v = v*3 + t
			}
			return byte((v*256 + 242) / 243)
		}
		for m := range 32 {
			b[m] = pack([]int{trits[m], trits[32+m], trits[64+m], trits[96+m], trits[128+m]})
		}
		for m := range 16 {
			b[32+m] = pack([]int{trits[160+m], trits[176+m], trits[192+m], trits[208+m], trits[224+m]})
		}
		for m := range 4 {
			b[48+m] = pack([]int{trits[240+m], trits[244+m], trits[248+m], trits[252+m], 0})
		}
	}},
}

// setNibble stores q in nibble i of a 32-element block: element i < 16 is
// the low nibble of byte i, element i >= 16 the high nibble of byte i-16.
func setNibble(qs []byte, i, q int) {
	if i < 16 {
		qs[i] |= byte(q)
	} else {
		qs[i-16] |= byte(q) << 4
	}
}

// TestQuantKnownBlocks builds blocks with known quants and scales from the
// layout description and checks the decoded values against the formula.
func TestQuantKnownBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for _, qc := range quantCases {
		typ := FromGGML(qc.ggml)
		t.Run(typ.Name(), func(t *testing.T) {
			const blocks = 50
			bs, bb := typ.BlockSize(), typ.BlockBytes()
			src := make([]byte, blocks*bb)
			want := make([]float32, blocks*bs)
			for k := range blocks {
				qc.build(r, src[k*bb:(k+1)*bb], want[k*bs:(k+1)*bs])
			}
			got := make([]float32, len(want))
			if err := Decode(typ, got, src); err != nil {
				t.Fatal(err)
			}
			compareExact(t, typ.Name(), got, want)
		})
	}
}

// TestSignedZeros checks that a negative scale times a zero quant gives -0.0
// as in the reference (float(q) * d).
func TestSignedZeros(t *testing.T) {
	// Q4_0, d = -2: nibble 8 is q = 0.
	b := make([]byte, 18)
	binary.LittleEndian.PutUint16(b, 0xc000)
	for i := range 16 {
		b[2+i] = 0x88
	}
	got := make([]float32, 32)
	if err := Decode(FromGGML(2), got, b); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != 0 || !math.Signbit(float64(v)) {
			t.Fatalf("Q4_0 [%d] = %g, want -0", i, v)
		}
	}
}

// swapElements reverses the bytes of every size-byte element.
func swapElements(b []byte, size int) []byte {
	out := make([]byte, len(b))
	for i := 0; i < len(b); i += size {
		for k := range size {
			out[i+k] = b[i+size-1-k]
		}
	}
	return out
}

// TestBigEndian decodes random bytes little-endian and the same values
// byte-swapped big-endian, and expects the same floats.
func TestBigEndian(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	want := map[string]bool{"F64": true, "F32": true, "F16": true, "BF16": true, "I64": true, "I32": true,
		"I16": true, "I8": true, "U64": true, "U32": true, "U16": true, "U8": true}
	for _, typ := range All() {
		has := beKernels[typ.id] != nil
		if has != want[typ.Name()] {
			t.Errorf("%s: big-endian kernel registered = %v, want %v", typ, has, want[typ.Name()])
		}
		if !has {
			dst := make([]float32, typ.BlockSize())
			if typ.Known() && DecodeBigEndian(typ, dst, make([]byte, typ.BlockBytes())) == nil {
				t.Errorf("%s: DecodeBigEndian succeeded without a kernel", typ)
			}
			continue
		}
		const n = 1001
		size := typ.BlockBytes()
		le := make([]byte, n*size)
		for i := range le {
			le[i] = byte(r.Uint32())
		}
		a, b := make([]float32, n), make([]float32, n)
		if err := Decode(typ, a, le); err != nil {
			t.Fatal(err)
		}
		if err := DecodeBigEndian(typ, b, swapElements(le, size)); err != nil {
			t.Fatal(err)
		}
		compareExact(t, typ.Name()+" big-endian", b, a)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		typ  Type
		n    int
		src  int
		msg  string
	}{
		{"short src", F16, 4, 7, "need 8 bytes, have 7"},
		{"long src", F16, 4, 9, "need 8 bytes, have 9"},
		{"partial block", Q8_0, 31, 34, "not a whole number of blocks"},
		{"missing block", Q4_K, 512, 144, "need 288 bytes"},
		{"unknown ggml", FromGGML(99), 1, 1, "layout is unknown"},
		{"unknown safetensors", FromSafetensors("F128"), 1, 1, "layout is unknown"},
		{"invalid", Invalid, 1, 1, "layout is unknown"},
		{"removed", FromGGML(4), 16, 10, "no decoder"},
		{"sub-byte", FromSafetensors("F4"), 2, 1, "no decoder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]float32, tc.n)
			src := make([]byte, tc.src)
			err := Decode(tc.typ, dst, src)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %v, want one containing %q", err, tc.msg)
			}
		})
	}
	// Empty input is fine.
	if err := Decode(Q4_K, nil, nil); err != nil {
		t.Errorf("empty Q4_K: %v", err)
	}
}

// TestDecodeNoAlloc checks that decoding allocates nothing.
func TestDecodeNoAlloc(t *testing.T) {
	for _, typ := range All() {
		if !typ.Decodable() {
			continue
		}
		dst := make([]float32, 4*typ.BlockSize())
		src := make([]byte, 4*typ.BlockBytes())
		if a := testing.AllocsPerRun(10, func() { _ = Decode(typ, dst, src) }); a != 0 {
			t.Errorf("%s: %v allocations per Decode", typ, a)
		}
	}
}

// TestUint64Conversion checks the branch-free uint64 -> float32 conversion
// against Go's float32(uint64) (correctly rounded) around the values where
// rounding is delicate: near 2^63 and 2^64, on ties and just off them.
func TestUint64Conversion(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var xs []uint64
	for _, base := range []uint64{0, 1 << 24, 1 << 62, 1 << 63, math.MaxUint64 - 1<<40, math.MaxUint64 - 1<<39} {
		for d := range uint64(4) {
			xs = append(xs, base+d, base-d, base+1<<39+d, base+1<<39-d, base+1<<40+1<<39+d)
		}
	}
	for range 100000 {
		xs = append(xs, r.Uint64(), r.Uint64()>>r.IntN(64), r.Uint64()|1<<63)
	}
	for _, x := range xs {
		if got, want := u64ToFloat32(x), float32(x); got != want {
			t.Fatalf("u64ToFloat32(%d) = %g, want %g", x, got, want)
		}
	}
}
