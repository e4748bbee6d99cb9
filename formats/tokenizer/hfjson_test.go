package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/internal/testref"
)

// ggufStrings reads a whole string array from a GGUF file.
func ggufStrings(t *testing.T, path, key string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(data, gguf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kv, ok := f.Lookup(key)
	if !ok {
		t.Fatalf("%s: no %s", path, key)
	}
	vals, err := f.Array(data, kv, 0, int(kv.Count))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = v.(string)
	}
	return out
}

// hfFromGGUF writes the tokenizer.json a Hugging Face conversion of the GGUF
// vocabulary would have, with the given pipeline sections.
func hfFromGGUF(t *testing.T, tok *Tokenizer, vocab map[string]int, merges []string, sections map[string]any, model map[string]any) []byte {
	t.Helper()
	var added []map[string]any
	for id, ty := range tok.types {
		if ty == TypeControl || ty == TypeUserDefined {
			added = append(added, map[string]any{"id": id, "content": tok.tokens[id], "special": ty == TypeControl,
				"single_word": false, "lstrip": false, "rstrip": false, "normalized": false})
		}
	}
	m := map[string]any{"vocab": vocab}
	if merges != nil {
		m["merges"] = merges
	}
	for k, v := range model {
		m[k] = v
	}
	doc := map[string]any{"version": "1.0", "added_tokens": added, "model": m}
	for k, v := range sections {
		doc[k] = v
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vocabMap(tok *Tokenizer) map[string]int {
	v := make(map[string]int, len(tok.tokens))
	for i, s := range tok.tokens {
		v[s] = i
	}
	return v
}

func raw(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		panic(err)
	}
	return v
}

// TestJSONFromGGUFVocab builds tokenizer.json documents from the vocabulary
// GGUFs (as Hugging Face's conversions of these models are laid out) and
// checks them on llama.cpp's test vectors, whose ids came from the original
// Hugging Face tokenizers.
func TestJSONFromGGUFVocab(t *testing.T) {
	shared := testref.SharedDir(t)
	cases := []struct {
		name     string // the vocabulary (and test vectors)
		sections string
		model    string
		build    func(t *testing.T, tok *Tokenizer, path string) (map[string]int, []string)
		// metaspace: Hugging Face's Metaspace pre-tokenizer does not add "▁"
		// to a text that already starts with a space (it is "▁" after the
		// replacement), unlike SentencePiece: the vectors of texts that
		// start with a space do not apply; those texts are checked against
		// what tokenizers.js 0.2.0 gives instead.
		metaspace bool
	}{
		{"gpt-2", `{"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
			"decoder": {"type": "ByteLevel"}}`, `{"type": "BPE"}`, bpeBuild, false},
		{"falcon", `{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
			{"type": "Punctuation", "behavior": "Contiguous"},
			{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
			{"type": "Digits", "individual_digits": false},
			{"type": "Split", "pattern": {"Regex": "[0-9][0-9][0-9]"}, "behavior": "Isolated", "invert": false}]},
			"decoder": {"type": "ByteLevel"}}`, `{"type": "BPE"}`, bpeBuild, false},
		{"deepseek-coder", `{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
			{"type": "Split", "pattern": {"Regex": "[\r\n]"}, "behavior": "Isolated", "invert": false},
			{"type": "Split", "pattern": {"Regex": "\\s?\\p{L}+"}, "behavior": "Isolated", "invert": false},
			{"type": "Split", "pattern": {"Regex": "\\s?\\p{P}+"}, "behavior": "Isolated", "invert": false},
			{"type": "Split", "pattern": {"Regex": "[一-龥ࠀ-一가-퟿]+"}, "behavior": "Isolated", "invert": false},
			{"type": "Split", "pattern": {"Regex": "\\p{N}"}, "behavior": "Isolated", "invert": false},
			{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
			"decoder": {"type": "ByteLevel"}}`, `{"type": "BPE"}`, bpeBuild, false},
		{"bert-bge", `{"normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
			"pre_tokenizer": {"type": "BertPreTokenizer"},
			"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
				"special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [101], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [102], "tokens": ["[SEP]"]}}},
			"decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true}}`,
			`{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100}`, wordPieceBuild, false},
		{"llama-spm", `{"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
			"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
				"special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
			"decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}}`,
			`{"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true}`, spmMergesBuild, false},
		// The newer layout of the same tokenizer: a Metaspace pre-tokenizer
		// instead of the Prepend/Replace normalizers.
		{"llama-spm", `{"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false},
			"decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}}`,
			`{"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true}`, spmMergesBuild, true},
	}
	metaspaceIDs := map[string][]int{" ": {29871}, "  ": {259}, " Hello world": {15043, 3186}} // tokenizers.js 0.2.0
	for i, c := range cases {
		t.Run(fmt.Sprintf("%d-%s", i, c.name), func(t *testing.T) {
			base := "ggml-vocab-" + c.name + ".gguf"
			path := filepath.Join(shared, "fixtures/gguf/vocab", base)
			tok := loadGGUF(t, path)
			vocab, merges := c.build(t, tok, path)
			var sections, model map[string]any
			if err := json.Unmarshal([]byte(c.sections), &sections); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(c.model), &model); err != nil {
				t.Fatal(err)
			}
			doc := hfFromGGUF(t, tok, vocab, merges, sections, model)
			hf, err := FromJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			texts, want := readVectors(t, filepath.Join(shared, "reference/tokenizer", base+".inp"),
				filepath.Join(shared, "reference/tokenizer", base+".out"))
			fails, skipped := 0, 0
			if c.metaspace {
				for text, w := range metaspaceIDs {
					if got, err := hf.Encode(text, EncodeOptions{}); err != nil || !equalInts(got, w) {
						t.Errorf("Metaspace %q: got %v, %v, want %v", text, got, err, w)
					}
				}
			}
			for i, text := range texts {
				if c.metaspace && strings.HasPrefix(text, " ") {
					skipped++
					continue
				}
				got, err := hf.Encode(text, EncodeOptions{})
				if err != nil {
					t.Errorf("test %d %q: %v", i, text, err)
					continue
				}
				// The WordPiece ids are the GGUF's: the vocabulary is the same list.
				if !equalInts(got, want[i]) {
					fails++
					t.Errorf("test %d %q:\n got %v\nwant %v", i, text, got, want[i])
				}
			}
			t.Logf("%s as tokenizer.json: %d of %d vectors exact (%d not applicable)", c.name, len(texts)-fails-skipped, len(texts)-skipped, skipped)
		})
	}
}

func bpeBuild(t *testing.T, tok *Tokenizer, path string) (map[string]int, []string) {
	return vocabMap(tok), ggufStrings(t, path, "tokenizer.ggml.merges")
}

// wordPieceBuild turns llama.cpp's "▁word"/"piece" vocabulary back into
// BERT's "word"/"##piece".
func wordPieceBuild(t *testing.T, tok *Tokenizer, _ string) (map[string]int, []string) {
	v := make(map[string]int, len(tok.tokens))
	for i, s := range tok.tokens {
		switch {
		case tok.types[i] == TypeControl || strings.HasPrefix(s, "[unused"):
			v[s] = i
		case strings.HasPrefix(s, spaceMark):
			v[s[len(spaceMark):]] = i
		default:
			v["##"+s] = i
		}
	}
	for s, id := range v {
		tok.tokens[id] = s
	}
	return v, nil
}

// spmMergesBuild derives BPE merges from a SentencePiece vocabulary the way
// Hugging Face's converter does: every split of a piece into two pieces is
// a merge, ordered by the score of the merged piece (highest first).
func spmMergesBuild(t *testing.T, tok *Tokenizer, _ string) (map[string]int, []string) {
	type mg struct {
		a, b  string
		score float32
		id    int
		bid   int
	}
	var ms []mg
	for i, s := range tok.tokens {
		if tok.types[i] != TypeNormal {
			continue
		}
		for k := 1; k < len(s); k++ {
			if !strings.HasPrefix(s[k:], "") || (s[k]&0xC0) == 0x80 {
				continue
			}
			a, b := s[:k], s[k:]
			ia, ok1 := tok.byText[a]
			ib, ok2 := tok.byText[b]
			if ok1 && ok2 && tok.types[ia] == TypeNormal && tok.types[ib] == TypeNormal {
				ms = append(ms, mg{a, b, tok.scores[i], i, int(ia)})
			}
		}
	}
	sort.SliceStable(ms, func(x, y int) bool {
		if ms[x].score != ms[y].score {
			return ms[x].score > ms[y].score
		}
		return ms[x].id < ms[y].id
	})
	merges := make([]string, len(ms))
	for i, m := range ms {
		merges[i] = m.a + " " + m.b
	}
	return vocabMap(tok), merges
}

// TestDumpForAnchor writes, when QKV_TOKENIZER_DUMP names a folder, the
// tokenizer.json documents of TestJSONFromGGUFVocab, the benchmark text and
// qkv's ids for it, so that another implementation (Hugging Face
// tokenizers.js) can be run on them side by side. It does nothing otherwise.
func TestDumpForAnchor(t *testing.T) {
	dir := os.Getenv("QKV_TOKENIZER_DUMP")
	if dir == "" {
		t.Skip("QKV_TOKENIZER_DUMP not set")
	}
	shared := testref.SharedDir(t)
	text := benchText(&testing.B{}, shared)
	if err := os.WriteFile(filepath.Join(dir, "text.txt"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	docs := map[string]struct {
		sections, model string
		build           func(t *testing.T, tok *Tokenizer, path string) (map[string]int, []string)
	}{
		"gpt-2": {`{"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}, "decoder": {"type": "ByteLevel"}}`, `{"type": "BPE"}`, bpeBuild},
		"bert-bge": {`{"normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true}, "pre_tokenizer": {"type": "BertPreTokenizer"}}`,
			`{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100}`, wordPieceBuild},
		"llama-spm": {`{"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}}`,
			`{"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true}`, spmMergesBuild},
	}
	ours := map[string][]int{}
	for name, d := range docs {
		path := filepath.Join(shared, "fixtures/gguf/vocab", "ggml-vocab-"+name+".gguf")
		tok := loadGGUF(t, path)
		// Hugging Face always extracts added special tokens (add_special_tokens only
		// controls the template), so compare in the ParseSpecial mode.
		ggufIDs, err := tok.Encode(text, EncodeOptions{ParseSpecial: true})
		if err != nil {
			t.Fatal(err)
		}
		vocab, merges := d.build(t, tok, path)
		var sections, model map[string]any
		json.Unmarshal([]byte(d.sections), &sections)
		json.Unmarshal([]byte(d.model), &model)
		doc := hfFromGGUF(t, tok, vocab, merges, sections, model)
		if err := os.WriteFile(filepath.Join(dir, name+".json"), doc, 0o644); err != nil {
			t.Fatal(err)
		}
		hf, err := FromJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := hf.Encode(text, EncodeOptions{ParseSpecial: true})
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(ids, ggufIDs) {
			t.Errorf("%s: tokenizer.json and GGUF ids differ on the benchmark text", name)
		}
		ours[name] = ids
	}
	b, _ := json.Marshal(ours)
	if err := os.WriteFile(filepath.Join(dir, "qkv-ids.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
