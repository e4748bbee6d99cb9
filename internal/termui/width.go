package termui

import (
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/lipgloss"
)

// Every table and message is laid out for the terminal's width (Style.Cols,
// 80 at least in practice): tables drop their least important columns and
// truncate long names in the middle (TableLayout's Width, Drop and Shrink),
// messages wrap (Wrap), and nothing is longer than the width.

// Width is the number of terminal columns s takes; escape sequences take
// none, wide characters two.
func Width(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return lipgloss.Width(s)
		}
	}
	return len(s)
}

// runeWidth is the columns one rune takes.
func runeWidth(r rune) int {
	if r >= 0x20 && r < 0x7f {
		return 1
	}
	return lipgloss.Width(string(r))
}

// Ellipsis is what TruncateMiddle puts in place of what it cuts.
func Ellipsis(ascii bool) string {
	if ascii {
		return "..."
	}
	return "…"
}

// TruncateMiddle shortens s to at most n columns by replacing its middle
// with an ellipsis ("…", or "..." when ascii), keeping more of the end than
// of the start — the end of a tensor name or a path is what tells it from
// its neighbours: "model.layers.…17.self_attn.q_proj.weight". s must be
// plain text (sanitise and truncate before styling). n below the
// ellipsis's width gives the start of s cut to n columns.
func TruncateMiddle(s string, n int, ascii bool) string {
	if Width(s) <= n {
		return s
	}
	ell := Ellipsis(ascii)
	ew := Width(ell)
	if n <= ew {
		return takeCols(s, max(n, 0))
	}
	room := n - ew
	headCols := room * 2 / 5
	head := takeCols(s, headCols)
	tail := lastCols(s, room-Width(head))
	return head + ell + tail
}

// takeCols is the longest prefix of s at most n columns wide.
func takeCols(s string, n int) string {
	w := 0
	for i, r := range s {
		rw := runeWidth(r)
		if w+rw > n {
			return s[:i]
		}
		w += rw
	}
	return s
}

// lastCols is the longest suffix of s at most n columns wide.
func lastCols(s string, n int) string {
	w, i := 0, len(s)
	for i > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:i])
		rw := runeWidth(r)
		if w+rw > n {
			break
		}
		w += rw
		i -= size
	}
	return s[i:]
}

// Wrap breaks plain text into lines of at most width columns at spaces;
// continuation lines start with indent. A word longer than a line is cut.
// Existing line breaks are kept.
func Wrap(s string, width int, indent string) string {
	if width <= Width(indent)+1 {
		width = Width(indent) + 20
	}
	var b strings.Builder
	for li, para := range strings.Split(s, "\n") {
		if li > 0 {
			b.WriteByte('\n')
		}
		col, first := 0, true
		for _, word := range strings.Fields(para) {
			ww := Width(word)
			switch {
			case first:
				first = false
			case col+1+ww <= width:
				b.WriteByte(' ')
				col++
			default:
				b.WriteString("\n" + indent)
				col = Width(indent)
			}
			for col+ww > width { // a word longer than a line
				part := takeCols(word, max(width-col, 1))
				b.WriteString(part + "\n" + indent)
				word = word[len(part):]
				ww, col = Width(word), Width(indent)
			}
			b.WriteString(word)
			col += ww
		}
	}
	return b.String()
}

// FitColumns chooses the columns of a table that fit in room columns:
// widths are the columns' widths, gap the columns taken between two
// columns and edge those taken by the table's outer borders; the columns
// in drop are removed, first listed first, until the rest fit (or drop is
// exhausted). It returns which columns are kept and the table's width.
func FitColumns(widths []int, gap, edge, room int, drop []int) (keep []bool, total int) {
	keep = make([]bool, len(widths))
	for i := range keep {
		keep[i] = true
	}
	width := func() int {
		t, k := edge, 0
		for i, w := range widths {
			if keep[i] {
				t += w
				k++
			}
		}
		if k > 1 {
			t += gap * (k - 1)
		}
		return t
	}
	total = width()
	for _, d := range drop {
		if total <= room {
			break
		}
		if d >= 0 && d < len(keep) && keep[d] {
			keep[d] = false
			total = width()
		}
	}
	return keep, total
}

// MinShrink is the narrowest TableLayout shrinks a column to.
const MinShrink = 12
