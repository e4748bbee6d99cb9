package cmd_test

// Golden tests of qkv attn's text report at 80 and 160 columns and in ASCII
// mode (TERM=dumb), on testdata's tiny Llama, on stories260K with real
// text through its own tokenizer (with --logits and --all), and on a
// zoo-modern model (Qwen3 with Q/K norms, an induction test). The golden
// files were read by a person before they were accepted; rewrite them with
//
//	go test ./cmd -run AttnGolden -update
//
// and read the diff before committing.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/qkvdev/qkv/internal/termui"
	"github.com/qkvdev/qkv/internal/testref"
)

// attnGoldenCases name a golden file and the arguments that produce it;
// "@shared" in an argument stands for ../shared (the case is skipped
// without it).
var attnGoldenCases = []struct {
	name string
	args []string
}{
	{"tiny-llama", []string{"attn", "../testdata/tiny-llama", "--tokens", "1,5,9,12,7"}},
	{"tiny-llama-all-raw", []string{"attn", "../testdata/tiny-llama", "--all", "--random", "6", "--seed", "2", "--heads", "0,1,2"}},
	{"stories260k", []string{"attn", "@shared/fixtures/gguf/stories260k-v3-f32", "--text", "Lily and Tom went to the park.", "--layer", "4", "--logits"}},
	{"stories260k-all", []string{"attn", "@shared/fixtures/gguf/stories260k-v3-f32", "--text", "Lily and Tom went to the park.", "--all", "--heads", "1,6"}},
	{"qwen3-repeat", []string{"attn", "@shared/reference/zoo-modern/qwen3/hf", "--all", "--random-repeat", "6", "--seed", "1"}},
}

func TestAttnGolden(t *testing.T) {
	for _, c := range attnGoldenCases {
		args := append([]string(nil), c.args...)
		for i, a := range args {
			if strings.HasPrefix(a, "@shared/") {
				shared := testref.SharedDir(t)
				args[i] = filepath.Join(shared, strings.TrimPrefix(a, "@shared/"))
			}
		}
		for _, mode := range []struct {
			suffix string
			width  int
			ascii  bool
		}{{"w80", 80, false}, {"w160", 160, false}, {"ascii", 80, true}} {
			name := fmt.Sprintf("attn-%s.%s.txt", c.name, mode.suffix)
			t.Run(name, func(t *testing.T) {
				got := modeOutput(mode.width, mode.ascii, args)
				checkAttnLines(t, got, mode.width, mode.ascii)
				matchGolden(t, name, got, fmt.Sprintf("qkv %s at %s", strings.Join(c.args, " "), mode.suffix))
			})
		}
	}
}

// checkAttnLines: no line is wider than the width or ends in spaces; plain
// output holds no escape sequence; ASCII output nothing but ASCII.
func checkAttnLines(t *testing.T, out string, width int, ascii bool) {
	t.Helper()
	if strings.Contains(out, "\x1b") {
		t.Error("escape sequence in unstyled output")
	}
	for i, line := range strings.Split(out, "\n") {
		if w := termui.Width(line); w > width {
			t.Errorf("line %d is %d columns wide, more than %d: %q", i+1, w, width, line)
		}
		if strings.TrimRight(line, " ") != line {
			t.Errorf("line %d ends in spaces: %q", i+1, line)
		}
		if ascii && strings.HasPrefix(line, "qkv: ") {
			continue // messages on stderr keep the names they quote
		}
		if ascii && !isASCII(line) {
			t.Errorf("line %d is not ASCII: %q", i+1, line)
		}
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// TestAttnLayoutWidths: at every width from 80 to 240 nothing is wider than
// the terminal, and from 160 columns the heatmaps are placed side by side.
func TestAttnLayoutWidths(t *testing.T) {
	args := []string{"attn", "../testdata/tiny-llama", "--tokens", "1,5,9,12,7,3,8,2,11,4"}
	for _, w := range []int{80, 97, 120, 159, 160, 200, 240} {
		out := modeOutput(w, false, args)
		checkAttnLines(t, out, w, false)
		// The title line of each heatmap row: "head 0 (kv 0) max …".
		perLine := 0
		for _, line := range strings.Split(out, "\n") {
			perLine = max(perLine, strings.Count(line, "(kv "))
		}
		if w >= 160 && perLine < 2 {
			t.Errorf("width %d: heatmaps not side by side:\n%s", w, out)
		}
	}
}
