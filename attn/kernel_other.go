//go:build !amd64

package attn

// useAVX2 is false: there is no assembly kernel on this architecture.
var useAVX2 = false

func kernel(kb int, a, b, c []float32, ldc, load int) { kernelGo(kb, a, b, c, ldc, load) }

func packT16(out, b []float32, ldb, kb int) { packT16Go(out, b, ldb, kb) }
