package inspect

import "golang.org/x/sys/cpu"

// Assembly kernels (AVX2 + FMA); the Go versions in kernel.go are used when
// the CPU lacks them.

//go:noescape
func kern6x8(kc int, a, b, c *float64, ldc int)

//go:noescape
func dotAxpy(n int, a, x, y *float64, alpha float64) float64

var haveFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA
