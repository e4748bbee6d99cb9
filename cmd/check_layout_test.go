package cmd_test

// Golden tests of the text of qkv check, cat and merge at 80 and 160
// columns and in ASCII mode (TERM=dumb). The golden files were read by a
// person before they were accepted; rewrite them with
//
//	go test ./cmd -run GateGolden -update
//
// and read the diff before committing.

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/termui"
)

func TestGateGolden(t *testing.T) {
	// The parts of a sharded check and inspect of tiny-llama, for merge.
	dir := t.TempDir()
	var checkParts, inspectParts []string
	for i := 0; i < 3; i++ {
		for _, c := range []struct {
			args  []string
			parts *[]string
		}{{[]string{"check", "../testdata/tiny-llama"}, &checkParts}, {[]string{"inspect", "../testdata/tiny-llama", "--json"}, &inspectParts}} {
			args := append(append([]string{}, c.args...), "--shard", fmt.Sprintf("%d/3", i))
			code, out, errs := run(args...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s", args, code, errs)
			}
			p := filepath.Join(dir, fmt.Sprintf("%s-%d.json", c.args[0], i))
			if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
			*c.parts = append(*c.parts, p)
		}
	}
	cases := []struct {
		name string
		args []string
	}{
		{"check-tiny-llama", []string{"check", "../testdata/tiny-llama"}},
		{"check-gguf-v3", []string{"check", "../testdata/gguf/tiny-llama-v3-f32.gguf"}},
		{"check-exact-warn", []string{"check", "../testdata/tiny-llama", "--exact", "--warn-on", "dead_head,duplicate_heads,outlier_norm"}},
		{"check-markdown", []string{"check", "../testdata/tiny-llama", "--format", "markdown"}},
		{"cat-norm", []string{"cat", "../testdata/tiny-llama", "model.norm.weight", "--rows", "1"}},
		{"cat-q-rows", []string{"cat", "../testdata/gguf/tiny-llama-v3-f32.gguf", "blk.1.attn_q.weight", "--rows", "2"}},
		{"merge-check", append([]string{"merge"}, checkParts...)},
		{"merge-inspect", append([]string{"merge"}, inspectParts...)},
	}
	for _, c := range cases {
		for _, mode := range []struct {
			suffix string
			width  int
			ascii  bool
		}{{"w80", 80, false}, {"w160", 160, false}, {"ascii", 80, true}} {
			name := fmt.Sprintf("%s.%s.txt", c.name, mode.suffix)
			t.Run(name, func(t *testing.T) {
				got := modeOutput(mode.width, mode.ascii, c.args)
				for i, l := range strings.Split(got, "\n") {
					if w := termui.Width(l); w > mode.width && !strings.HasPrefix(c.name, "check-markdown") {
						t.Errorf("line %d is %d columns wide (limit %d): %q", i+1, w, mode.width, l)
					}
					if mode.ascii && !strings.HasPrefix(c.name, "check-markdown") && !strings.HasPrefix(c.name, "merge-inspect") {
						for _, r := range l {
							if r > 0x7e {
								t.Errorf("ASCII mode: line %d holds %q", i+1, r)
								break
							}
						}
					}
				}
				matchGolden(t, name, got, "qkv "+strings.Join(c.args, " "))
			})
		}
	}
}

// TestCheckJUnitUnreadable: an input that cannot be read at all still
// gives a valid JUnit report, with one failing test case, and exit 3.
func TestCheckJUnitUnreadable(t *testing.T) {
	for _, path := range []string{filepath.Join(t.TempDir(), "no-such-model"), checkTempFile(t, "x.txt", "hello")} {
		code, out, errs := run("check", path, "--format", "junit")
		if code != cmd.ExitInput || !strings.HasPrefix(errs, "qkv: ") {
			t.Fatalf("%s: exit %d, stderr %q", path, code, errs)
		}
		var doc struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Suite    []struct {
				Cases []struct {
					Name    string `xml:"name,attr"`
					Failure []struct {
						Message string `xml:"message,attr"`
					} `xml:"failure"`
				} `xml:"testcase"`
			} `xml:"testsuite"`
		}
		if err := xml.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%s: not XML: %v\n%s", path, err, out)
		}
		if doc.Tests != 1 || doc.Failures != 1 || len(doc.Suite) != 1 || len(doc.Suite[0].Cases) != 1 || len(doc.Suite[0].Cases[0].Failure) != 1 ||
			doc.Suite[0].Cases[0].Name != path || !strings.Contains(errs, doc.Suite[0].Cases[0].Failure[0].Message) {
			t.Errorf("%s: report %+v, stderr %q", path, doc, errs)
		}
	}
}

// TestCheckGitHubSummary: --format github writes the annotations to stdout
// and appends the markdown summary to $GITHUB_STEP_SUMMARY; merge does the
// same for check parts.
func TestCheckGitHubSummary(t *testing.T) {
	summary := filepath.Join(t.TempDir(), "summary.md")
	os.WriteFile(summary, []byte("earlier step\n"), 0o644)
	t.Setenv("GITHUB_STEP_SUMMARY", summary)
	code, out, _ := run("check", "../testdata/tiny-llama", "--format", "github")
	if code != cmd.ExitFindings || !strings.HasPrefix(out, "::error title=qkv dead_head") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	_, md, _ := run("check", "../testdata/tiny-llama", "--format", "markdown")
	b, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "earlier step\n"+md {
		t.Errorf("summary file:\n%s\nwant the earlier step, then:\n%s", b, md)
	}
	t.Setenv("GITHUB_STEP_SUMMARY", "")
	if code, out2, _ := run("check", "../testdata/tiny-llama", "--format", "github"); code != cmd.ExitFindings || out2 != out {
		t.Errorf("without GITHUB_STEP_SUMMARY: exit %d", code)
	}
}

// TestGateProgress: check, extract and export draw their progress on a
// terminal's stderr (Streams.Progress) and clear it; stdout is the same as
// without.
func TestGateProgress(t *testing.T) {
	out := filepath.Join(t.TempDir(), "o.safetensors")
	for _, c := range []struct {
		args []string
		unit string
	}{
		{[]string{"check", "../testdata/tiny-llama"}, "tensors"},
		{[]string{"extract", "../testdata/tiny-llama", "-o", out}, "layers"},
		{[]string{"export", "../testdata/tiny-llama", "-o", out}, "tensors"},
	} {
		var plain, withBar, errb bytes.Buffer
		cmd.Run(context.Background(), c.args, &cmd.Streams{In: strings.NewReader(""), Out: &plain, Err: &bytes.Buffer{}, Width: 80})
		cmd.Run(context.Background(), c.args, &cmd.Streams{In: strings.NewReader(""), Out: &withBar, Err: &errb, Width: 80, Progress: true})
		if plain.String() != withBar.String() {
			t.Errorf("%v: stdout differs with progress", c.args)
		}
		e := errb.String()
		if i := strings.LastIndex(e, "Wrote "); i >= 0 && c.args[0] != "check" {
			e = e[:i] // extract and export end with what they wrote, after the bar
		}
		if !strings.Contains(e, c.args[0]) || !strings.Contains(e, c.unit) || !strings.HasSuffix(e, "\r\x1b[K") {
			t.Errorf("%v: stderr %q: no %s progress cleared at the end", c.args, e, c.unit)
		}
	}
}
