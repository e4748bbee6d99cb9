package esd

import (
	"math"
)

// fit is the chosen candidate of the power-law fit.
type fit struct {
	index    int     // i*, into the fitted eigenvalues
	alpha, d float64 // α_i*, D_i*
	evals    int     // CDF terms evaluated (a measure of the work done)
}

// candidateAlphas returns α_i for i = 0..K−2 and ln x (x ascending, K ≥ 2).
// T_i = Σ_{j≥i} ln(x_j/x_i) is built from the top with
// T_i = T_{i+1} + (K−1−i)·(ln x_{i+1} − ln x_i): every term is ≥ 0, so the
// sum never cancels, however close the tail's values are.
func candidateAlphas(x []float64) (alphas, logs []float64) {
	k := len(x)
	logs = make([]float64, k)
	for j, v := range x {
		logs[j] = math.Log(v)
	}
	alphas = make([]float64, k-1)
	t := 0.0
	for i := k - 2; i >= 0; i-- {
		t += float64(k-1-i) * (logs[i+1] - logs[i])
		// t = 0 (a tail of equal values) gives α = +Inf, as WeightWatcher's
		// n/0 does.
		alphas[i] = 1 + float64(k-i)/t
	}
	return alphas, logs
}

// fitPowerLaw chooses xmin by the smallest KS distance (the first on a tie).
func fitPowerLaw(x []float64) fit {
	alphas, logs := candidateAlphas(x)
	var s searcher
	best := fit{index: -1, d: math.Inf(1)}
	for i, a := range alphas {
		d, ok := s.distance(logs[i:], a, best.d)
		if ok {
			best.index, best.alpha, best.d = i, a, d
		}
	}
	best.evals = s.evals
	return best
}

// interval is a run of CDF terms a < k < b whose endpoints are evaluated: f
// holds the model CDF there, ub bounds |CDF − k/n| for every k inside.
type interval struct {
	a, b   int
	fa, fb float64
	ub     float64
}

// searcher evaluates KS distances, reusing its heap between candidates.
type searcher struct {
	heap  []interval
	evals int
}

// distance returns D for the tail whose logs are lt (lt[0] = ln xmin) and
// whose exponent is alpha, with ok = true, when D < limit; otherwise ok is
// false and D is not computed in full.
func (s *searcher) distance(lt []float64, alpha, limit float64) (float64, bool) {
	n := len(lt)
	fn := float64(n)
	if math.IsInf(alpha, 1) {
		// Every x equals xmin: (x/xmin)^(1−α) = 1, each term is k/n.
		d := float64(n-1) / fn
		return d, d < limit
	}
	if !(alpha > 1) {
		return 1, 1 < limit
	}
	l0, e := lt[0], alpha-1
	// cdf(k) = 1 − (x_k/xmin)^(1−α); k = 0 gives 0 and a term of 0.
	cdf := func(k int) float64 {
		s.evals++
		return -math.Expm1(-e * (lt[k] - l0))
	}
	fb := cdf(n - 1)
	cur := math.Abs(fb - float64(n-1)/fn)
	if cur >= limit {
		return cur, false
	}
	h := s.heap[:0]
	push := func(a, b int, fa, fb float64) {
		if b-a < 2 {
			return
		}
		ub := max(fb-float64(a+1)/fn, float64(b-1)/fn-fa)
		if ub <= cur {
			return
		}
		h = append(h, interval{a, b, fa, fb, ub})
		for c := len(h) - 1; c > 0; {
			p := (c - 1) / 2
			if h[p].ub >= h[c].ub {
				break
			}
			h[p], h[c] = h[c], h[p]
			c = p
		}
	}
	push(0, n-1, 0, fb)
	// Past n/8 evaluations the bounds are not paying for the heap: scan
	// the rest, so that a candidate never costs more than O(n).
	budget := s.evals + n/8
	for len(h) > 0 && h[0].ub > cur {
		if s.evals > budget {
			s.heap = h[:0]
			return s.scan(lt, fn, e, cur, limit)
		}
		top := h[0]
		last := len(h) - 1
		h[0] = h[last]
		h = h[:last]
		for p := 0; ; {
			c := 2*p + 1
			if c >= len(h) {
				break
			}
			if c+1 < len(h) && h[c+1].ub > h[c].ub {
				c++
			}
			if h[p].ub >= h[c].ub {
				break
			}
			h[p], h[c] = h[c], h[p]
			p = c
		}
		mid := (top.a + top.b) / 2
		fm := cdf(mid)
		if v := math.Abs(fm - float64(mid)/fn); v > cur {
			cur = v
			if cur >= limit {
				s.heap = h
				return cur, false
			}
		}
		push(top.a, mid, top.fa, fm)
		push(mid, top.b, fm, top.fb)
	}
	s.heap = h
	return cur, true
}

// scan finishes distance term by term from the running maximum cur.
func (s *searcher) scan(lt []float64, fn, e, cur, limit float64) (float64, bool) {
	l0 := lt[0]
	s.evals += len(lt) - 1
	for k := 1; k < len(lt); k++ {
		if v := math.Abs(-math.Expm1(-e*(lt[k]-l0)) - float64(k)/fn); v > cur {
			cur = v
			if cur >= limit {
				return cur, false
			}
		}
	}
	return cur, true
}
