package esd

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"

	"github.com/qkvdev/qkv/internal/testref"
)

// refMetrics is one matrix of a reference heavytail.json (null → nil).
type refMetrics struct {
	Alpha          *float64  `json:"alpha"`
	D              *float64  `json:"D"`
	Xmin           *float64  `json:"xmin"`
	XminIndex      *int      `json:"xmin_index"`
	Xmax           *float64  `json:"xmax"`
	NumPLSpikes    *int      `json:"num_pl_spikes"`
	Sigma          *float64  `json:"sigma"`
	AlphaWeighted  *float64  `json:"alpha_weighted"`
	LogAlphaNorm   *float64  `json:"log_alpha_norm"`
	Norm           float64   `json:"norm"`
	LogNorm        float64   `json:"log_norm"`
	SpectralNorm   float64   `json:"spectral_norm"`
	LogSpectral    float64   `json:"log_spectral_norm"`
	StableRank     float64   `json:"stable_rank"`
	MatrixRank     int       `json:"matrix_rank"`
	Entropy        float64   `json:"entropy"`
	NumEvals       int       `json:"num_evals"`
	NumEvalsFitted int       `json:"num_evals_fitted"`
	Status         string    `json:"status"`
	Warning        *string   `json:"warning"`
	Shape          [2]int    `json:"shape"`
	CandAlphas     []float64 `json:"_candidate_alphas"`
	CandDs         []float64 `json:"_candidate_Ds"`
}

// refCase is one matrix with its expected metrics.
type refCase struct {
	name string
	w    testref.Tensor
	want refMetrics
}

// refCases loads every matrix of ../shared/reference/analysis: the zoo
// projections named in <arch>/heavytail.json and matrices/*.
func refCases(t *testing.T) []refCase {
	t.Helper()
	dir := filepath.Join(testref.SharedDir(t), "reference")
	var cases []refCase
	archs, err := filepath.Glob(filepath.Join(dir, "analysis", "*", "heavytail.json"))
	if err != nil || len(archs) == 0 {
		t.Fatalf("no analysis/*/heavytail.json in %s", dir)
	}
	for _, p := range archs {
		var doc struct {
			Source   string                `json:"source"`
			Matrices map[string]refMetrics `json:"matrices"`
		}
		if err := testref.ReadJSON(p, &doc); err != nil {
			t.Fatal(err)
		}
		ts, err := testref.ReadSafetensors(filepath.Join(dir, strings.TrimPrefix(doc.Source, "reference/")))
		if err != nil {
			t.Fatal(err)
		}
		arch := filepath.Base(filepath.Dir(p))
		for name, want := range doc.Matrices {
			w, ok := ts[name]
			if !ok {
				t.Fatalf("%s: %s not in %s", p, name, doc.Source)
			}
			cases = append(cases, refCase{arch + "/" + name, w, want})
		}
	}
	mats, _ := filepath.Glob(filepath.Join(dir, "analysis", "matrices", "*.heavytail.json"))
	if len(mats) == 0 {
		t.Fatalf("no analysis/matrices/*.heavytail.json in %s", dir)
	}
	for _, p := range mats {
		var want refMetrics
		if err := testref.ReadJSON(p, &want); err != nil {
			t.Fatal(err)
		}
		ts, err := testref.ReadSafetensors(strings.TrimSuffix(p, ".heavytail.json") + ".safetensors")
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, refCase{"matrices/" + filepath.Base(p), ts["weight"], want})
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].name < cases[j].name })
	return cases
}

// singularValues is LAPACK's dgesvd (gonum) in float64, as the reference used.
func singularValues(t testing.TB, w testref.Tensor) []float64 {
	m, n := w.Shape[0], w.Shape[1]
	a := append([]float64(nil), w.F64...)
	s := make([]float64, min(m, n))
	none := blas64.General{Stride: 1}
	g := blas64.General{Rows: m, Cols: n, Stride: n, Data: a}
	work := make([]float64, 1)
	lapack64.Gesvd(lapack.SVDNone, lapack.SVDNone, g, none, none, s, work, -1)
	work = make([]float64, int(work[0]))
	if !lapack64.Gesvd(lapack.SVDNone, lapack.SVDNone, g, none, none, s, work, len(work)) {
		t.Fatalf("dgesvd did not converge")
	}
	return s
}

func relErr(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Max(math.Abs(want), math.SmallestNonzeroFloat64)
}

// worst tracks the largest error per field over all cases.
type worst map[string]float64

func (w worst) note(field string, e float64) {
	if e > w[field] {
		w[field] = e
	}
}

func TestReference(t *testing.T) {
	cases := refCases(t)
	errs := worst{}
	failed := 0
	for _, c := range cases {
		m, n := c.w.Shape[0], c.w.Shape[1]
		sv := singularValues(t, c.w)
		got, err := Analyze(sv, m, n, Options{})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		want := c.want
		check := func(field string, g, w, tol float64, absolute bool) {
			e := relErr(g, w)
			if absolute {
				e = math.Abs(g - w)
			}
			errs.note(field, e)
			if !(e <= tol) {
				t.Errorf("%s: %s = %.17g, want %.17g (error %.3g > %g)", c.name, field, g, w, e, tol)
			}
		}
		exactInt := func(field string, g, w int) {
			if g != w {
				t.Errorf("%s: %s = %d, want %d", c.name, field, g, w)
			}
		}
		if got.Status != want.Status {
			t.Errorf("%s: status %q, want %q (%s)", c.name, got.Status, want.Status, got.Reason)
			continue
		}
		exactInt("num_evals", got.NumEvals, want.NumEvals)
		exactInt("num_evals_fitted", got.NumEvalsFitted, want.NumEvalsFitted)
		exactInt("matrix_rank", got.MatrixRank, want.MatrixRank)
		check("norm", got.Norm, want.Norm, 1e-9, false)
		check("log_norm", got.LogNorm, want.LogNorm, 1e-9, false)
		check("spectral_norm", got.SpectralNorm, want.SpectralNorm, 1e-9, false)
		check("log_spectral_norm", got.LogSpectralNorm, want.LogSpectral, 1e-9, false)
		check("stable_rank", got.StableRank, want.StableRank, 1e-9, false)
		check("entropy", got.Entropy, want.Entropy, 1e-6, false)
		if got.Status == StatusFailed {
			failed++
			if got.Alpha != nil || got.D != nil || got.Xmin != nil || got.XminIndex != nil || got.Xmax != nil ||
				got.NumPLSpikes != nil || got.Sigma != nil || got.AlphaWeighted != nil || got.LogAlphaNorm != nil || got.Warning != nil {
				t.Errorf("%s: a failed fit must leave every fit field nil: %+v", c.name, got)
			}
			if got.Reason == "" {
				t.Errorf("%s: a failed fit without a reason", c.name)
			}
			continue
		}
		if want.XminIndex == nil || got.XminIndex == nil {
			t.Fatalf("%s: xmin_index missing", c.name)
		}
		if *got.XminIndex != *want.XminIndex {
			t.Errorf("%s: xmin_index %d, want %d", c.name, *got.XminIndex, *want.XminIndex)
			continue
		}
		exactInt("num_pl_spikes", *got.NumPLSpikes, *want.NumPLSpikes)
		if *got.Warning != *want.Warning {
			t.Errorf("%s: warning %q, want %q", c.name, *got.Warning, *want.Warning)
		}
		check("alpha", *got.Alpha, *want.Alpha, 1e-6, false)
		check("sigma", *got.Sigma, *want.Sigma, 1e-6, false)
		check("alpha_weighted", *got.AlphaWeighted, *want.AlphaWeighted, 1e-6, false)
		check("log_alpha_norm", *got.LogAlphaNorm, *want.LogAlphaNorm, 1e-6, false)
		check("xmin", *got.Xmin, *want.Xmin, 1e-6, false)
		check("xmax", *got.Xmax, *want.Xmax, 1e-6, false)
		check("D", *got.D, *want.D, 1e-6, true)

		// Every candidate, computed exhaustively, against the diagnostics.
		lam := evalsAscending(sv)
		x := lam[len(lam)-want.NumEvalsFitted:]
		alphas, ds := exhaustive(x)
		if len(alphas) != len(want.CandAlphas) || len(ds) != len(want.CandDs) {
			t.Errorf("%s: %d candidates, want %d", c.name, len(alphas), len(want.CandAlphas))
			continue
		}
		for i := range alphas {
			check("_candidate_alphas", alphas[i], want.CandAlphas[i], 1e-6, false)
			check("_candidate_Ds", ds[i], want.CandDs[i], 1e-6, true)
		}
	}
	if failed != 1 {
		t.Errorf("%d failed fits, the reference has exactly 1 (falcon layers.1.v)", failed)
	}
	var fields []string
	for f := range errs {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	var b strings.Builder
	for _, f := range fields {
		fmt.Fprintf(&b, " %s=%.2g", f, errs[f])
	}
	t.Logf("%d matrices; worst errors (relative; D absolute):%s", len(cases), b.String())
}

// evalsAscending returns σ² ascending.
func evalsAscending(sv []float64) []float64 {
	lam := make([]float64, len(sv))
	for i, s := range sv {
		lam[i] = s * s
	}
	sort.Float64s(lam)
	return lam
}

// exhaustive computes every α_i and D_i term by term, straight from the
// definitions (WeightWatcher's formulas), for comparison with the fit.
func exhaustive(x []float64) (alphas, ds []float64) {
	k := len(x)
	for i := 0; i < k-1; i++ {
		n := float64(k - i)
		var s float64
		for _, v := range x[i:] {
			s += math.Log(v)
		}
		a := 1 + n/(s-n*math.Log(x[i]))
		d := 1.0
		if a > 1 {
			d = 0
			for j, v := range x[i:] {
				d = math.Max(d, math.Abs(1-math.Pow(v/x[i], 1-a)-float64(j)/n))
			}
		}
		alphas = append(alphas, a)
		ds = append(ds, d)
	}
	return alphas, ds
}

// TestReferenceJSON checks that the JSON names are the reference's: every
// non-diagnostic key of a reference matrix that the Result models is present.
func TestReferenceJSON(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "analysis", "matrices")
	b, err := os.ReadFile(filepath.Join(dir, "gaussian_512x512.heavytail.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string]any
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	r, err := Analyze([]float64{3, 2, 1}, 3, 4, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(r)
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	// Shape and the generator's bookkeeping are the caller's to report.
	skip := map[string]bool{"shape": true, "N": true, "M": true, "file": true, "file_sha256": true, "how_generated": true}
	for k := range ref {
		if strings.HasPrefix(k, "_") || skip[k] {
			continue
		}
		if _, ok := got[k]; !ok {
			t.Errorf("JSON lacks the reference field %q", k)
		}
	}
}
