package esd

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// spectra returns random ascending eigenvalue lists of several kinds: Pareto
// tails, log-normal bulks, Marchenko–Pastur-like bulks, ties, tiny lists.
func spectra(r *rand.Rand) map[string][]float64 {
	out := map[string][]float64{}
	pareto := func(n int, a, xm float64) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = xm * math.Pow(1-r.Float64(), -1/(a-1))
		}
		return x
	}
	for _, n := range []int{2, 3, 5, 17, 100, 700} {
		out["pareto2.5/"+strconv.Itoa(n)] = pareto(n, 2.5, 0.05)
		out["pareto5/"+strconv.Itoa(n)] = pareto(n, 5, 1)
		ln := make([]float64, n)
		for i := range ln {
			ln[i] = math.Exp(r.NormFloat64())
		}
		out["lognormal/"+strconv.Itoa(n)] = ln
		mp := make([]float64, n)
		for i := range mp {
			u := r.Float64()
			mp[i] = 4 * u * u
		}
		out["bulk/"+strconv.Itoa(n)] = mp
		// A bulk plus a few spikes.
		sp := append(slices.Clone(mp), 50, 80, 200)
		out["spiked/"+strconv.Itoa(n)] = sp
		// Rounded to a coarse grid: many ties, including at the top.
		tie := make([]float64, n)
		for i := range tie {
			tie[i] = math.Round(pareto(1, 3, 1)[0]*4) / 4
		}
		out["ties/"+strconv.Itoa(n)] = tie
		// Exact Pareto quantiles: every term is near the fit, so the bounds
		// prune little and the search falls back to a scan.
		q := make([]float64, n)
		for i := range q {
			q[i] = math.Pow(1-float64(i)/float64(n), -1/1.5)
		}
		out["quantiles/"+strconv.Itoa(n)] = q
	}
	for _, x := range out {
		slices.Sort(x)
	}
	return out
}

// TestFitMatchesExhaustive checks the branch-and-bound argmin against every
// candidate evaluated term by term.
func TestFitMatchesExhaustive(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for rep := 0; rep < 5; rep++ {
		for name, x := range spectra(r) {
			if len(x) < 2 {
				continue
			}
			alphas, ds := exhaustive(x)
			want := 0
			for i, d := range ds {
				if d < ds[want] {
					want = i
				}
			}
			f := fitPowerLaw(x)
			if f.index != want {
				// Equal values make α_i infinite in one route and huge in
				// the other only when the tail is all ties; both then fail.
				if !(math.IsInf(alphas[want], 0) || math.IsInf(f.alpha, 0)) {
					t.Errorf("%s: xmin_index %d (D %.17g), exhaustive %d (D %.17g)", name, f.index, f.d, want, ds[want])
				}
				continue
			}
			if math.IsInf(f.alpha, 1) {
				continue
			}
			if relErr(f.alpha, alphas[want]) > 1e-9 || math.Abs(f.d-ds[want]) > 1e-12 {
				t.Errorf("%s: α %.17g D %.17g, exhaustive α %.17g D %.17g", name, f.alpha, f.d, alphas[want], ds[want])
			}
		}
	}
}

func TestAnalyzeCases(t *testing.T) {
	ptr := func(s string) *string { return &s }
	tests := []struct {
		name     string
		sv       []float64
		m, n     int
		opts     Options
		status   string
		warning  *string
		errIs    error
		errMatch string
	}{
		{name: "rank one", sv: []float64{2, 0, 0}, m: 3, n: 5, status: StatusFailed},
		{name: "below the cut", sv: []float64{1, 1e-3, 1e-4}, m: 3, n: 3, status: StatusFailed},
		{name: "all equal", sv: []float64{1, 1, 1, 1}, m: 4, n: 4, status: StatusFailed},
		{name: "two values (α = 2.44)", sv: []float64{2, 1}, m: 2, n: 2, status: StatusSuccess, warning: ptr("")},
		{name: "two values, over-trained below 3", sv: []float64{2, 1}, m: 2, n: 2, opts: Options{OverTrained: 3}, status: StatusSuccess, warning: ptr(WarningOverTrained)},
		{name: "two values, thresholds moved", sv: []float64{2, 1}, m: 2, n: 2, opts: Options{OverTrained: 1.5, UnderTrained: 2}, status: StatusSuccess, warning: ptr(WarningUnderTrained)},
		{name: "any order", sv: []float64{1, 3, 2}, m: 3, n: 3, status: StatusSuccess},
		{name: "zero matrix", sv: []float64{0, 0}, m: 2, n: 2, errIs: ErrZero},
		{name: "count", sv: []float64{1, 2}, m: 3, n: 3, errMatch: "2 singular values for a 3×3"},
		{name: "nan", sv: []float64{math.NaN(), 1}, m: 2, n: 2, errMatch: "singular value 0 is NaN"},
		{name: "inf", sv: []float64{math.Inf(1), 1}, m: 2, n: 2, errMatch: "+Inf"},
		{name: "negative", sv: []float64{1, -1}, m: 2, n: 2, errMatch: "singular value 1 is -1"},
		{name: "empty", sv: nil, m: 0, n: 3, errMatch: "empty"},
		{name: "overflow", sv: []float64{1e200, 1}, m: 2, n: 2, errMatch: "overflows"},
		{name: "sum overflows", sv: []float64{1e154, 1e154, 1e154}, m: 3, n: 3, errMatch: "Σ σ² overflows"},
		{name: "negative threshold", sv: []float64{2, 1}, m: 2, n: 2, opts: Options{EvalsThresh: -1}, errMatch: "threshold -1 must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Analyze(tc.sv, tc.m, tc.n, tc.opts)
			if tc.errIs != nil || tc.errMatch != "" {
				if err == nil || (tc.errIs != nil && !errors.Is(err, tc.errIs)) || !strings.Contains(err.Error(), tc.errMatch) {
					t.Fatalf("error %v, want %v %q", err, tc.errIs, tc.errMatch)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.status {
				t.Fatalf("status %q (%s), want %q", r.Status, r.Reason, tc.status)
			}
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status == StatusFailed {
				if r.Reason == "" || !strings.Contains(string(b), `"alpha":null`) || !strings.Contains(string(b), `"warning":null`) {
					t.Errorf("failed fit: %s", b)
				}
				return
			}
			if tc.warning != nil && *r.Warning != *tc.warning {
				t.Errorf("warning %q, want %q", *r.Warning, *tc.warning)
			}
		})
	}
}

// TestTwoValues checks a fit by hand: two eigenvalues 1 and 4.
// α = 1 + 2/ln 4; D = |1 − 4^(1−α) − 1/2| = |1 − e^(−2) − 1/2|.
func TestTwoValues(t *testing.T) {
	r, err := Analyze([]float64{2, 1}, 2, 3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	alpha := 1 + 2/math.Log(4)
	checks := []struct {
		name      string
		got, want float64
	}{
		{"alpha", *r.Alpha, alpha},
		{"D", *r.D, 0.5 - math.Exp(-2)},
		{"xmin", *r.Xmin, 1},
		{"xmax", *r.Xmax, 4},
		{"sigma", *r.Sigma, (alpha - 1) / math.Sqrt2},
		{"alpha_weighted", *r.AlphaWeighted, alpha * math.Log10(4)},
		{"log_alpha_norm", *r.LogAlphaNorm, math.Log10(1 + math.Pow(4, alpha))},
		{"norm", r.Norm, 5},
		{"log_norm", r.LogNorm, math.Log10(5)},
		{"stable_rank", r.StableRank, 5.0 / 4},
		{"entropy", r.Entropy, -((0.2+1e-10)*math.Log(0.2+1e-10) + (0.8+1e-10)*math.Log(0.8+1e-10)) / math.Log(2+1e-10)},
	}
	for _, c := range checks {
		if relErr(c.got, c.want) > 1e-14 {
			t.Errorf("%s = %.17g, want %.17g", c.name, c.got, c.want)
		}
	}
	if *r.XminIndex != 0 || *r.NumPLSpikes != 2 || r.MatrixRank != 2 || r.NumEvalsFitted != 2 {
		t.Errorf("counts: %+v", r)
	}
}

// TestLargeAlphaNoOverflow: λ_max^α beyond float64 still gives a finite
// log α-norm.
func TestLargeAlphaNoOverflow(t *testing.T) {
	sv := []float64{1e6, 0.999e6, 0.998e6, 0.997e6}
	r, err := Analyze(sv, 4, 4, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusSuccess || math.IsInf(*r.LogAlphaNorm, 0) || math.IsNaN(*r.LogAlphaNorm) {
		t.Fatalf("status %s, log_alpha_norm %v (α %v)", r.Status, *r.LogAlphaNorm, *r.Alpha)
	}
	if *r.Alpha < 100 {
		t.Fatalf("α %v: the test wants a large α", *r.Alpha)
	}
}
