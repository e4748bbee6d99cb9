package cmd_test

// Golden tests for the plain (unstyled) text output of ls, meta, layers and
// cat on the project's own fixtures, at 80 and 200 columns. The golden
// files were read by a person before they were accepted; rewrite them with
//
//	go test ./cmd -run Golden -update
//
// and read the diff before committing. Paths are relative to this package
// so that the output does not depend on where the repository lives.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under cmd/testdata/golden")

// goldenCases name a golden file and the arguments that produce it.
var goldenCases = []struct {
	name string
	args []string
}{
	{"ls-tiny-llama", []string{"ls", "../testdata/tiny-llama"}},
	{"ls-gguf-v3", []string{"ls", "../testdata/gguf/tiny-llama-v3-f32.gguf"}},
	{"ls-sharded", []string{"ls", "../testdata/tiny-llama-sharded"}},
	{"ls-split-part", []string{"ls", "../testdata/gguf/tiny-llama-split-00002-of-00003.gguf"}},
	{"ls-match", []string{"ls", "../testdata/gguf/tiny-llama-v3-f32.gguf", "--match", `blk\.0\.attn`}},
	{"meta-tiny-llama", []string{"meta", "../testdata/tiny-llama"}},
	{"meta-gguf-v3", []string{"meta", "../testdata/gguf/tiny-llama-v3-f32.gguf"}},
	{"meta-sharded", []string{"meta", "../testdata/tiny-llama-sharded"}},
	{"meta-split-part", []string{"meta", "../testdata/gguf/tiny-llama-split-00002-of-00003.gguf"}},
	{"meta-key", []string{"meta", "../testdata/gguf/tiny-llama-v3-f32.gguf", "--key", "tokenizer.ggml.tokens"}},
	{"layers-tiny-llama", []string{"layers", "../testdata/tiny-llama"}},
	{"layers-gguf-v3", []string{"layers", "../testdata/gguf/tiny-llama-v3-f32.gguf"}},
	{"layers-sharded", []string{"layers", "../testdata/tiny-llama-sharded"}},
	{"layers-split-part", []string{"layers", "../testdata/gguf/tiny-llama-split-00002-of-00003.gguf"}},
	{"cat-gguf-v3", []string{"cat", "../testdata/gguf/tiny-llama-v3-f32.gguf", "blk.0.attn_k.weight", "--rows", "2"}},
	{"cat-norm", []string{"cat", "../testdata/tiny-llama", "model.norm.weight"}},
	{"cat-split-part", []string{"cat", "../testdata/gguf/tiny-llama-split-00002-of-00003.gguf", "output_norm.weight"}},
	{"err-ls-missing", []string{"ls", "../testdata/no-such-model"}},
	{"err-cat-no-tensor", []string{"cat", "../testdata/tiny-llama", "no.such.tensor"}},
}

// goldenOutput is what a golden file holds: stdout, then the exit status
// and stderr when the command failed or warned.
func goldenOutput(width int, args []string) string { return modeOutput(width, false, args) }

// modeOutput is goldenOutput with the streams of one mode: plain at a
// width, or ASCII (TERM=dumb) when ascii is set.
func modeOutput(width int, ascii bool, args []string) string {
	var out, errb bytes.Buffer
	code := cmd.Run(context.Background(), args, &cmd.Streams{In: strings.NewReader(""), Out: &out, Err: &errb, Width: width, ASCII: ascii})
	s := out.String()
	if code != 0 || errb.Len() > 0 {
		s += fmt.Sprintf("--- exit %d, stderr:\n%s", code, errb.String())
	}
	return s
}

// matchGolden compares got with testdata/golden/name, or writes it there
// with -update; what names the run in a failure.
func matchGolden(t *testing.T, name, got, what string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with go test ./cmd -update, then read it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n%s", what, path, lineDiff(string(want), got))
	}
}

func TestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	if *updateGolden {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range goldenCases {
		for _, width := range []int{80, 200} {
			name := fmt.Sprintf("%s.w%d.txt", c.name, width)
			t.Run(name, func(t *testing.T) {
				matchGolden(t, name, goldenOutput(width, c.args), fmt.Sprintf("qkv %s at width %d", strings.Join(c.args, " "), width))
			})
		}
	}
}

// TestGoldenPlain: unstyled output never holds escape sequences, and no
// line of the tables ends in spaces.
func TestGoldenPlain(t *testing.T) {
	for _, c := range goldenCases {
		got := goldenOutput(80, c.args)
		if strings.Contains(got, "\x1b") {
			t.Errorf("qkv %s: escape sequence in unstyled output", strings.Join(c.args, " "))
		}
		for i, line := range strings.Split(got, "\n") {
			if strings.TrimRight(line, " ") != line {
				t.Errorf("qkv %s: line %d ends in spaces: %q", strings.Join(c.args, " "), i+1, line)
				break
			}
		}
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(w), len(g)) && shown < 10; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d\n  want %q\n  got  %q\n", i+1, wl, gl)
			shown++
		}
	}
	return b.String()
}
