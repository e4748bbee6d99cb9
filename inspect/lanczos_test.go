package inspect

import (
	"math"
	"math/rand"
	"testing"
)

func TestFastMode(t *testing.T) {
	cases := []struct {
		name string
		s    func(i int) float64
	}{
		{"geometric decay", func(i int) float64 { return math.Round(4096 * math.Pow(0.9, float64(i))) }},
		{"power law", func(i int) float64 { return math.Round(10000 / float64(i+1)) }},
		{"low rank", func(i int) float64 {
			if i < 10 {
				return float64(100 - i)
			}
			return 0
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := make([]float64, 256)
			for i := range s {
				s[i] = c.s(i)
			}
			w := withSingularValues(256, 256, s)
			full := MatrixStats(w, StatsOptions{KeepSV: true})
			fast := MatrixStats(w, StatsOptions{Fast: true})
			if fast.Method != MethodLanczos || fast.Rank != nil || fast.Condition.Valid() {
				t.Fatalf("fast stats %+v", fast)
			}
			if relDiff(float64(fast.SpectralNorm), s[0]) > 1e-9 {
				t.Errorf("spectral norm %g, want %g", float64(fast.SpectralNorm), s[0])
			}
			if relDiff(float64(fast.StableRank), float64(full.StableRank)) > 1e-9 {
				t.Errorf("stable rank %g, want %g", float64(fast.StableRank), float64(full.StableRank))
			}
			lo, hi := float64(fast.EffectiveRankBounds[0]), float64(fast.EffectiveRankBounds[1])
			e := float64(full.EffectiveRank)
			if e < lo*(1-1e-9) || e > hi*(1+1e-9) {
				t.Errorf("effective rank %g outside [%g, %g]", e, lo, hi)
			}
			t.Logf("effective rank %.5g, fast %.5g in [%.5g, %.5g]", e, float64(fast.EffectiveRank), lo, hi)
		})
	}
}

// The bracket of tailBounds holds for random admissible tails.
func TestTailBoundsBracket(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	for trial := 0; trial < 2000; trial++ {
		nh := 1 + r.Intn(5)
		head := make([]float64, nh)
		v := 10 + 10*r.Float64()
		for i := range head {
			head[i] = v
			v *= 0.5 + 0.5*r.Float64()
		}
		cap := head[nh-1]
		nt := 1 + r.Intn(40)
		tail := make([]float64, nt)
		var energy float64
		for i := range tail {
			switch r.Intn(3) {
			case 0:
				tail[i] = cap * r.Float64()
			case 1:
				tail[i] = cap
			default:
				tail[i] = cap * r.Float64() * r.Float64() * r.Float64()
			}
			energy += tail[i] * tail[i]
		}
		lo, hi := tailBounds(head, nt, energy, cap)
		e := effectiveRank(append(append([]float64(nil), head...), tail...))
		if e < lo*(1-1e-12) || e > hi*(1+1e-12) {
			t.Fatalf("trial %d: %g outside [%g, %g] (head %v tail %v)", trial, e, lo, hi, head, tail)
		}
	}
}
