package diff

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/termui"
)

// TestRender: the text of a comparison — the placeholder for undefined
// numbers, the SNR coloured by the palette when styled (never escapes shown
// as text), plain text without escapes.
func TestRender(t *testing.T) {
	nan := inspect.Float(math.NaN())
	r := &Report{A: "a.gguf", B: "b", Layers: []LayerDiff{{Index: 0,
		Q: &ProjDiff{Shape: [2]int{4, 4}, RelFro: 0.5, Cosine: 0.9, MaxAbs: 1, SNRdB: 6, SpectralNormChange: 0.1, EffectiveRankChange: -1, DeltaEffectiveRank: 2},
		K: &ProjDiff{Shape: [2]int{4, 4}, Identical: true, RelFro: 0, Cosine: 1, MaxAbs: 0, SNRdB: nan, SpectralNormChange: 0, EffectiveRankChange: 0, DeltaEffectiveRank: nan}}},
		Summary: Summary{Compared: 2, Identical: 1, MaxRelFro: 0.5, MeanRelFro: 0.25, MinSNRdB: 6}}
	var plain, styled bytes.Buffer
	if err := r.Render(&plain, termui.Style{Width: 100}); err != nil {
		t.Fatal(err)
	}
	if err := r.Render(&styled, termui.Style{Styled: true, Width: 100}); err != nil {
		t.Fatal(err)
	}
	p := plain.String()
	for _, want := range []string{"A: a.gguf", "identical", "10.00%", termui.NoValue, "lowest SNR 6 dB"} {
		if !strings.Contains(p, want) {
			t.Errorf("plain lacks %q:\n%s", want, p)
		}
	}
	if strings.Contains(p, "\x1b") {
		t.Errorf("plain text has escapes:\n%q", p)
	}
	s := styled.String()
	if !strings.Contains(s, "\x1b[1;38;5;203m") || !strings.Contains(s, "identical\x1b[0m") || strings.Contains(s, `\x1b`) {
		t.Errorf("styled:\n%q", s)
	}
}
