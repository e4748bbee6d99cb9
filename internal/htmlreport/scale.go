package htmlreport

import (
	"math"
	"strconv"
)

// scale maps a data interval onto a pixel interval, linearly or in log10.
type scale struct {
	log    bool
	d0, d1 float64 // domain (log10 of the values when log)
	r0, r1 float64 // range in px
}

func newScale(log bool, lo, hi, r0, r1 float64) scale {
	if log {
		lo, hi = math.Log10(lo), math.Log10(hi)
	}
	if !(hi > lo) { // one value, or none: widen so the mapping is defined
		c := lo
		if math.IsNaN(c) || math.IsInf(c, 0) {
			c = 0
		}
		w := 0.5
		if !log && c != 0 {
			w = math.Abs(c) * 0.1
		}
		lo, hi = c-w, c+w
	}
	return scale{log: log, d0: lo, d1: hi, r0: r0, r1: r1}
}

func (s scale) at(v float64) float64 {
	if s.log {
		v = math.Log10(v)
	}
	return s.r0 + (v-s.d0)/(s.d1-s.d0)*(s.r1-s.r0)
}

// in reports whether v lies in the domain (with a little slack for rounding).
func (s scale) in(v float64) bool {
	if s.log {
		if !(v > 0) {
			return false
		}
		v = math.Log10(v)
	}
	e := 1e-9 * (s.d1 - s.d0)
	return v >= s.d0-e && v <= s.d1+e
}

type tick struct {
	v     float64
	label string
}

// ticks returns about n tick marks inside the domain.
func (s scale) ticks(n int) []tick {
	if s.log {
		return logTicks(s.d0, s.d1, n)
	}
	return linTicks(s.d0, s.d1, n)
}

// niceStep is the 1, 2 or 5 × 10^k step giving about n intervals over span.
func niceStep(span float64, n int) float64 {
	raw := span / float64(max(n, 1))
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func linTicks(lo, hi float64, n int) []tick {
	st := niceStep(hi-lo, n)
	var out []tick
	for k := math.Ceil(lo/st - 1e-9); k*st <= hi+1e-9*st && len(out) < 50; k++ {
		v := k * st
		if math.Abs(v) < st*1e-9 {
			v = 0
		}
		out = append(out, tick{v, fmtTick(v, st)})
	}
	return out
}

// fmtTick writes v with as many decimals as the step needs.
func fmtTick(v, step float64) string {
	if math.Abs(v) >= 1e5 || (v != 0 && math.Abs(v) < 1e-3) {
		return fmtNum(v)
	}
	d := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	return strconv.FormatFloat(v, 'f', d, 64)
}

// logTicks: powers of ten (every k-th decade when there are many), or 1-2-5
// multiples when the domain spans less than about two decades. lo and hi
// are log10 values.
func logTicks(lo, hi float64, n int) []tick {
	var out []tick
	if hi-lo < 1.5 {
		for e := math.Floor(lo); e <= math.Ceil(hi); e++ {
			for _, m := range []float64{1, 2, 5} {
				v := m * math.Pow(10, e)
				if lv := math.Log10(v); lv >= lo-1e-9 && lv <= hi+1e-9 {
					out = append(out, tick{v, fmtNum(v)})
				}
			}
		}
		if len(out) >= 2 {
			return out
		}
		// narrower than a 1-2-5 step: fall back to linear ticks
		out = out[:0]
		for _, t := range linTicks(math.Pow(10, lo), math.Pow(10, hi), n) {
			if t.v > 0 {
				out = append(out, t)
			}
		}
		return out
	}
	step := math.Max(1, math.Ceil((hi-lo)/float64(max(n, 1))))
	for e := math.Ceil(lo - 1e-9); e <= hi+1e-9; e += step {
		out = append(out, tick{math.Pow(10, e), pow10Label(int(e))})
	}
	return out
}

func pow10Label(e int) string {
	switch e {
	case 0:
		return "1"
	case 1:
		return "10"
	}
	return "10" + superscript(e)
}
