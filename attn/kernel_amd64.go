package attn

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly micro-kernel (AVX2 + FMA).
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// kernel6x16 is kernelGo in AVX2/FMA assembly (gemm_amd64.s); ldc is in
// elements, load != 0 adds to C instead of overwriting it.
//
//go:noescape
func kernel6x16(kb int, a, b, c *float32, ldc, load int)

// kernel computes one mr×nr tile; the slices must hold kb·mr values of a,
// kb·nr of b and (mr−1)·ldc+nr of c.
func kernel(kb int, a, b, c []float32, ldc, load int) {
	if useAVX2 && kb > 0 {
		// Bounds the assembly relies on; gemm always satisfies them.
		_, _, _ = a[kb*mr-1], b[kb*nr-1], c[(mr-1)*ldc+nr-1]
		kernel6x16(kb, &a[0], &b[0], &c[0], ldc, load)
		return
	}
	kernelGo(kb, a, b, c, ldc, load)
}
