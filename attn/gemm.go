package attn

import (
	"runtime"
	"sync"
)

// A packed, blocked single-precision matrix product in the manner of
// Goto/BLIS: A is packed into strips of mr rows and B into strips of nr
// columns, per depth block of kc, and a register-blocked micro-kernel
// accumulates an mr×nr tile of C over one depth block in float32 (with FMA
// where the CPU has it, as BLAS does). On amd64 with AVX2 and FMA the kernel
// is kernel6x16 in gemm_amd64.s; elsewhere it is kernelGo.
const (
	mr = 6   // rows of a micro-tile
	nr = 16  // columns of a micro-tile
	kc = 256 // depth of a packed block: a B strip (kc×nr) fits in L1
	mc = 96  // rows of A per block reused from L2
	// ncTask is the width of C columns one parallel task owns.
	ncTask = 256
)

// gemm computes C = A·op(B) for row-major float32 operands with strides:
// A is m×k (lda), B is n×k when transB (C = A·Bᵀ) or k×n otherwise (ldb),
// and C is m×n (ldc). C is overwritten. Tasks split the columns of C and run
// on up to GOMAXPROCS goroutines when parallel is set.
func gemm(transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, parallel bool) {
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}
	gemmPacked(packMatrixA(a, lda, m, k, parallel), transB, n, b, ldb, c, ldc, parallel)
}

// packedA is all of an m×k matrix A packed for gemm: per depth block of kc,
// ⌈m/mr⌉ strips of mr×kb values. It is read-only once built, so several
// products with the same A (x·W_Qᵀ, x·W_Kᵀ, x·W_Vᵀ) share one packing.
type packedA struct {
	m, k   int
	blocks [][]float32
}

// packMatrixA packs A (m×k, stride lda) for gemmPacked.
func packMatrixA(a []float32, lda, m, k int, parallel bool) packedA {
	mStrips := (m + mr - 1) / mr
	nBlocks := (k + kc - 1) / kc
	pa := packedA{m: m, k: k, blocks: make([][]float32, nBlocks)}
	parallelFor(nBlocks, func(pb int) {
		p0 := pb * kc
		kb := min(kc, k-p0)
		buf := make([]float32, mStrips*mr*kb)
		packA(buf, a, lda, m, p0, kb)
		pa.blocks[pb] = buf
	}, parallel && m*k >= 1<<16)
	return pa
}

// gemmPacked computes C = A·op(B) for a packed A; see gemm.
func gemmPacked(pa packedA, transB bool, n int, b []float32, ldb int, c []float32, ldc int, parallel bool) {
	m, k := pa.m, pa.k
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}
	nBlocks := len(pa.blocks)
	tasks := (n + ncTask - 1) / ncTask
	run := func(t int) {
		j0 := t * ncTask
		j1 := min(n, j0+ncTask)
		nStrips := (j1 - j0 + nr - 1) / nr
		bp := make([]float32, nStrips*nr*min(kc, k))
		for pb := 0; pb < nBlocks; pb++ {
			p0 := pb * kc
			kb := min(kc, k-p0)
			packB(bp, b, ldb, transB, j0, j1, p0, kb)
			macro(pa.blocks[pb], m, kb, bp, kb, c[j0:], ldc, j1-j0, pb > 0)
		}
	}
	parallelFor(tasks, run, parallel)
}

// packedB is all of op(B) (k×n) packed: per depth block of kc, ⌈n/nr⌉
// strips of kb×nr values. A product may use a prefix of its columns and of
// its depth.
type packedB struct {
	n, k   int
	blocks [][]float32
}

// packMatrixB packs op(B): B is n×k (ldb) when transB, else k×n.
func packMatrixB(b []float32, ldb int, transB bool, n, k int) packedB {
	pb := packedB{n: n, k: k}
	nStrips := (n + nr - 1) / nr
	for p0 := 0; p0 < k; p0 += kc {
		kb := min(kc, k-p0)
		buf := make([]float32, nStrips*nr*kb)
		packB(buf, b, ldb, transB, 0, n, p0, kb)
		pb.blocks = append(pb.blocks, buf)
	}
	return pb
}

// gemmPP computes C = A·op(B) on one goroutine from packed operands, using
// the first n columns of pb and the first pa.k (≤ pb.k) depths.
func gemmPP(pa packedA, pb packedB, n int, c []float32, ldc int) {
	for blk, ap := range pa.blocks {
		p0 := blk * kc
		kb := min(kc, pa.k-p0)
		macro(ap, pa.m, kb, pb.blocks[blk], min(kc, pb.k-p0), c, ldc, n, blk > 0)
	}
}

// macro multiplies one depth block: m rows of packed A (kb deep) by the
// first n columns of a packed B block whose strips are kbB ≥ kb deep,
// writing (or, with load, adding to) C's columns [0, n).
func macro(ap []float32, m, kb int, bp []float32, kbB int, c []float32, ldc, n int, accumulate bool) {
	var tile [mr * nr]float32
	load := 0
	if accumulate {
		load = 1
	}
	nStrips := (n + nr - 1) / nr
	for i0 := 0; i0 < m; i0 += mc {
		i1 := min(m, i0+mc)
		for s := 0; s < nStrips; s++ {
			bs := bp[s*nr*kbB : s*nr*kbB+nr*kb]
			jj := s * nr
			nw := min(nr, n-jj)
			for ii := i0; ii < i1; ii += mr {
				as := ap[(ii/mr)*mr*kb : (ii/mr+1)*mr*kb]
				mh := min(mr, i1-ii)
				if mh == mr && nw == nr {
					kernel(kb, as, bs, c[ii*ldc+jj:], ldc, load)
					continue
				}
				// Edge tile: compute into a scratch tile, then copy.
				kernel(kb, as, bs, tile[:], nr, 0)
				for r := 0; r < mh; r++ {
					dst := c[(ii+r)*ldc+jj : (ii+r)*ldc+jj+nw]
					src := tile[r*nr : r*nr+nw]
					if accumulate {
						for q := range dst {
							dst[q] += src[q]
						}
					} else {
						copy(dst, src)
					}
				}
			}
		}
	}
}

// packA writes rows [0, m) × depth [p0, p0+kb) of A as strips of mr rows:
// strip s holds, for each depth p, the mr values A[s·mr+r][p0+p]; rows past
// m are zero.
func packA(dst, a []float32, lda, m, p0, kb int) {
	for s := 0; s*mr < m; s++ {
		out := dst[s*mr*kb : (s+1)*mr*kb]
		for r := 0; r < mr; r++ {
			i := s*mr + r
			if i >= m {
				for p := 0; p < kb; p++ {
					out[p*mr+r] = 0
				}
				continue
			}
			row := a[i*lda+p0 : i*lda+p0+kb]
			for p, v := range row {
				out[p*mr+r] = v
			}
		}
	}
}

// packB writes columns [j0, j1) × depth [p0, p0+kb) of op(B) as strips of
// nr columns: strip s holds, for each depth p, the nr values op(B)[p][j];
// columns past j1 are zero.
func packB(dst, b []float32, ldb int, transB bool, j0, j1, p0, kb int) {
	for s := 0; j0+s*nr < j1; s++ {
		out := dst[s*nr*kb : (s+1)*nr*kb]
		jb := j0 + s*nr
		w := min(nr, j1-jb)
		if transB {
			// op(B)[p][j] = B[j][p]: read nr rows of B side by side.
			if w == nr {
				packT16(out, b[jb*ldb+p0:], ldb, kb)
				continue
			}
			for q := 0; q < nr; q++ {
				if q >= w {
					for p := 0; p < kb; p++ {
						out[p*nr+q] = 0
					}
					continue
				}
				row := b[(jb+q)*ldb+p0 : (jb+q)*ldb+p0+kb]
				for p, v := range row {
					out[p*nr+q] = v
				}
			}
			continue
		}
		for p := 0; p < kb; p++ {
			o := out[p*nr : (p+1)*nr]
			copy(o, b[(p0+p)*ldb+jb:(p0+p)*ldb+jb+w])
			clear(o[w:])
		}
	}
}

// packT16Go writes out[p·16+q] = b[q·ldb+p] for q < 16, p < kb: sixteen rows
// read in step, so each output line is written once.
func packT16Go(out, b []float32, ldb, kb int) {
	r0, r1, r2, r3 := b[0*ldb:0*ldb+kb], b[1*ldb:1*ldb+kb], b[2*ldb:2*ldb+kb], b[3*ldb:3*ldb+kb]
	r4, r5, r6, r7 := b[4*ldb:4*ldb+kb], b[5*ldb:5*ldb+kb], b[6*ldb:6*ldb+kb], b[7*ldb:7*ldb+kb]
	r8, r9, r10, r11 := b[8*ldb:8*ldb+kb], b[9*ldb:9*ldb+kb], b[10*ldb:10*ldb+kb], b[11*ldb:11*ldb+kb]
	r12, r13, r14, r15 := b[12*ldb:12*ldb+kb], b[13*ldb:13*ldb+kb], b[14*ldb:14*ldb+kb], b[15*ldb:15*ldb+kb]
	out = out[:kb*nr]
	for p := 0; p < kb; p++ {
		o := out[p*nr : p*nr+nr : p*nr+nr]
		o[0], o[1], o[2], o[3] = r0[p], r1[p], r2[p], r3[p]
		o[4], o[5], o[6], o[7] = r4[p], r5[p], r6[p], r7[p]
		o[8], o[9], o[10], o[11] = r8[p], r9[p], r10[p], r11[p]
		o[12], o[13], o[14], o[15] = r12[p], r13[p], r14[p], r15[p]
	}
}

// kernelGo is the portable micro-kernel: C[mr×nr] (= or +=) Σ_p a_p ⊗ b_p
// over kb depths of packed strips.
func kernelGo(kb int, a, b, c []float32, ldc, load int) {
	var acc [mr][nr]float32
	for p := 0; p < kb; p++ {
		bp := b[p*nr : p*nr+nr]
		ap := a[p*mr : p*mr+mr]
		for r := 0; r < mr; r++ {
			av := ap[r]
			row := &acc[r]
			for q := 0; q < nr; q++ {
				row[q] += av * bp[q]
			}
		}
	}
	for r := 0; r < mr; r++ {
		dst := c[r*ldc : r*ldc+nr]
		if load != 0 {
			for q := range dst {
				dst[q] += acc[r][q]
			}
		} else {
			copy(dst, acc[r][:])
		}
	}
}

// parallelFor runs f(0..n−1) on up to GOMAXPROCS goroutines when parallel
// is set, else in order on the caller's goroutine.
func parallelFor(n int, f func(i int), parallel bool) {
	workers := runtime.GOMAXPROCS(0)
	if !parallel || workers < 2 || n < 2 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	workers = min(workers, n)
	var wg sync.WaitGroup
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	wg.Wait()
}
