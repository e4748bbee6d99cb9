package tokenizer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/internal/testref"
)

// readVectors parses llama.cpp's .inp/.out test pairs exactly as
// reference/tokenizer/README.md specifies.
func readVectors(t *testing.T, inp, outp string) ([]string, [][]int) {
	t.Helper()
	in, err := os.ReadFile(inp)
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	var texts []string
	s := string(in)
	for pos := 0; pos < len(s); {
		k := strings.Index(s[pos:], sep)
		if k < 0 {
			texts = append(texts, s[pos:])
			break
		}
		texts = append(texts, s[pos:pos+k])
		pos += k + len(sep)
	}
	out, err := os.ReadFile(outp)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(out), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var ids [][]int
	for _, line := range lines {
		line = strings.TrimSpace(line)
		var row []int
		if line != "" {
			for _, f := range strings.Split(line, " ") {
				v, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("%s: %v", outp, err)
				}
				row = append(row, v)
			}
		}
		ids = append(ids, row)
	}
	if len(texts) != len(ids) {
		t.Fatalf("%d texts but %d expected lines", len(texts), len(ids))
	}
	return texts, ids
}

func loadGGUF(t testing.TB, path string) *Tokenizer {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(data, gguf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FromGGUF(f, data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return tok
}

func TestLlamaCppVectors(t *testing.T) {
	shared := testref.SharedDir(t)
	for _, name := range []string{"bert-bge", "deepseek-coder", "falcon", "gpt-2", "llama-spm", "phi-3"} {
		t.Run(name, func(t *testing.T) {
			base := "ggml-vocab-" + name + ".gguf"
			tok := loadGGUF(t, filepath.Join(shared, "fixtures/gguf/vocab", base))
			texts, want := readVectors(t, filepath.Join(shared, "reference/tokenizer", base+".inp"),
				filepath.Join(shared, "reference/tokenizer", base+".out"))
			if len(texts) != 46 {
				t.Fatalf("%d test texts, want 46", len(texts))
			}
			fails := 0
			for i, text := range texts {
				got, err := tok.Encode(text, EncodeOptions{})
				if err != nil {
					t.Errorf("test %d %q: %v", i, text, err)
					continue
				}
				if !equalInts(got, want[i]) {
					fails++
					t.Errorf("test %d %q:\n got %v\nwant %v", i, text, got, want[i])
				}
			}
			t.Logf("%s: %d of %d vectors exact", name, len(texts)-fails, len(texts))
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
