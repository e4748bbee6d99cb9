package inspect

import (
	"slices"
	"testing"
)

// TestStatValue: every scalar statistic is reachable by its JSON name, and
// nothing else is.
func TestStatValue(t *testing.T) {
	s := Stats{Fro: 1, MaxAbs: 2, Mean: 3, Std: 4, SpectralNorm: 5, EffectiveRank: 6, StableRank: 7, Condition: 8, NaNCount: 9}
	want := []string{"fro", "max_abs", "mean", "std", "spectral_norm", "effective_rank", "stable_rank", "condition"}
	if got := StatNames(); !slices.Equal(got, want) {
		t.Errorf("StatNames() = %v, want %v", got, want)
	}
	for i, n := range want {
		if v, ok := s.Value(n); !ok || v != float64(i+1) {
			t.Errorf("Value(%q) = %v, %v; want %d", n, v, ok, i+1)
		}
	}
	for _, n := range []string{"nan_count", "shape", "sv", "Fro", ""} {
		if _, ok := s.Value(n); ok {
			t.Errorf("Value(%q) is a statistic", n)
		}
	}
}
