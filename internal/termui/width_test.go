package termui

import (
	"strings"
	"testing"
)

func TestTruncateMiddle(t *testing.T) {
	for _, c := range []struct {
		s     string
		n     int
		ascii bool
		want  string
	}{
		{"model.layers.17.self_attn.q_proj.weight", 40, false, "model.layers.17.self_attn.q_proj.weight"},
		{"model.layers.17.self_attn.q_proj.weight", 24, false, "model.lay….q_proj.weight"},
		{"model.layers.17.self_attn.q_proj.weight", 24, true, "model.la...q_proj.weight"},
		{"日本語のテンソル名前です", 11, false, "日本…前です"},
		{"abcdef", 1, false, "a"},
		{"abcdef", 0, false, ""},
	} {
		got := TruncateMiddle(c.s, c.n, c.ascii)
		if got != c.want {
			t.Errorf("TruncateMiddle(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
		if Width(got) > c.n {
			t.Errorf("TruncateMiddle(%q, %d) is %d wide", c.s, c.n, Width(got))
		}
	}
}

func TestWrap(t *testing.T) {
	s := "qkv: model.safetensors: tensor \"w\": data_offsets [0, 96] hold 96 bytes but F32 [4, 8] needs 128 (at byte 8)"
	got := Wrap(s, 40, "  ")
	for _, l := range strings.Split(got, "\n") {
		if Width(l) > 40 {
			t.Errorf("line %q is %d wide", l, Width(l))
		}
	}
	if strings.Join(strings.Fields(got), " ") != s {
		t.Errorf("words changed: %q", got)
	}
	if got := Wrap(strings.Repeat("x", 25), 10, ""); got != "xxxxxxxxxx\nxxxxxxxxxx\nxxxxx" {
		t.Errorf("long word: %q", got)
	}
}

func TestFitColumns(t *testing.T) {
	keep, total := FitColumns([]int{40, 5, 10, 8}, 2, 0, 60, []int{3, 2, 1})
	// 40+5+10+8+6 = 69 > 60: drop 3 (59 fits).
	if keep[3] || !keep[0] || !keep[1] || !keep[2] || total != 59 {
		t.Errorf("keep %v total %d", keep, total)
	}
	keep, total = FitColumns([]int{70, 5}, 2, 0, 60, []int{1})
	if keep[1] || total != 70 {
		t.Errorf("drop exhausted: keep %v total %d", keep, total)
	}
}

// A table given a width drops the columns it may drop, least important
// first, then cuts names in the middle; no line is wider than the width.
func TestTableWidth(t *testing.T) {
	headers := []string{"tensor", "dtype", "shape", "bytes", "offset", "file"}
	rows := [][]string{
		{"model.layers.17.self_attn.q_proj.weight.with.a.long.suffix", "BF16", "[4096, 4096]", "32.0 MiB", "123456789", "model-00001-of-00004.safetensors"},
		{"lm_head.weight", "BF16", "[151936, 4096]", "1.2 GiB", "1", "model-00004-of-00004.safetensors"},
	}
	for _, styled := range []bool{false, true} {
		for _, width := range []int{80, 100, 200} {
			var b strings.Builder
			TableLayout{Headers: headers, Right: []bool{false, false, false, true, true, false}, Styled: styled,
				Width: width, Drop: []int{4, 5}, Shrink: []int{0}}.Write(&b, len(rows), func(i int) []string { return rows[i] })
			out := b.String()
			for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
				if Width(l) > width {
					t.Errorf("styled=%v width %d: line %d wide: %q", styled, width, Width(l), l)
				}
			}
			switch width {
			case 200:
				if !strings.Contains(out, "model-00001-of-00004.safetensors") || !strings.Contains(out, rows[0][0]) {
					t.Errorf("styled=%v: at 200 columns something was dropped:\n%s", styled, out)
				}
			case 80:
				if strings.Contains(out, "offset") || strings.Contains(out, "model-00004") || !strings.Contains(out, "…") || !strings.Contains(out, "lm_head.weight") {
					t.Errorf("styled=%v: at 80 columns:\n%s", styled, out)
				}
			}
		}
	}
}

func TestTableTonesAfterDrop(t *testing.T) {
	var b strings.Builder
	var seen []int
	TableLayout{Headers: []string{"a", "b", "c"}, Styled: true, Width: 12, Drop: []int{1},
		Tone: func(r, c int) Tone { seen = append(seen, c); return ToneNone }}.Write(&b, 1, func(int) []string { return []string{"x", "yyyyyyyy", "z"} })
	if len(seen) != 2 || seen[0] != 0 || seen[1] != 2 {
		t.Errorf("tone asked for columns %v, want [0 2]", seen)
	}
}
