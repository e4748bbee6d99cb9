package tokenizer

import (
	"fmt"
	"strings"
)

// rwkvModel is the RWKV "world" tokenizer as llama.cpp runs it: tokens are
// escaped byte strings (\t \n \r \xHH \\); the text is covered greedily by
// the longest token that matches at each position; a byte that starts no
// token becomes the unknown token.
type rwkvModel struct {
	root  *trieNode
	bytes []string // unescaped token bytes by id
}

type trieNode struct {
	next map[byte]*trieNode
	id   int32 // -1: no token ends here
}

func newTrieNode() *trieNode { return &trieNode{id: -1} }

func (n *trieNode) insert(s string, id int32) {
	for i := 0; i < len(s); i++ {
		if n.next == nil {
			n.next = map[byte]*trieNode{}
		}
		c, ok := n.next[s[i]]
		if !ok {
			c = newTrieNode()
			n.next[s[i]] = c
		}
		n = c
	}
	if n.id < 0 {
		n.id = id
	}
}

// rwkvUnescape decodes llama.cpp's escaping of RWKV token bytes.
func rwkvUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'x':
			v := 0
			for k := 0; k < 2 && i+1 < len(s); k++ {
				i++
				h := s[i]
				switch {
				case h >= 'a':
					v = v*16 + int(h-'a'+10)
				default:
					v = v*16 + int(h-'0')
				}
			}
			b.WriteByte(byte(v))
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func newRWKV(t *Tokenizer) *rwkvModel {
	m := &rwkvModel{root: newTrieNode(), bytes: make([]string, len(t.tokens))}
	for i, s := range t.tokens {
		u := rwkvUnescape(s)
		m.bytes[i] = u
		m.root.insert(u, int32(i))
	}
	return m
}

func rwkvEncodeFragment(t *Tokenizer, text string, _, _ bool, out []int) ([]int, error) {
	m := t.rwkv
	for p := 0; p < len(text); {
		n := m.root.next[text[p]]
		if n == nil {
			if t.Info.UNK < 0 {
				return nil, fmt.Errorf("byte 0x%02x at offset %d starts no RWKV token and there is no unknown token", text[p], p)
			}
			out = append(out, t.Info.UNK)
			p++
			continue
		}
		best, bestEnd := int32(-1), p+1
		for q := p; n != nil; {
			if n.id >= 0 {
				best, bestEnd = n.id, q+1
			}
			q++
			if q >= len(text) {
				break
			}
			n = n.next[text[q]]
		}
		if best < 0 {
			return nil, fmt.Errorf("no RWKV token covers the bytes at offset %d", p)
		}
		out = append(out, int(best))
		p = bestEnd
	}
	return out, nil
}

func rwkvDecode(t *Tokenizer, ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(t.rwkv.bytes[id])
	}
	return b.String()
}
