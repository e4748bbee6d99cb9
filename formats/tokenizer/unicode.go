package tokenizer

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// Character classes the pre-tokenizers test, as bit flags. They follow the
// Unicode general categories of Go's unicode package (\p{L}, \p{N}, ...) and
// \s = White_Space, which is what Oniguruma (Hugging Face tokenizers) and
// PCRE mean by these classes on Unicode text.
const (
	cL     uint16 = 1 << iota // letter
	cN                        // number
	cP                        // punctuation
	cS                        // symbol
	cM                        // mark
	cSpace                    // \s (White_Space)
	cLu                       // upper-case letter
	cLl                       // lower-case letter
	cLt                       // title-case letter
	cLm                       // modifier letter
	cLo                       // other letter
	cNd                       // decimal digit
	cHan                      // script Han
	cCtrl                     // Cc, Cf (BERT's "control")
)

var latin1Class [256]uint16

func buildLatin1Class() {
	for r := rune(0); r < 256; r++ {
		latin1Class[r] = classOfSlow(r)
	}
}

func classOfSlow(r rune) uint16 {
	var c uint16
	switch {
	case unicode.IsLetter(r):
		c |= cL
		switch {
		case unicode.Is(unicode.Lu, r):
			c |= cLu
		case unicode.Is(unicode.Ll, r):
			c |= cLl
		case unicode.Is(unicode.Lt, r):
			c |= cLt
		case unicode.Is(unicode.Lm, r):
			c |= cLm
		default:
			c |= cLo
		}
		if unicode.Is(unicode.Han, r) {
			c |= cHan
		}
	case unicode.IsNumber(r):
		c |= cN
		if unicode.Is(unicode.Nd, r) {
			c |= cNd
		}
	case unicode.IsPunct(r):
		c |= cP
	case unicode.IsSymbol(r):
		c |= cS
	case unicode.IsMark(r):
		c |= cM
	case unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r):
		c |= cCtrl
	}
	if unicode.IsSpace(r) {
		c |= cSpace
	}
	if unicode.Is(unicode.Han, r) {
		c |= cHan
	}
	return c
}

// classOf returns the class flags of r. An invalid UTF-8 byte is decoded as
// utf8.RuneError (U+FFFD, a symbol), as the tokenizers' decoders do.
func classOf(r rune) uint16 {
	if r >= 0 && r < 256 {
		return latin1Class[r]
	}
	return classOfSlow(r)
}

// runeAt decodes the rune at byte offset i of s (i < len(s)).
func runeAt(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// ---- normalization (NFD, NFKD, NFC, NFKC) over the generated tables ----

const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulLCount = 19
	hangulVCount = 21
	hangulTCount = 28
	hangulNCount = hangulVCount * hangulTCount
	hangulSCount = hangulLCount * hangulNCount
)

func ccc(r rune) int {
	if r < 0x300 {
		return 0
	}
	i := sort.Search(len(cccTable), func(i int) bool { return cccTable[i][0] >= int32(r) })
	if i < len(cccTable) && cccTable[i][0] == int32(r) {
		return int(cccTable[i][1])
	}
	return 0
}

func lookupDecomp(cps []int32, idx []int32, data []int32, r rune) []int32 {
	i := sort.Search(len(cps), func(i int) bool { return cps[i] >= int32(r) })
	if i < len(cps) && cps[i] == int32(r) {
		return data[idx[i]:idx[i+1]]
	}
	return nil
}

// decompose appends the full decomposition of r to out.
func decompose(out []rune, r rune, compat bool) []rune {
	if r >= hangulSBase && r < hangulSBase+hangulSCount {
		s := r - hangulSBase
		out = append(out, hangulLBase+s/hangulNCount, hangulVBase+(s%hangulNCount)/hangulTCount)
		if t := s % hangulTCount; t != 0 {
			out = append(out, hangulTBase+t)
		}
		return out
	}
	if r < 0xA0 {
		return append(out, r)
	}
	d := lookupDecomp(canonDecompCP[:], canonDecompIdx[:], canonDecompData[:], r)
	if d == nil && compat {
		d = lookupDecomp(compatDecompCP[:], compatDecompIdx[:], compatDecompData[:], r)
	}
	if d == nil {
		return append(out, r)
	}
	for _, c := range d {
		out = decompose(out, rune(c), compat)
	}
	return out
}

var composeMap map[uint64]rune

func buildComposeMap() {
	composeMap = make(map[uint64]rune, len(compositions))
	for _, c := range compositions {
		composeMap[uint64(c[0])<<32|uint64(c[1])] = rune(c[2])
	}
}

func compose(a, b rune) (rune, bool) {
	// Hangul LV and LVT.
	if a >= hangulLBase && a < hangulLBase+hangulLCount && b >= hangulVBase && b < hangulVBase+hangulVCount {
		return hangulSBase + ((a-hangulLBase)*hangulVCount+(b-hangulVBase))*hangulTCount, true
	}
	if a >= hangulSBase && a < hangulSBase+hangulSCount && (a-hangulSBase)%hangulTCount == 0 && b > hangulTBase && b < hangulTBase+hangulTCount {
		return a + (b - hangulTBase), true
	}
	c, ok := composeMap[uint64(a)<<32|uint64(b)]
	return c, ok
}

// isASCII reports whether s is pure ASCII (every normal form of it is s).
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// decomposeString returns the canonical (or compatibility) decomposition of
// s in canonical order.
func decomposeRunes(s string, compat bool) []rune {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		out = decompose(out, r, compat)
	}
	// Canonical ordering: stable sort each run of non-starters by ccc.
	for i := 0; i < len(out); {
		if ccc(out[i]) == 0 {
			i++
			continue
		}
		j := i
		for j < len(out) && ccc(out[j]) != 0 {
			j++
		}
		run := out[i:j]
		sort.SliceStable(run, func(a, b int) bool { return ccc(run[a]) < ccc(run[b]) })
		i = j
	}
	return out
}

// normalize returns the Unicode normal form of s: NFD, NFKD, NFC or NFKC.
func normalize(s string, form string) string {
	if isASCII(s) {
		return s
	}
	compat := form == "NFKD" || form == "NFKC"
	rs := decomposeRunes(s, compat)
	if form == "NFC" || form == "NFKC" {
		rs = composeRunes(rs)
	}
	return string(rs)
}

// composeRunes applies canonical composition to a decomposed, ordered
// sequence (the algorithm of UAX #15).
func composeRunes(rs []rune) []rune {
	out := make([]rune, 0, len(rs))
	starter := -1 // index in out of the last starter
	prevCC := 0   // ccc of the last character appended after the starter
	for _, r := range rs {
		cc := ccc(r)
		if starter >= 0 {
			adjacent := len(out)-1 == starter
			if adjacent || (prevCC != 0 && prevCC < cc) {
				if comp, ok := compose(out[starter], r); ok {
					out[starter] = comp
					continue
				}
			}
		}
		if cc == 0 {
			starter = len(out)
		}
		prevCC = cc
		out = append(out, r)
	}
	return out
}
