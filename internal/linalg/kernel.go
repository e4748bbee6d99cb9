package linalg

import (
	"fmt"
	"unsafe"
)

// mr is the number of rows of a micro-tile of C, for both precisions.
const mr = 6

// nrOf returns the number of columns of a micro-tile of C: two 256-bit
// registers per row, 16 float32 or 8 float64 values.
func nrOf[T Float]() int {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return 16
	}
	return 8
}

// kernelFunc computes one mr×nr tile of C (= or, with load, +=) from kb
// depths of packed strips; see kernel32.
type kernelFunc[T Float] func(kb int, a, b, c []T, ldc int, load bool) error

// kernelFor returns the micro-kernel of precision T.
func kernelFor[T Float]() kernelFunc[T] {
	var z T
	switch any(z).(type) {
	case float32:
		return any(kernelFunc[float32](kernel32)).(kernelFunc[T])
	default:
		return any(kernelFunc[float64](kernel64)).(kernelFunc[T])
	}
}

// checkTile reports whether slices of na, nb and nc elements hold kb depths
// of an mr-row A strip and an nr-column B strip and an mr×nr tile of C with
// row stride ldc. Comparisons divide rather than multiply, so that no
// product can overflow.
func checkTile(kb, na, nb, nc, ldc, nr int) error {
	switch {
	case kb < 0:
		return fmt.Errorf("%w: micro-kernel depth %d", ErrShape, kb)
	case na/mr < kb || nb/nr < kb:
		return fmt.Errorf("%w: micro-kernel strips of %d and %d values for depth %d", ErrShape, na, nb, kb)
	case ldc < nr || nc < nr || (nc-nr)/(mr-1) < ldc:
		return fmt.Errorf("%w: micro-kernel tile of %d values with stride %d", ErrShape, nc, ldc)
	}
	return nil
}

// kernel32 computes the 6×16 float32 tile C[r·ldc+q] (= or, with load, +=)
// Σ_p a[p·6+r]·b[p·16+q] over kb depths, with fused multiply-adds in the
// assembly. It returns an error, touching nothing, when a, b or c is too
// short for kb and ldc.
func kernel32(kb int, a, b, c []float32, ldc int, load bool) error {
	if err := checkTile(kb, len(a), len(b), len(c), ldc, 16); err != nil {
		return err
	}
	if haveFMA && kb > 0 {
		gemmKernel32(kb, &a[0], &b[0], &c[0], ldc, b2i(load))
		return nil
	}
	kernelGo(kb, a, b, c, ldc, load, 16)
	return nil
}

// kernel64 is kernel32 for a 6×8 float64 tile.
func kernel64(kb int, a, b, c []float64, ldc int, load bool) error {
	if err := checkTile(kb, len(a), len(b), len(c), ldc, 8); err != nil {
		return err
	}
	if haveFMA && kb > 0 {
		gemmKernel64(kb, &a[0], &b[0], &c[0], ldc, b2i(load))
		return nil
	}
	kernelGo(kb, a, b, c, ldc, load, 8)
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// kernelGo is the portable micro-kernel: an mr×nr tile accumulated in
// registers-to-be, depth by depth, in the same order as the assembly.
func kernelGo[T Float](kb int, a, b, c []T, ldc int, load bool, nr int) {
	var acc [mr * 16]T
	for p := 0; p < kb; p++ {
		bp := b[p*nr : p*nr+nr]
		ap := a[p*mr : p*mr+mr]
		for r := 0; r < mr; r++ {
			av := ap[r]
			row := acc[r*nr : r*nr+nr]
			for q, bv := range bp {
				row[q] += av * bv
			}
		}
	}
	storeTile(c, ldc, acc[:], nr, mr, nr, load)
}

// storeTile writes (or, with load, adds) the top-left rows×cols of the
// tile src (row stride ls) into c (row stride ldc).
func storeTile[T Float](c []T, ldc int, src []T, ls, rows, cols int, load bool) {
	for r := 0; r < rows; r++ {
		dst := c[r*ldc : r*ldc+cols]
		s := src[r*ls : r*ls+cols]
		if load {
			for q := range dst {
				dst[q] += s[q]
			}
		} else {
			copy(dst, s)
		}
	}
}

// packT16 writes out[p·16+q] = b[q·ldb+p] for q < 16 and p < kb: sixteen
// rows of b side by side. It returns an error, touching nothing, when out
// or b is too short.
func packT16(out, b []float32, ldb, kb int) error {
	// b must reach row 15's last value, b[15·ldb+kb-1].
	if kb < 0 || ldb < kb || len(out)/16 < kb || kb > 0 && (len(b) < kb || (len(b)-kb)/15 < ldb) {
		return fmt.Errorf("%w: 16-row transpose of depth %d, stride %d from %d values into %d", ErrShape, kb, ldb, len(b), len(out))
	}
	groups := kb / 8
	if haveFMA && groups > 0 {
		packT16x8(&out[0], &b[0], ldb, groups)
		if groups*8 == kb {
			return nil
		}
		packT16Go(out[groups*8*16:], b[groups*8:], ldb, kb-groups*8)
		return nil
	}
	packT16Go(out, b, ldb, kb)
	return nil
}

// packT16Go is packT16 in Go: sixteen rows read in step, so each output
// line is written once.
func packT16Go(out, b []float32, ldb, kb int) {
	if kb == 0 {
		return
	}
	r0, r1, r2, r3 := b[0*ldb:0*ldb+kb], b[1*ldb:1*ldb+kb], b[2*ldb:2*ldb+kb], b[3*ldb:3*ldb+kb]
	r4, r5, r6, r7 := b[4*ldb:4*ldb+kb], b[5*ldb:5*ldb+kb], b[6*ldb:6*ldb+kb], b[7*ldb:7*ldb+kb]
	r8, r9, r10, r11 := b[8*ldb:8*ldb+kb], b[9*ldb:9*ldb+kb], b[10*ldb:10*ldb+kb], b[11*ldb:11*ldb+kb]
	r12, r13, r14, r15 := b[12*ldb:12*ldb+kb], b[13*ldb:13*ldb+kb], b[14*ldb:14*ldb+kb], b[15*ldb:15*ldb+kb]
	out = out[:kb*16]
	for p := 0; p < kb; p++ {
		o := out[p*16 : p*16+16 : p*16+16]
		o[0], o[1], o[2], o[3] = r0[p], r1[p], r2[p], r3[p]
		o[4], o[5], o[6], o[7] = r4[p], r5[p], r6[p], r7[p]
		o[8], o[9], o[10], o[11] = r8[p], r9[p], r10[p], r11[p]
		o[12], o[13], o[14], o[15] = r12[p], r13[p], r14[p], r15[p]
	}
}

// DotAxpy returns Σ a[i]·x[i] and sets y[i] += alpha·a[i] for i < len(a),
// reading a once (the two halves of a symmetric matrix-vector product). x
// and y must hold at least len(a) values; otherwise it returns an error and
// touches nothing. With FMA the sum is accumulated in four interleaved
// partial sums, so it may differ from a sequential sum in the last bits.
// Cost: 4·len(a) flops.
func DotAxpy(a, x, y []float64, alpha float64) (float64, error) {
	n := len(a)
	if len(x) < n || len(y) < n {
		return 0, fmt.Errorf("%w: dot/axpy of %d values with x of %d and y of %d", ErrShape, n, len(x), len(y))
	}
	if n == 0 {
		return 0, nil
	}
	if haveFMA {
		return dotAxpy64(n, &a[0], &x[0], &y[0], alpha), nil
	}
	var s float64
	for i, v := range a {
		s += v * x[i]
		y[i] += alpha * v
	}
	return s, nil
}

// Kernel names the micro-kernels in use: "avx2-fma" (the assembly of
// kernel_amd64.s) or "go" (portable, also under the purego build tag). The
// two round differently (fused multiply-adds or not), so results computed
// under different kernels may differ in the last bits.
func Kernel() string {
	if haveFMA {
		return "avx2-fma"
	}
	return "go"
}
