package htmlreport

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// The published viridis end points and midpoint (matplotlib's hex values).
func TestViridis(t *testing.T) {
	for i, want := range map[int]string{0: "#440154", 128: "#21918c", 255: "#fde725"} {
		c := viridis[i]
		if got := strings.ToLower(hexOf(c)); got != want {
			t.Errorf("viridis[%d] = %s, want %s", i, got, want)
		}
	}
	if hexColour(0) != "#440154" || hexColour(nColours-1) != "#fde725" || hexColour(idxNaN) != "#d9d9d9" {
		t.Errorf("raster palette ends %s %s, no value %s", hexColour(0), hexColour(nColours-1), hexColour(idxNaN))
	}
}

func hexOf(c [3]uint8) string {
	const h = "0123456789abcdef"
	b := []byte{'#'}
	for _, v := range c {
		b = append(b, h[v>>4], h[v&15])
	}
	return string(b)
}

func TestColourIndex(t *testing.T) {
	for _, c := range []struct {
		v, lo, hi float64
		want      uint8
	}{
		{math.NaN(), 0, 1, idxNaN}, {math.Inf(1), 0, 1, idxNaN}, {0, 0, 1, 0}, {1, 0, 1, nColours - 1},
		{0.5, 0, 1, 127}, {-3, 0, 1, 0}, {7, 0, 1, nColours - 1}, {5, 5, 5, 0},
	} {
		if got := colourIndex(c.v, c.lo, c.hi); got != c.want {
			t.Errorf("colourIndex(%g, %g, %g) = %d, want %d", c.v, c.lo, c.hi, got, c.want)
		}
	}
}

func TestFmtNum(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {1, "1"}, {-2.5, "-2.5"}, {1234.5678, "1235"}, {0.012345, "0.01235"}, {3.14159, "3.142"},
		{123456, "123456"}, {2.5e7, "2.5×10⁷"}, {1e-5, "1×10⁻⁵"}, {-4.195e-12, "-4.195×10⁻¹²"},
		{math.NaN(), "—"}, {math.Inf(-1), "—"},
	} {
		if got := fmtNum(c.v); got != c.want {
			t.Errorf("fmtNum(%g) = %q, want %q", c.v, got, c.want)
		}
	}
	if fmtInt(-1) != "—" || fmtInt(12) != "12" {
		t.Error("fmtInt")
	}
}

func TestVisible(t *testing.T) {
	for _, c := range []struct {
		in, esc, label string
	}{
		{"plain", "plain", "plain"},
		{" the", " the", "␣the"},
		{"a\nb\tc\rd", `a\nb\tc\rd`, `a\nb\tc\rd`},
		{"\x00\x1b\x7f\u0085", `\x00\x1b\x7f\x85`, `\x00\x1b\x7f\x85`},
		{"\u202eabc\u202c", `\u202eabc\u202c`, `\u202eabc\u202c`},
		{"zero\u200bwidth\ufeff", `zero\u200bwidth\ufeff`, `zero\u200bwidth\ufeff`},
		{"bad\xffutf8", "bad\uFFFDutf8", "bad\uFFFDutf8"},
		{"<b>&'\"", "&lt;b&gt;&amp;&#39;&#34;", "&lt;b&gt;&amp;&#39;&#34;"},
		{"nb\u00a0sp", "nb\u00a0sp", `nb\u00a0sp`},
	} {
		if got := esc(c.in); got != c.esc {
			t.Errorf("esc(%q) = %q, want %q", c.in, got, c.esc)
		}
		if got := esc(label(c.in)); got != c.label {
			t.Errorf("esc(label(%q)) = %q, want %q", c.in, got, c.label)
		}
		// visible is idempotent, so escaping a prepared label changes nothing more
		if v := visible(c.in, true); visible(v, true) != v {
			t.Errorf("visible is not idempotent on %q", c.in)
		}
	}
	long := strings.Repeat("a", 100)
	if got := label(long); got != strings.Repeat("a", maxLabel-1)+"…" {
		t.Errorf("label of 100 runes = %q", got)
	}
}

func TestTicks(t *testing.T) {
	labels := func(ts []tick) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.label)
		}
		return out
	}
	for _, c := range []struct {
		s    scale
		n    int
		want []string
	}{
		{newScale(true, 1e-3, 10, 0, 1), 6, []string{"10⁻³", "10⁻²", "10⁻¹", "1", "10"}},
		{newScale(true, 1e-12, 1e3, 0, 1), 5, []string{"10⁻¹²", "10⁻⁹", "10⁻⁶", "10⁻³", "1", "10³"}},
		{newScale(true, 0.15, 1.2, 0, 1), 5, []string{"0.2", "0.5", "1"}},
		{newScale(true, 1.5, 2.5, 0, 1), 5, []string{"1.6", "1.8", "2.0", "2.2", "2.4"}},
		{newScale(false, 0, 1, 0, 1), 4, []string{"0.0", "0.5", "1.0"}},
		{newScale(false, -3, 31, 0, 1), 6, []string{"0", "10", "20", "30"}},
		{newScale(false, 2, 2, 0, 1), 4, []string{"1.8", "2.0", "2.2"}}, // one value: ±10%
	} {
		if got := labels(c.s.ticks(c.n)); !slices.Equal(got, c.want) {
			t.Errorf("ticks of [%g, %g] (log %v) = %q, want %q", c.s.d0, c.s.d1, c.s.log, got, c.want)
		}
	}
}

func TestDownsample(t *testing.T) {
	if got := downsample(10, 200); len(got) != 10 || got[0] != 0 || got[9] != 9 {
		t.Errorf("downsample(10, 200) = %v", got)
	}
	for _, n := range []int{201, 1000, 4096, 16384} {
		got := downsample(n, maxSpectrumPoints)
		if len(got) > maxSpectrumPoints || len(got) < maxSpectrumPoints/2 || got[0] != 0 || got[len(got)-1] != n-1 {
			t.Errorf("downsample(%d): %d points from %d to %d", n, len(got), got[0], got[len(got)-1])
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("downsample(%d) not increasing at %d: %v", n, i, got[i-1:i+1])
			}
		}
		// the first ranks are all kept: the top of the spectrum matters
		if got[20] != 20 {
			t.Errorf("downsample(%d) skips early ranks: %v", n, got[:21])
		}
	}
}

func TestTop(t *testing.T) {
	// 2 layers × 2 heads; only l1 = 0, l2 = 1 counts
	v := [][][][]float64{
		{{{0, 0}, {0.5, 0.9}}, {{0, 0}, {0.9, math.NaN()}}},
		{{{7, 7}, {7, 7}}, {{7, 7}, {7, 7}}},
	}
	got := top(v, 3)
	want := []pair{{0, 0, 1, 1, 0.9}, {0, 1, 1, 0, 0.9}, {0, 0, 1, 0, 0.5}}
	if !slices.Equal(got, want) {
		t.Errorf("top = %v, want %v", got, want)
	}
}
