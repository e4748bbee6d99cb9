package tokenizer

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// benchText is a long, varied English text with code and tables: every
// README under ../shared, in path order (about 470 KB).
func benchText(b *testing.B, shared string) string {
	var paths []string
	filepath.WalkDir(shared, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	var sb strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		sb.Write(data)
	}
	return sb.String()
}

// BenchmarkEncode reports MB/s of text tokenized (no special tokens) for
// each model type on real vocabularies.
func BenchmarkEncode(b *testing.B) {
	shared := testref.SharedDir(b)
	text := benchText(b, shared)
	vocab := func(name string) *Tokenizer {
		return loadGGUF(b, filepath.Join(shared, "fixtures/gguf/vocab", "ggml-vocab-"+name+".gguf"))
	}
	llama3 := vocab("gpt-2")
	llama3.pre = preSpecs["llama-bpe"].stages()
	cases := []struct {
		name string
		tok  *Tokenizer
	}{
		{"spm/llama-spm", vocab("llama-spm")},
		{"bpe/gpt-2", vocab("gpt-2")},
		{"bpe/gpt-2-vocab+llama3-pre", llama3},
		{"bpe/deepseek-coder", vocab("deepseek-coder")},
		{"wpm/bert-bge", vocab("bert-bge")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			var n int
			for i := 0; i < b.N; i++ {
				ids, err := c.tok.Encode(text, EncodeOptions{})
				if err != nil {
					b.Fatal(err)
				}
				n = len(ids)
			}
			b.ReportMetric(float64(n), "tokens")
		})
	}
}

// BenchmarkLoad measures reading the vocabulary GGUFs.
func BenchmarkLoad(b *testing.B) {
	shared := testref.SharedDir(b)
	for _, name := range []string{"llama-spm", "gpt-2"} {
		path := filepath.Join(shared, "fixtures/gguf/vocab", "ggml-vocab-"+name+".gguf")
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				loadGGUF(b, path)
			}
		})
	}
}

// BenchmarkPreTokenize reports MB/s of the splitters alone.
func BenchmarkPreTokenize(b *testing.B) {
	text := benchText(b, testref.SharedDir(b))
	for _, name := range []string{"gpt-2", "llama-bpe", "qwen2", "gpt-4o", "deepseek-v3", "deepseek-llm", "falcon"} {
		pl := preSpecs[name].stages()
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			var buf []string
			for i := 0; i < b.N; i++ {
				buf = pl.split(text, buf)
			}
		})
	}
}
