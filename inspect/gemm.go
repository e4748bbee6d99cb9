package inspect

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A packed, blocked matrix product in the manner of Goto and BLIS: per depth
// block of kcBlock, B is packed into strips of tileN rows and each task packs
// mcBlock rows of A into strips of tileM, then a register-tiled kernel
// accumulates every tile of C. Used for Gram matrices and the symmetric
// rank-2k updates of the tridiagonal reduction.
const (
	kcBlock = 256
	mcBlock = 96 // a multiple of tileM
)

// Which part of a square C a product must fill.
const (
	triFull  = iota
	triLower // tiles that meet i ≥ j
	triUpper // tiles that meet i ≤ j
)

// view is a strided read-only matrix of float32 or float64: element (i, p)
// is data[i*rs + p*cs].
type view[T float32 | float64] struct {
	data   []T
	rs, cs int
}

// gemmNT computes C += alpha · A · Bᵀ, where A is m×kk and B is n×kk (given
// as views) and C is row-major m×n with stride ldc. tri restricts the work
// to the tiles a symmetric result needs (other entries of those tiles may be
// written too).
func gemmNT[TA, TB float32 | float64](m, n, kk int, alpha float64, a view[TA], b view[TB], c []float64, ldc int, tri int) {
	if m <= 0 || n <= 0 || kk <= 0 {
		return
	}
	nStrips := (n + tileN - 1) / tileN
	bp := make([]float64, nStrips*tileN*kcBlock)
	workers := runtime.GOMAXPROCS(0)
	nBlocks := (m + mcBlock - 1) / mcBlock
	aBufs := make([][]float64, workers)
	for w := range aBufs {
		aBufs[w] = make([]float64, mcBlock*kcBlock)
	}
	for pc := 0; pc < kk; pc += kcBlock {
		kc := min(kcBlock, kk-pc)
		// Pack B: strip s holds rows [s*8, s*8+8) of B, k-major, zero-padded.
		parallelRange(nStrips, workers, func(s0, s1 int) {
			for s := s0; s < s1; s++ {
				packStrip(bp[s*tileN*kc:(s+1)*tileN*kc], b, s*tileN, n, pc, kc, tileN, 1)
			}
		})
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(ap []float64) {
				defer wg.Done()
				var tmp [tileM * tileN]float64
				for {
					blk := int(next.Add(1)) - 1
					if blk >= nBlocks {
						return
					}
					i0 := blk * mcBlock
					mb := min(mcBlock, m-i0)
					aStrips := (mb + tileM - 1) / tileM
					// Pack A (scaled by alpha): strip t holds rows i0+t*6.. .
					for t := 0; t < aStrips; t++ {
						packStrip(ap[t*tileM*kc:(t+1)*tileM*kc], a, i0+t*tileM, m, pc, kc, tileM, alpha)
					}
					for s := 0; s < nStrips; s++ {
						j0 := s * tileN
						if tri == triLower && j0 > i0+mb-1 {
							break
						}
						if tri == triUpper && j0+tileN-1 < i0 {
							continue
						}
						bs := bp[s*tileN*kc : (s+1)*tileN*kc]
						for t := 0; t < aStrips; t++ {
							ti := i0 + t*tileM
							if tri == triLower && j0 > ti+tileM-1 {
								continue
							}
							if tri == triUpper && j0+tileN-1 < ti {
								break
							}
							as := ap[t*tileM*kc : (t+1)*tileM*kc]
							rows, cols := min(tileM, m-ti), min(tileN, n-j0)
							if rows == tileM && cols == tileN {
								microKernel(kc, as, bs, c[ti*ldc+j0:], ldc)
								continue
							}
							clear(tmp[:])
							microKernel(kc, as, bs, tmp[:], tileN)
							for ii := 0; ii < rows; ii++ {
								row := c[(ti+ii)*ldc+j0 : (ti+ii)*ldc+j0+cols]
								for jj := range row {
									row[jj] += tmp[ii*tileN+jj]
								}
							}
						}
					}
				}
			}(aBufs[w])
		}
		wg.Wait()
	}
}

// parallelRange splits [0, n) into up to workers contiguous ranges.
func parallelRange(n, workers int, f func(lo, hi int)) {
	if workers <= 1 || n < 2 {
		f(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(lo, min(lo+chunk, n))
	}
	wg.Wait()
}

// gramOf returns the k×k Gram matrix of the smaller side of the row-major
// m×n float32 matrix a (A Aᵀ when m ≤ n, else Aᵀ A), accumulated in float64,
// both triangles filled.
func gramOf(a []float32, m, n int) ([]float64, int) {
	k, l := m, n
	v := view[float32]{data: a, rs: n, cs: 1}
	if m > n {
		k, l = n, m
		v = view[float32]{data: a, rs: 1, cs: n}
	}
	g := make([]float64, k*k)
	gemmNT(k, k, l, 1, v, v, g, k, triLower)
	for i := 0; i < k; i++ {
		for j := i + 1; j < k; j++ {
			g[i*k+j] = g[j*k+i]
		}
	}
	return g, k
}

// packStrip packs rows [r0, r0+w) (zero past rows) and depth [pc, pc+kc) of
// the view v into dst, k-major (w values per depth step), scaled by alpha.
// The loop order follows the view's contiguous direction.
func packStrip[T float32 | float64](dst []float64, v view[T], r0, rows, pc, kc, w int, alpha float64) {
	live := min(w, rows-r0)
	if live < w {
		clear(dst[:kc*w])
	}
	if live == w && alpha == 1 {
		switch {
		case v.cs == 1 && w == tileM:
			// Six row streams, written in order.
			b := r0*v.rs + pc
			s0, s1, s2 := v.data[b:b+kc], v.data[b+v.rs:b+v.rs+kc], v.data[b+2*v.rs:b+2*v.rs+kc]
			s3, s4, s5 := v.data[b+3*v.rs:b+3*v.rs+kc], v.data[b+4*v.rs:b+4*v.rs+kc], v.data[b+5*v.rs:b+5*v.rs+kc]
			for p := 0; p < kc; p++ {
				d := dst[p*tileM : p*tileM+tileM : p*tileM+tileM]
				d[0], d[1], d[2] = float64(s0[p]), float64(s1[p]), float64(s2[p])
				d[3], d[4], d[5] = float64(s3[p]), float64(s4[p]), float64(s5[p])
			}
			return
		case v.rs == 1:
			// The strip's w values at each depth are contiguous.
			for p := 0; p < kc; p++ {
				base := r0 + (pc+p)*v.cs
				src := v.data[base : base+w : base+w]
				d := dst[p*w : p*w+w : p*w+w]
				for ii, x := range src {
					d[ii] = float64(x)
				}
			}
			return
		}
	}
	if v.cs == 1 {
		for ii := 0; ii < live; ii++ {
			src := v.data[(r0+ii)*v.rs+pc : (r0+ii)*v.rs+pc+kc]
			for p, x := range src {
				dst[p*w+ii] = alpha * float64(x)
			}
		}
		return
	}
	for p := 0; p < kc; p++ {
		base := r0*v.rs + (pc+p)*v.cs
		d := dst[p*w : p*w+live]
		for ii := range d {
			d[ii] = alpha * float64(v.data[base+ii*v.rs])
		}
	}
}
