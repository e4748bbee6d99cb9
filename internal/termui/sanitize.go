package termui

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Checkpoints come from strangers: a tensor named "\x1b]0;pwned\a\x1b[2J"
// would retitle the window and clear the screen if printed as it is. Every
// string that came from a file goes through Clean (free text: messages,
// values) or Name (identifiers: tensor names, keys, dtypes, model types)
// before it is written as text.

// unsafeRune reports a rune that must not reach a terminal as it is: C0
// controls, DEL, C1 controls (U+0080–U+009F, which some terminals take as
// escape introducers), the bidirectional controls that reorder what is
// shown (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and the
// Unicode line and paragraph separators.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f:
		return true
	case r >= 0x80 && r < 0xa0:
		return true
	case r == 0x061c || r == 0x200e || r == 0x200f:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x2028 || r == 0x2029:
		return true
	}
	return false
}

// Clean returns s with every unsafe character shown as a visible escape:
// \n, \t, \r, \x1b (other C0 controls and DEL), \u009b (C1 controls),
// \u202e (bidi controls, line separators), and \xff for each byte that is
// not valid UTF-8. Everything else, including printable non-ASCII text and
// backslashes, is kept, so a clean string comes back unchanged (and without
// allocating).
func Clean(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || unsafeRune(r) {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x`)
			b.WriteString(hex2(s[i]))
		case unsafeRune(r):
			writeEscape(&b, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// CleanLines is Clean for text of several lines: line breaks are kept and
// every other unsafe character escaped.
func CleanLines(s string) string {
	if !strings.Contains(s, "\n") {
		return Clean(s)
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Clean(l)
	}
	return strings.Join(lines, "\n")
}

func hex2(c byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[c>>4], digits[c&15]})
}

func writeEscape(b *strings.Builder, r rune) {
	switch r {
	case '\n':
		b.WriteString(`\n`)
	case '\t':
		b.WriteString(`\t`)
	case '\r':
		b.WriteString(`\r`)
	default:
		if r < 0x80 {
			b.WriteString(`\x`)
			b.WriteString(hex2(byte(r)))
			return
		}
		b.WriteString(`\u`)
		h := strconv.FormatInt(int64(r), 16)
		b.WriteString(strings.Repeat("0", 4-len(h)))
		b.WriteString(h)
	}
}

// Name returns an identifier from a file as it should be printed: as it is
// when that is unambiguous, otherwise double-quoted with Go escapes. A name
// is quoted when it is empty, holds a space, a quote or a backslash, or a
// character that is invisible or unsafe (control, format, bidi, separator,
// invalid UTF-8) — so that a bare name never contains an escape and a
// quoted one always starts with a quote, and two different names never
// print alike.
func Name(s string) string {
	if plainName(s) {
		return s
	}
	return strconv.Quote(s)
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7f || c == '"' || c == '\\' {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || unicode.IsSpace(r) || !strconv.IsPrint(r) {
			return false
		}
		i += n
	}
	return true
}

// Visible shows a string from a file exactly and unambiguously without
// quoting it, for text whose spaces matter (a tokenizer's pieces): every
// character that is invisible or unsafe becomes an escape (\n, \t, \x1b,
// \u200b, \U0001xxxx; \xff for a byte that is not UTF-8), a backslash is
// doubled, and everything else — spaces included — is kept.
func Visible(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRuneInString(p[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteString(`\x` + hex2(p[i]))
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == ' ':
			b.WriteByte(' ')
		case r < 0x80 && !unicode.IsPrint(r):
			b.WriteString(`\x` + hex2(byte(r)))
		case !unicode.IsPrint(r) || unicode.Is(unicode.Cf, r) || unsafeRune(r):
			if r > 0xFFFF {
				fmt.Fprintf(&b, `\U%08x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
		i += n
	}
	return b.String()
}
