package diff

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/termui"
)

var (
	warnStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("11"))
	badStyle  = lipgloss.NewStyle().Foreground(lipgloss.Color("9")).Bold(true)
	okStyle   = lipgloss.NewStyle().Foreground(lipgloss.Color("10"))
)

func num(f inspect.Float, prec int) string {
	if !f.Valid() {
		return "—"
	}
	return strconv.FormatFloat(float64(f), 'g', prec, 64)
}

// Render writes the comparison as a table per layer and projection, then a
// summary naming the worst projections. styled adds colour: red where the
// SNR is below 20 dB, yellow below 40 dB, green for identical matrices.
func (r *Report) Render(w io.Writer, styled bool) error {
	var b strings.Builder
	b.WriteString(termui.Title(fmt.Sprintf("A: %s\nB: %s", r.A, r.B), styled))
	var rows [][]string
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
				continue
			}
			snr := num(d.SNRdB, 4)
			if d.Identical {
				snr = "identical"
			}
			if styled {
				switch {
				case d.Identical:
					snr = okStyle.Render(snr)
				case d.SNRdB.Valid() && d.SNRdB < 20:
					snr = badStyle.Render(snr)
				case d.SNRdB.Valid() && d.SNRdB < 40:
					snr = warnStyle.Render(snr)
				}
			}
			rows = append(rows, []string{layer, string(p), num(d.RelFro, 3), num(d.Cosine, 7), num(d.MaxAbs, 3), snr,
				signed(d.SpectralNormChange, 100, "%"), signed(d.EffectiveRankChange, 1, ""), num(d.DeltaEffectiveRank, 4)})
		}
	}
	b.WriteString(termui.Table([]string{"layer", "", "rel_fro", "cosine", "max_abs", "SNR dB", "Δσ₁", "Δerank", "erank(ΔW)"}, rows,
		[]bool{true, false, true, true, true, true, true, true, true}, styled))
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
	if !f.Valid() {
		return "—"
	}
	return strconv.FormatFloat(float64(f)*scale, 'f', 2, 64) + unit
}
