// Package diff compares the attention projections of two checkpoints of one
// model — a base and its fine-tune, or a safetensors source and its GGUF
// conversion or quantization — layer by layer and projection by projection.
//
// Definitions, for A (the first checkpoint) and B (the second), both float32
// matrices of one shape, sums accumulated in float64:
//
//	rel_fro               = ‖A − B‖_F / ‖A‖_F        (null when ‖A‖_F = 0)
//	cosine                = ⟨A, B⟩ / (‖A‖_F ‖B‖_F)   (null when either is 0)
//	max_abs               = max |A − B|
//	snr_db                = 10 log10(‖A‖_F² / ‖A − B‖_F²)   (null, with "identical", when A = B)
//	spectral_norm_change  = σ₁(B) / σ₁(A) − 1        (relative change)
//	effective_rank_change = erank(B) − erank(A)
//	delta_effective_rank  = erank(B − A)              (null when A = B)
//
// σ₁ and erank are inspect's spectral_norm and effective_rank. A low
// delta_effective_rank reveals a low-rank update such as a merged LoRA.
// Fields computed from approximate spectra (fast mode, or inspect's flag
// effective_rank_approximate) are named in the list "approximate".
package diff

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/buildinfo"
)

// Schema names the JSON document's format.
const Schema = "qkv.diff/v1"

// ProjDiff compares one projection of one layer.
type ProjDiff struct {
	Shape               [2]int        `json:"shape"`
	RelFro              inspect.Float `json:"rel_fro"`
	Cosine              inspect.Float `json:"cosine"`
	MaxAbs              inspect.Float `json:"max_abs"`
	SNRdB               inspect.Float `json:"snr_db"`
	SpectralNormChange  inspect.Float `json:"spectral_norm_change"`
	EffectiveRankChange inspect.Float `json:"effective_rank_change"`
	DeltaEffectiveRank  inspect.Float `json:"delta_effective_rank"`
	// Identical: A and B are equal element for element.
	Identical bool `json:"identical,omitempty"`
	// NonFinite: A or B holds NaN or Inf, so the numbers are null; the
	// counts say how many of each.
	NonFinite bool `json:"non_finite,omitempty"`
	NaNA      int  `json:"nan_a,omitempty"`
	InfA      int  `json:"inf_a,omitempty"`
	NaNB      int  `json:"nan_b,omitempty"`
	InfB      int  `json:"inf_b,omitempty"`
	// Error says why the projection could not be compared (shape mismatch).
	Error string `json:"error,omitempty"`
	// Approximate names the fields whose value is approximate: estimated
	// (fast mode), or summed over singular values that are themselves only
	// approximate (inspect's effective_rank_approximate).
	Approximate []string `json:"approximate,omitempty"`
}

// LayerDiff holds one layer's comparisons; a projection absent from either
// checkpoint is nil.
type LayerDiff struct {
	Index int       `json:"index"`
	Q     *ProjDiff `json:"q"`
	K     *ProjDiff `json:"k"`
	V     *ProjDiff `json:"v"`
	O     *ProjDiff `json:"o"`
}

func (l *LayerDiff) set(p formats.Projection, d *ProjDiff) {
	switch p {
	case formats.ProjQ:
		l.Q = d
	case formats.ProjK:
		l.K = d
	case formats.ProjV:
		l.V = d
	default:
		l.O = d
	}
}

// Get returns the named projection's comparison.
func (l *LayerDiff) Get(p formats.Projection) *ProjDiff {
	switch p {
	case formats.ProjQ:
		return l.Q
	case formats.ProjK:
		return l.K
	case formats.ProjV:
		return l.V
	}
	return l.O
}

// Worst names a projection with a large relative error.
type Worst struct {
	Layer      int           `json:"layer"`
	Projection string        `json:"projection"`
	RelFro     inspect.Float `json:"rel_fro"`
	SNRdB      inspect.Float `json:"snr_db"`
}

// Summary aggregates the comparison.
type Summary struct {
	// Compared counts projections compared (both finite, one shape);
	// NonFinite those left out because A or B holds NaN or Inf, Errors
	// those whose shapes differ.
	Compared   int           `json:"compared"`
	Identical  int           `json:"identical"`
	NonFinite  int           `json:"non_finite"`
	Errors     int           `json:"errors"`
	MaxRelFro  inspect.Float `json:"max_rel_fro"`
	MeanRelFro inspect.Float `json:"mean_rel_fro"`
	MinSNRdB   inspect.Float `json:"min_snr_db"`
	Worst      []Worst       `json:"worst"`
}

// Report is the document `qkv diff --json` prints.
type Report struct {
	Schema string `json:"schema"`
	// SourceA, SourceB, QKV and IO are the provenance blocks the command
	// fills: which checkpoints, which qkv, and when either input is remote
	// what reading them cost (one client reads both).
	SourceA formats.SourceInfo `json:"source_a"`
	SourceB formats.SourceInfo `json:"source_b"`
	QKV     buildinfo.Info     `json:"qkv"`
	IO      *source.IO         `json:"io,omitempty"`
	// Passed: no threshold of Check failed (true when none was given).
	Passed bool `json:"passed"`
	// A and B are the inputs as given, for the text (the JSON has them in
	// source_a.input and source_b.input).
	A      string           `json:"-"`
	B      string           `json:"-"`
	ModelA formats.Geometry `json:"model_a"`
	ModelB formats.Geometry `json:"model_b"`
	Layers []LayerDiff      `json:"layers"`
	// OnlyInA and OnlyInB list projections ("layers.3.q") present in one
	// checkpoint only, and, when both are the same format, tensor names.
	OnlyInA []string `json:"only_in_a"`
	OnlyInB []string `json:"only_in_b"`
	Summary Summary  `json:"summary"`
	// Thresholds are those Check applied, Failures what failed them.
	Thresholds []Threshold `json:"thresholds"`
	Failures   []Failure   `json:"failures"`
}

// Source is what diff reads from each side: inspect's LayerSource.
type Source = inspect.LayerSource

// Options tune Compare.
type Options struct {
	// Workers bounds how many layers are compared at once (default GOMAXPROCS).
	Workers int
	// Fast uses inspect's Lanczos estimates for spectral norm and effective rank.
	Fast bool
	// WorstCount is how many worst projections the summary names (default 5).
	WorstCount int
	// Progress, when set, is called after each layer pair is compared with
	// the count done and the total (from the comparing goroutines, one call
	// at a time).
	Progress func(done, total int)
}

// Compare compares every layer index the two sources share.
func Compare(ctx context.Context, a, b Source, opts Options) (*Report, error) {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.WorstCount <= 0 {
		opts.WorstCount = 5
	}
	rep := &Report{Schema: Schema, Passed: true, ModelA: a.Geometry(), ModelB: b.Geometry(), OnlyInA: []string{}, OnlyInB: []string{}, Layers: []LayerDiff{},
		Thresholds: []Threshold{}, Failures: []Failure{}}
	if err := sameModel(rep.ModelA, rep.ModelB); err != nil {
		return nil, err
	}
	inA, inB := map[int]bool{}, map[int]bool{}
	for _, i := range a.LayerIndices() {
		inA[i] = true
	}
	var both []int
	for _, i := range b.LayerIndices() {
		inB[i] = true
		if inA[i] {
			both = append(both, i)
		}
	}
	sort.Ints(both)
	if len(both) == 0 {
		return nil, &MismatchError{Reason: fmt.Sprintf("no layer in common (A has %s, B has %s)", layerSpan(a.LayerIndices()), layerSpan(b.LayerIndices()))}
	}
	for _, i := range a.LayerIndices() {
		if !inB[i] {
			rep.OnlyInA = append(rep.OnlyInA, fmt.Sprintf("layers.%d", i))
		}
	}
	for _, i := range b.LayerIndices() {
		if !inA[i] {
			rep.OnlyInB = append(rep.OnlyInB, fmt.Sprintf("layers.%d", i))
		}
	}
	results := make([]LayerDiff, len(both))
	missing := make([][2][]string, len(both))
	sem := make(chan struct{}, opts.Workers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	done := 0
	for k, idx := range both {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(k, idx int) {
			defer func() { <-sem; wg.Done() }()
			la, err := a.LoadLayer(idx)
			if err == nil {
				var lb *formats.Layer
				if lb, err = b.LoadLayer(idx); err == nil {
					results[k], missing[k] = compareLayer(idx, la, lb, opts)
				}
			}
			mu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			done++
			if err == nil && opts.Progress != nil {
				opts.Progress(done, len(both))
			}
			mu.Unlock()
		}(k, idx)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	rep.Layers = results
	for _, m := range missing {
		rep.OnlyInA = append(rep.OnlyInA, m[0]...)
		rep.OnlyInB = append(rep.OnlyInB, m[1]...)
	}
	rep.Summary = summarize(results, opts.WorstCount)
	if s := rep.Summary; s.Compared == 0 && s.NonFinite == 0 {
		return nil, &MismatchError{Reason: fmt.Sprintf("no projection could be compared (%d with different shapes)", s.Errors)}
	}
	return rep, nil
}

// MismatchError says that A and B are not checkpoints of one model: their
// geometries differ, or they have no layer or projection in common.
type MismatchError struct{ Reason string }

func (e *MismatchError) Error() string {
	return "A and B are not checkpoints of one model: " + e.Reason
}

// sameModel refuses two geometries that cannot be compared projection by
// projection: a different width, head count or head size. A zero count on
// either side (unknown) is not compared.
func sameModel(a, b formats.Geometry) error {
	var diffs []string
	for _, f := range []struct {
		name string
		a, b int
	}{
		{"d_model", a.DModel, b.DModel},
		{"n_heads", a.NHeads, b.NHeads},
		{"n_kv_heads", a.NKVHeads, b.NKVHeads},
		{"head_dim", a.HeadDim, b.HeadDim},
	} {
		if f.a != 0 && f.b != 0 && f.a != f.b {
			diffs = append(diffs, fmt.Sprintf("%s %d vs %d", f.name, f.a, f.b))
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	reason := strings.Join(diffs, ", ")
	if a.Arch != b.Arch && a.Arch != "" && b.Arch != "" {
		reason = fmt.Sprintf("%s vs %s, %s", a.Arch, b.Arch, reason)
	}
	return &MismatchError{Reason: reason}
}

// layerSpan describes a list of layer indices for a message.
func layerSpan(ix []int) string {
	if len(ix) == 0 {
		return "no attention layers"
	}
	lo, hi := ix[0], ix[0]
	for _, i := range ix {
		lo, hi = min(lo, i), max(hi, i)
	}
	if lo == hi {
		return fmt.Sprintf("layer %d", lo)
	}
	return fmt.Sprintf("layers %d-%d", lo, hi)
}

func compareLayer(idx int, la, lb *formats.Layer, opts Options) (LayerDiff, [2][]string) {
	ld := LayerDiff{Index: idx}
	var miss [2][]string
	for _, p := range formats.Projections {
		ma, mb := la.Matrix(p), lb.Matrix(p)
		name := fmt.Sprintf("layers.%d.%s", idx, p)
		switch {
		case ma.Empty() && mb.Empty():
			continue
		case mb.Empty():
			miss[0] = append(miss[0], name)
			continue
		case ma.Empty():
			miss[1] = append(miss[1], name)
			continue
		}
		ld.set(p, Matrices(ma, mb, opts.Fast))
	}
	return ld, miss
}

// Matrices compares two matrices of one projection.
func Matrices(a, b formats.Matrix, fast bool) *ProjDiff {
	d := &ProjDiff{Shape: [2]int{a.Rows, a.Cols}}
	nan := inspect.Float(math.NaN())
	d.RelFro, d.Cosine, d.MaxAbs, d.SNRdB = nan, nan, nan, nan
	d.SpectralNormChange, d.EffectiveRankChange, d.DeltaEffectiveRank = nan, nan, nan
	if a.Rows != b.Rows || a.Cols != b.Cols {
		d.Error = fmt.Sprintf("shapes differ: [%d, %d] vs [%d, %d]", a.Rows, a.Cols, b.Rows, b.Cols)
		return d
	}
	// NaN and Inf are counted on both sides first: a matrix holding them
	// has no defined metric, and is never identical, even to a copy of
	// itself.
	d.NaNA, d.InfA = countNonFinite(a.Data)
	d.NaNB, d.InfB = countNonFinite(b.Data)
	if d.NaNA+d.InfA+d.NaNB+d.InfB > 0 {
		d.NonFinite = true
		return d
	}
	var aa, bb, ab, dd, maxAbs float64
	identical := true
	delta := formats.NewMatrix(a.Rows, a.Cols)
	for i, x := range a.Data {
		y := b.Data[i]
		fx, fy := float64(x), float64(y)
		diff := fy - fx
		if x != y {
			identical = false
		}
		aa += fx * fx
		bb += fy * fy
		ab += fx * fy
		dd += diff * diff
		maxAbs = math.Max(maxAbs, math.Abs(diff))
		delta.Data[i] = y - x
	}
	d.Identical = identical
	d.MaxAbs = inspect.Float(maxAbs)
	if aa > 0 {
		d.RelFro = inspect.Float(math.Sqrt(dd) / math.Sqrt(aa))
		if dd > 0 {
			d.SNRdB = inspect.Float(10 * math.Log10(aa/dd))
		}
	}
	if aa > 0 && bb > 0 {
		d.Cosine = inspect.Float(ab / (math.Sqrt(aa) * math.Sqrt(bb)))
	}
	so := inspect.StatsOptions{Fast: fast}
	sa := inspect.MatrixStats(a, so)
	sb := inspect.MatrixStats(b, so)
	if sa.SpectralNorm.Valid() && sb.SpectralNorm.Valid() && sa.SpectralNorm > 0 {
		d.SpectralNormChange = sb.SpectralNorm/sa.SpectralNorm - 1
		if estimated(sa) || estimated(sb) {
			d.Approximate = append(d.Approximate, "spectral_norm_change")
		}
	}
	if sa.EffectiveRank.Valid() && sb.EffectiveRank.Valid() {
		d.EffectiveRankChange = sb.EffectiveRank - sa.EffectiveRank
		if approxRank(sa) || approxRank(sb) {
			d.Approximate = append(d.Approximate, "effective_rank_change")
		}
	}
	if !identical {
		sd := inspect.MatrixStats(delta, so)
		d.DeltaEffectiveRank = sd.EffectiveRank
		if sd.EffectiveRank.Valid() && approxRank(sd) {
			d.Approximate = append(d.Approximate, "delta_effective_rank")
		}
	}
	return d
}

// countNonFinite counts the NaN and ±Inf values of xs.
func countNonFinite(xs []float32) (nan, inf int) {
	for _, x := range xs {
		switch f := float64(x); {
		case math.IsNaN(f):
			nan++
		case math.IsInf(f, 0):
			inf++
		}
	}
	return nan, inf
}

// estimated reports whether s's spectral statistics are fast-mode
// estimates.
func estimated(s inspect.Stats) bool { return slices.Contains(s.Flags, inspect.FlagEstimated) }

// approxRank reports whether s's effective rank is approximate.
func approxRank(s inspect.Stats) bool {
	return estimated(s) || slices.Contains(s.Flags, inspect.FlagEffectiveRankApprox)
}

func summarize(layers []LayerDiff, worstN int) Summary {
	s := Summary{Worst: []Worst{}}
	var all []Worst
	var sum float64
	maxRel, minSNR := math.NaN(), math.NaN()
	for _, l := range layers {
		for _, p := range formats.Projections {
			d := l.Get(p)
			switch {
			case d == nil:
				continue
			case d.Error != "":
				s.Errors++
				continue
			case d.NonFinite:
				s.NonFinite++
				continue
			}
			s.Compared++
			if d.Identical {
				s.Identical++
			}
			if d.RelFro.Valid() {
				r := float64(d.RelFro)
				sum += r
				if math.IsNaN(maxRel) || r > maxRel {
					maxRel = r
				}
				all = append(all, Worst{Layer: l.Index, Projection: string(p), RelFro: d.RelFro, SNRdB: d.SNRdB})
			}
			if d.SNRdB.Valid() && (math.IsNaN(minSNR) || float64(d.SNRdB) < minSNR) {
				minSNR = float64(d.SNRdB)
			}
		}
	}
	s.MaxRelFro, s.MinSNRdB = inspect.Float(maxRel), inspect.Float(minSNR)
	s.MeanRelFro = inspect.Float(math.NaN())
	if len(all) > 0 {
		s.MeanRelFro = inspect.Float(sum / float64(len(all)))
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].RelFro > all[j].RelFro })
	for _, w := range all {
		if len(s.Worst) == worstN || w.RelFro == 0 {
			break
		}
		s.Worst = append(s.Worst, w)
	}
	return s
}
