package dtype

import (
	"fmt"
)

// kernel decodes len(src)/blockBytes whole blocks from src into dst. Callers
// guarantee len(dst) == blocks*blockSize and len(src) == blocks*blockBytes.
type kernel func(dst []float32, src []byte)

// kernels is filled by the files that implement each family of types
// (scalar.go, legacy.go, kquants.go, iquants.go, ...), in their init functions.
var kernels [numIDs]kernel

// beKernels decode the same types stored big-endian (big-endian GGUF files);
// only plain scalar types have one.
var beKernels [numIDs]kernel

func register(t id, k kernel)   { kernels[t] = k }
func registerBE(t id, k kernel) { beKernels[t] = k }

// Decode decodes src, which must hold exactly len(dst)/BlockSize whole blocks
// of type t in little-endian byte order, into dst. It runs on the calling
// goroutine and allocates nothing.
func Decode(t Type, dst []float32, src []byte) error {
	k, err := check(t, dst, src)
	if err != nil {
		return err
	}
	k(dst, src)
	return nil
}

// DecodeBigEndian is Decode for data stored big-endian. Only plain scalar
// types (integers and IEEE floats) can be decoded from big-endian bytes.
func DecodeBigEndian(t Type, dst []float32, src []byte) error {
	k, err := checkIn(&beKernels, t, dst, src)
	if err != nil {
		return err
	}
	k(dst, src)
	return nil
}

func check(t Type, dst []float32, src []byte) (kernel, error) {
	return checkIn(&kernels, t, dst, src)
}

func checkIn(table *[numIDs]kernel, t Type, dst []float32, src []byte) (kernel, error) {
	loadTables()
	if !t.Known() {
		return nil, fmt.Errorf("cannot decode %s: its layout is unknown", t.Name())
	}
	k := table[t.id]
	if k == nil {
		return nil, fmt.Errorf("cannot decode %s: no decoder for this type", t.Name())
	}
	bs, bb := t.BlockSize(), t.BlockBytes()
	if len(dst)%bs != 0 {
		return nil, fmt.Errorf("cannot decode %s: %d elements is not a whole number of blocks of %d", t.Name(), len(dst), bs)
	}
	need := len(dst) / bs * bb
	if len(src) != need {
		return nil, fmt.Errorf("cannot decode %s: %d elements need %d bytes, have %d", t.Name(), len(dst), need, len(src))
	}
	return k, nil
}
