package inspect

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/lipgloss"

	"github.com/qkvdev/qkv/internal/termui"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func plantedReport(t *testing.T, opts Options) *Report {
	t.Helper()
	rep, err := Run(context.Background(), plantedModel(), opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestRenderGolden(t *testing.T) {
	cases := []struct {
		name  string
		opts  Options
		width int
	}{
		{"plain_80", Options{}, 80},
		{"plain_200", Options{}, 200},
		{"plain_heads_80", Options{Heads: true}, 80},
		{"plain_heads_200", Options{Heads: true}, 200},
		{"plain_fast_100", Options{Fast: true}, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := plantedReport(t, c.opts)
			rep.Model.Arch = "planted"
			var buf bytes.Buffer
			if err := rep.Render(&buf, termui.Style{Width: c.width}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if strings.Contains(out, "\x1b") {
				t.Errorf("escape codes in plain output")
			}
			for i, line := range strings.Split(out, "\n") {
				if w := lipgloss.Width(line); w > c.width {
					t.Errorf("line %d is %d columns wide (> %d): %q", i+1, w, c.width, line)
				}
			}
			path := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./inspect -run TestRenderGolden -update)", err)
			}
			if out != string(want) {
				t.Errorf("output differs from %s:\n%s", path, out)
			}
		})
	}
}

func TestRenderStyled(t *testing.T) {
	rep := plantedReport(t, Options{Heads: true})
	for _, width := range []int{80, 200} {
		var buf bytes.Buffer
		if err := rep.Render(&buf, termui.Style{Styled: true, Width: width}); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		if !strings.Contains(out, "\x1b[") {
			t.Errorf("width %d: no escape codes in styled output", width)
		}
		for _, want := range []string{"W_Q", "layer 4", "outlier_norm", "dead_head", "╭"} {
			if !strings.Contains(out, want) {
				t.Errorf("width %d: styled output lacks %q", width, want)
			}
		}
		for i, line := range strings.Split(out, "\n") {
			if w := lipgloss.Width(line); w > width {
				t.Errorf("width %d: line %d is %d wide", width, i+1, w)
			}
		}
	}
}

func TestSparkline(t *testing.T) {
	cases := []struct {
		sv    []float64
		width int
		want  string
	}{
		{[]float64{1000, 100, 10, 1}, 4, "█▆▃▁"},
		{[]float64{5, 5, 5}, 3, "███"},
		{[]float64{8, 4, 0}, 3, "█▁ "},
		{[]float64{1, 0.5, 0.25, 0.125, 0.0625}, 2, "█▁"},
		{nil, 5, ""},
		{[]float64{0, 0}, 2, ""},
	}
	for _, c := range cases {
		if got := Sparkline(c.sv, c.width); got != c.want {
			t.Errorf("Sparkline(%v, %d) = %q, want %q", c.sv, c.width, got, c.want)
		}
	}
}
