package dtype_test

import (
	"testing"

	"github.com/qkvdev/qkv/formats/dtype"
)

// fuzzTypes is every known type plus an unknown GGML id and an unknown
// safetensors name, so that the fuzzer reaches the refusals too.
func fuzzTypes() []dtype.Type {
	return append(dtype.All(), dtype.FromGGML(77), dtype.FromSafetensors("F7_E3M3"), dtype.Invalid)
}

// FuzzDecode feeds arbitrary bytes to every decoder: Decode must never
// panic, must accept exactly whole blocks of the right size, and must
// refuse every other length; the parallel and big-endian paths likewise.
func FuzzDecode(f *testing.F) {
	types := fuzzTypes()
	for i, t := range types {
		bb := max(t.BlockBytes(), 1)
		zeros := make([]byte, 2*bb)
		ones := make([]byte, 2*bb)
		ramp := make([]byte, 3*bb)
		for j := range ones {
			ones[j] = 0xFF
		}
		for j := range ramp {
			ramp[j] = byte(j*37 + 11)
		}
		f.Add(uint16(i), int16(0), zeros)
		f.Add(uint16(i), int16(0), ones)
		f.Add(uint16(i), int16(1), ramp)
		f.Add(uint16(i), int16(-1), ramp[:len(ramp)-1])
	}
	f.Fuzz(func(t *testing.T, sel uint16, delta int16, src []byte) {
		typ := types[int(sel)%len(types)]
		bs, bb := typ.BlockSize(), typ.BlockBytes()
		n := 0 // the element count src holds when it is whole blocks
		if bb > 0 {
			n = len(src) / bb * bs
		}
		m := n + int(delta)
		if m < 0 || m > 1<<22 {
			return
		}
		dst := make([]float32, m)
		valid := typ.Known() && typ.Decodable() && m%bs == 0 && len(src) == m/bs*bb
		err := dtype.Decode(typ, dst, src)
		switch {
		case valid && err != nil:
			t.Fatalf("%s: %d bytes to %d elements refused: %v", typ.Name(), len(src), m, err)
		case !valid && err == nil:
			t.Fatalf("%s: %d bytes to %d elements accepted (block %d elements in %d bytes, decodable %v)",
				typ.Name(), len(src), m, bs, bb, typ.Decodable())
		case err != nil && err.Error() == "":
			t.Fatalf("%s: empty error message", typ.Name())
		}
		// Big-endian decoding exists for some types only; it must refuse
		// wrong lengths all the same.
		if err := dtype.DecodeBigEndian(typ, dst, src); err == nil && !(typ.Known() && m%bs == 0 && len(src) == m/bs*bb) {
			t.Fatalf("%s: DecodeBigEndian accepted %d bytes to %d elements", typ.Name(), len(src), m)
		}
		// ByteSize agrees with the lengths Decode accepts.
		if typ.Known() && m%bs == 0 {
			sz, err := typ.ByteSize(int64(m))
			if err != nil || sz != int64(m/bs*bb) {
				t.Fatalf("%s: ByteSize(%d) = %d, %v; want %d", typ.Name(), m, sz, err, m/bs*bb)
			}
		}
	})
}
