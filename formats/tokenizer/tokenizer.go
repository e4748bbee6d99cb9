// Package tokenizer turns text into a checkpoint's token ids with the
// tokenizer the checkpoint itself carries: the tokenizer.ggml.* metadata of a
// GGUF file (SentencePiece "llama", byte-level BPE "gpt2" with the
// pre-tokenizer named by tokenizer.ggml.pre, WordPiece "bert", and RWKV's
// trie tokenizer) or the Hugging Face tokenizer.json beside a safetensors
// checkpoint (BPE, byte-level or SentencePiece-style with byte fallback,
// WordPiece, WordLevel), else its SentencePiece tokenizer.model (BPE).
//
// Open(path) takes any of these; FromCheckpoint takes an opened
// formats.Checkpoint. Tokenizer.Encode gives ids (EncodeOptions choose
// whether BOS/EOS are added and special-token text is matched), Piece and
// Text what a token is, Decode the text back.
//
// The result must equal the ids of the original tokenizer exactly, so what
// the package does not model it refuses with an error naming it (an
// unknown tokenizer model, pre-tokenizer, normalizer, ...) instead of
// approximating. Vocabularies come from strangers: every count and length
// is checked before it is used, and encoding allocates in proportion to the
// text, whatever the vocabulary.
package tokenizer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// TokenType is a token's type as GGUF stores it (llama_token_type).
type TokenType int32

// The GGUF token types.
const (
	TypeUndefined   TokenType = 0
	TypeNormal      TokenType = 1
	TypeUnknown     TokenType = 2
	TypeControl     TokenType = 3
	TypeUserDefined TokenType = 4
	TypeUnused      TokenType = 5
	TypeByte        TokenType = 6
)

// Info describes a tokenizer: where it came from and its special-token rules.
type Info struct {
	Source    string `json:"source"`         // "gguf" or "tokenizer.json"
	Path      string `json:"path,omitempty"` // the file it was read from, when known
	Model     string `json:"model"`          // tokenizer.ggml.model ("llama", "gpt2", "bert", "rwkv") or tokenizer.json model.type ("BPE", "WordPiece", "WordLevel")
	Pre       string `json:"pre,omitempty"`  // tokenizer.ggml.pre, or a summary of tokenizer.json's pre_tokenizer
	VocabSize int    `json:"vocab_size"`
	// Special token ids; -1 when the tokenizer has none.
	BOS int `json:"bos"`
	EOS int `json:"eos"`
	UNK int `json:"unk"`
	SEP int `json:"sep"`
	CLS int `json:"cls"`
	PAD int `json:"pad"`
	// What Encode adds with AddSpecial.
	AddBOS bool `json:"add_bos"`
	AddEOS bool `json:"add_eos"`
	// AddSpacePrefix: SentencePiece's dummy prefix ("▁" before the text).
	AddSpacePrefix bool `json:"add_space_prefix"`
	// Warnings are things about the tokenizer a user should know (for
	// example a BPE GGUF without tokenizer.ggml.pre).
	Warnings []string `json:"warnings,omitempty"`
}

// EncodeOptions choose how Encode treats special tokens.
type EncodeOptions struct {
	// AddSpecial adds what the tokenizer adds around a text: BOS/EOS for
	// llama-style models, [CLS] ... [SEP] for BERT, the post-processor's
	// template for tokenizer.json.
	AddSpecial bool
	// ParseSpecial matches the text of control tokens ("<s>", "<|eot_id|>")
	// in the input. Without it they are plain text. User-defined (added,
	// non-special) tokens are matched either way, as llama.cpp and Hugging
	// Face tokenizers do.
	ParseSpecial bool
}

// Tokenizer encodes text to token ids and decodes them back. It is safe
// for concurrent use (Encode serialises on an internal lock: it reuses
// scratch buffers and a word cache).
type Tokenizer struct {
	Info Info

	mu sync.Mutex

	tokens []string
	types  []TokenType
	scores []float32
	byText map[string]int32

	// Tokens matched in the raw text before tokenizing: always (user
	// defined) or with ParseSpecial (control, unknown).
	specials specialMatcher

	// encodeFragment tokenizes one stretch of text between special tokens.
	encodeFragment func(t *Tokenizer, text string, afterSpecial, atStart bool, out []int) ([]int, error)
	// wrap adds the special tokens of AddSpecial around ids.
	wrap func(t *Tokenizer, ids []int) []int
	// decode turns ids (checked to be in range) into text.
	decode func(t *Tokenizer, ids []int) string

	bpe  *bpeModel
	wpm  *wpmModel
	spm  *spmModel
	rwkv *rwkvModel
	hf   *hfPipeline

	pre      pipeline
	maxToken int      // longest token text in bytes
	words    []string // scratch for pre-tokenized words
}

// Size is the number of tokens in the vocabulary.
func (t *Tokenizer) Size() int { return len(t.tokens) }

// Piece returns token id's text as the vocabulary stores it ("▁the",
// "Ġthe", "<0x0A>", "##ing"); "" for an id out of range.
func (t *Tokenizer) Piece(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// Text returns what token id stands for in text: byte-level pieces mapped
// back to their bytes ("Ġthe" → " the"), "▁" as a space ("▁the" → " the"),
// <0xXX> as that byte, WordPiece continuations without "##" and word
// starts with a space. It may be part of a UTF-8 character (a byte token);
// callers sanitise it before showing it. "" for an id out of range.
func (t *Tokenizer) Text(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	p := t.tokens[id]
	if ty := t.types[id]; ty == TypeControl || ty == TypeUnknown || ty == TypeUserDefined {
		return p
	}
	if b, ok := parseByteToken(p); ok && (t.spm != nil || (t.bpe != nil && t.bpe.byteFallback)) {
		return string([]byte{b})
	}
	switch {
	case t.spm != nil:
		return strings.ReplaceAll(p, spaceMark, " ")
	case t.bpe != nil && (t.bpe.byteLevel || (t.hf != nil && t.hf.byteLevel)):
		return byteLevelDecode(p)
	case t.bpe != nil:
		return strings.ReplaceAll(p, spaceMark, " ")
	case t.wpm != nil:
		if t.wpm.wordPrefix != "" {
			if strings.HasPrefix(p, t.wpm.wordPrefix) {
				return " " + p[len(t.wpm.wordPrefix):]
			}
			return p
		}
		if strings.HasPrefix(p, t.wpm.contPrefix) {
			return p[len(t.wpm.contPrefix):]
		}
		return " " + p
	case t.rwkv != nil:
		return t.rwkv.bytes[id]
	}
	return p
}

// Type returns token id's type (TypeUndefined for an id out of range).
func (t *Tokenizer) Type(id int) TokenType {
	if id < 0 || id >= len(t.types) {
		return TypeUndefined
	}
	return t.types[id]
}

// ID returns the id of the token whose text is piece.
func (t *Tokenizer) ID(piece string) (int, bool) {
	id, ok := t.byText[piece]
	return int(id), ok
}

// Encode tokenizes text.
func (t *Tokenizer) Encode(text string, opts EncodeOptions) ([]int, error) {
	loadTables()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]int, 0, len(text)/3+4)
	afterSpecial := true
	var err error
	for i, f := range t.specials.partition(text, opts.ParseSpecial) {
		if f.id >= 0 {
			out = append(out, int(f.id))
			afterSpecial = true
			continue
		}
		if out, err = t.encodeFragment(t, f.text, afterSpecial, i == 0, out); err != nil {
			return nil, err
		}
		afterSpecial = false
	}
	if opts.AddSpecial && t.wrap != nil {
		out = t.wrap(t, out)
	}
	return out, nil
}

// Decode turns ids back into text (special tokens included as their text).
// Ids out of range are an error.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	loadTables()
	for _, id := range ids {
		if id < 0 || id >= len(t.tokens) {
			return "", fmt.Errorf("token id %d is out of range (vocabulary of %d)", id, len(t.tokens))
		}
	}
	if t.hf != nil && t.hf.decodeErr != nil {
		return "", t.hf.decodeErr
	}
	return t.decode(t, ids), nil
}

// wrapBOSEOS adds BOS and EOS as Info says.
func wrapBOSEOS(t *Tokenizer, ids []int) []int {
	if t.Info.AddBOS && t.Info.BOS >= 0 {
		ids = append([]int{t.Info.BOS}, ids...)
	}
	if t.Info.AddEOS && t.Info.EOS >= 0 {
		ids = append(ids, t.Info.EOS)
	}
	return ids
}

// ---- special tokens ----

type fragment struct {
	text string
	id   int32 // >= 0: a special token
}

type specialToken struct {
	text       string
	id         int32
	always     bool // matched without ParseSpecial (user-defined tokens)
	lstrip     bool // swallow whitespace before it
	rstrip     bool // swallow whitespace after it
	singleWord bool
}

// specialMatcher finds special tokens in text, leftmost first and longest
// at a position (the Aho-Corasick LeftmostLongest matching of Hugging Face
// tokenizers' added vocabulary).
type specialMatcher struct {
	byFirst   [256][]int // indexes into toks, longest first, by first byte
	toks      []specialToken
	any       bool
	anyAlways bool
}

func (m *specialMatcher) add(st specialToken) {
	if st.text == "" {
		return
	}
	m.toks = append(m.toks, st)
}

func (m *specialMatcher) build() {
	for i := range m.byFirst {
		m.byFirst[i] = nil
	}
	sort.SliceStable(m.toks, func(a, b int) bool { return len(m.toks[a].text) > len(m.toks[b].text) })
	m.any, m.anyAlways = false, false
	for i, st := range m.toks {
		b := st.text[0]
		m.byFirst[b] = append(m.byFirst[b], i)
		m.any = true
		if st.always {
			m.anyAlways = true
		}
	}
}

func isASCIISpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\v' || b == '\f'
}

// partition splits text into plain fragments and special tokens.
func (m *specialMatcher) partition(text string, parseSpecial bool) []fragment {
	if text == "" {
		return nil
	}
	if !m.any || (!parseSpecial && !m.anyAlways) {
		return []fragment{{text: text, id: -1}}
	}
	var out []fragment
	start := 0 // start of the pending plain text
	for p := 0; p < len(text); {
		cands := m.byFirst[text[p]]
		found := -1
		for _, i := range cands {
			st := &m.toks[i]
			if !st.always && !parseSpecial {
				continue
			}
			if strings.HasPrefix(text[p:], st.text) {
				if st.singleWord && !wordBoundary(text, p, p+len(st.text)) {
					continue
				}
				found = i
				break
			}
		}
		if found < 0 {
			p++
			continue
		}
		st := &m.toks[found]
		end := p + len(st.text)
		left := p
		if st.lstrip {
			for left > start && isASCIISpace(text[left-1]) {
				left--
			}
		}
		if left > start {
			out = append(out, fragment{text: text[start:left], id: -1})
		}
		out = append(out, fragment{id: st.id})
		if st.rstrip {
			for end < len(text) && isASCIISpace(text[end]) {
				end++
			}
		}
		start, p = end, end
	}
	if start < len(text) {
		out = append(out, fragment{text: text[start:], id: -1})
	}
	return out
}

// wordBoundary: the match [a, b) is not inside a word (single_word tokens).
func wordBoundary(s string, a, b int) bool {
	isWord := func(r rune) bool { c := classOf(r); return c&(cL|cN) != 0 || r == '_' }
	if a > 0 {
		r, _ := utf8.DecodeLastRuneInString(s[:a])
		if isWord(r) {
			return false
		}
	}
	if b < len(s) {
		r, _ := utf8.DecodeRuneInString(s[b:])
		if isWord(r) {
			return false
		}
	}
	return true
}

// ---- errors ----

// ErrUnsupported is wrapped by every error about a tokenizer this package
// does not model (as opposed to a malformed file).
var ErrUnsupported = errors.New("unsupported tokenizer")

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// ---- vocabulary checks ----

// maxVocab bounds vocabulary sizes (the largest real ones are ~260k).
const maxVocab = 1 << 24

func (t *Tokenizer) indexVocab() error {
	t.byText = make(map[string]int32, len(t.tokens))
	for i, s := range t.tokens {
		if _, dup := t.byText[s]; dup {
			// llama.cpp refuses duplicates; so does Hugging Face's vocab map.
			return fmt.Errorf("duplicate token %q at ids %d and %d", s, t.byText[s], i)
		}
		t.byText[s] = int32(i)
		if len(s) > t.maxToken {
			t.maxToken = len(s)
		}
	}
	return nil
}

func (t *Tokenizer) validID(id int) bool { return id >= 0 && id < len(t.tokens) }
