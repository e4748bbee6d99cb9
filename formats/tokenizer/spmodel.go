package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
)

// MaxModelBytes bounds the tokenizer.model files FromSentencePiece reads.
const MaxModelBytes = 1 << 28

// FromSentencePiece reads a SentencePiece tokenizer.model (a serialized
// ModelProto). Only BPE models are implemented (what Llama-style
// tokenizers are); they tokenize as the GGUF "llama" tokenizer.
func FromSentencePiece(path string) (*Tokenizer, error) {
	loadTables()
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxModelBytes {
		return nil, fmt.Errorf("%s: %d bytes is larger than the %d a tokenizer.model may have", path, st.Size(), MaxModelBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := FromSentencePieceBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Info.Path = path
	return t, nil
}

// pb is a protobuf wire-format reader over one message.
type pb struct {
	b    []byte
	off  int
	base int // offset of b in the file, for errors
}

func (p *pb) varint() (uint64, error) {
	v, n := binary.Uvarint(p.b[p.off:])
	if n <= 0 {
		return 0, fmt.Errorf("bad varint at byte %d", p.base+p.off)
	}
	p.off += n
	return v, nil
}

// field reads the next field: its number, wire type, and its varint value
// or length-delimited bytes.
func (p *pb) field() (num int, wt int, v uint64, b []byte, err error) {
	key, err := p.varint()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	num, wt = int(key>>3), int(key&7)
	switch wt {
	case 0:
		v, err = p.varint()
	case 1:
		if len(p.b)-p.off < 8 {
			return 0, 0, 0, nil, fmt.Errorf("truncated field %d at byte %d", num, p.base+p.off)
		}
		v = binary.LittleEndian.Uint64(p.b[p.off:])
		p.off += 8
	case 5:
		if len(p.b)-p.off < 4 {
			return 0, 0, 0, nil, fmt.Errorf("truncated field %d at byte %d", num, p.base+p.off)
		}
		v = uint64(binary.LittleEndian.Uint32(p.b[p.off:]))
		p.off += 4
	case 2:
		var n uint64
		if n, err = p.varint(); err != nil {
			return
		}
		if n > uint64(len(p.b)-p.off) {
			return 0, 0, 0, nil, fmt.Errorf("field %d at byte %d: length %d exceeds the %d bytes left", num, p.base+p.off, n, len(p.b)-p.off)
		}
		b = p.b[p.off : p.off+int(n)]
		p.off += int(n)
	default:
		return 0, 0, 0, nil, fmt.Errorf("unsupported wire type %d (field %d) at byte %d", wt, num, p.base+p.off)
	}
	return
}

// FromSentencePieceBytes parses a serialized SentencePiece ModelProto.
func FromSentencePieceBytes(data []byte) (*Tokenizer, error) {
	loadTables()
	type piece struct {
		text  string
		score float32
		typ   TokenType
	}
	var pieces []piece
	// TrainerSpec and NormalizerSpec defaults (proto2).
	modelType := uint64(1) // UNIGRAM
	unkID, bosID, eosID, padID := int64(0), int64(1), int64(2), int64(-1)
	byteFallback := false
	normName := ""
	charsmap := 0
	addDummy, removeWS, escapeWS := true, true, true
	p := &pb{b: data}
	for p.off < len(p.b) {
		num, wt, _, b, err := p.field()
		if err != nil {
			return nil, err
		}
		if wt != 2 {
			continue
		}
		sub := &pb{b: b, base: p.base + p.off - len(b)}
		switch num {
		case 1: // SentencePiece
			pc := piece{typ: TypeNormal}
			for sub.off < len(sub.b) {
				n, w, v, bb, err := sub.field()
				if err != nil {
					return nil, err
				}
				switch {
				case n == 1 && w == 2:
					pc.text = string(bb)
				case n == 2 && w == 5:
					pc.score = math.Float32frombits(uint32(v))
				case n == 3 && w == 0:
					pc.typ = TokenType(v)
					if v < 1 || v > 6 {
						pc.typ = TypeUndefined
					}
				}
			}
			pieces = append(pieces, pc)
			if len(pieces) > maxVocab {
				return nil, fmt.Errorf("more than %d pieces", maxVocab)
			}
		case 2: // TrainerSpec
			for sub.off < len(sub.b) {
				n, w, v, _, err := sub.field()
				if err != nil {
					return nil, err
				}
				if w != 0 {
					continue
				}
				switch n {
				case 3:
					modelType = v
				case 35:
					byteFallback = v != 0
				case 40:
					unkID = int64(int32(v))
				case 41:
					bosID = int64(int32(v))
				case 42:
					eosID = int64(int32(v))
				case 43:
					padID = int64(int32(v))
				}
			}
		case 3: // NormalizerSpec
			for sub.off < len(sub.b) {
				n, w, v, bb, err := sub.field()
				if err != nil {
					return nil, err
				}
				switch {
				case n == 1 && w == 2:
					normName = string(bb)
				case n == 2 && w == 2:
					charsmap = len(bb)
				case n == 3 && w == 0:
					addDummy = v != 0
				case n == 4 && w == 0:
					removeWS = v != 0
				case n == 5 && w == 0:
					escapeWS = v != 0
				}
			}
		}
	}
	if len(pieces) == 0 {
		return nil, fmt.Errorf("no pieces: not a SentencePiece model")
	}
	switch modelType {
	case 2: // BPE
	case 1:
		return nil, unsupported("SentencePiece model type UNIGRAM is not implemented")
	default:
		return nil, unsupported("SentencePiece model type %d is not implemented", modelType)
	}
	if normName != "" && normName != "identity" {
		return nil, unsupported("SentencePiece normalizer %q (%d bytes of character map) is not implemented", normName, charsmap)
	}
	if !escapeWS {
		return nil, unsupported("SentencePiece model without escape_whitespaces")
	}
	n := len(pieces)
	t := &Tokenizer{
		Info:   Info{Source: "tokenizer.model", Model: "llama", VocabSize: n, BOS: -1, EOS: -1, UNK: -1, SEP: -1, CLS: -1, PAD: -1, AddSpacePrefix: addDummy, AddBOS: true},
		tokens: make([]string, n), types: make([]TokenType, n), scores: make([]float32, n),
	}
	for i, pc := range pieces {
		t.tokens[i], t.types[i], t.scores[i] = pc.text, pc.typ, pc.score
		if pc.text == "" {
			t.tokens[i] = fmt.Sprintf("[EMPTY_%d]", i)
		}
	}
	if err := t.indexVocab(); err != nil {
		return nil, err
	}
	for _, x := range []struct {
		v int64
		p *int
	}{{unkID, &t.Info.UNK}, {bosID, &t.Info.BOS}, {eosID, &t.Info.EOS}, {padID, &t.Info.PAD}} {
		if x.v >= 0 && x.v < int64(n) {
			*x.p = int(x.v)
		}
	}
	if t.Info.BOS < 0 {
		t.Info.AddBOS = false
	}
	if !byteFallback {
		t.Info.Warnings = append(t.Info.Warnings, "the model has no byte fallback: characters outside the vocabulary become the unknown token")
	}
	for i, ty := range t.types {
		switch ty {
		case TypeControl, TypeUnknown:
			t.specials.add(specialToken{text: t.tokens[i], id: int32(i)})
		case TypeUserDefined:
			t.specials.add(specialToken{text: t.tokens[i], id: int32(i), always: true})
		}
	}
	t.specials.build()
	t.spm = &spmModel{unk: int32(t.Info.UNK)}
	t.spm.findByteTokens(t)
	t.spm.chunked = chunkable(t)
	if !byteFallback {
		for b := range t.spm.byteTokens {
			t.spm.byteTokens[b] = -1
		}
	}
	t.encodeFragment = spmEncodeFragment
	if removeWS {
		t.encodeFragment = func(t *Tokenizer, text string, afterSpecial, atStart bool, out []int) ([]int, error) {
			return spmEncodeFragment(t, collapseSpaces(text), afterSpecial, atStart, out)
		}
	}
	t.wrap = wrapBOSEOS
	t.decode = spmDecode
	return t, nil
}

// collapseSpaces is SentencePiece's remove_extra_whitespaces: no leading or
// trailing spaces, and runs of spaces become one.
func collapseSpaces(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), " ")
}
