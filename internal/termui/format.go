package termui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// NoValue is shown in text for a number that is undefined or not finite
// (NaN, ±Inf): the one placeholder of every table.
const NoValue = "—"

// finite reports whether f is a number that can be shown.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Num formats a statistic with 4 significant digits (3 in exponent form,
// below 1e-3 or from 1e5), "0" for zero, NoValue when not finite.
func Num(f float64) string {
	if !finite(f) {
		return NoValue
	}
	if f == 0 {
		return "0"
	}
	if a := math.Abs(f); a >= 1e5 || a < 1e-3 {
		return strconv.FormatFloat(f, 'g', 3, 64)
	}
	return strconv.FormatFloat(f, 'g', 4, 64)
}

// Sig formats f with prec significant digits ('g'), NoValue when not finite.
func Sig(f float64, prec int) string {
	if !finite(f) {
		return NoValue
	}
	return strconv.FormatFloat(f, 'g', prec, 64)
}

// Fixed formats f×scale with 2 decimals and a unit ("+1.25%"), NoValue when
// not finite.
func Fixed(f, scale float64, unit string) string {
	if !finite(f) {
		return NoValue
	}
	return strconv.FormatFloat(f*scale, 'f', 2, 64) + unit
}

// Bytes formats a byte count for people: 1536 -> "1.5 KiB"; "?" when
// negative (unknown).
func Bytes(n int64) string {
	if n < 0 {
		return "?"
	}
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Count formats a count for people: 1234567 -> "1.23M".
func Count(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// Plural writes "1 row", "3 rows".
func Plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// IsAre is the verb agreeing with a count: "1 of 3 shards is missing".
func IsAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

// Shape writes a shape as "[2, 3]".
func Shape(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
