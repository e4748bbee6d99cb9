// Package esd computes the heavy-tail ("empirical spectral density") metrics
// of a weight matrix from its singular values, as WeightWatcher 0.7.5.5 does
// with the defaults of WeightWatcher.analyze(): the power-law fit of the
// eigenvalues λ = σ² (continuous maximum-likelihood α at every candidate
// xmin, xmin chosen by the smallest Kolmogorov–Smirnov distance), and the
// norm metrics built on it (α̂ = α·log10 λ_max, log norms, log α-norm, stable
// rank, spectral entropy).
//
// The input is the full spectrum in float64. A fit needs at least two
// eigenvalues above the cut (1e-5); with fewer, or when the chosen tail is
// all ties, the fit is refused: Result.Status is "failed" and every quantity
// that depends on α is nil (null in JSON), never a sentinel number.
//
// # Definitions
//
// W is m×n, N = max(m, n), M = min(m, n); σ_1..σ_M its singular values;
// λ_i = σ_i², ascending (no normalisation).
//
// Fit: x_0 ≤ … ≤ x_{K-1} are the λ > EvalsThresh (default 1e-5). For every
// candidate i = 0..K−2 (xmin = x_i, tail size n_i = K − i):
//
//	α_i = 1 + n_i / Σ_{j≥i} ln(x_j / x_i)
//	D_i = max_{k=0..n_i−1} | 1 − (x_{i+k}/x_i)^(1−α_i) − k/n_i |
//
// (the lower step of the empirical CDF only, as WeightWatcher computes it).
// The fit is the candidate with the smallest D (the smallest xmin on a tie):
// alpha = α_i*, D = D_i*, xmin = x_i*, xmin_index = i* (an index into the
// fitted eigenvalues), xmax = x_{K−1} = λ_max (no upper truncation),
// sigma = (α − 1)/√(K − i*), num_pl_spikes = #{λ ≥ xmin}. warning is
// "over-trained" when α < 2 and "under-trained" when α > 6 (Options).
//
// Norm metrics, over all M eigenvalues (those below the cut included):
//
//	norm              Σ λ (= ‖W‖_F², not square-rooted)
//	log_norm          log10 Σ λ
//	spectral_norm     λ_max;  log_spectral_norm = log10 λ_max
//	alpha_weighted    α · log10 λ_max                     (α̂)
//	log_alpha_norm    log10 Σ λ^α
//	stable_rank       Σ λ / λ_max
//	matrix_rank       #{√λ_i > √λ_max · N · 2.220446049250313e-16}
//	entropy           −Σ p_i ln p_i / ln(matrix_rank + 1e-10),
//	                  p_i = λ_i / Σ λ + 1e-10 (the 1e-10 added to every term;
//	                  for matrix_rank 1 the denominator is about 1e-10 and the
//	                  value is large and meaningless, as in WeightWatcher)
//
// # Cost
//
// All α_i take O(K) (suffix sums of log gaps, which never cancel). The D_i
// are found by branch and bound, which keeps the argmin exact: the CDF term
// rises with k and so does k/n_i, so over any run of k the endpoints bound
// |·| for every k inside; runs whose bound cannot beat the largest value
// seen are skipped, and a candidate is abandoned as soon as one of its values
// reaches the best D so far. Past n_i/8 evaluations a candidate's remaining
// terms are scanned in order, so no candidate costs more than O(n_i): the
// worst case is the O(K²) of evaluating every term, while on real spectra
// about 1% of the K²/2 terms are evaluated.
package esd

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Status values.
const (
	StatusSuccess = "success"
	StatusFailed  = "failed"
)

// Warnings for a fitted α.
const (
	WarningOverTrained  = "over-trained"
	WarningUnderTrained = "under-trained"
)

// Options are the thresholds of the fit. The zero value means the defaults.
type Options struct {
	// EvalsThresh: eigenvalues λ ≤ EvalsThresh are left out of the fit
	// (WeightWatcher's EVALS_THRESH); 0 means 1e-5, and it must not be
	// negative.
	EvalsThresh float64
	// OverTrained: α below it is warned "over-trained"; 0 means 2.
	OverTrained float64
	// UnderTrained: α above it is warned "under-trained"; 0 means 6.
	UnderTrained float64
}

// Default thresholds.
const (
	DefaultEvalsThresh  = 1e-5
	DefaultOverTrained  = 2.0
	DefaultUnderTrained = 6.0
)

func (o Options) withDefaults() Options {
	if o.EvalsThresh == 0 {
		o.EvalsThresh = DefaultEvalsThresh
	}
	if o.OverTrained == 0 {
		o.OverTrained = DefaultOverTrained
	}
	if o.UnderTrained == 0 {
		o.UnderTrained = DefaultUnderTrained
	}
	return o
}

// Result holds the heavy-tail metrics of one matrix. JSON names are those of
// WeightWatcher (and of ../shared/reference/analysis). The fields that are
// pointers depend on the fit and are nil when it failed.
type Result struct {
	Status string `json:"status"`
	// Reason says why the fit failed ("" on success).
	Reason string `json:"reason,omitempty"`
	// Warning is "", WarningOverTrained or WarningUnderTrained.
	Warning *string `json:"warning"`

	Alpha         *float64 `json:"alpha"`
	D             *float64 `json:"D"`
	Xmin          *float64 `json:"xmin"`
	XminIndex     *int     `json:"xmin_index"`
	Xmax          *float64 `json:"xmax"`
	NumPLSpikes   *int     `json:"num_pl_spikes"`
	Sigma         *float64 `json:"sigma"`
	AlphaWeighted *float64 `json:"alpha_weighted"`
	LogAlphaNorm  *float64 `json:"log_alpha_norm"`

	Norm            float64 `json:"norm"`
	LogNorm         float64 `json:"log_norm"`
	SpectralNorm    float64 `json:"spectral_norm"`
	LogSpectralNorm float64 `json:"log_spectral_norm"`
	StableRank      float64 `json:"stable_rank"`
	MatrixRank      int     `json:"matrix_rank"`
	Entropy         float64 `json:"entropy"`

	NumEvals       int `json:"num_evals"`
	NumEvalsFitted int `json:"num_evals_fitted"`
}

// ErrZero is returned for a matrix whose singular values are all zero: it has
// no spectrum to describe.
var ErrZero = errors.New("esd: every singular value is zero")

// float64 machine epsilon, as numpy's matrix_rank uses it.
const eps64 = 2.220446049250313e-16

// Analyze computes the heavy-tail metrics of a rows×cols matrix from all of
// its min(rows, cols) singular values sv (any order; they are sorted). It
// returns an error when the shape and the count disagree, when a value is
// negative or not finite (or its square overflows), when every value is
// zero (ErrZero), or for a negative threshold.
func Analyze(sv []float64, rows, cols int, opts Options) (*Result, error) {
	opts = opts.withDefaults()
	if !(opts.EvalsThresh > 0) || math.IsInf(opts.EvalsThresh, 0) {
		return nil, fmt.Errorf("esd: eigenvalue threshold %v must be positive", opts.EvalsThresh)
	}
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("esd: shape %d×%d is empty", rows, cols)
	}
	m := min(rows, cols)
	if len(sv) != m {
		return nil, fmt.Errorf("esd: %d singular values for a %d×%d matrix (want all %d)", len(sv), rows, cols, m)
	}
	lam := make([]float64, m)
	for i, s := range sv {
		if !(s >= 0) || math.IsInf(s, 0) {
			return nil, fmt.Errorf("esd: singular value %d is %v", i, s)
		}
		lam[i] = s * s
	}
	slices.Sort(lam)
	lmax := lam[m-1]
	if lmax == 0 {
		return nil, ErrZero
	}
	if math.IsInf(lmax, 0) {
		return nil, fmt.Errorf("esd: σ_max² overflows float64")
	}

	r := &Result{NumEvals: m, SpectralNorm: lmax}
	r.normMetrics(lam, max(rows, cols))
	if math.IsInf(r.Norm, 0) {
		return nil, fmt.Errorf("esd: Σ σ² overflows float64")
	}

	// The fitted eigenvalues are a suffix of the ascending list.
	first, _ := slices.BinarySearchFunc(lam, opts.EvalsThresh, func(v, t float64) int {
		if v <= t {
			return -1
		}
		return 1
	})
	x := lam[first:]
	r.NumEvalsFitted = len(x)
	if len(x) < 2 {
		r.fail(fmt.Sprintf("%d eigenvalue(s) above %g: a power law needs at least 2", len(x), opts.EvalsThresh))
		return r, nil
	}
	f := fitPowerLaw(x)
	if math.IsInf(f.alpha, 1) {
		r.fail(fmt.Sprintf("the best tail (from eigenvalue %d of %d) is %d equal values: α is infinite", f.index, len(x), len(x)-f.index))
		return r, nil
	}
	r.Status = StatusSuccess
	alpha, d, xmin, xmax := f.alpha, f.d, x[f.index], x[len(x)-1]
	idx := f.index
	// Ties below xmin count as spikes: λ ≥ xmin over all eigenvalues.
	lo, _ := slices.BinarySearch(lam, xmin)
	spikes := m - lo
	sigma := (alpha - 1) / math.Sqrt(float64(len(x)-idx))
	aw := alpha * math.Log10(lmax)
	// log10 Σ λ^α, scaled by λ_max^α so that a large α cannot overflow.
	var s float64
	for _, v := range lam {
		s += math.Pow(v/lmax, alpha)
	}
	lan := aw + math.Log10(s)
	warn := ""
	switch {
	case alpha < opts.OverTrained:
		warn = WarningOverTrained
	case alpha > opts.UnderTrained:
		warn = WarningUnderTrained
	}
	r.Alpha, r.D, r.Xmin, r.Xmax, r.XminIndex = &alpha, &d, &xmin, &xmax, &idx
	r.NumPLSpikes, r.Sigma, r.AlphaWeighted, r.LogAlphaNorm = &spikes, &sigma, &aw, &lan
	r.Warning = &warn
	return r, nil
}

func (r *Result) fail(reason string) {
	r.Status = StatusFailed
	r.Reason = reason
}

// normMetrics fills the metrics that do not depend on the fit (lam ascending,
// lam[last] > 0, n = max(rows, cols)).
func (r *Result) normMetrics(lam []float64, n int) {
	lmax := lam[len(lam)-1]
	var sum float64
	for _, v := range lam {
		sum += v
	}
	r.Norm = sum
	r.LogNorm = math.Log10(sum)
	r.LogSpectralNorm = math.Log10(lmax)
	r.StableRank = sum / lmax
	tol := math.Sqrt(lmax) * float64(n) * eps64
	for _, v := range lam {
		if math.Sqrt(v) > tol {
			r.MatrixRank++
		}
	}
	var h float64
	for _, v := range lam {
		p := v/sum + 1e-10
		h -= p * math.Log(p)
	}
	r.Entropy = h / math.Log(float64(r.MatrixRank)+1e-10)
}
