// Package termui draws the simple listing tables qkv's commands print: a
// lipgloss table when styled, aligned plain columns otherwise. Reports with
// their own rendering (inspect, attn) keep it beside their report types.
package termui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
)

var (
	headerStyle = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("12")).Padding(0, 1)
	cellStyle   = lipgloss.NewStyle().Padding(0, 1)
	borderStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("8"))
	// Title styles a heading above a table.
	titleStyle = lipgloss.NewStyle().Bold(true)
	dimStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("8"))
)

// Table renders rows under headers. rightAlign marks numeric columns.
func Table(headers []string, rows [][]string, rightAlign []bool, styled bool) string {
	if styled {
		t := table.New().
			Border(lipgloss.RoundedBorder()).
			BorderStyle(borderStyle).
			Headers(headers...).
			Rows(rows...).
			StyleFunc(func(row, col int) lipgloss.Style {
				s := cellStyle
				if row == table.HeaderRow {
					s = headerStyle
				}
				if col < len(rightAlign) && rightAlign[col] {
					s = s.Align(lipgloss.Right)
				}
				return s
			})
		return t.Render() + "\n"
	}
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = lipgloss.Width(h)
	}
	for _, r := range rows {
		for i, c := range r {
			if i < len(widths) {
				widths[i] = max(widths[i], lipgloss.Width(c))
			}
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		defer func() {
			// An empty last column would leave the separator dangling.
			out := strings.TrimRight(b.String(), " ")
			b.Reset()
			b.WriteString(out)
			b.WriteString("\n")
		}()
		for i, c := range cells {
			if i >= len(widths) {
				break
			}
			pad := strings.Repeat(" ", widths[i]-lipgloss.Width(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < len(rightAlign) && rightAlign[i] {
				b.WriteString(pad + c)
			} else if i == len(cells)-1 {
				b.WriteString(c)
			} else {
				b.WriteString(c + pad)
			}
		}
	}
	line(headers)
	for _, r := range rows {
		line(r)
	}
	return b.String()
}

// Title renders a heading line.
func Title(s string, styled bool) string {
	if styled {
		return titleStyle.Render(s) + "\n"
	}
	return s + "\n"
}

// Dim renders secondary text.
func Dim(s string, styled bool) string {
	if styled {
		return dimStyle.Render(s)
	}
	return s
}
