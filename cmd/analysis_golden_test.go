package cmd_test

// Golden tests of the analysis commands' text (circuits, inspect, report's
// stdout) at 80 and 160 columns, unstyled; rewrite them with
//
//	go test ./cmd -run AnalysisGolden -update
//
// and read the diff before committing.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"
)

// analysisGolden are the cases: a name (the file is <name>.w<width>.txt)
// and the arguments.
var analysisGolden = []struct {
	name string
	args []string
}{
	{"circuits-tiny-llama", []string{"circuits", "../testdata/tiny-llama"}},
	{"inspect-tiny-llama", []string{"inspect", "../testdata/tiny-llama"}},
	{"inspect-layers", []string{"inspect", "../testdata/tiny-llama", "--layers", "3"}},
	{"inspect-heads", []string{"inspect", "../testdata/gguf/tiny-llama-v3-f32.gguf", "--heads", "--layers", "1"}},
	{"inspect-markdown", []string{"inspect", "../testdata/tiny-llama", "--format", "markdown", "--layers", "1-3"}},
	{"circuits-gguf-layers", []string{"circuits", "../testdata/gguf/tiny-llama-v3-f32.gguf", "--layers", "1-3", "--top", "5", "--per-head", "6", "--raw-only"}},
}

func TestAnalysisGolden(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	for _, c := range analysisGolden {
		for _, width := range []int{80, 160} {
			name := fmt.Sprintf("%s.w%d.txt", c.name, width)
			t.Run(name, func(t *testing.T) {
				got := goldenOutput(width, c.args)
				for i, line := range strings.Split(got, "\n") {
					// Markdown is laid out by whatever renders it.
					if w := lipgloss.Width(line); w > width && !slices.Contains(c.args, "markdown") {
						t.Errorf("line %d is %d columns wide, more than %d: %q", i+1, w, width, line)
					}
					if strings.TrimRight(line, " ") != line {
						t.Errorf("line %d ends in spaces: %q", i+1, line)
					}
				}
				if strings.Contains(got, "\x1b") {
					t.Error("escape sequence in unstyled output")
				}
				path := filepath.Join(dir, name)
				if *updateGolden {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (create it with go test ./cmd -run AnalysisGolden -update, then read it)", err)
				}
				if got != string(want) {
					t.Errorf("qkv %s at width %d differs from %s:\n%s", strings.Join(c.args, " "), width, path, lineDiff(string(want), got))
				}
			})
		}
	}
}
