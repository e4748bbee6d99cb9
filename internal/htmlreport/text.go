package htmlreport

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLabel bounds the runes of a label shown from a checkpoint (a token or
// a tensor name), so a hostile 1 MB token cannot blow up the report.
const maxLabel = 48

// esc makes an untrusted string safe for HTML text and quoted attributes
// (inline SVG included): invalid UTF-8 is replaced, control, bidi and
// invisible format characters are shown as \x/\u escapes, and & < > " ' are
// escaped.
func esc(s string) string { return html.EscapeString(visible(s, false)) }

// label prepares a short untrusted label (a token, a tensor name) for esc:
// as visible, spaces shown as ␣ (a token's leading space matters), at most
// maxLabel runes. visible is idempotent, so esc(label(s)) is safe.
func label(s string) string {
	v := visible(s, true)
	if utf8.RuneCountInString(v) > maxLabel {
		r := []rune(v)
		v = string(r[:maxLabel-1]) + "…"
	}
	return v
}

func visible(s string, spaces bool) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == ' ' && spaces:
			b.WriteRune('␣')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r) || r == 0x2028 || r == 0x2029 ||
			(r >= 0xfff9 && r <= 0xfffb) || unicode.IsSpace(r) && r != ' ' && spaces:
			// bidi overrides, zero-width and other invisible characters,
			// private use, line/paragraph separators
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// num writes an SVG coordinate: rounded to 0.1 px, shortest form, no "-0".
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		// never reached by the plots (they drop non-finite values); an
		// invalid coordinate would be an SVG error in the browser
		return "0"
	}
	r := math.Round(v*10) / 10
	if r == 0 {
		return "0"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// fmtNum formats a statistic for people: 4 significant digits, "—" when not
// known.
func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	if a >= 1e-3 && a < 1e6 {
		s := strconv.FormatFloat(v, 'f', max(0, 3-int(math.Floor(math.Log10(a)))), 64)
		if strings.Contains(s, ".") {
			s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		}
		return s
	}
	m := strconv.FormatFloat(v, 'e', 3, 64) // d.ddde±XX
	mant, exp, _ := strings.Cut(m, "e")
	if strings.Contains(mant, ".") {
		mant = strings.TrimRight(strings.TrimRight(mant, "0"), ".")
	}
	e, _ := strconv.Atoi(exp)
	return mant + "×10" + superscript(e)
}

func fmtInt(v int) string {
	if v < 0 {
		return "—"
	}
	return strconv.Itoa(v)
}

var supDigits = []rune("⁰¹²³⁴⁵⁶⁷⁸⁹")

func superscript(e int) string {
	var b strings.Builder
	if e < 0 {
		b.WriteRune('⁻')
		e = -e
	}
	for _, c := range strconv.Itoa(e) {
		b.WriteRune(supDigits[c-'0'])
	}
	return b.String()
}
