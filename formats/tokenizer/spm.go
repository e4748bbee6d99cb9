package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// spmModel is SentencePiece's BPE as llama.cpp runs it from a GGUF
// vocabulary (llm_tokenizer_spm): the text, spaces escaped to "▁", is split
// into UTF-8 characters; repeatedly the adjacent pair whose concatenation
// is the vocabulary token with the highest score is merged (ties: leftmost);
// a final symbol that is no token is written as its bytes' <0xXX> tokens.
type spmModel struct {
	byteTokens [256]int32 // <0xXX>, else the one-byte token, else -1
	unk        int32
	chunked    bool // see encode

	// Scratch reused between calls (a Tokenizer is not safe for
	// concurrent use).
	syms []spmSym
	heap heap[spmItem]
}

type spmSym struct {
	start, end int32
	prev, next int32
}

type spmItem struct {
	score float32
	left  int32
	size  int32
}

// before orders SentencePiece's candidate merges: the highest score
// first, then the leftmost.
func (x spmItem) before(y spmItem) bool {
	return x.score > y.score || (x.score == y.score && x.left < y.left)
}

const spaceMark = "\u2581" // ▁

// encode appends the ids of text (already escaped).
func (m *spmModel) encode(t *Tokenizer, text string, out []int) ([]int, error) {
	if !m.chunked {
		return m.encodeChunk(t, text, out)
	}
	// No token has "▁" after another character, so no merge crosses the
	// start of a run of "▁": each such stretch is tokenized alone, with
	// the same merges in the same order as on the whole text.
	start := 0
	var err error
	for i := 1; i < len(text); i++ {
		if text[i] == spaceMark[0] && strings.HasPrefix(text[i:], spaceMark) && !strings.HasSuffix(text[:i], spaceMark) {
			if out, err = m.encodeChunk(t, text[start:i], out); err != nil {
				return nil, err
			}
			start = i
		}
	}
	return m.encodeChunk(t, text[start:], out)
}

// chunkable reports whether no normal token has "▁" after a character
// other than "▁" (then encode may work one word at a time).
func chunkable(t *Tokenizer) bool {
	for _, s := range t.tokens {
		rest := strings.TrimLeft(s, spaceMark)
		if strings.Contains(rest, spaceMark) {
			return false
		}
	}
	return true
}

func (m *spmModel) encodeChunk(t *Tokenizer, text string, out []int) ([]int, error) {
	if text == "" {
		return out, nil
	}
	syms := m.syms[:0]
	for i := 0; i < len(text); {
		// An invalid byte is a symbol of its own (llama.cpp would take as
		// many bytes as the lead byte announces, cutting into the next
		// character; the original tokenizers never see invalid UTF-8).
		_, n := utf8.DecodeRuneInString(text[i:])
		syms = append(syms, spmSym{start: int32(i), end: int32(i + n), prev: int32(len(syms) - 1), next: int32(len(syms) + 1)})
		i += n
	}
	syms[len(syms)-1].next = -1
	m.syms = syms
	h := &m.heap
	h.reset()
	try := func(l int32) {
		if l < 0 {
			return
		}
		r := syms[l].next
		if r < 0 {
			return
		}
		piece := text[syms[l].start:syms[r].end]
		if id, ok := t.byText[piece]; ok {
			h.push(spmItem{score: t.scores[id], left: l, size: int32(len(piece))})
		}
	}
	for i := int32(0); i+1 < int32(len(syms)); i++ {
		try(i)
	}
	for h.len() > 0 {
		it := h.pop()
		l := &syms[it.left]
		if l.end <= l.start || l.next < 0 {
			continue
		}
		r := &syms[l.next]
		if r.end <= r.start || r.end-l.start != it.size {
			continue
		}
		l.end = r.end
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = it.left
		}
		r.end = r.start // dead
		try(l.prev)
		try(it.left)
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		piece := text[syms[i].start:syms[i].end]
		if id, ok := t.byText[piece]; ok {
			out = append(out, int(id))
			continue
		}
		all := true
		for j := 0; j < len(piece); j++ {
			all = all && m.byteTokens[piece[j]] >= 0
		}
		switch {
		case all:
			for j := 0; j < len(piece); j++ {
				out = append(out, int(m.byteTokens[piece[j]]))
			}
		case m.unk >= 0:
			out = append(out, int(m.unk))
		default:
			return nil, fmt.Errorf("%q is not in the vocabulary, which has neither byte tokens for it nor an unknown token", piece)
		}
	}
	return out, nil
}

func (m *spmModel) findByteTokens(t *Tokenizer) {
	for b := 0; b < 256; b++ {
		m.byteTokens[b] = -1
		if id, ok := t.byText["<0x"+strings.ToUpper(hex2(byte(b)))+">"]; ok {
			m.byteTokens[b] = id
		} else if id, ok := t.byText[string([]byte{byte(b)})]; ok {
			m.byteTokens[b] = id
		}
	}
}

func hex2(b byte) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// spmEncodeFragment is the GGUF "llama" fragment encoder: the dummy space
// prefix at the start and after special tokens, spaces to "▁", then SPM.
func spmEncodeFragment(t *Tokenizer, text string, afterSpecial, _ bool, out []int) ([]int, error) {
	if t.Info.AddSpacePrefix && afterSpecial {
		text = " " + text
	}
	text = strings.ReplaceAll(text, " ", spaceMark)
	return t.spm.encode(t, text, out)
}

// spmDecode joins pieces, turns <0xXX> tokens into bytes and "▁" into
// spaces, and drops the dummy prefix's space from the first piece of text
// (after any leading control tokens such as BOS).
func spmDecode(t *Tokenizer, ids []int) string {
	var b strings.Builder
	first := true
	for _, id := range ids {
		p := t.tokens[id]
		ty := t.types[id]
		if ty == TypeByte || isByteToken(p) {
			if v, ok := parseByteToken(p); ok {
				if first && t.Info.AddSpacePrefix && v == ' ' {
					first = false
					continue
				}
				first = false
				b.WriteByte(v)
				continue
			}
		}
		if ty == TypeControl || ty == TypeUnknown {
			b.WriteString(p)
			continue
		}
		p = strings.ReplaceAll(p, spaceMark, " ")
		if first && t.Info.AddSpacePrefix {
			p = strings.TrimPrefix(p, " ")
		}
		first = false
		b.WriteString(p)
	}
	return b.String()
}

func isByteToken(p string) bool {
	return len(p) == 6 && strings.HasPrefix(p, "<0x") && p[5] == '>'
}

func parseByteToken(p string) (byte, bool) {
	if !isByteToken(p) {
		return 0, false
	}
	v := 0
	for _, c := range p[3:5] {
		switch {
		case c >= '0' && c <= '9':
			v = v*16 + int(c-'0')
		case c >= 'A' && c <= 'F':
			v = v*16 + int(c-'A'+10)
		case c >= 'a' && c <= 'f':
			v = v*16 + int(c-'a'+10)
		default:
			return 0, false
		}
	}
	return byte(v), true
}
