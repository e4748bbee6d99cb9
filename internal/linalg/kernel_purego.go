//go:build !amd64 || purego

package linalg

// haveFMA is false: the portable Go kernels of kernel.go are the only ones.
var haveFMA = false

// The assembly entry points do not exist here; haveFMA keeps them uncalled.

func gemmKernel32(kb int, a, b, c *float32, ldc, load int)     { panic("linalg: no assembly kernels") }
func gemmKernel64(kb int, a, b, c *float64, ldc, load int)     { panic("linalg: no assembly kernels") }
func packT16x8(out, b *float32, ldb, groups int)               { panic("linalg: no assembly kernels") }
func dotAxpy64(n int, a, x, y *float64, alpha float64) float64 { panic("linalg: no assembly kernels") }
