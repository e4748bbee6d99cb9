package tokenizer

import (
	"strings"
	"unicode"
)

// wpmModel is WordPiece: each word becomes the longest vocabulary tokens
// that cover it from the left; a word that cannot be covered becomes the
// unknown token.
//
// A GGUF "bert" vocabulary (as llama.cpp's converter writes it) marks
// word-initial tokens with a leading "▁" and continuations with nothing; a
// tokenizer.json WordPiece marks continuations with "##".
type wpmModel struct {
	wordPrefix  string // "▁" for GGUF
	contPrefix  string // "##" for tokenizer.json
	unk         int32
	maxChars    int // words longer than this (in characters) are unknown; 0: no limit
	lowercase   bool
	stripAccent bool
	cleanText   bool
	chinese     bool // split CJK ideographs into their own words
	cont        map[string]int32
}

// bertNormalizeSplit is BERT's basic tokenizer: control characters dropped,
// whitespace splits words, accents stripped after NFD, lower-cased,
// punctuation and CJK ideographs become one-character words.
func (m *wpmModel) bertNormalizeSplit(text string, words []string) []string {
	if m.stripAccent {
		text = normalize(text, "NFD")
	}
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			words = append(words, cur.String())
			cur.Reset()
		}
	}
	for _, r := range text {
		c := classOf(r)
		if c&cSpace != 0 {
			flush()
			continue
		}
		if m.cleanText && (r == 0 || r == 0xFFFD || isOther(r)) {
			continue
		}
		if m.stripAccent && unicode.Is(unicode.Mn, r) {
			continue
		}
		if m.lowercase {
			r = unicode.ToLower(r)
		}
		if c&cP != 0 || (r < 0x7F && c&cS != 0) || (m.chinese && isChineseChar(r)) {
			flush()
			words = append(words, string(r))
			continue
		}
		cur.WriteRune(r)
	}
	flush()
	return words
}

// isOther: general category C (control, format, private use, surrogate,
// unassigned) — BERT's "control" for cleaning, tab/LF/CR excepted (they are
// whitespace, handled before).
func isOther(r rune) bool {
	return !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z)
}

// isChineseChar is BERT's CJK ideograph test (the ranges of Hugging Face
// tokenizers' BertNormalizer, including its 0x2B920 start).
func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}

// encodeWord appends the WordPiece ids of one word. Lookups slice the word
// (no allocation); the longest candidate is bounded by the longest token.
func (m *wpmModel) encodeWord(t *Tokenizer, word string, out []int) []int {
	if word == "" {
		return out
	}
	if m.maxChars > 0 && runeCountAtLeast(word, m.maxChars+1) {
		return append(out, int(m.unk))
	}
	w := word
	if m.wordPrefix != "" {
		w = m.wordPrefix + word // llama.cpp: "▁" + word, continuations unmarked
	}
	first := len(out)
	for start := 0; start < len(w); {
		end := len(w)
		if lim := start + t.maxToken; lim < end {
			end = lim
		}
		found := int32(-1)
		for ; end > start; end-- {
			if end < len(w) && w[end]&0xC0 == 0x80 {
				continue // only cut at character boundaries
			}
			var id int32
			var ok bool
			if start == 0 || m.contPrefix == "" {
				id, ok = t.byText[w[start:end]]
			} else {
				id, ok = m.cont[w[start:end]]
			}
			if ok {
				found = id
				break
			}
		}
		if found < 0 {
			return append(out[:first], int(m.unk))
		}
		out = append(out, int(found))
		start = end
	}
	return out
}

// indexContinuations maps continuation tokens ("##ing") by their text
// without the prefix.
func (m *wpmModel) indexContinuations(t *Tokenizer) {
	m.cont = map[string]int32{}
	if m.contPrefix == "" {
		return
	}
	for i, s := range t.tokens {
		if len(s) > len(m.contPrefix) && s[:len(m.contPrefix)] == m.contPrefix {
			if _, dup := m.cont[s[len(m.contPrefix):]]; !dup {
				m.cont[s[len(m.contPrefix):]] = int32(i)
			}
		}
	}
}

func runeCountAtLeast(s string, n int) bool {
	c := 0
	for range s {
		c++
		if c >= n {
			return true
		}
	}
	return false
}

// wpmEncodeFragment: BERT normalisation and splitting, then WordPiece.
func wpmEncodeFragment(t *Tokenizer, text string, _, _ bool, out []int) ([]int, error) {
	for _, w := range t.wpm.bertNormalizeSplit(text, nil) {
		out = t.wpm.encodeWord(t, w, out)
	}
	return out, nil
}

// wpmDecode joins word pieces: a word-initial piece starts a new word
// (after a space), a continuation is glued to the previous one.
func wpmDecode(t *Tokenizer, ids []int) string {
	var b strings.Builder
	for i, id := range ids {
		p := t.tokens[id]
		switch {
		case t.wpm.wordPrefix != "" && strings.HasPrefix(p, t.wpm.wordPrefix):
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(p[len(t.wpm.wordPrefix):])
		case t.wpm.contPrefix != "" && strings.HasPrefix(p, t.wpm.contPrefix):
			b.WriteString(p[len(t.wpm.contPrefix):])
		default:
			if i > 0 && (t.wpm.wordPrefix == "" || t.types[id] == TypeControl) {
				b.WriteByte(' ')
			}
			b.WriteString(p)
		}
	}
	return b.String()
}
