//go:build !amd64

package attn

func kernel(kb int, a, b, c []float32, ldc, load int) { kernelGo(kb, a, b, c, ldc, load) }
