//go:build !amd64

package attn

func kernel(kb int, a, b, c []float32, ldc, load int) { kernelGo(kb, a, b, c, ldc, load) }

func packT16(out, b []float32, ldb, kb int) { packT16Go(out, b, ldb, kb) }
