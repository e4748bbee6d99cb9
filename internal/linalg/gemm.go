package linalg

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Blocking of the product (see the package documentation).
const (
	kc     = 256 // depth of a packed block: a B strip (kc×nr) stays in L1
	mc     = 96  // rows of a C task: its A block (mc×kc) stays in L2; a multiple of mr
	ncTask = 256 // columns of a C task
)

// Triangle selects the part of a square product C that is needed.
type Triangle uint8

const (
	Full  Triangle = iota // every entry
	Lower                 // the entries with i ≥ j
	Upper                 // the entries with i ≤ j
)

// MulOptions tune Mul. The zero value computes all of C on up to
// GOMAXPROCS goroutines.
type MulOptions struct {
	// Tri restricts the work to the micro-tiles that meet one triangle of a
	// square C (for symmetric results); other entries of those tiles may be
	// written too, entries of the others are left alone.
	Tri Triangle
	// Serial runs the product on the caller's goroutine only.
	Serial bool
}

// Mul computes C = alpha·A·B + beta·C for the m×k view a, the k×n view b
// and the row-major m×n matrix c with row stride ldc, in the precision of
// C's element type T: operands are converted to T while they are packed
// (float32 values multiply exactly in float64). When beta is 0, C is not
// read, so it may hold anything, NaN included.
//
// Accuracy: each entry is a sum of k products accumulated in T with fused
// multiply-adds, in order within depth blocks of 256 and then block by
// block, so its error is bounded by about k·eps(T)·Σ|a_ip·b_pj| (the usual
// bound of a dot product), and the result does not depend on the number of
// goroutines.
//
// Cost: 2·m·n·k flops (about half with a triangle), plus packing m·k + n·k
// values; memory (m + n)·256 values of T for the packed panels.
//
// It returns an error wrapping ErrShape, and touches nothing, when the
// shapes do not fit together, a slice is too short for its shape, or a
// triangle is asked of a non-square C.
func Mul[T, SA, SB Float](c []T, ldc int, alpha float64, a View[SA], b View[SB], beta float64, o MulOptions) error {
	m, k, n := a.Rows, a.Cols, b.Cols
	if err := a.Check(); err != nil {
		return err
	}
	if err := b.Check(); err != nil {
		return err
	}
	if b.Rows != k {
		return fmt.Errorf("%w: product of %d×%d and %d×%d", ErrShape, m, k, b.Rows, n)
	}
	if o.Tri != Full && m != n {
		return fmt.Errorf("%w: triangle of a %d×%d product", ErrShape, m, n)
	}
	if err := checkC(c, m, n, ldc); err != nil {
		return err
	}
	nr := nrOf[T]()
	bt := b.T() // n×k: its rows are the columns of C
	al := T(alpha)
	j := &job[T]{m: m, n: n, k: k, c: c, ldc: ldc, tri: o.Tri, parallel: !o.Serial,
		aPack: func(dst []T, r0, p0, kb int) { packRows(dst, a, r0, m, p0, kb, mr, al) },
		bPack: func(dst []T, r0, p0, kb int) { packRows(dst, bt, r0, n, p0, kb, nr, 1) },
	}
	j.run(beta)
	return nil
}

// PackedA is all of an m×k matrix A packed for products: per depth block
// of 256, ⌈m/6⌉ strips of 6×kb values. It is read-only once built, so
// several products with the same A (x·W_Qᵀ, x·W_Kᵀ, x·W_Vᵀ) share one
// packing, from any number of goroutines.
type PackedA[T Float] struct {
	m, k   int
	blocks [][]T
}

// Dims returns the rows and depth of the packed matrix.
func (p PackedA[T]) Dims() (m, k int) { return p.m, p.k }

// PackA packs the m×k view a in precision T, on up to GOMAXPROCS goroutines
// when parallel is set and a is large. Cost: m·k copies; memory about m·k
// values of T.
func PackA[T, S Float](a View[S], parallel bool) (PackedA[T], error) {
	if err := a.Check(); err != nil {
		return PackedA[T]{}, err
	}
	m, k := a.Rows, a.Cols
	mStrips := (m + mr - 1) / mr
	nBlocks := (k + kc - 1) / kc
	pa := PackedA[T]{m: m, k: k, blocks: make([][]T, nBlocks)}
	ForEach(nBlocks, parallel && m*k >= 1<<16, func(blk int) {
		p0 := blk * kc
		kb := min(kc, k-p0)
		buf := make([]T, mStrips*mr*kb)
		for s := 0; s < mStrips; s++ {
			packRows(buf[s*mr*kb:(s+1)*mr*kb], a, s*mr, m, p0, kb, mr, 1)
		}
		pa.blocks[blk] = buf
	})
	return pa, nil
}

// PackedB is all of a k×n matrix B packed for products: per depth block of
// 256, ⌈n/nr⌉ strips of kb×nr values (nr = 16 for float32, 8 for float64).
// A product may use a prefix of its columns and of its depth.
type PackedB[T Float] struct {
	n, k   int
	blocks [][]T
}

// Dims returns the depth and columns of the packed matrix.
func (p PackedB[T]) Dims() (k, n int) { return p.k, p.n }

// PackB packs the k×n view b in precision T on the caller's goroutine.
// Cost: k·n copies; memory about k·n values of T.
func PackB[T, S Float](b View[S]) (PackedB[T], error) {
	if err := b.Check(); err != nil {
		return PackedB[T]{}, err
	}
	k, n := b.Rows, b.Cols
	nr := nrOf[T]()
	bt := b.T()
	nStrips := (n + nr - 1) / nr
	pb := PackedB[T]{n: n, k: k}
	for p0 := 0; p0 < k; p0 += kc {
		kb := min(kc, k-p0)
		buf := make([]T, nStrips*nr*kb)
		for s := 0; s < nStrips; s++ {
			packRows(buf[s*nr*kb:(s+1)*nr*kb], bt, s*nr, n, p0, kb, nr, 1)
		}
		pb.blocks = append(pb.blocks, buf)
	}
	return pb, nil
}

// MulPackedA computes C = A·B for a packed m×k A and the k×n view b, in
// precision T (C is overwritten), on up to GOMAXPROCS goroutines when
// parallel is set. Accuracy and cost as for Mul, less A's packing.
func MulPackedA[T, S Float](c []T, ldc int, a PackedA[T], b View[S], parallel bool) error {
	if err := b.Check(); err != nil {
		return err
	}
	if b.Rows != a.k {
		return fmt.Errorf("%w: product of packed %d×%d and %d×%d", ErrShape, a.m, a.k, b.Rows, b.Cols)
	}
	if err := checkC(c, a.m, b.Cols, ldc); err != nil {
		return err
	}
	n := b.Cols
	nr := nrOf[T]()
	bt := b.T()
	j := &job[T]{m: a.m, n: n, k: a.k, c: c, ldc: ldc, parallel: parallel, aBlocks: a.blocks,
		bPack: func(dst []T, r0, p0, kb int) { packRows(dst, bt, r0, n, p0, kb, nr, 1) },
	}
	j.run(0)
	return nil
}

// MulPacked computes C = A·B[:a.k, :n] on the caller's goroutine from two
// packed operands: all of A (m×k) times the first k rows (k ≤ b's depth)
// and the first n columns (n ≤ b's columns) of B. C (m×n, stride ldc) is
// overwritten. Accuracy as for Mul; cost 2·m·n·k flops and no packing.
func MulPacked[T Float](c []T, ldc int, a PackedA[T], b PackedB[T], n int) error {
	if a.k > b.k || n < 0 || n > b.n {
		return fmt.Errorf("%w: packed %d×%d times the first %d columns of packed %d×%d", ErrShape, a.m, a.k, n, b.k, b.n)
	}
	if err := checkC(c, a.m, n, ldc); err != nil {
		return err
	}
	j := &job[T]{m: a.m, n: n, k: a.k, c: c, ldc: ldc, aBlocks: a.blocks, bBlocks: b.blocks, bDepth: b.k}
	j.run(0)
	return nil
}

// job is one product C (+)= A·B on packed panels: A's and B's depth blocks
// are either given packed or packed here, block by block, from a view.
type job[T Float] struct {
	m, n, k  int
	c        []T
	ldc      int
	tri      Triangle
	parallel bool
	aBlocks  [][]T                         // packed A by depth block, or nil
	aPack    func(dst []T, r0, p0, kb int) // packs the 6-row strip of A at row r0
	bBlocks  [][]T                         // packed B by depth block, or nil
	bDepth   int                           // depth of the packed B (its strips' stride)
	bPack    func(dst []T, c0, p0, kb int) // packs the nr-column strip of B at column c0
}

// run computes C = A·B + beta·C. Per depth block it packs what is not
// packed yet (strips split between goroutines), then computes the C tasks
// of mc rows × ncTask columns, handed out to goroutines as they free up.
func (j *job[T]) run(beta float64) {
	m, n, k := j.m, j.n, j.k
	if m <= 0 || n <= 0 {
		return
	}
	if beta != 0 && beta != 1 {
		for i := 0; i < m; i++ {
			row := j.c[i*j.ldc : i*j.ldc+n]
			for q := range row {
				row[q] *= T(beta)
			}
		}
	}
	if k <= 0 {
		if beta == 0 {
			for i := 0; i < m; i++ {
				clear(j.c[i*j.ldc : i*j.ldc+n])
			}
		}
		return
	}
	nr := nrOf[T]()
	kern := kernelFor[T]()
	mStrips, nStrips := (m+mr-1)/mr, (n+nr-1)/nr
	workers := 1
	if j.parallel {
		workers = runtime.GOMAXPROCS(0)
	}
	rowTasks, colTasks := (m+mc-1)/mc, (n+ncTask-1)/ncTask
	tasks := rowTasks * colTasks
	// No more goroutines (and scratch) than tasks: a small product is one
	// task on the calling goroutine. The tasks are the same whoever runs
	// them, so the result does not depend on this.
	workers = max(min(workers, tasks), 1)
	// Task order: in float32 a task's B block (256 deep × 256 wide, 256 KiB)
	// stays in L2 while consecutive tasks walk down its column, so A is what
	// streams; in float64 that block would fill L2, so consecutive tasks
	// walk along a row of tasks, sharing the A block instead.
	colMajor := nr == 16
	// When one task spans every column, each block of A is used by one task
	// only: the task packs it itself, just before use, so that it is still
	// in cache (thin products such as block Lanczos's A·Q). Otherwise A is
	// packed once per depth block and shared.
	aInTask := j.aBlocks == nil && colTasks == 1
	var aBuf, bBuf []T
	if j.aBlocks == nil && !aInTask {
		aBuf = make([]T, mStrips*mr*min(kc, k))
	}
	if j.bBlocks == nil {
		bBuf = make([]T, nStrips*nr*min(kc, k))
	}
	scratch := make([]taskScratch[T], max(workers, 1))
	for w := range scratch {
		scratch[w].tile = make([]T, mr*nr)
		if aInTask {
			scratch[w].a = make([]T, min(mc, mStrips*mr)*min(kc, k))
		}
	}
	for blk, p0 := 0, 0; p0 < k; blk, p0 = blk+1, p0+kc {
		kb := min(kc, k-p0)
		var ap, bp []T
		kbB := kb
		aStrips, bStrips := 0, 0
		switch {
		case j.aBlocks != nil:
			ap = j.aBlocks[blk]
		case !aInTask:
			ap, aStrips = aBuf[:mStrips*mr*kb], mStrips
		}
		if j.bBlocks != nil {
			bp, kbB = j.bBlocks[blk], min(kc, j.bDepth-p0)
		} else {
			bp, bStrips = bBuf[:nStrips*nr*kb], nStrips
		}
		packWorkers := 1
		if (aStrips*mr+bStrips*nr)*kb >= 1<<14 {
			packWorkers = workers
		}
		forRange(aStrips+bStrips, packWorkers, func(lo, hi int) {
			for s := lo; s < hi; s++ {
				if s < aStrips {
					j.aPack(ap[s*mr*kb:(s+1)*mr*kb], s*mr, p0, kb)
				} else {
					t := s - aStrips
					j.bPack(bp[t*nr*kb:(t+1)*nr*kb], t*nr, p0, kb)
				}
			}
		})
		load := beta != 0 || blk > 0
		var next atomic.Int64
		compute := func(sc *taskScratch[T]) {
			for {
				t := int(next.Add(1)) - 1
				if t >= tasks {
					return
				}
				i0, j0 := (t/colTasks)*mc, (t%colTasks)*ncTask
				if colMajor {
					i0, j0 = (t%rowTasks)*mc, (t/rowTasks)*ncTask
				}
				i1, j1 := min(m, i0+mc), min(n, j0+ncTask)
				if j.tri == Lower && j0 > i1-1 || j.tri == Upper && j1-1 < i0 {
					continue
				}
				// The task's A strips, from its first row on.
				var at []T
				if aInTask {
					at = sc.a
					for s := 0; s*mr < i1-i0; s++ {
						j.aPack(at[s*mr*kb:(s+1)*mr*kb], i0+s*mr, p0, kb)
					}
				} else {
					at = ap[(i0/mr)*mr*kb:]
				}
				j.task(kern, nr, at, kb, bp, kbB, i0, i1, j0, j1, load, sc.tile)
			}
		}
		if w := min(workers, tasks); w > 1 {
			var wg sync.WaitGroup
			for g := 0; g < w; g++ {
				wg.Add(1)
				go func(sc *taskScratch[T]) {
					defer wg.Done()
					compute(sc)
				}(&scratch[g])
			}
			wg.Wait()
		} else {
			compute(&scratch[0])
		}
	}
}

// taskScratch is one goroutine's working memory: an edge tile of C and,
// when tasks pack their own A, an A block.
type taskScratch[T Float] struct {
	tile, a []T
}

// task computes rows [i0, i1) × columns [j0, j1) of C for one depth block:
// ap holds A's strips from row i0 on (kb deep), bp all of B's strips
// (kbB ≥ kb deep, of which the first kb are used). i0 and j0 are multiples
// of mr and nr. Edge tiles are computed into tmp and copied.
func (j *job[T]) task(kern kernelFunc[T], nr int, ap []T, kb int, bp []T, kbB int, i0, i1, j0, j1 int, load bool, tmp []T) {
	for jj := j0; jj < j1; jj += nr {
		if j.tri == Lower && jj > i1-1 {
			break
		}
		if j.tri == Upper && jj+nr-1 < i0 {
			continue
		}
		nw := min(nr, j1-jj)
		s := jj / nr
		bs := bp[s*nr*kbB : s*nr*kbB+nr*kb]
		for ii := i0; ii < i1; ii += mr {
			if j.tri == Lower && jj > ii+mr-1 {
				continue
			}
			if j.tri == Upper && jj+nr-1 < ii {
				break
			}
			t := (ii - i0) / mr
			as := ap[t*mr*kb : (t+1)*mr*kb]
			mh := min(mr, i1-ii)
			if mh == mr && nw == nr {
				must(kern(kb, as, bs, j.c[ii*j.ldc+jj:], j.ldc, load))
				continue
			}
			must(kern(kb, as, bs, tmp, nr, false))
			storeTile(j.c[ii*j.ldc+jj:], j.ldc, tmp, nr, mh, nw, load)
		}
	}
}

// must stops on a micro-kernel's length error: the drivers check every
// operand before they start, so one here is a bug in this package.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

// packRows packs rows [r0, r0+w) of the view v (rows past `rows` are
// zero) at depths [p0, p0+kb) into dst, k-major: w values per depth,
// scaled by alpha and converted to T. The loops follow v's contiguous
// direction.
func packRows[S, T Float](dst []T, v View[S], r0, rows, p0, kb, w int, alpha T) {
	live := min(w, rows-r0)
	if live < w {
		clear(dst[:kb*w])
	}
	if live == w && alpha == 1 {
		switch {
		case v.ColStride == 1 && w == mr:
			// Six row streams, written in order.
			b := r0*v.RowStride + p0
			rs := v.RowStride
			s0, s1, s2 := v.Data[b:b+kb], v.Data[b+rs:b+rs+kb], v.Data[b+2*rs:b+2*rs+kb]
			s3, s4, s5 := v.Data[b+3*rs:b+3*rs+kb], v.Data[b+4*rs:b+4*rs+kb], v.Data[b+5*rs:b+5*rs+kb]
			for p := 0; p < kb; p++ {
				d := dst[p*mr : p*mr+mr : p*mr+mr]
				d[0], d[1], d[2] = T(s0[p]), T(s1[p]), T(s2[p])
				d[3], d[4], d[5] = T(s3[p]), T(s4[p]), T(s5[p])
			}
			return
		case v.ColStride == 1 && w == 16:
			// Sixteen float32 rows into float32 strips: the transpose kernel.
			if d, ok := any(dst).([]float32); ok {
				if s, ok := any(v.Data).([]float32); ok {
					must(packT16(d, s[r0*v.RowStride+p0:], v.RowStride, kb))
					return
				}
			}
		case v.RowStride == 1:
			// The strip's w values at each depth are contiguous.
			for p := 0; p < kb; p++ {
				base := r0 + (p0+p)*v.ColStride
				src := v.Data[base : base+w : base+w]
				d := dst[p*w : p*w+w : p*w+w]
				for ii, x := range src {
					d[ii] = T(x)
				}
			}
			return
		}
	}
	if v.ColStride == 1 {
		for ii := 0; ii < live; ii++ {
			src := v.Data[(r0+ii)*v.RowStride+p0 : (r0+ii)*v.RowStride+p0+kb]
			for p, x := range src {
				dst[p*w+ii] = alpha * T(x)
			}
		}
		return
	}
	for p := 0; p < kb; p++ {
		base := r0*v.RowStride + (p0+p)*v.ColStride
		d := dst[p*w : p*w+live]
		for ii := range d {
			d[ii] = alpha * T(v.Data[base+ii*v.RowStride])
		}
	}
}

// ForEach runs f(0), …, f(n−1): on up to GOMAXPROCS goroutines, each
// taking the next index as it frees up, when parallel is set; else in
// order on the caller's goroutine.
func ForEach(n int, parallel bool, f func(i int)) {
	workers := runtime.GOMAXPROCS(0)
	if !parallel || workers < 2 || n < 2 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// forRange splits [0, n) into up to workers contiguous ranges run at once.
func forRange(n, workers int, f func(lo, hi int)) {
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
