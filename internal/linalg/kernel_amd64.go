//go:build amd64 && !purego

package linalg

import "golang.org/x/sys/cpu"

// haveFMA selects the assembly routines of kernel_amd64.s (AVX2 + FMA).
// Only the checked wrappers in kernel.go call them.
var haveFMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// gemmKernel32 computes the 6×16 tile C (= or, when load != 0, +=) A·B for
// kb depths of packed strips a (6 per depth) and b (16 per depth); ldc is
// in elements. It reads 6·kb values of a, 16·kb of b and writes rows
// c[r·ldc : r·ldc+16], r < 6.
//
//go:noescape
func gemmKernel32(kb int, a, b, c *float32, ldc, load int)

// gemmKernel64 is gemmKernel32 for float64 and 6×8 tiles.
//
//go:noescape
func gemmKernel64(kb int, a, b, c *float64, ldc, load int)

// packT16x8 writes out[p·16+q] = b[q·ldb+p] for q < 16 and p < 8·groups.
//
//go:noescape
func packT16x8(out, b *float32, ldb, groups int)

// dotAxpy64 returns Σ a[i]·x[i] and sets y[i] += alpha·a[i] for i < n.
//
//go:noescape
func dotAxpy64(n int, a, x, y *float64, alpha float64) float64
