package tokenizer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/gguf"
)

func tokensKV(v any) gguf.KV {
	return gguf.KV{Key: "tokenizer.ggml.tokens", Type: gguf.Array, ElemType: gguf.String, Value: v}
}

// Bad or unsupported GGUF tokenizer metadata is an error naming the cause,
// never a panic or a silent guess.
func TestGGUFHostile(t *testing.T) {
	byteVocab := func() []string {
		var v []string
		for b := 0; b < 256; b++ {
			v = append(v, string(byteToRune[b]))
		}
		return v
	}
	cases := []struct {
		name        string
		kvs         []gguf.KV
		want        string
		unsupported bool
	}{
		{"no model", []gguf.KV{tokensKV([]string{"a"})}, "no tokenizer.ggml.model", false},
		{"t5", []gguf.KV{strKV("tokenizer.ggml.model", "t5"), tokensKV([]string{"a"})}, `"t5"`, true},
		{"plamo2", []gguf.KV{strKV("tokenizer.ggml.model", "plamo2"), tokensKV([]string{"a"})}, `"plamo2"`, true},
		{"no vocab", []gguf.KV{strKV("tokenizer.ggml.model", "none")}, "no vocabulary", true},
		{"unknown pre", []gguf.KV{strKV("tokenizer.ggml.model", "gpt2"), strKV("tokenizer.ggml.pre", "my-own-pre"),
			tokensKV(byteVocab()), {Key: "tokenizer.ggml.merges", Type: gguf.Array, ElemType: gguf.String, Value: []string{}}}, `"my-own-pre"`, true},
		{"refused pre", []gguf.KV{strKV("tokenizer.ggml.model", "gpt2"), strKV("tokenizer.ggml.pre", "jais-2"),
			tokensKV(byteVocab()), {Key: "tokenizer.ggml.merges", Type: gguf.Array, ElemType: gguf.String, Value: []string{}}}, `"jais-2"`, true},
		{"no merges", []gguf.KV{strKV("tokenizer.ggml.model", "gpt2"), strKV("tokenizer.ggml.pre", "gpt-2"), tokensKV(byteVocab())}, "merges", false},
		{"no tokens", []gguf.KV{strKV("tokenizer.ggml.model", "llama")}, "no tokenizer.ggml.tokens", false},
		{"tokens not strings", []gguf.KV{strKV("tokenizer.ggml.model", "llama"),
			{Key: "tokenizer.ggml.tokens", Type: gguf.Array, ElemType: gguf.Int32, Value: []int32{1, 2}}}, "array of int32", false},
		{"tokens scalar", []gguf.KV{strKV("tokenizer.ggml.model", "llama"), strKV("tokenizer.ggml.tokens", "x")}, "not an array", false},
		{"few scores", []gguf.KV{strKV("tokenizer.ggml.model", "llama"), tokensKV([]string{"a", "b", "c"}),
			{Key: "tokenizer.ggml.scores", Type: gguf.Array, ElemType: gguf.Float32, Value: []float32{0}}}, "1 entries for 3 tokens", false},
		{"few types", []gguf.KV{strKV("tokenizer.ggml.model", "llama"), tokensKV([]string{"a", "b", "c"}),
			{Key: "tokenizer.ggml.token_type", Type: gguf.Array, ElemType: gguf.Int32, Value: []int32{1}}}, "1 entries for 3 tokens", false},
		{"duplicate", []gguf.KV{strKV("tokenizer.ggml.model", "llama"), tokensKV([]string{"a", "b", "a"})}, "duplicate token", false},
		{"model not string", []gguf.KV{{Key: "tokenizer.ggml.model", Type: gguf.Uint32, Value: uint32(3)}}, "not a string", false},
		{"bos flag without bos", []gguf.KV{strKV("tokenizer.ggml.model", "gpt2"), strKV("tokenizer.ggml.pre", "gpt-2"),
			tokensKV(byteVocab()[:5]), {Key: "tokenizer.ggml.merges", Type: gguf.Array, ElemType: gguf.String, Value: []string{}},
			{Key: "tokenizer.ggml.add_bos_token", Type: gguf.Bool, Value: true}}, "no BOS", false},
		{"bert without unk", []gguf.KV{strKV("tokenizer.ggml.model", "bert"), tokensKV([]string{"a", "b"}),
			{Key: "tokenizer.ggml.cls_token_id", Type: gguf.Uint32, Value: uint32(0)}}, "unknown token", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ggufTokenizer(t, c.kvs)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
			if errors.Is(err, ErrUnsupported) != c.unsupported {
				t.Errorf("errors.Is(err, ErrUnsupported) = %v, want %v (%v)", !c.unsupported, c.unsupported, err)
			}
		})
	}

	// Tolerated like llama.cpp: empty tokens get a placeholder, out-of-range
	// type values become undefined, ids out of range keep the default,
	// merges naming unknown tokens are skipped with a warning.
	tok, err := ggufTokenizer(t, []gguf.KV{strKV("tokenizer.ggml.model", "gpt2"), strKV("tokenizer.ggml.pre", "gpt-2"),
		tokensKV(append(byteVocab(), "", "ab")),
		{Key: "tokenizer.ggml.token_type", Type: gguf.Array, ElemType: gguf.Int32, Value: append(make([]int32, 257), 99)},
		{Key: "tokenizer.ggml.bos_token_id", Type: gguf.Uint32, Value: uint32(1 << 30)},
		{Key: "tokenizer.ggml.merges", Type: gguf.Array, ElemType: gguf.String, Value: []string{"a b", "x yz", "nospace"}}})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Piece(256) != "[EMPTY_256]" || tok.Type(257) != TypeUndefined || tok.Info.BOS != 11 || len(tok.Info.Warnings) != 1 {
		t.Errorf("piece %q type %d bos %d warnings %q", tok.Piece(256), tok.Type(257), tok.Info.BOS, tok.Info.Warnings)
	}
	if ids, err := tok.Encode("ab", EncodeOptions{}); err != nil || !equalInts(ids, []int{257}) {
		t.Errorf("Encode(ab) = %v, %v", ids, err)
	}
	if _, err := tok.Decode([]int{-1}); err == nil {
		t.Error("Decode of id -1 succeeded")
	}
	if _, err := tok.Decode([]int{tok.Size()}); err == nil {
		t.Error("Decode of an id past the vocabulary succeeded")
	}
}

func TestJSONHostile(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`{}`, "no model"},
		{`not json`, "invalid character"},
		{`{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}`, "id -1"},
		{`{"model": {"type": "BPE", "vocab": {"a": 99999999999}, "merges": []}}`, "id 99999999999"},
		{`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1000000}, "merges": []}}`, "ids go up to 1000000 for 2 tokens"},
		{`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}}`, "both have id 0"},
		{`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}`, "not in the vocabulary"},
		{`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["ab"]}}`, "has no space"},
		{`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [3]}}`, "neither"},
		{`{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`, "without unk_token"},
		{`{"model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "<unk>"}}`, `unk_token "<unk>" is not in the vocabulary`},
		{`{"added_tokens": [{"id": 0, "content": "b"}], "model": {"type": "WordLevel", "vocab": {"a": 0}}}`, `"b" has id 0`},
		{`{"model": {"type": "WordLevel", "vocab": {"a": 0}}, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {}}}`, `"<s>" is not defined`},
		{`{"model": {"type": "WordLevel", "vocab": {"a": 0}}, "post_processor": {"type": "BertProcessing", "cls": ["[CLS]", 7], "sep": ["[SEP]", 0]}}`, "bad id"},
	} {
		_, err := FromJSON([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one containing %q", c.doc, err, c.want)
		}
	}
	// A word outside a WordLevel vocabulary without unk is an error, not a
	// dropped word.
	tok, err := FromJSON([]byte(`{"model": {"type": "WordLevel", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "WhitespaceSplit"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Encode("a b", EncodeOptions{}); err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("Encode: %v", err)
	}
}

func TestSentencePieceHostile(t *testing.T) {
	for _, c := range []struct {
		data []byte
		want string
	}{
		{nil, "no pieces"},
		{[]byte{0x0a, 0x80}, "bad varint"},
		{[]byte{0x0a, 0x05, 0x0a}, "length 5 exceeds"},
		{[]byte{0x0b}, "wire type 3"},
		// One piece "a", model type UNIGRAM (the default).
		{[]byte{0x0a, 0x03, 0x0a, 0x01, 'a'}, "UNIGRAM"},
		// One piece, BPE, normalizer nmt_nfkc.
		{[]byte{0x0a, 0x03, 0x0a, 0x01, 'a', 0x12, 0x02, 0x18, 0x02, 0x1a, 0x0a, 0x0a, 0x08, 'n', 'm', 't', '_', 'n', 'f', 'k', 'c'}, `"nmt_nfkc"`},
	} {
		_, err := FromSentencePieceBytes(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("% x: err = %v, want one containing %q", c.data, err, c.want)
		}
	}
}

func TestConfigDisagreementWarns(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": {"type": "WordLevel", "vocab": {"<s>": 0, "a": 1}},
		"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}],
		"special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}}}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(`{"add_bos_token": false, "add_eos_token": false, "tokenizer_class": "LlamaTokenizer"}`), 0o644)
	tok, err := FromFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Info.AddBOS || tok.Info.BOS != 0 || len(tok.Info.Warnings) != 1 || !strings.Contains(tok.Info.Warnings[0], "add_bos_token = false") {
		t.Errorf("info %+v", tok.Info)
	}
}
