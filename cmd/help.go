package cmd

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/internal/termui"
)

// setHelp makes every command's help and usage fit the terminal's width
// (Streams.Width, 80 when unknown): the usage line, the examples, the
// command list and the flags are wrapped; lines of the long description
// wider than the width are broken at spaces. Set once on the root, the
// functions are inherited by every command.
func setHelp(root *cobra.Command, s *Streams) {
	root.SetUsageFunc(func(c *cobra.Command) error {
		return writeUsage(c.OutOrStderr(), c, s.style().Cols())
	})
	root.SetHelpFunc(func(c *cobra.Command, _ []string) {
		cols := s.style().Cols()
		w := c.OutOrStdout()
		text := c.Long
		if text == "" {
			text = c.Short
		}
		if text = strings.TrimRight(text, " \t\n"); text != "" {
			fmt.Fprintf(w, "%s\n\n", fitLines(text, cols))
		}
		if c.Runnable() || c.HasSubCommands() {
			if err := writeUsage(w, c, cols); err != nil {
				c.PrintErrln(err)
			}
		}
	})
}

// writeUsage is cobra's usage text laid out for cols columns.
func writeUsage(w io.Writer, c *cobra.Command, cols int) error {
	var b strings.Builder
	b.WriteString("Usage:")
	if c.Runnable() {
		b.WriteString("\n" + indentWrap(c.UseLine(), cols, "  ", "      "))
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\n  " + c.CommandPath() + " [command]")
	}
	if len(c.Aliases) > 0 {
		b.WriteString("\n\nAliases:\n" + indentWrap(c.NameAndAliases(), cols, "  ", "    "))
	}
	if c.HasExample() {
		b.WriteString("\n\nExamples:\n" + fitExamples(c.Example, cols))
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("\n\nAvailable Commands:")
		pad := 0
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				pad = max(pad, len(sub.Name()))
			}
		}
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() || sub.Name() == "help" {
				name := fmt.Sprintf("%-*s ", pad, sub.Name())
				b.WriteString("\n" + indentWrap(sub.Short, cols, "  "+name, strings.Repeat(" ", 2+len(name))))
			}
		}
	}
	if c.HasAvailableLocalFlags() {
		b.WriteString("\n\nFlags:\n" + strings.TrimRight(c.LocalFlags().FlagUsagesWrapped(cols), " \t\n"))
	}
	if c.HasAvailableInheritedFlags() {
		b.WriteString("\n\nGlobal Flags:\n" + strings.TrimRight(c.InheritedFlags().FlagUsagesWrapped(cols), " \t\n"))
	}
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(&b, "\n\nUse \"%s [command] --help\" for more information about a command.", c.CommandPath())
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// indentWrap wraps s at spaces to cols columns, its first line starting
// with first and the others with rest; a word wider than a line stays
// whole on its own line.
func indentWrap(s string, cols int, first, rest string) string {
	var b strings.Builder
	b.WriteString(first)
	col, empty := termui.Width(first), true
	for _, word := range strings.Fields(s) {
		ww := termui.Width(word)
		switch {
		case empty:
		case col+1+ww <= cols:
			b.WriteByte(' ')
			col++
		default:
			b.WriteString("\n" + rest)
			col = termui.Width(rest)
		}
		b.WriteString(word)
		col += ww
		empty = false
	}
	return b.String()
}

// fitLines breaks each line of text wider than cols at spaces, its
// continuation lines keeping the line's indentation; lines that fit are
// left as written.
func fitLines(text string, cols int) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if termui.Width(l) <= cols {
			continue
		}
		ind := l[:len(l)-len(strings.TrimLeft(l, " "))]
		lines[i] = indentWrap(l[len(ind):], cols, ind, ind)
	}
	return strings.Join(lines, "\n")
}

// fitExamples breaks each example command wider than cols at spaces with
// a shell line continuation (" \"), so that it can still be pasted.
func fitExamples(ex string, cols int) string {
	lines := strings.Split(strings.TrimRight(ex, " \t\n"), "\n")
	for i, l := range lines {
		l = strings.TrimRight(l, " ")
		lines[i] = l
		if termui.Width(l) <= cols {
			continue
		}
		ind := l[:len(l)-len(strings.TrimLeft(l, " "))]
		cont := ind + "    "
		var out []string
		cur := ind
		for _, word := range shellWords(l[len(ind):]) {
			// +2 for the " \" a broken line ends with.
			if cur != ind && cur != cont && termui.Width(cur)+1+termui.Width(word)+2 > cols {
				out = append(out, cur+` \`)
				cur = cont + word
				continue
			}
			if cur != ind && cur != cont {
				cur += " "
			}
			cur += word
		}
		lines[i] = strings.Join(append(out, cur), "\n")
	}
	return strings.Join(lines, "\n")
}

// shellWords splits a command line at the spaces outside quotes.
func shellWords(s string) []string {
	var out []string
	var quote rune
	start := -1
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == ' ':
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}
