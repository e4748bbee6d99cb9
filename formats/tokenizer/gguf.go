package tokenizer

import (
	"fmt"
	"math"
	"strings"

	"github.com/qkvdev/qkv/formats/gguf"
)

// ArrayReader decodes elements [start, start+n) of a GGUF metadata array
// (gguf.File.Array bound to the file's bytes, or formats.Checkpoint.MetaArray).
type ArrayReader func(kv *gguf.KV, start, n int) ([]any, error)

// FromGGUF reads the tokenizer in a GGUF file's metadata; data is the whole
// file as given to gguf.Parse.
func FromGGUF(f *gguf.File, data []byte) (*Tokenizer, error) {
	return FromGGUFArrays(f, func(kv *gguf.KV, start, n int) ([]any, error) {
		return f.Array(data, kv, start, n)
	})
}

// arrayChunk bounds how many elements are decoded at once.
const arrayChunk = 4096

// ggufLoader holds what loading needs.
type ggufLoader struct {
	f   *gguf.File
	arr ArrayReader
}

func (l *ggufLoader) str(key string) (string, bool, error) {
	kv, ok := l.f.Lookup(key)
	if !ok {
		return "", false, nil
	}
	s, ok := kv.String()
	if !ok {
		return "", false, fmt.Errorf("%s is a %s, not a string", key, kv.Type)
	}
	return s, true, nil
}

func (l *ggufLoader) boolKey(key string) (bool, bool, error) {
	kv, ok := l.f.Lookup(key)
	if !ok {
		return false, false, nil
	}
	b, ok := kv.Bool()
	if !ok {
		return false, false, fmt.Errorf("%s is a %s, not a bool", key, kv.Type)
	}
	return b, true, nil
}

// id reads a token id key; ok is false when absent or out of range (as
// llama.cpp, which then keeps its default).
func (l *ggufLoader) id(key string, n int) (int, bool) {
	kv, ok := l.f.Lookup(key)
	if !ok {
		return 0, false
	}
	v, ok := kv.Uint()
	if !ok || v >= uint64(n) {
		return 0, false
	}
	return int(v), true
}

// each calls fn for every element of an array key, in chunks.
func (l *ggufLoader) each(kv *gguf.KV, n int, fn func(i int, v any) error) error {
	for start := 0; start < n; start += arrayChunk {
		m := arrayChunk
		if n-start < m {
			m = n - start
		}
		vals, err := l.arr(kv, start, m)
		if err != nil {
			return err
		}
		for i, v := range vals {
			if err := fn(start+i, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func arrayKV(f *gguf.File, key string, elem ...gguf.ValueType) (*gguf.KV, error) {
	kv, ok := f.Lookup(key)
	if !ok {
		return nil, nil
	}
	if kv.Type != gguf.Array {
		return nil, fmt.Errorf("%s is a %s, not an array", key, kv.Type)
	}
	for _, e := range elem {
		if kv.ElemType == e {
			return kv, nil
		}
	}
	return nil, fmt.Errorf("%s is an array of %s, expected %v", key, kv.ElemType, elem)
}

// FromGGUFArrays is FromGGUF with a custom array decoder.
func FromGGUFArrays(f *gguf.File, arr ArrayReader) (*Tokenizer, error) {
	loadTables()
	l := &ggufLoader{f: f, arr: arr}
	model, ok, err := l.str("tokenizer.ggml.model")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no tokenizer: the GGUF has no tokenizer.ggml.model")
	}
	pre, hasPre, err := l.str("tokenizer.ggml.pre")
	if err != nil {
		return nil, err
	}
	switch model {
	case "llama", "gpt2", "bert", "rwkv":
	case "no_vocab", "none":
		return nil, unsupported("the GGUF has no vocabulary (tokenizer.ggml.model %q)", model)
	case "t5":
		return nil, unsupported("tokenizer.ggml.model \"t5\" (SentencePiece unigram with a precompiled character map) is not implemented")
	default:
		return nil, unsupported("tokenizer.ggml.model %q is not implemented", model)
	}

	tkv, err := arrayKV(f, "tokenizer.ggml.tokens", gguf.String)
	if err != nil {
		return nil, err
	}
	if tkv == nil {
		return nil, fmt.Errorf("no tokenizer.ggml.tokens in the GGUF")
	}
	if tkv.Count == 0 || tkv.Count > maxVocab {
		return nil, fmt.Errorf("tokenizer.ggml.tokens has %d tokens (expected 1 to %d)", tkv.Count, maxVocab)
	}
	n := int(tkv.Count)
	t := &Tokenizer{
		Info:   Info{Source: "gguf", Model: model, Pre: pre, VocabSize: n, BOS: -1, EOS: -1, UNK: -1, SEP: -1, CLS: -1, PAD: -1},
		tokens: make([]string, n),
		types:  make([]TokenType, n),
		scores: make([]float32, n),
	}
	err = l.each(tkv, n, func(i int, v any) error {
		s, _ := v.(string)
		if s == "" {
			s = fmt.Sprintf("[EMPTY_%d]", i) // as llama.cpp
		}
		t.tokens[i] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tokenizer.ggml.tokens: %w", err)
	}
	for i := range t.types {
		t.types[i] = TypeNormal
	}
	if kv, err := arrayKV(f, "tokenizer.ggml.scores", gguf.Float32, gguf.Int32); err != nil {
		return nil, err
	} else if kv != nil {
		if kv.Count < uint64(n) {
			return nil, fmt.Errorf("tokenizer.ggml.scores has %d entries for %d tokens", kv.Count, n)
		}
		err := l.each(kv, n, func(i int, v any) error {
			switch x := v.(type) {
			case float32:
				t.scores[i] = x
			case int32:
				t.scores[i] = float32(x)
			}
			if math.IsNaN(float64(t.scores[i])) {
				return fmt.Errorf("score of token %d is NaN", i)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("tokenizer.ggml.scores: %w", err)
		}
	}
	if kv, err := arrayKV(f, "tokenizer.ggml.token_type", gguf.Int32); err != nil {
		return nil, err
	} else if kv != nil {
		if kv.Count < uint64(n) {
			return nil, fmt.Errorf("tokenizer.ggml.token_type has %d entries for %d tokens", kv.Count, n)
		}
		err := l.each(kv, n, func(i int, v any) error {
			x, _ := v.(int32)
			if x < 0 || x > int32(TypeByte) {
				x = int32(TypeUndefined)
			}
			t.types[i] = TokenType(x)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("tokenizer.ggml.token_type: %w", err)
		}
	}
	if err := t.indexVocab(); err != nil {
		return nil, fmt.Errorf("tokenizer.ggml.tokens: %w", err)
	}

	// llama.cpp's defaults by model, then the keys.
	addBOS, addEOS, addSEP := false, false, false
	switch model {
	case "llama":
		t.Info.BOS, t.Info.EOS, t.Info.UNK = 1, 2, 0
		t.Info.AddSpacePrefix = true
		addBOS = true
	case "bert":
		t.Info.BOS, t.Info.UNK, t.Info.SEP, t.Info.PAD = 101, 100, 102, 0
		addBOS, addSEP = true, true
	case "gpt2":
		t.Info.BOS, t.Info.EOS = 11, 11
	}
	for _, p := range []*int{&t.Info.BOS, &t.Info.EOS, &t.Info.UNK, &t.Info.SEP, &t.Info.PAD} {
		if *p >= n {
			*p = -1
		}
	}
	var spec preSpec
	if model == "gpt2" {
		if !hasPre || pre == "" {
			pre = "default"
			t.Info.Pre = ""
			t.Info.Warnings = append(t.Info.Warnings, "the GGUF has no tokenizer.ggml.pre: using llama.cpp's \"default\" pre-tokenizer, which may not be the model's")
		}
		if why, ok := refusedPre[pre]; ok {
			return nil, unsupported("pre-tokenizer %q (tokenizer.ggml.pre) is not implemented: %s", pre, why)
		}
		s, ok := preSpecs[pre]
		if !ok {
			return nil, unsupported("unknown pre-tokenizer %q (tokenizer.ggml.pre)", pre)
		}
		spec = s
		addBOS = spec.addBOS
		if spec.noBOS {
			t.Info.BOS = -1
		}
	}
	keys := []struct {
		key string
		p   *int
	}{
		{"tokenizer.ggml.bos_token_id", &t.Info.BOS},
		{"tokenizer.ggml.eos_token_id", &t.Info.EOS},
		{"tokenizer.ggml.unknown_token_id", &t.Info.UNK},
		{"tokenizer.ggml.seperator_token_id", &t.Info.SEP},
		{"tokenizer.ggml.padding_token_id", &t.Info.PAD},
		{"tokenizer.ggml.cls_token_id", &t.Info.CLS},
	}
	for _, k := range keys {
		if id, ok := l.id(k.key, n); ok {
			*k.p = id
		}
	}
	if model == "bert" {
		if _, ok := l.id("tokenizer.ggml.bos_token_id", n); !ok && t.Info.CLS >= 0 {
			t.Info.BOS = t.Info.CLS
		}
	}
	for _, b := range []struct {
		key string
		p   *bool
	}{
		{"tokenizer.ggml.add_bos_token", &addBOS},
		{"tokenizer.ggml.add_eos_token", &addEOS},
		{"tokenizer.ggml.add_sep_token", &addSEP},
		{"tokenizer.ggml.add_space_prefix", &t.Info.AddSpacePrefix},
	} {
		v, ok, err := l.boolKey(b.key)
		if err != nil {
			return nil, err
		}
		if ok {
			*b.p = v
		}
	}
	if model != "llama" {
		// Only the SPM tokenizer reads add_space_prefix in llama.cpp.
		if model == "gpt2" && t.Info.AddSpacePrefix {
			t.Info.Warnings = append(t.Info.Warnings, "tokenizer.ggml.add_space_prefix is set on a BPE vocabulary; llama.cpp ignores it there, and so does qkv")
		}
		t.Info.AddSpacePrefix = false
	}
	if v, ok, _ := l.boolKey("tokenizer.ggml.remove_extra_whitespaces"); ok && v && model == "llama" {
		t.Info.Warnings = append(t.Info.Warnings, "tokenizer.ggml.remove_extra_whitespaces is set; llama.cpp's SPM tokenizer ignores it, and so does qkv")
	}
	t.Info.AddBOS, t.Info.AddEOS = addBOS, addEOS
	if addBOS && t.Info.BOS < 0 {
		return nil, fmt.Errorf("tokenizer.ggml.add_bos_token is true, but there is no BOS token")
	}
	if addEOS && t.Info.EOS < 0 {
		return nil, fmt.Errorf("tokenizer.ggml.add_eos_token is true, but there is no EOS token")
	}

	// Special tokens matched in text: control and unknown with ParseSpecial,
	// user-defined always (llama.cpp's tokenizer_st_partition).
	for i, ty := range t.types {
		switch ty {
		case TypeControl, TypeUnknown:
			t.specials.add(specialToken{text: t.tokens[i], id: int32(i)})
		case TypeUserDefined:
			t.specials.add(specialToken{text: t.tokens[i], id: int32(i), always: true})
		}
	}
	t.specials.build()

	switch model {
	case "llama":
		t.spm = &spmModel{unk: int32(t.Info.UNK)}
		t.spm.findByteTokens(t)
		t.spm.chunked = chunkable(t)
		t.encodeFragment = spmEncodeFragment
		t.wrap = wrapBOSEOS
		t.decode = spmDecode
	case "gpt2":
		mkv, err := arrayKV(f, "tokenizer.ggml.merges", gguf.String)
		if err != nil {
			return nil, err
		}
		if mkv == nil {
			if pre == "kimi-k2" {
				return nil, unsupported("pre-tokenizer \"kimi-k2\" without tokenizer.ggml.merges (tiktoken ranks) is not implemented")
			}
			return nil, fmt.Errorf("a BPE (gpt2) tokenizer without tokenizer.ggml.merges")
		}
		if mkv.Count > maxVocab*4 {
			return nil, fmt.Errorf("tokenizer.ggml.merges has %d entries", mkv.Count)
		}
		m := &bpeModel{merges: make(map[uint64]mergeVal, int(mkv.Count)), byteLevel: true,
			ignoreMerges: spec.ignoreMerges, unk: int32(t.Info.UNK), llamaCppUnknown: true, cache: map[string][]int32{}}
		skipped := 0
		err = l.each(mkv, int(mkv.Count), func(i int, v any) error {
			s, _ := v.(string)
			// llama.cpp splits at the first space after the first byte.
			k := strings.IndexByte(s[min(1, len(s)):], ' ')
			if k < 0 {
				skipped++
				return nil
			}
			k += min(1, len(s))
			if !m.addMerge(t, s[:k], s[k+1:], i) {
				skipped++
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("tokenizer.ggml.merges: %w", err)
		}
		if skipped > 0 {
			t.Info.Warnings = append(t.Info.Warnings, fmt.Sprintf("%d of %d merges name tokens that are not in the vocabulary and were skipped", skipped, mkv.Count))
		}
		t.bpe = m
		t.pre = spec.stages()
		t.encodeFragment = bpeEncodeFragment
		t.wrap = wrapBOSEOS
		t.decode = byteLevelDecodeIDs
	case "bert":
		lower := true
		if v, ok, _ := l.boolKey("tokenizer.ggml.normalizer.lowercase"); ok {
			lower = v
		}
		strip := lower
		if v, ok, _ := l.boolKey("tokenizer.ggml.normalizer.strip_accents"); ok {
			strip = v
		}
		if t.Info.UNK < 0 {
			return nil, fmt.Errorf("a WordPiece (bert) tokenizer without an unknown token")
		}
		t.wpm = &wpmModel{wordPrefix: spaceMark, unk: int32(t.Info.UNK), maxChars: 100,
			lowercase: lower, stripAccent: strip, cleanText: true, chinese: true}
		t.encodeFragment = wpmEncodeFragment
		// BERT adds [CLS] (the BOS id) before and [SEP] after: Info reports
		// [SEP] as the appended end token.
		if addSEP && t.Info.SEP >= 0 {
			t.Info.EOS, t.Info.AddEOS = t.Info.SEP, true
		} else {
			t.Info.AddEOS = false
		}
		t.wrap = wrapBOSEOS
		t.decode = wpmDecode
	case "rwkv":
		t.rwkv = newRWKV(t)
		t.encodeFragment = rwkvEncodeFragment
		t.wrap = wrapBOSEOS
		t.decode = rwkvDecode
	}
	return t, nil
}

// bpeEncodeFragment: pre-tokenize, then BPE each word.
func bpeEncodeFragment(t *Tokenizer, text string, _, _ bool, out []int) ([]int, error) {
	var scratch []byte
	var err error
	t.words = t.pre.split(text, t.words)
	defer clear(t.words) // do not keep the text alive through the scratch
	for _, w := range t.words {
		if out, err = t.bpe.encodeWord(t, w, out, &scratch); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// byteLevelDecodeIDs joins byte-level pieces and maps them back to bytes;
// control and user-defined tokens are written as they are.
func byteLevelDecodeIDs(t *Tokenizer, ids []int) string {
	var b strings.Builder
	for _, id := range ids {
		p := t.tokens[id]
		if ty := t.types[id]; ty == TypeControl || ty == TypeUserDefined {
			b.WriteString(p)
			continue
		}
		b.WriteString(byteLevelDecode(p))
	}
	return b.String()
}
