package cmd_test

// Every command's --help fits the terminal: at 80 columns (and at 160) no
// line is wider, flags included, and no flag shows an empty default.

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/termui"
)

func TestHelpFitsTheWidth(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(sub, append(append([]string(nil), path...), sub.Name()))
			}
		}
	}
	root := cmd.NewRoot(&cmd.Streams{})
	root.InitDefaultCompletionCmd()
	walk(root, nil)
	if len(paths) < 16 {
		t.Fatalf("only %d commands found: %v", len(paths), paths)
	}
	for _, width := range []int{80, 160} {
		for _, p := range paths {
			args := append(append([]string(nil), p...), "--help")
			code, out, errs := runQKV(width, args...)
			name := "qkv " + strings.Join(args, " ")
			if code != 0 || errs != "" || !strings.Contains(out, "Usage:") {
				t.Errorf("%s: exit %d, stderr %q, stdout %.200q", name, code, errs, out)
				continue
			}
			for i, line := range strings.Split(out, "\n") {
				if w := termui.Width(line); w > width {
					t.Errorf("%s at %d columns: line %d is %d columns: %q", name, width, i+1, w, line)
				}
			}
			if strings.Contains(out, "(default [])") {
				t.Errorf("%s: an empty default is shown:\n%s", name, out)
			}
		}
	}
}

// qkv completion without a shell, or with one it has no script for, is a
// usage error naming the shells; a known shell prints its script.
func TestCompletionNeedsAShell(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"completion"}, cmd.ExitUsage, "completion needs a shell: bash, fish, powershell or zsh"},
		{[]string{"completion", "tcsh"}, cmd.ExitUsage, `no script for shell "tcsh" (qkv has bash, fish, powershell or zsh)`},
		{[]string{"completion", "bash"}, 0, ""},
	} {
		code, out, errs := runQKV(80, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("qkv %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, errs, c.code, c.want)
		}
		if (code == 0) != (out != "") {
			t.Errorf("qkv %s: exit %d with stdout %.100q", strings.Join(c.args, " "), code, out)
		}
	}
}
