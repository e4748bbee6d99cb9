package inspect

import (
	"math"
	"strconv"
	"strings"

	"github.com/qkvdev/qkv/internal/termui"
)

// FormatCosine writes a cosine similarity c: with decimals ≥ 0 as %.*f,
// with decimals < 0 to −decimals significant digits (%.*g). Near ±1 it
// keeps as many more decimals as 1 − |c| needs to show two significant
// digits, so that a cosine below 1 never reads as 1 (0.9999994 is
// "0.99999945", not "1.00000" or "1") nor as a threshold it is below
// (0.999985 is "0.999985", not "0.99999"); only exactly ±1 prints as "1"
// ("-1"). NaN and ±Inf print as termui.NoValue.
func FormatCosine(c float64, decimals int) string {
	if math.IsNaN(c) || math.IsInf(c, 0) {
		return termui.NoValue
	}
	if c == 1 || c == -1 {
		return strconv.FormatFloat(c, 'f', -1, 64)
	}
	s := strconv.FormatFloat(c, 'g', -decimals, 64)
	if decimals >= 0 {
		s = strconv.FormatFloat(c, 'f', decimals, 64)
	}
	d := math.Abs(1 - math.Abs(c)) // distance from ±1 (a rounded cosine may pass 1)
	if d >= 0.5 {
		return s
	}
	have := 0
	if strings.ContainsAny(s, "eE") {
		have = -1 // exponent form: always rewritten
	} else if _, frac, ok := strings.Cut(s, "."); ok {
		have = len(frac)
	}
	need := int(math.Ceil(-math.Log10(d))) + 1 // decimals that show d to 2 significant digits
	if have >= need {
		return s
	}
	t := strconv.FormatFloat(c, 'f', need, 64)
	// Zeros the extra decimals end with say nothing; those of s stay.
	for n := need; n > max(have, 0) && strings.HasSuffix(t, "0"); n-- {
		t = t[:len(t)-1]
	}
	return strings.TrimSuffix(t, ".")
}
