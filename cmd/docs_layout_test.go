package cmd_test

// Golden tests of the text of ls, meta, layers, diff, tokenize and verify at
// 80 and 160 columns and in ASCII mode (TERM=dumb, 80 columns), and a sweep
// of widths from 80 to 240 in which no line is wider than the terminal. The
// golden files were read by a person before they were accepted; rewrite
// them with
//
//	go test ./cmd -run DocsLayoutGolden -update
//
// and read the diff before committing.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/termui"
	"github.com/qkvdev/qkv/internal/testref"
)

// docsLayoutCases name a golden file and the arguments that produce it;
// "@shared/" starts a path under ../shared, given relative to this package
// so that the output does not depend on where the folders are (the case is
// skipped without ../shared).
var docsLayoutCases = []struct {
	name string
	args []string
}{
	{"ls-sharded", []string{"ls", "../testdata/tiny-llama-sharded"}},
	{"ls-deepseek", []string{"ls", "@shared/reference/zoo-modern/deepseek_v3/hf", "--match", "layers\\.0\\."}},
	{"meta-stories260k", []string{"meta", "@shared/fixtures/gguf/stories260k-v3-f32/stories260K.gguf"}},
	{"meta-gemma3-full", []string{"meta", "@shared/reference/zoo-modern/gemma3/hf", "--full"}},
	{"layers-gpt2", []string{"layers", "@shared/reference/zoo/gpt2/hf"}},
	{"layers-deepseek", []string{"layers", "@shared/reference/zoo-modern/deepseek_v3/hf"}},
	{"layers-gemma3-gguf", []string{"layers", "@shared/reference/zoo-modern/gemma3/gguf/gemma3-f32.gguf"}},
	{"diff-llama-q4", []string{"diff", "@shared/reference/zoo/llama/hf", "@shared/reference/zoo/llama/gguf/llama-Q4_K_M.gguf", "--fail-above", "rel_fro=0.05"}},
	{"diff-llama-identical", []string{"diff", "@shared/reference/zoo/llama/hf", "@shared/reference/zoo/llama/gguf/llama-f32.gguf"}},
	{"tokenize-stories260k", []string{"tokenize", "@shared/fixtures/gguf/stories260k-v3-f32/stories260K.gguf",
		"Once upon a time there was a little girl named Lily who loved to play outside in the park with her friends."}},
	{"verify-sharded", []string{"verify", "../testdata/tiny-llama-sharded"}},
}

// docsLayoutArgs resolves "@shared/" in the arguments.
func docsLayoutArgs(t *testing.T, args []string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if rest, ok := strings.CutPrefix(a, "@shared/"); ok {
			shared := testref.SharedDir(t)
			// ../shared beside the repository (a symbolic link included) is
			// named as such, so the goldens hold ../../shared.
			beside := filepath.Join("..", "..", "shared")
			if st1, err := os.Stat(shared); err == nil {
				if st2, err := os.Stat(beside); err == nil && os.SameFile(st1, st2) {
					out[i] = filepath.ToSlash(filepath.Join(beside, filepath.FromSlash(rest)))
					continue
				}
			}
			wd, err := os.Getwd()
			if err != nil {
				t.Fatal(err)
			}
			rel, err := filepath.Rel(wd, filepath.Join(shared, filepath.FromSlash(rest)))
			if err != nil {
				t.Fatal(err)
			}
			out[i] = filepath.ToSlash(rel)
		}
	}
	return out
}

var docsLayoutModes = []struct {
	suffix string
	width  int
	ascii  bool
}{{"w80", 80, false}, {"w160", 160, false}, {"ascii", 80, true}}

func TestDocsLayoutGolden(t *testing.T) {
	for _, c := range docsLayoutCases {
		for _, mode := range docsLayoutModes {
			name := fmt.Sprintf("%s.%s.txt", c.name, mode.suffix)
			t.Run(name, func(t *testing.T) {
				args := docsLayoutArgs(t, c.args)
				got := modeOutput(mode.width, mode.ascii, args)
				checkDocsLines(t, got, mode.width, mode.ascii)
				matchGolden(t, name, got, fmt.Sprintf("qkv %s at %s", strings.Join(c.args, " "), mode.suffix))
			})
		}
	}
}

// TestDocsLayoutWidths: at every width from 80 to 240, plain and styled,
// no line is wider than the terminal.
func TestDocsLayoutWidths(t *testing.T) {
	for _, c := range docsLayoutCases {
		args := docsLayoutArgs(t, c.args)
		for _, w := range []int{80, 81, 97, 120, 159, 160, 200, 240} {
			for _, styled := range []bool{false, true} {
				var out, errb bytes.Buffer
				s := &cmd.Streams{In: strings.NewReader(""), Out: &out, Err: &errb, Width: w, Styled: styled}
				cmd.Run(context.Background(), args, s)
				for i, line := range strings.Split(out.String(), "\n") {
					if lw := termui.Width(line); lw > w {
						t.Errorf("%s at %d columns (styled %v): line %d is %d wide: %q", c.name, w, styled, i+1, lw, line)
					}
				}
			}
		}
	}
}

// checkDocsLines: no line is wider than the width or ends in spaces; plain
// output holds no escape sequence; ASCII output nothing but ASCII (stderr's
// messages keep the names they quote).
func checkDocsLines(t *testing.T, out string, width int, ascii bool) {
	t.Helper()
	if strings.Contains(out, "\x1b") {
		t.Error("escape sequence in unstyled output")
	}
	stdout, _, _ := strings.Cut(out, "--- exit ")
	for i, line := range strings.Split(stdout, "\n") {
		if w := termui.Width(line); w > width {
			t.Errorf("line %d is %d columns wide, more than %d: %q", i+1, w, width, line)
		}
		if strings.TrimRight(line, " ") != line {
			t.Errorf("line %d ends in spaces: %q", i+1, line)
		}
		if ascii && !utf8Only7(line) {
			t.Errorf("line %d is not ASCII: %q", i+1, line)
		}
	}
}

func utf8Only7(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
