package diff

import (
	"fmt"
	"io"
	"strings"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/termui"
)

// num formats a metric with prec significant digits (termui's placeholder
// when undefined).
func num(f inspect.Float, prec int) string { return termui.Sig(float64(f), prec) }

var _ termui.Renderer = (*Report)(nil)

// Render writes the comparison as a table per layer and projection, then a
// summary naming the worst projections. Styled output adds the palette's
// colours: failure where the SNR is below 20 dB, warning below 40 dB,
// success for identical matrices.
func (r *Report) Render(w io.Writer, st termui.Style) error {
	styled := st.Styled
	var b strings.Builder
	b.WriteString(termui.Title(fmt.Sprintf("A: %s\nB: %s", r.A, r.B), styled))
	var rows [][]string
	var tones []termui.Tone // of the SNR column
	for _, l := range r.Layers {
		first := true
		for _, p := range formats.Projections {
			d := l.Get(p)
			if d == nil {
				continue
			}
			layer := ""
			if first {
				layer = fmt.Sprint(l.Index)
				first = false
			}
			if d.Error != "" || d.NonFinite {
				msg := d.Error
				if d.NonFinite {
					msg = "NaN or Inf in one of the matrices"
				}
				rows = append(rows, []string{layer, string(p), msg, "", "", "", "", "", ""})
				tones = append(tones, termui.ToneNone)
				continue
			}
			snr := num(d.SNRdB, 4)
			if d.Identical {
				snr = "identical"
			}
			tone := termui.ToneNone
			switch {
			case d.Identical:
				tone = termui.ToneGood
			case d.SNRdB.Valid() && d.SNRdB < 20:
				tone = termui.ToneBad
			case d.SNRdB.Valid() && d.SNRdB < 40:
				tone = termui.ToneWarn
			}
			tones = append(tones, tone)
			rows = append(rows, []string{layer, string(p), num(d.RelFro, 3), num(d.Cosine, 7), num(d.MaxAbs, 3), snr,
				signed(d.SpectralNormChange, 100, "%"), signed(d.EffectiveRankChange, 1, ""), num(d.DeltaEffectiveRank, 4)})
		}
	}
	const snrCol = 5
	termui.TableLayout{Headers: []string{"layer", "", "rel_fro", "cosine", "max_abs", "SNR dB", "Δσ₁", "Δerank", "erank(ΔW)"},
		Right: []bool{true, false, true, true, true, true, true, true, true}, Styled: styled,
		Tone: func(row, col int) termui.Tone {
			if col == snrCol {
				return tones[row]
			}
			return termui.ToneNone
		}}.Write(&b, len(rows), func(i int) []string { return rows[i] })
	s := r.Summary
	b.WriteString(fmt.Sprintf("\n%d projections compared, %d identical; rel_fro max %s mean %s; lowest SNR %s dB\n",
		s.Compared, s.Identical, num(s.MaxRelFro, 3), num(s.MeanRelFro, 3), num(s.MinSNRdB, 4)))
	if len(s.Worst) > 0 {
		var parts []string
		for _, wst := range s.Worst {
			parts = append(parts, fmt.Sprintf("layers.%d.%s (rel_fro %s, SNR %s dB)", wst.Layer, wst.Projection, num(wst.RelFro, 3), num(wst.SNRdB, 3)))
		}
		b.WriteString("worst: " + strings.Join(parts, ", ") + "\n")
	}
	if len(r.OnlyInA) > 0 {
		b.WriteString(termui.Dim("only in A: "+strings.Join(r.OnlyInA, ", "), styled) + "\n")
	}
	if len(r.OnlyInB) > 0 {
		b.WriteString(termui.Dim("only in B: "+strings.Join(r.OnlyInB, ", "), styled) + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func signed(f inspect.Float, scale float64, unit string) string {
	return termui.Fixed(float64(f), scale, unit)
}
