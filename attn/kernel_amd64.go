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

// packT16x8 is packT16 for 8·groups depths in AVX assembly.
//
//go:noescape
func packT16x8(out, b *float32, ldb, groups int)

// packT16 writes out[p·16+q] = b[q·ldb+p] for q < 16, p < kb.
func packT16(out, b []float32, ldb, kb int) {
	groups := kb / 8
	if useAVX2 && groups > 0 {
		_, _ = out[kb*nr-1], b[15*ldb+kb-1]
		packT16x8(&out[0], &b[0], ldb, groups)
		if groups*8 == kb {
			return
		}
		packT16Go(out[groups*8*nr:], b[groups*8:], ldb, kb-groups*8)
		return
	}
	packT16Go(out, b, ldb, kb)
}
