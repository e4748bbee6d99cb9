package inspect

import (
	"math"
	"strconv"
	"testing"
)

// TestFormatCosine: a cosine below 1 never prints as 1 or as a threshold it
// is below, and 1 − c shows two significant digits near 1; ordinary values
// print as before (%.5f, or 4 significant digits).
func TestFormatCosine(t *testing.T) {
	for _, tc := range []struct {
		c        float64
		decimals int
		want     string
	}{
		{0.9999994471703845, 5, "0.99999945"}, // tiny-llama's duplicate heads
		{0.9999994471703845, -4, "0.99999945"},
		{0.9999994471703845, -6, "0.99999945"},
		{1 - 6e-7, 5, "0.9999994"}, // a zero the extra decimals end with is dropped
		{0.999985, 5, "0.999985"},  // not "0.99999", the fail threshold
		{0.99876, 5, "0.99876"},
		{0.995, 5, "0.99500"}, // s's own decimals stay
		{0.9998, -4, "0.9998"},
		{0.09998, -4, "0.09998"},
		{-0.006983, -4, "-0.006983"},
		{0.5, 5, "0.50000"},
		{1, 5, "1"},
		{1, -4, "1"},
		{-1, 5, "-1"},
		{1 + 3e-7, 5, "1.0000003"}, // rounding past 1 shows too
		{-0.9999999, -4, "-0.9999999"},
		{math.Nextafter(1, 0), 5, "0.99999999999999989"},
		{math.NaN(), 5, "—"},
		{math.Inf(1), -4, "—"},
	} {
		if got := FormatCosine(tc.c, tc.decimals); got != tc.want {
			t.Errorf("FormatCosine(%v, %d) = %q, want %q", tc.c, tc.decimals, got, tc.want)
		}
	}
	// Property: below 1, the printed value is below 1 and the nearest of
	// its precision to c.
	for _, c := range []float64{0.99999, 0.999999, 0.9999999, 0.99999999, 1 - 1e-12, 1 - 5.5e-7, 1 - 9.99e-6} {
		for _, dec := range []int{5, -4, -6} {
			s := FormatCosine(c, dec)
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || !(v < 1) {
				t.Errorf("FormatCosine(%v, %d) = %q, which reads as ≥ 1", c, dec, s)
			}
			if d := math.Abs(v - c); d > 0.1*(1-c) {
				t.Errorf("FormatCosine(%v, %d) = %q: off by %g, more than a tenth of 1 − c", c, dec, s, d)
			}
		}
	}
}
