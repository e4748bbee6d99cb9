package tokenizer

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

type encCase struct {
	text string
	opts EncodeOptions
	want []int
}

func checkCases(t *testing.T, tok *Tokenizer, cases []encCase) {
	t.Helper()
	for _, c := range cases {
		got, err := tok.Encode(c.text, c.opts)
		if err != nil {
			t.Errorf("%q: %v", c.text, err)
			continue
		}
		if !equalInts(got, c.want) {
			t.Errorf("%q %+v:\n got %v\nwant %v", c.text, c.opts, got, c.want)
		}
	}
}

var withSpecial = EncodeOptions{AddSpecial: true}

// The zoo's SentencePiece tokenizer: the READMEs give the ids llama.cpp and
// sentencepiece 0.1.97 produce (BOS added).
func TestZooSentencePiece(t *testing.T) {
	shared := testref.SharedDir(t)
	want7 := []int{1, 9, 77, 157, 73, 30, 156}
	want8 := []int{1, 9, 77, 157, 73, 30, 156, 49}
	for _, p := range []string{"reference/zoo/llama/gguf/llama-f32.gguf", "reference/zoo/qwen2/gguf/qwen2-f32.gguf"} {
		tok, err := Open(filepath.Join(shared, p))
		if err != nil {
			t.Fatal(err)
		}
		checkCases(t, tok, []encCase{{"the program is free", withSpecial, want7}})
	}
	for _, p := range []string{"reference/zoo-modern/qwen3/gguf/qwen3-f32.gguf", "reference/zoo-modern/qwen3/hf/tokenizer.model",
		"reference/zoo/llama/hf/tokenizer.model", "reference/zoo-modern/qwen3/hf"} {
		tok, err := Open(filepath.Join(shared, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		checkCases(t, tok, []encCase{{"the program is free and", withSpecial, want8}, {"the program is free and", EncodeOptions{}, want8[1:]}})
		if s, err := tok.Decode(want8); err != nil || s != "<s>the program is free and" && s != "the program is free and" {
			t.Errorf("%s: Decode = %q, %v", p, s, err)
		}
	}
}

// stories260K: expectations derived by hand from its vocabulary (token i >=
// 259 has score -(i-259); byte tokens <0x00>.. start at id 3).
func TestStories260K(t *testing.T) {
	shared := testref.SharedDir(t)
	tok, err := Open(filepath.Join(shared, "fixtures/gguf/stories260k-v3-f32/stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Info.Model != "llama" || tok.Info.BOS != 1 || tok.Info.EOS != 2 || !tok.Info.AddBOS || !tok.Info.AddSpacePrefix {
		t.Errorf("info %+v", tok.Info)
	}
	checkCases(t, tok, []encCase{
		// ▁t, ▁a, im, on, ▁u, ▁O, ▁On, ce, ▁up, ime, ▁time, ▁Once, ▁upon.
		{"Once upon a time", withSpecial, []int{1, 403, 407, 261, 378}},
		// il, ily, ▁L, ▁Lily.
		{"Lily", EncodeOptions{}, []int{317}},
		// 日 is not a piece: "▁" then its three UTF-8 bytes.
		{"日", EncodeOptions{}, []int{410, 3 + 0xE6, 3 + 0x97, 3 + 0xA5}},
		{"", withSpecial, []int{1}},
		// Control tokens are text unless parsed.
		{"<s>", EncodeOptions{ParseSpecial: true}, []int{1}},
	})
	ids, _ := tok.Encode("<s>", EncodeOptions{})
	if len(ids) < 2 {
		t.Errorf("<s> as plain text gave %v", ids)
	}
	for _, s := range []string{"Once upon a time, Lily saw a big dog.", "日本 é"} {
		ids, err := tok.Encode(s, EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		back, err := tok.Decode(ids)
		if err != nil || back != s {
			t.Errorf("Decode(Encode(%q)) = %q, %v", s, back, err)
		}
	}
}

// gpt2-tiny-random's tokenizer.json: expectations derived by hand from its
// merges (Ġ t=0, h e=1, Ġt he=4, Ġ w=12, a t=14, Ġ c=18, a s=32, Ġw as=64).
func TestGPT2TinyTokenizerJSON(t *testing.T) {
	shared := testref.SharedDir(t)
	dir := filepath.Join(shared, "fixtures/safetensors/gpt2-tiny-random")
	c, err := formats.Open(dir, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tok, err := FromCheckpoint(c)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Info.Source != "tokenizer.json" || tok.Info.Model != "BPE" || tok.Info.AddBOS || tok.Info.AddEOS {
		t.Errorf("info %+v", tok.Info)
	}
	checkCases(t, tok, []encCase{
		{" the", EncodeOptions{}, []int{198}},
		{"the cat was", withSpecial, []int{84, 195, 212, 208, 258}},
		{"<|endoftext|>", EncodeOptions{ParseSpecial: true}, []int{0}},
		{"the<|endoftext|>the", EncodeOptions{ParseSpecial: true}, []int{84, 195, 0, 84, 195}},
	})
	ids, _ := tok.Encode("<|endoftext|>", EncodeOptions{})
	if len(ids) < 2 {
		t.Errorf("<|endoftext|> as plain text gave %v", ids)
	}
	back, err := tok.Decode([]int{84, 195, 212, 208, 258})
	if err != nil || back != "the cat was" {
		t.Errorf("Decode = %q, %v", back, err)
	}
}

// gemma3-tiny-mlx-dllm: a WordLevel vocabulary w1..w63 with <eos> (0) as
// the unknown token, the Whitespace pre-tokenizer (\w+|[^\w\s]+), and an
// added special <|mdlm_mask|> (64) beyond the model's vocabulary.
func TestGemmaWordLevel(t *testing.T) {
	shared := testref.SharedDir(t)
	tok, err := Open(filepath.Join(shared, "fixtures/safetensors/gemma3-tiny-mlx-dllm"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Size() != 65 || tok.Info.UNK != 0 {
		t.Errorf("size %d info %+v", tok.Size(), tok.Info)
	}
	checkCases(t, tok, []encCase{
		{"w1 w2  w63\tw5", withSpecial, []int{1, 2, 63, 5}},
		{"w1 foo", EncodeOptions{}, []int{1, 0}},
		{"w1,w2", EncodeOptions{}, []int{1, 0, 2}},
		{"w7<|mdlm_mask|>w8", EncodeOptions{ParseSpecial: true}, []int{7, 64, 8}},
		{"w7<|mdlm_mask|>w8", EncodeOptions{}, []int{7, 0, 0, 0, 8}}, // "<|" "mdlm_mask" "|>" are unknown words
		{"", withSpecial, nil},
	})
}

func TestRefusals(t *testing.T) {
	for _, doc := range []string{
		`{"model": {"type": "Unigram", "vocab": [["<unk>", 0.0]]}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[a-z]+"}, "behavior": "Isolated"}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Precompiled", "precompiled_charsmap": ""}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}}`,
		`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "UnicodeScripts"}}`,
	} {
		_, err := FromJSON([]byte(doc))
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: err = %v, want ErrUnsupported", doc, err)
		}
	}
}

func TestText(t *testing.T) {
	shared := testref.SharedDir(t)
	for _, c := range []struct {
		vocab string
		text  string
		want  []string
	}{
		{"gpt-2", "Hello world", []string{"Hello", " world"}},
		{"llama-spm", "Hello world", []string{" Hello", " world"}},
		{"llama-spm", "\t", []string{" ", "\t"}},
		{"bert-bge", "Hello tokenization", []string{" hello", " token", "ization"}},
	} {
		tok := loadGGUF(t, filepath.Join(shared, "fixtures/gguf/vocab", "ggml-vocab-"+c.vocab+".gguf"))
		ids, err := tok.Encode(c.text, EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, id := range ids {
			got = append(got, tok.Text(id))
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s %q: Text = %q, want %q", c.vocab, c.text, got, c.want)
		}
	}
}

func TestBertSpecials(t *testing.T) {
	shared := testref.SharedDir(t)
	tok := loadGGUF(t, filepath.Join(shared, "fixtures/gguf/vocab/ggml-vocab-bert-bge.gguf"))
	ids, err := tok.Encode("Hello [SEP] world", EncodeOptions{AddSpecial: true, ParseSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	// [CLS]=101 hello=7592 [SEP]=102 world=2088 [SEP]=102 (bert-base-uncased ids).
	if want := []int{101, 7592, 102, 2088, 102}; !equalInts(ids, want) {
		t.Errorf("got %v, want %v", ids, want)
	}
	if !tok.Info.AddBOS || tok.Info.BOS != 101 || !tok.Info.AddEOS || tok.Info.EOS != 102 || tok.Info.UNK != 100 {
		t.Errorf("info %+v", tok.Info)
	}
}
