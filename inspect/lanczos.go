package inspect

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"
)

// Fast-mode parameters (see the package documentation).
const (
	fastSteps = 64 // Golub–Kahan–Lanczos steps
	fastKeep  = 32 // at most this many leading Ritz values are trusted
	// fastConverged: a Ritz value θ_i counts as converged when its residual
	// bound is below fastConverged·θ_i.
	fastConverged = 1e-4
)

// parallelRows runs f over [0, rows) split into contiguous chunks, one per
// CPU.
func parallelRows(rows int, f func(r0, r1 int)) {
	p := runtime.GOMAXPROCS(0)
	if p <= 1 || rows < 64 {
		f(0, rows)
		return
	}
	var wg sync.WaitGroup
	chunk := (rows + p - 1) / p
	for r0 := 0; r0 < rows; r0 += chunk {
		wg.Add(1)
		go func(r0, r1 int) {
			defer wg.Done()
			f(r0, r1)
		}(r0, min(r0+chunk, rows))
	}
	wg.Wait()
}

// mulVec sets y = A x for the row-major m×n float32 matrix a.
func mulVec(a []float32, m, n int, x, y []float64) {
	parallelRows(m, func(r0, r1 int) {
		for i := r0; i < r1; i++ {
			row := a[i*n : (i+1)*n]
			var s0, s1, s2, s3 float64
			j := 0
			for ; j+4 <= n; j += 4 {
				s0 += float64(row[j]) * x[j]
				s1 += float64(row[j+1]) * x[j+1]
				s2 += float64(row[j+2]) * x[j+2]
				s3 += float64(row[j+3]) * x[j+3]
			}
			for ; j < n; j++ {
				s0 += float64(row[j]) * x[j]
			}
			y[i] = (s0 + s1) + (s2 + s3)
		}
	})
}

// mulTVec sets y = Aᵀ x; each CPU sums its rows into its own partial vector.
func mulTVec(a []float32, m, n int, x, y []float64) {
	p := runtime.GOMAXPROCS(0)
	chunk := max(64, (m+p-1)/p)
	var parts [][]float64
	var mu sync.Mutex
	parallelRows(m, func(r0, r1 int) {
		part := make([]float64, n)
		for r := r0; r < r1; r += chunk {
			for i := r; i < min(r+chunk, r1); i++ {
				xi := x[i]
				if xi == 0 {
					continue
				}
				row := a[i*n : (i+1)*n]
				for j, w := range row {
					part[j] += float64(w) * xi
				}
			}
		}
		mu.Lock()
		parts = append(parts, part)
		mu.Unlock()
	})
	clear(y)
	for _, part := range parts {
		for j, v := range part {
			y[j] += v
		}
	}
}

func dot(x, y []float64) float64 {
	var s float64
	for i := range x {
		s += x[i] * y[i]
	}
	return s
}

// reorth makes x orthogonal to the vectors in basis (classical Gram–Schmidt,
// twice, which is enough in floating point) and returns its norm.
func reorth(x []float64, basis [][]float64) float64 {
	for pass := 0; pass < 2; pass++ {
		for _, b := range basis {
			c := dot(x, b)
			for i := range x {
				x[i] -= c * b[i]
			}
		}
	}
	return math.Sqrt(dot(x, x))
}

// lanczosRitz runs steps of Golub–Kahan–Lanczos bidiagonalisation on a and
// returns the Ritz values (descending) and their residual bounds.
func lanczosRitz(a []float32, m, n, steps int) (theta, resid []float64) {
	// A fixed pseudo-random start vector (splitmix64) keeps runs reproducible.
	v := make([]float64, n)
	seed := uint64(0x9e3779b97f4a7c15)
	for i := range v {
		seed += 0x9e3779b97f4a7c15
		z := seed
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		v[i] = float64(z>>11)/float64(1<<53) - 0.5
	}
	nv := math.Sqrt(dot(v, v))
	for i := range v {
		v[i] /= nv
	}
	var us, vs [][]float64
	vs = append(vs, v)
	var alpha, beta []float64
	scale := 0.0
	for j := 0; j < steps; j++ {
		u := make([]float64, m)
		mulVec(a, m, n, vs[j], u)
		al := reorth(u, us)
		scale = math.Max(scale, al)
		if !(al > 1e-13*scale) {
			break // invariant subspace: the spectrum found is exact
		}
		for i := range u {
			u[i] /= al
		}
		us = append(us, u)
		alpha = append(alpha, al)
		w := make([]float64, n)
		mulTVec(a, m, n, u, w)
		be := reorth(w, vs)
		scale = math.Max(scale, be)
		beta = append(beta, be)
		if !(be > 1e-13*scale) || j == steps-1 {
			break
		}
		for i := range w {
			w[i] /= be
		}
		vs = append(vs, w)
	}
	s := len(alpha)
	if s == 0 {
		return nil, nil
	}
	// B is s×s upper bidiagonal: α on the diagonal, β on the superdiagonal.
	b := make([]float64, s*s)
	for i := 0; i < s; i++ {
		b[i*s+i] = alpha[i]
		if i+1 < s {
			b[i*s+i+1] = beta[i]
		}
	}
	uB := make([]float64, s*s)
	vtB := make([]float64, s*s)
	theta = make([]float64, s)
	work := make([]float64, 1)
	gb := blas64.General{Rows: s, Cols: s, Stride: s, Data: b}
	gu := blas64.General{Rows: s, Cols: s, Stride: s, Data: uB}
	gv := blas64.General{Rows: s, Cols: s, Stride: s, Data: vtB}
	lapack64.Gesvd(lapack.SVDAll, lapack.SVDAll, gb, gu, gv, theta, work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Gesvd(lapack.SVDAll, lapack.SVDAll, gb, gu, gv, theta, work, len(work))
	// Residual of Ritz pair i: β_s·|last component of B's left vector i|.
	last := beta[s-1]
	resid = make([]float64, s)
	for i := range resid {
		resid[i] = last * math.Abs(uB[(s-1)*s+i])
	}
	return theta, resid
}

// tailBounds returns the effective ranks of the spectrum head ∪ tail for the
// two extreme tails of r values with Σ tail² = energy and 0 ≤ tail ≤ cap:
// packed into as few values of size cap as possible (lo), spread evenly
// (hi).
func tailBounds(head []float64, r int, energy, cap float64) (lo, hi float64) {
	energy = math.Max(energy, 0)
	if r <= 0 || energy == 0 || !(cap > 0) {
		e := effectiveRank(head)
		return e, e
	}
	flat := math.Min(math.Sqrt(energy/float64(r)), cap)
	sv := append(append([]float64(nil), head...), make([]float64, r)...)
	for i := len(head); i < len(sv); i++ {
		sv[i] = flat
	}
	hi = effectiveRank(sv)
	q := int(math.Min(float64(r), math.Floor(energy/(cap*cap))))
	for i := len(head); i < len(sv); i++ {
		sv[i] = 0
	}
	for i := 0; i < q; i++ {
		sv[len(head)+i] = cap
	}
	if q < r {
		sv[len(head)+q] = math.Sqrt(math.Max(0, energy-float64(q)*cap*cap))
	}
	lo = effectiveRank(sv)
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}

// fastSpectralStats fills the fast-mode estimates for a finite matrix.
func fastSpectralStats(s *Stats, a []float32, m, n int) {
	k := min(m, n)
	theta, resid := lanczosRitz(a, m, n, min(k, fastSteps))
	s.Method = MethodLanczos
	s.Flags = append(s.Flags, FlagEstimated)
	nan := Float(math.NaN())
	s.Rank, s.Condition = nil, nan
	if len(theta) == 0 || !(theta[0] > 0) {
		s.SpectralNorm, s.StableRank, s.EffectiveRank = 0, nan, nan
		return
	}
	s.SpectralNorm = Float(theta[0])
	fro := float64(s.Fro)
	s.StableRank = Float(fro * fro / (theta[0] * theta[0]))
	t := 0
	for t < len(theta) && t < fastKeep && resid[t] <= fastConverged*theta[t] {
		t++
	}
	t = max(t, 1)
	head := theta[:t]
	energy := fro * fro
	for _, v := range head {
		energy -= v * v
	}
	lo, hi := tailBounds(head, k-t, energy, head[t-1])
	s.EffectiveRank = Float(math.Sqrt(lo * hi))
	s.EffectiveRankBounds = &[2]Float{Float(lo), Float(hi)}
	s.spark = sparkSummary(theta)
}
