package linalg

import (
	"math"

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
// the rest in symmetric matrix-vector products split across CPUs in a
// fixed number of parts, so the result does not depend on their number) and
// O(n²) for the iteration; memory about 170·n values besides s (the
// panel's 32 columns, 8 partial products, and the 2×64 columns of the
// rank-2k update).
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

// symvParts is the number of parts a symmetric matrix-vector product of a
// trailing block of 256 rows or more is split into. It is fixed, not the
// number of CPUs: each part sums its rows' contributions into its own
// vector and the parts are added in order, so the rounding of w depends on
// the part boundaries, and a count that followed GOMAXPROCS would make the
// last digits of every spectrum of a matrix with a side ≥ 256 depend on the
// machine. 8 parts keep 2 to 8 CPUs busy (the parts are handed out as CPUs
// free up); their partial vectors cost 8·n values and the final sum 8·m adds
// per product, against m²/2 multiply-adds for the product itself.
const symvParts = 8

// symvSplitFrom is the size of trailing block from which the product is
// split into symvParts parts; smaller ones are one part.
const symvSplitFrom = 256

// symv computes w = T v for trailing blocks T = S[c0:, c0:] of a symmetric
// matrix in upper-row storage, split into a fixed number of row ranges of
// about equal area (see symvParts) whatever the number of CPUs.
type symv struct {
	parts [][]float64
}

func newSymv(n int) *symv {
	sv := &symv{parts: make([][]float64, symvParts)}
	for i := range sv.parts {
		sv.parts[i] = make([]float64, n)
	}
	return sv
}

func (sv *symv) mul(s []float64, n, c0 int, v, w []float64) {
	m := n - c0
	p := symvParts
	if m < symvSplitFrom {
		p = 1
	}
	// Row r of the block costs n-r: split [c0, n) so each part has about
	// m²/(2p) entries. The part boundaries b_k solve (n-b)² = m²(1-k/p).
	// They depend on n, c0 and p only.
	var bounds [symvParts + 1]int
	bounds[0] = c0
	for k := 1; k < p; k++ {
		bounds[k] = n - int(float64(m)*math.Sqrt(1-float64(k)/float64(p)))
	}
	bounds[p] = n
	part := func(k int) {
		y := sv.parts[k]
		lo := bounds[k]
		// Part k writes y[t] for t ≥ its first row only.
		clear(y[lo:n])
		for r := lo; r < bounds[k+1]; r++ {
			row := s[r*n : (r+1)*n]
			vr := v[r]
			// y[r] gets row·v over t ≥ r; y[t>r] gets row[t]·v[r].
			dd, err := DotAxpy(row[r+1:], v[r+1:], y[r+1:], vr)
			must(err)
			y[r] += row[r]*vr + dd
		}
	}
	ForEach(p, p > 1, part)
	// w[t] = Σ over the parts whose rows start at or before t, in part
	// order: a fixed order of additions.
	copy(w[c0:n], sv.parts[0][c0:n])
	for k := 1; k < p; k++ {
		y := sv.parts[k]
		for t := bounds[k]; t < n; t++ {
			w[t] += y[t]
		}
	}
}
