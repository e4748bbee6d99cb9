package termui

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"model.layers.0.q_proj", "model.layers.0.q_proj"},
		{"", ""},
		{"▁tok 中文 é", "▁tok 中文 é"},
		{`back\slash "q"`, `back\slash "q"`},
		{"\x1b]0;pwned\a\x1b[2J", `\x1b]0;pwned\x07\x1b[2J`},
		{"a\nb\tc\rd", `a\nb\tc\rd`},
		{"del\x7f", `del\x7f`},
		{"c1\u009b31m", `c1\u009b31m`},
		{"bidi\u202eevil\u2066x\u2069\u200f\u061c", `bidi\u202eevil\u2066x\u2069\u200f\u061c`},
		{"ls\u2028ps\u2029", `ls\u2028ps\u2029`},
		{"bad\xffutf8\xc3", `bad\xffutf8\xc3`},
		{"nul\x00", `nul\x00`},
	} {
		got := Clean(c.in)
		if got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
		}
		if !safe(got) {
			t.Errorf("Clean(%q) = %q still holds an unsafe character", c.in, got)
		}
		if Clean(got) != got {
			t.Errorf("Clean is not idempotent on %q", c.in)
		}
	}
	if got := CleanLines("A: x\x1b\nB: y"); got != "A: x\\x1b\nB: y" {
		t.Errorf("CleanLines = %q", got)
	}
	s := "plain ascii text"
	if n := testing.AllocsPerRun(10, func() { _ = Clean(s) }); n != 0 {
		t.Errorf("Clean of a clean string allocates %v times", n)
	}
}

// safe: valid UTF-8 without a single unsafe rune.
func safe(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unsafeRune(r) {
			return false
		}
	}
	return true
}

func TestName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"blk.0.attn_q.weight", "blk.0.attn_q.weight"},
		{"▁中文", "▁中文"},
		{"", `""`},
		{"two words", `"two words"`},
		{" lead", `" lead"`},
		{`a"b`, `"a\"b"`},
		{`a\x1b`, `"a\\x1b"`}, // the literal text differs from the escaped ESC below
		{"a\x1b", `"a\x1b"`},
		{"\x1b]0;pwned\a\x1b[2J", `"\x1b]0;pwned\a\x1b[2J"`},
		{"zero\u200bwidth", `"zero\u200bwidth"`},
		{"rtl\u202e", `"rtl\u202e"`},
		{"nbsp\u00a0", `"nbsp\u00a0"`},
		{"bad\xff", `"bad\xff"`},
	} {
		if got := Name(c.in); got != c.want {
			t.Errorf("Name(%q) = %s, want %s", c.in, got, c.want)
		}
		if !safe(Name(c.in)) {
			t.Errorf("Name(%q) is unsafe", c.in)
		}
	}
	// Different names never print alike.
	names := []string{"a\x1b", `a\x1b`, `"a\x1b"`, "a b", `"a b"`, "", `""`}
	seen := map[string]string{}
	for _, n := range names {
		p := Name(n)
		if o, ok := seen[p]; ok {
			t.Errorf("%q and %q both print as %s", o, n, p)
		}
		seen[p] = n
	}
}

func TestTablePlain(t *testing.T) {
	got := Table([]string{"tensor", "dtype", "bytes", "note"},
		[][]string{{"a", "F32", "16", ""}, {"long.name\x1b[2J", "BF16", "1.5 KiB", "x"}, {"short"}},
		[]bool{false, false, true, false}, false)
	want := "" +
		"tensor            dtype    bytes  note\n" +
		"a                 F32         16\n" +
		"long.name\\x1b[2J  BF16   1.5 KiB  x\n" +
		"short\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestTableStyled(t *testing.T) {
	styled := Table([]string{"tensor", "bytes"}, [][]string{{"a", "1"}, {"bbbbbbb\x1b", "22"}}, []bool{false, true}, true)
	if !strings.Contains(styled, "\x1b[38;5;"+colorMuted+"m") {
		t.Errorf("styled table has no border colour:\n%q", styled)
	}
	// The layout, without the palette's colour codes.
	got := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(styled, "")
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines:\n%s", len(lines), got)
	}
	for _, want := range []string{"╭", "├", "╰", "│ bbbbbbb\\x1b │    22 │"} {
		if !strings.Contains(got, want) {
			t.Errorf("styled table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(styled, "\x1b[2J") || strings.Count(styled, "bbbbbbb\x1b") > 0 {
		t.Errorf("raw escape from a cell reached the output:\n%q", got)
	}
}

// TestTableLinear: bytes allocated grow with the rows, not their square.
func TestTableLinear(t *testing.T) {
	cost := func(n int) float64 {
		return testing.AllocsPerRun(1, func() {
			TableLayout{Headers: []string{"a", "b"}, Right: []bool{false, true}}.Write(io.Discard, n, func(i int) []string {
				return []string{"name", "1"}
			})
		})
	}
	small, large := cost(1000), cost(10000)
	if large > 20*small+50 {
		t.Errorf("allocations: %v for 1000 rows, %v for 10000", small, large)
	}
}

func BenchmarkTable(b *testing.B) {
	for _, styled := range []bool{false, true} {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("styled=%v/%d", styled, n), func(b *testing.B) {
				cells := []string{"", "F32", "[4096, 4096]", "32.0 MiB", "123456"}
				for i := 0; i < b.N; i++ {
					TableLayout{Headers: []string{"tensor", "dtype", "shape", "bytes", "offset"}, Right: []bool{false, false, false, true, true}, Styled: styled}.
						Write(io.Discard, n, func(r int) []string {
							cells[0] = fmt.Sprintf("model.layers.%d.self_attn.q_proj.weight", r)
							return cells
						})
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n/10_000)/1e6, "ms/10k-rows")
			})
		}
	}
}

func TestVisible(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"▁the", "▁the"},
		{" a b ", " a b "},
		{`a\b`, `a\\b`},
		{"\n\t\r", `\n\t\r`},
		{"\x1b[2J", `\x1b[2J`},
		{"zero\u200bwidth", `zero\u200bwidth`},
		{"c1\u009b", `c1\u009b`},
		{"rtl\u202e", `rtl\u202e`},
		{"bad\xff", `bad\xff`},
		{"\U000e0001tag", `\U000e0001tag`},
	} {
		if got := Visible(c.in); got != c.want {
			t.Errorf("Visible(%q) = %q, want %q", c.in, got, c.want)
		}
		if !safe(Visible(c.in)) {
			t.Errorf("Visible(%q) is unsafe", c.in)
		}
	}
}

// TestTableTone: styled tables colour the cells Tone names with the
// palette (never by putting escapes in the text, which the sanitiser would
// show); plain tables ignore tones.
func TestTableTone(t *testing.T) {
	tl := TableLayout{Headers: []string{"a", "snr"}, Right: []bool{false, true}, Styled: true,
		Tone: func(row, col int) Tone {
			if col == 1 {
				return []Tone{ToneBad, ToneGood, ToneNone}[row]
			}
			return ToneNone
		}}
	rows := [][]string{{"x", "3.1"}, {"y", "identical"}, {"z", "50"}}
	var b strings.Builder
	if err := tl.Write(&b, len(rows), func(i int) []string { return rows[i] }); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"38;5;" + colorBad + "m      3.1", "38;5;" + colorGood + "midentical", "\x1b[0m        50 "} {
		if !strings.Contains(out, want) {
			t.Errorf("styled table lacks %q:\n%q", want, out)
		}
	}
	if strings.Contains(out, `\x1b`) {
		t.Errorf("escapes shown as text:\n%s", out)
	}
	tl.Styled = false
	b.Reset()
	tl.Write(&b, len(rows), func(i int) []string { return rows[i] })
	if strings.Contains(b.String(), "\x1b") {
		t.Errorf("plain table has escapes: %q", b.String())
	}
}
