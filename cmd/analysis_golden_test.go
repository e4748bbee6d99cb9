package cmd_test

// Golden tests of the analysis commands' text (circuits, inspect, report's
// stdout) at 80 and 160 columns, unstyled, and on an 80-column ASCII
// terminal (.ascii.txt); rewrite them with
//
//	go test ./cmd -run AnalysisGolden -update
//
// and read the diff before committing.

import (
	"fmt"
	"path/filepath"
	"regexp"
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
	{"report-tiny-llama", []string{"report", "../testdata/tiny-llama", "-o", "$OUT"}},
	{"report-gguf-tokens", []string{"report", "../testdata/gguf/tiny-llama-v3-f32.gguf", "-o", "$OUT", "--tokens", "1,5,9,12", "--attn-layers", "0,3", "--circuits", "off"}},
	{"circuits-tiny-llama", []string{"circuits", "../testdata/tiny-llama"}},
	{"inspect-tiny-llama", []string{"inspect", "../testdata/tiny-llama"}},
	{"inspect-esd", []string{"inspect", "../testdata/tiny-llama", "--esd"}},
	{"inspect-layers", []string{"inspect", "../testdata/tiny-llama", "--layers", "3"}},
	{"inspect-heads", []string{"inspect", "../testdata/gguf/tiny-llama-v3-f32.gguf", "--heads", "--layers", "1"}},
	{"inspect-markdown", []string{"inspect", "../testdata/tiny-llama", "--format", "markdown", "--layers", "1-3"}},
	{"circuits-gguf-layers", []string{"circuits", "../testdata/gguf/tiny-llama-v3-f32.gguf", "--layers", "1-3", "--top", "5", "--per-head", "6", "--raw-only"}},
}

// reportSize is the page's size in report's summary: it changes with
// anything in the page, the version that wrote it included.
var reportSize = regexp.MustCompile(`\([0-9.]+ (B|KiB|MiB)\)`)

func TestAnalysisGolden(t *testing.T) {
	for _, c := range analysisGolden {
		for _, width := range []int{80, 160, 0} {
			name := fmt.Sprintf("%s.w%d.txt", c.name, width)
			if width == 0 {
				if slices.Contains(c.args, "markdown") {
					continue // for a Markdown renderer, not a terminal
				}
				name = c.name + ".ascii.txt"
			}
			t.Run(name, func(t *testing.T) {
				// $OUT is a file in a temporary folder, named $OUT in the output.
				out := filepath.Join(t.TempDir(), "report.html")
				args := slices.Clone(c.args)
				for i, a := range args {
					if a == "$OUT" {
						args[i] = out
					}
				}
				var got string
				if width == 0 {
					got, width = modeOutput(80, true, args), 80
					for i, r := range got {
						if r >= 0x80 {
							t.Errorf("non-ASCII %q at byte %d: %q", r, i, got[max(0, i-40):min(len(got), i+40)])
							break
						}
					}
				} else {
					got = goldenOutput(width, args)
				}
				got = reportSize.ReplaceAllString(strings.ReplaceAll(got, out, "$OUT"), "(SIZE)")
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
				matchGolden(t, name, got, fmt.Sprintf("qkv %s at width %d", strings.Join(c.args, " "), width))
			})
		}
	}
}
