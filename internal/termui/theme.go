package termui

import (
	"io"

	"github.com/charmbracelet/lipgloss"
)

// Style is how a renderer writes text. Every report's text renderer has
// one signature, Render(w io.Writer, st Style) error.
type Style struct {
	// Styled draws colours and borders. The caller decides (stdout is a
	// terminal and NO_COLOR is unset); the writer is never probed.
	Styled bool
	// Width is the terminal's width in columns; 0 or less means 80.
	Width int
	// ASCII: the terminal shows ASCII only (TERM=dumb): renderers draw
	// with ASCII characters ("-" rules, "..." for cut text, "#" bars, "-"
	// for NoValue; see Glyphs).
	ASCII bool
}

// Glyphs are the drawing characters of a Style: Unicode, or ASCII for a
// terminal that shows nothing else.
type Glyphs struct {
	Rule     string // a horizontal rule's character
	Ellipsis string // what stands for text cut out
	NoValue  string // a number that is undefined or not finite
	Full     string // a filled bar cell
	Empty    string // an empty bar cell
	Bullet   string
	// Ramp is a sparkline's levels, lowest first.
	Ramp []string
}

var (
	unicodeGlyphs = Glyphs{Rule: "─", Ellipsis: "…", NoValue: NoValue, Full: "█", Empty: "░", Bullet: "•",
		Ramp: []string{"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"}}
	asciiGlyphs = Glyphs{Rule: "-", Ellipsis: "...", NoValue: "-", Full: "#", Empty: ".", Bullet: "*",
		Ramp: []string{"_", ".", "-", "~", "=", "+", "*", "#"}}
)

// Glyphs returns the drawing characters for the style.
func (s Style) Glyphs() Glyphs {
	if s.ASCII {
		return asciiGlyphs
	}
	return unicodeGlyphs
}

// Cols is the width to lay out for: Width, or 80 when it is not set.
func (s Style) Cols() int {
	if s.Width <= 0 {
		return 80
	}
	return s.Width
}

// Renderer is a report that writes itself as text.
type Renderer interface {
	Render(w io.Writer, st Style) error
}

// The one colour palette, in ANSI 256-colour codes, by role.
const (
	colorAccent = "75"  // titles, table headers
	colorMuted  = "240" // borders, secondary text
	colorBad    = "203" // failures, cells a finding marks
	colorWarn   = "214" // warnings
	colorGood   = "114" // a check that passed
)

// HeatColors is the ramp of a styled heatmap, from the smallest non-zero
// level to the largest (viridis, dark blue to yellow).
var HeatColors = []string{"#26185f", "#2c3d8c", "#21618f", "#1a828c", "#21a185", "#4cbf6b", "#8fd744", "#cfe11c", "#fde725"}

// ansi256 is termenv's ANSI256 profile: styled output is forced by the
// caller's choice, never detected from the writer.
const ansi256 = 1

// Theme holds the palette's styles, bound to a renderer whose colour
// profile is fixed. A nil *Theme (unstyled output) renders text as it is.
type Theme struct {
	re                                    *lipgloss.Renderer
	title, header, muted, bad, warn, good lipgloss.Style
}

// NewTheme returns the palette for styled output to w, or nil when st is
// not styled.
func NewTheme(w io.Writer, st Style) *Theme {
	if !st.Styled {
		return nil
	}
	re := lipgloss.NewRenderer(w)
	re.SetColorProfile(ansi256)
	return &Theme{
		re:     re,
		title:  re.NewStyle().Bold(true).Foreground(lipgloss.Color(colorAccent)),
		header: re.NewStyle().Bold(true).Foreground(lipgloss.Color(colorAccent)),
		muted:  re.NewStyle().Foreground(lipgloss.Color(colorMuted)),
		bad:    re.NewStyle().Bold(true).Foreground(lipgloss.Color(colorBad)),
		warn:   re.NewStyle().Foreground(lipgloss.Color(colorWarn)),
		good:   re.NewStyle().Bold(true).Foreground(lipgloss.Color(colorGood)),
	}
}

// render styles text with the style pick chooses; a nil theme (unstyled
// output) returns text as it is.
func (t *Theme) render(pick func(*Theme) lipgloss.Style, text string) string {
	if t == nil {
		return text
	}
	return pick(t).Render(text)
}

// Title renders a heading (no newline added).
func (t *Theme) Title(s string) string {
	return t.render(func(t *Theme) lipgloss.Style { return t.title }, s)
}

// Muted renders secondary text.
func (t *Theme) Muted(s string) string {
	return t.render(func(t *Theme) lipgloss.Style { return t.muted }, s)
}

// Bad renders a failure or a marked value.
func (t *Theme) Bad(s string) string {
	return t.render(func(t *Theme) lipgloss.Style { return t.bad }, s)
}

// Warn renders a warning.
func (t *Theme) Warn(s string) string {
	return t.render(func(t *Theme) lipgloss.Style { return t.warn }, s)
}

// Good renders a success.
func (t *Theme) Good(s string) string {
	return t.render(func(t *Theme) lipgloss.Style { return t.good }, s)
}

// Heat renders a heatmap cell at level (1..len(HeatColors)); level 0 and
// unstyled output give s as it is.
func (t *Theme) Heat(s string, level int) string {
	if t == nil || level <= 0 {
		return s
	}
	level = min(level, len(HeatColors))
	return t.re.NewStyle().Foreground(lipgloss.Color(HeatColors[level-1])).Render(s)
}
