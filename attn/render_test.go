package attn

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/termui"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fixedResult is a hand-made result: head 0 attends to the previous token,
// head 1 uniformly (causal), so the rendering does not depend on arithmetic.
func fixedResult(T int) *Result {
	r := &Result{Layer: 3, Settings: Settings{T: T, NHeads: 2, NKVHeads: 1, HeadDim: 4, Causal: true, PreNorm: "rmsnorm",
		RoPE: &RoPESettings{RotaryDims: 4, Theta: 10000}, Input: InputInfo{Kind: "tokens"}}}
	r.Probs = make([][][]float32, 2)
	for h := range r.Probs {
		r.Probs[h] = make([][]float32, T)
		for i := range r.Probs[h] {
			row := make([]float32, T)
			if h == 0 {
				row[max(i-1, 0)] = 0.75
				row[i] += 0.25
			} else {
				for j := 0; j <= i; j++ {
					row[j] = 1 / float32(i+1)
				}
			}
			r.Probs[h][i] = row
		}
		flat := make([]float32, 0, T*T)
		for _, row := range r.Probs[h] {
			flat = append(flat, row...)
		}
		m, _ := headMetrics(h, flat, T, 1.25, probEntropy(flat, T))
		r.Heads = append(r.Heads, m)
	}
	return r
}

func TestRenderPlainGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		T      int
		width  int
		labels []string
		ascii  bool
	}{
		{"tokens", 6, 80, []string{"<s>", " the", " program", " is", " free", "\n"}, false},
		{"ascii", 6, 80, []string{"<s>", " the", " progrès", " is", "\xe2", "\n"}, true},
		{"positions", 12, 80, nil, false},
		{"narrow", 12, 20, nil, false},
		{"wide", 12, 160, nil, false},
		{"pooled", 100, 40, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := renderView(&buf, fixedResult(tc.T), renderOptions{Width: tc.width, Labels: tc.labels, ASCII: tc.ascii}); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(buf.String(), "\x1b") {
				t.Error("plain rendering contains escape sequences")
			}
			for i, line := range strings.Split(buf.String(), "\n") {
				if width(line) > max(tc.width, MinWidth) || strings.TrimRight(line, " ") != line {
					t.Errorf("line %d is wider than %d columns or ends in spaces: %q", i+1, max(tc.width, MinWidth), line)
				}
				for _, r := range line {
					if tc.ascii && r >= 0x80 {
						t.Errorf("line %d: %q in ASCII mode", i+1, r)
						break
					}
				}
			}
			path := filepath.Join("testdata", "render_"+tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./attn -run Golden -update to create it)", err)
			}
			if buf.String() != string(want) {
				t.Errorf("rendering differs from %s:\n%s", path, buf.String())
			}
		})
	}
}

func TestRenderPooledAndErrors(t *testing.T) {
	r := fixedResult(512)
	var buf bytes.Buffer
	if err := renderView(&buf, r, renderOptions{Width: 80, Heads: []int{0}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "pooled 512→64") {
		t.Errorf("no pooling note:\n%s", buf.String())
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if n := width(line); n > 80 {
			t.Errorf("line of %d columns exceeds the width: %q", n, line)
		}
	}
	if err := renderView(&buf, r, renderOptions{Labels: []string{"a"}}); err == nil {
		t.Error("wrong label count: no error")
	}
	if err := renderView(&buf, r, renderOptions{Heads: []int{5}}); err == nil {
		t.Error("bad head selection: no error")
	}
	buf.Reset()
	if err := renderView(&buf, fixedResult(6), renderOptions{Styled: true, Width: 80, Heads: []int{1}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "head 1") || strings.Contains(buf.String(), "head 0 (") {
		t.Errorf("styled head selection:\n%s", buf.String())
	}
}

// TestRenderModernSettings: the summary line names the layer's window, Q/K
// norm, RoPE scaling, score scale, softcap and sinks, and the metrics table
// gains the learned-sink column when the heads have one.
func TestRenderModernSettings(t *testing.T) {
	r := fixedResult(4)
	s := &r.Settings
	s.SlidingWindow, s.Softcap, s.Sinks, s.Scale, s.ScaleFormula = 3, 50, true, 0.2041, "query_pre_attn_scalar^-0.5"
	s.QKNorm = &QKNormSettings{Kind: "per_head_rms"}
	s.RoPE.Scaling = &ScalingSettings{Type: "yarn", Factor: 4}
	for h := range r.Heads {
		v := 0.25 * float64(h+1)
		r.Heads[h].LearnedSink = &v
	}
	var buf bytes.Buffer
	if err := renderView(&buf, r, renderOptions{Width: 80}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"sliding window 3", "q/k norm per_head_rms", "yarn ×4", "scale 0.2041", "softcap 50",
		"learned sinks", "l_sink", "0.5000"} {
		if !strings.Contains(out, want) {
			t.Errorf("rendering lacks %q:\n%s", want, out)
		}
	}
}

// renderOptions are a test's view and style.
type renderOptions struct {
	Styled, ASCII bool
	Width         int
	Labels        []string
	Heads         []int
}

// renderView renders r as View.Render does, with o's settings.
func renderView(w io.Writer, r *Result, o renderOptions) error {
	return View{Result: r, Labels: o.Labels, Heads: o.Heads, Notable: true}.Render(w, termui.Style{Styled: o.Styled, Width: o.Width, ASCII: o.ASCII})
}
