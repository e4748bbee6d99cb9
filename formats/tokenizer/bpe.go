package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// byteToRune is GPT-2's byte-level alphabet: printable bytes stand for
// themselves, the others (controls, space, 0x7F-0xA0, 0xAD) are shifted to
// U+0100 and up in byte order.
var byteToRune [256]rune
var runeToByte map[rune]byte

func buildByteLevel() {
	runeToByte = make(map[rune]byte, 256)
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = 256 + n
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// byteLevelEncode maps the bytes of s to the byte-level alphabet.
func byteLevelEncode(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = utf8.AppendRune(dst, byteToRune[s[i]])
	}
	return dst
}

// byteLevelDecode maps byte-level text back to bytes; runes outside the
// alphabet are kept as they are.
func byteLevelDecode(s string) string {
	var b strings.Builder
	for _, r := range s {
		if c, ok := runeToByte[r]; ok {
			b.WriteByte(c)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

type mergeVal struct {
	rank int32
	id   int32 // the merged token
}

// bpeModel merges the symbols of a word pairwise, lowest rank first (ties
// leftmost first), as llama.cpp's llm_tokenizer_bpe_session and the Hugging
// Face BPE model do.
type bpeModel struct {
	merges       map[uint64]mergeVal
	byteLevel    bool  // map a word's bytes to the GPT-2 alphabet first
	ignoreMerges bool  // a word that is a token is not merged (Llama 3)
	byteFallback bool  // unknown characters become <0xXX> tokens
	unk          int32 // -1: none
	fuseUnk      bool
	contPrefix   string // continuing_subword_prefix (tokenizer.json)
	endSuffix    string // end_of_word_suffix (tokenizer.json)
	// llamaCppUnknown: a symbol without a token becomes the tokens of its
	// single bytes, and bytes without one are dropped (llama.cpp).
	llamaCppUnknown bool

	byteTokens [256]int32 // <0xXX> ids for byte fallback, -1 when missing

	cache map[string][]int32
	syms  []bpeSym // scratch
}

const bpeCacheMax = 1 << 16

func mergeKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// addMerge records "left right" with the given rank. It returns false when
// a part or the merged token is not in the vocabulary.
func (m *bpeModel) addMerge(t *Tokenizer, left, right string, rank int) bool {
	a, ok1 := t.byText[left]
	b, ok2 := t.byText[right]
	c, ok3 := t.byText[left+right]
	if !ok1 || !ok2 || !ok3 {
		return false
	}
	k := mergeKey(a, b)
	if _, dup := m.merges[k]; dup {
		return true // the first (lowest) rank wins
	}
	m.merges[k] = mergeVal{rank: int32(rank), id: c}
	return true
}

type bpeSym struct {
	id         int32
	start, end int32 // byte range in the (mapped) word
	prev, next int32
}

// encodeWord appends the ids of one pre-tokenized word.
func (m *bpeModel) encodeWord(t *Tokenizer, word string, out []int, scratch *[]byte) ([]int, error) {
	if word == "" {
		return out, nil
	}
	w := word
	if m.byteLevel {
		*scratch = byteLevelEncode((*scratch)[:0], word)
		// The lookup converts without allocating; w is made on a miss.
		if ids, ok := m.cache[string(*scratch)]; ok {
			for _, id := range ids {
				out = append(out, int(id))
			}
			return out, nil
		}
		w = string(*scratch)
	} else if ids, ok := m.cache[w]; ok {
		for _, id := range ids {
			out = append(out, int(id))
		}
		return out, nil
	}
	if m.ignoreMerges && m.endSuffix == "" {
		if id, ok := t.byText[w]; ok {
			return append(out, int(id)), nil
		}
	}
	syms := m.syms[:0]
	for i := 0; i < len(w); {
		_, n := utf8.DecodeRuneInString(w[i:])
		piece := w[i : i+n]
		if i > 0 && m.contPrefix != "" {
			piece = m.contPrefix + piece
		}
		if i+n == len(w) && m.endSuffix != "" {
			piece += m.endSuffix
		}
		id, ok := t.byText[piece]
		if !ok {
			id = -1
		}
		syms = append(syms, bpeSym{id: id, start: int32(i), end: int32(i + n), prev: int32(len(syms) - 1), next: int32(len(syms) + 1)})
		i += n
	}
	syms[len(syms)-1].next = -1
	m.syms = syms
	m.merge(syms)

	first := len(out)
	var err error
	prevUnk := false
	for i := int32(0); i >= 0; i = syms[i].next {
		s := syms[i]
		if s.id >= 0 {
			out = append(out, int(s.id))
			prevUnk = false
			continue
		}
		text := w[s.start:s.end]
		switch {
		case m.llamaCppUnknown:
			for j := 0; j < len(text); j++ {
				if id, ok := t.byText[text[j:j+1]]; ok {
					out = append(out, int(id))
				}
			}
		case m.byteFallback && m.hasByteTokens(text):
			for j := 0; j < len(text); j++ {
				out = append(out, int(m.byteTokens[text[j]]))
			}
			prevUnk = false
		case m.unk >= 0:
			if !(m.fuseUnk && prevUnk) {
				out = append(out, int(m.unk))
			}
			prevUnk = true
		default:
			err = fmt.Errorf("character %q is not in the vocabulary and the tokenizer has no unknown token", text)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(m.cache) < bpeCacheMax && len(w) <= 256 {
		ids := make([]int32, len(out)-first)
		for i, id := range out[first:] {
			ids[i] = int32(id)
		}
		m.cache[w] = ids
	}
	return out, nil
}

func (m *bpeModel) hasByteTokens(text string) bool {
	for j := 0; j < len(text); j++ {
		if m.byteTokens[text[j]] < 0 {
			return false
		}
	}
	return true
}

// merge applies the merges to the linked symbols in place.
func (m *bpeModel) merge(syms []bpeSym) {
	if len(syms) < 2 {
		return
	}
	if len(syms) <= 48 {
		// Short words: scan for the best pair each round.
		for {
			best, bestRank, bestID := int32(-1), int32(0), int32(0)
			for i := int32(0); syms[i].next >= 0; i = syms[i].next {
				j := syms[i].next
				if syms[i].id < 0 || syms[j].id < 0 {
					continue
				}
				if v, ok := m.merges[mergeKey(syms[i].id, syms[j].id)]; ok && (best < 0 || v.rank < bestRank) {
					best, bestRank, bestID = i, v.rank, v.id
				}
			}
			if best < 0 {
				return
			}
			j := syms[best].next
			syms[best].id = bestID
			syms[best].end = syms[j].end
			syms[best].next = syms[j].next
			if syms[j].next >= 0 {
				syms[syms[j].next].prev = best
			}
		}
	}
	// Long words: a heap of candidate pairs, validated when popped.
	h := heap[pairItem]{}
	push := func(i int32) {
		if i < 0 {
			return
		}
		j := syms[i].next
		if j < 0 || syms[i].id < 0 || syms[j].id < 0 {
			return
		}
		if v, ok := m.merges[mergeKey(syms[i].id, syms[j].id)]; ok {
			h.push(pairItem{rank: v.rank, left: i, leftID: syms[i].id, rightID: syms[j].id})
		}
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		push(i)
	}
	for h.len() > 0 {
		it := h.pop()
		i := it.left
		j := syms[i].next
		if syms[i].id != it.leftID || j < 0 || syms[j].id != it.rightID || syms[i].end < 0 {
			continue
		}
		v := m.merges[mergeKey(it.leftID, it.rightID)]
		syms[i].id = v.id
		syms[i].end = syms[j].end
		syms[i].next = syms[j].next
		if syms[j].next >= 0 {
			syms[syms[j].next].prev = i
		}
		syms[j].end = -1 // dead
		syms[j].id = -2
		push(syms[i].prev)
		push(i)
	}
}

type pairItem struct {
	rank            int32
	left            int32
	leftID, rightID int32
}

// before orders BPE's candidate pairs: the lowest rank first, then the
// leftmost.
func (x pairItem) before(y pairItem) bool {
	return x.rank < y.rank || (x.rank == y.rank && x.left < y.left)
}

// findByteTokens fills byteTokens from <0xXX> tokens.
func (m *bpeModel) findByteTokens(t *Tokenizer) {
	for b := 0; b < 256; b++ {
		m.byteTokens[b] = -1
		if id, ok := t.byText[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteTokens[b] = id
		}
	}
}
