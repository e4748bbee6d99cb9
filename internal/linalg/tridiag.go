package linalg

import (
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/lapack/gonum"
)

// tridiagPanel is the number of columns reduced between two rank-2k updates.
const tridiagPanel = 32

// SymEigenvalues returns the eigenvalues of the symmetric n×n matrix s in
// ascending order; ok is false when the QR iteration fails to converge.
// Only the upper triangle of s (row-major) is read, and s is overwritten.
//
// It reduces s to tridiagonal form (Tridiagonalize) and finds the
// eigenvalues of that by Pal–Walker–Kahan QL/QR (gonum's Dsterf).
//
// Accuracy: backward stable, so each eigenvalue carries an absolute error
// of a small multiple of sqrt(n)·eps64·max|λ| (measured below
// 1e-12·n·max|λ| on Gaussian matrices against gonum's Dsyev).
//
// Cost: 4n³/3 flops for the reduction (half of them in the packed product,
// the rest in symmetric matrix-vector products split across CPUs) and
// O(n²) for the iteration; memory about 33·n values besides s.
func SymEigenvalues(s []float64, n int) (eigenvalues []float64, ok bool) {
	if n < 0 || len(s) < n*n {
		return nil, false
	}
	d, e := Tridiagonalize(s, n)
	if !(gonum.Implementation{}).Dsterf(n, d, e) {
		return nil, false
	}
	return d, true
}

// Tridiagonalize reduces the symmetric n×n matrix s (row-major, only the
// upper triangle read; overwritten by the reflectors) to the tridiagonal
// T = Qᵀ S Q by Householder reflections and returns T's diagonal d and
// off-diagonal e. It is blocked in the manner of LAPACK's dsytrd/dlatrd:
// panels of 32 reflectors, each panel's trailing update a symmetric rank-64
// product through Mul. s must hold n·n values.
//
// Storage: entry (r, c) with r ≤ c is s[r*n+c]; "column c below the
// diagonal" of the textbook lower algorithm is therefore row c right of
// the diagonal, which is contiguous.
//
// Accuracy: backward stable (T is exactly similar to S + E with ‖E‖ a
// small multiple of n·eps64·‖S‖). Cost: 4n³/3 flops.
func Tridiagonalize(s []float64, n int) (d, e []float64) {
	d = make([]float64, n)
	e = make([]float64, max(n-1, 0))
	if n == 0 {
		return
	}
	nb := tridiagPanel
	ws := make([][]float64, nb) // W columns of the current panel, length n
	for j := range ws {
		ws[j] = make([]float64, n)
	}
	y := newSymv(n)
	for i := 0; i < n; i += nb {
		pe := min(i+nb, n) // panel columns [i, pe)
		for c := i; c < pe; c++ {
			j := c - i
			row := s[c*n : (c+1)*n]
			// Apply the panel's earlier reflectors to row c (entries c..n-1).
			for jj := 0; jj < j; jj++ {
				vr := s[(i+jj)*n : (i+jj+1)*n]
				w := ws[jj]
				wc, vc := w[c], vr[c]
				for t := c; t < n; t++ {
					row[t] -= vr[t]*wc + w[t]*vc
				}
			}
			d[c] = row[c]
			if c == n-1 {
				break
			}
			// Householder reflector H = I - tau v vᵀ with v[c+1] = 1 that maps
			// x = row[c+1:] to (beta, 0, …).
			x := row[c+1:]
			alpha := x[0]
			var xn float64
			for _, v := range x[1:] {
				xn += v * v
			}
			xn = math.Sqrt(xn)
			tau := 0.0
			beta := alpha
			if xn != 0 {
				beta = -math.Copysign(math.Hypot(alpha, xn), alpha)
				tau = (beta - alpha) / beta
				sc := 1 / (alpha - beta)
				for t := 1; t < len(x); t++ {
					x[t] *= sc
				}
			}
			e[c] = beta
			x[0] = 1
			w := ws[j]
			clear(w)
			if tau == 0 {
				continue
			}
			v := row // v[t] for t > c
			// w = tau (T v − V Wᵀ v − W Vᵀ v) on indices c+1..n-1, where T is
			// the trailing matrix as of the panel's start.
			y.mul(s, n, c+1, v, w)
			for jj := 0; jj < j; jj++ {
				vr := s[(i+jj)*n : (i+jj+1)*n]
				wj := ws[jj]
				var p, q float64
				for t := c + 1; t < n; t++ {
					p += wj[t] * v[t]
					q += vr[t] * v[t]
				}
				for t := c + 1; t < n; t++ {
					w[t] -= vr[t]*p + wj[t]*q
				}
			}
			var wv float64
			for t := c + 1; t < n; t++ {
				w[t] *= tau
				wv += w[t] * v[t]
			}
			a2 := -0.5 * tau * wv
			for t := c + 1; t < n; t++ {
				w[t] += a2 * v[t]
			}
		}
		// Rank-2k update of the trailing matrix: S -= V Wᵀ + W Vᵀ.
		t0 := pe
		if t0 >= n || pe-i == 0 {
			continue
		}
		rows := n - t0
		k2 := 2 * (pe - i)
		pm := make([]float64, rows*k2) // [V W]
		qm := make([]float64, rows*k2) // [W V]
		for r := 0; r < rows; r++ {
			for jj := 0; jj < pe-i; jj++ {
				vv := s[(i+jj)*n+t0+r]
				ww := ws[jj][t0+r]
				pm[r*k2+jj], pm[r*k2+pe-i+jj] = vv, ww
				qm[r*k2+jj], qm[r*k2+pe-i+jj] = ww, vv
			}
		}
		must(Mul(s[t0*n+t0:], n, -1, RowMajor(pm, rows, k2, k2), RowMajor(qm, rows, k2, k2).T(), 1, MulOptions{Tri: Upper}))
	}
	return d, e
}

// symv computes w = T v for trailing blocks T = S[c0:, c0:] of a symmetric
// matrix in upper-row storage, splitting rows between CPUs by area.
type symv struct {
	parts [][]float64
}

func newSymv(n int) *symv {
	p := runtime.GOMAXPROCS(0)
	sv := &symv{parts: make([][]float64, p)}
	for i := range sv.parts {
		sv.parts[i] = make([]float64, n)
	}
	return sv
}

func (sv *symv) mul(s []float64, n, c0 int, v, w []float64) {
	m := n - c0
	p := len(sv.parts)
	if m < 256 {
		p = 1
	}
	// Row r of the block costs n-r: split [c0, n) so each part has about
	// m²/(2p) entries. The part boundaries b_k solve (n-b)² = m²(1-k/p).
	bounds := make([]int, p+1)
	bounds[0] = c0
	for k := 1; k < p; k++ {
		bounds[k] = n - int(float64(m)*math.Sqrt(1-float64(k)/float64(p)))
	}
	bounds[p] = n
	var wg sync.WaitGroup
	for k := 0; k < p; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			y := sv.parts[k]
			clear(y[c0:])
			for r := bounds[k]; r < bounds[k+1]; r++ {
				row := s[r*n : (r+1)*n]
				vr := v[r]
				// y[r] gets row·v over t ≥ r; y[t>r] gets row[t]·v[r].
				dd, err := DotAxpy(row[r+1:], v[r+1:], y[r+1:], vr)
				must(err)
				y[r] += row[r]*vr + dd
			}
		}(k)
	}
	wg.Wait()
	copy(w[c0:], sv.parts[0][c0:])
	for k := 1; k < p; k++ {
		for t := c0; t < n; t++ {
			w[t] += sv.parts[k][t]
		}
	}
}
