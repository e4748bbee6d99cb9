package inspect

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect/esd"
)

// LayerSource yields a model's decoded attention layers.
type LayerSource interface {
	Geometry() formats.Geometry
	LayerIndices() []int
	LoadLayer(i int) (*formats.Layer, error) // safe for concurrent use; decodes into fresh buffers
}

// FactorSource is a LayerSource that can also load an adapter's layers as
// LoRA factors without forming the updates (formats.Model can, with
// LoadLayerFactors).
type FactorSource interface {
	LayerSource
	LoadLayerFactors(i int) (*formats.Layer, error)
}

// FromFactors returns src with LoadLayer replaced by LoadLayerFactors, so
// that Run never holds an adapter's update whole: its spectra come from the
// factors and its element statistics from 64 rows at a time. (Run does not
// pick the method itself: a wrapper that watches LoadLayer, as check's
// scanning source does, would be bypassed.) A model's layers load as with
// LoadLayer.
func FromFactors(src FactorSource) LayerSource { return factorLoads{src} }

type factorLoads struct{ FactorSource }

func (f factorLoads) LoadLayer(i int) (*formats.Layer, error) { return f.LoadLayerFactors(i) }

// Thresholds of the findings; zero values take the defaults.
type Thresholds struct {
	// DeadHead: a head is dead when its fro < DeadHead × its matrix's median
	// head fro (default 1e-6).
	DeadHead float64 `json:"dead_head"`
	// RankCollapsed: a head is collapsed when its effective_rank <
	// RankCollapsed × min(m, n) (default 0.1).
	RankCollapsed float64 `json:"rank_collapsed"`
	// Duplicate: two heads are duplicates when their cosine > Duplicate (default 0.99).
	Duplicate float64 `json:"duplicate"`
	// OutlierNorm: a matrix is an outlier when its spectral_norm >
	// OutlierNorm × the median of its kind across layers (default 5).
	OutlierNorm float64 `json:"outlier_norm"`
	// AlphaLow and AlphaHigh apply with Options.ESD only (they are zero,
	// and left out of JSON, otherwise): a matrix whose fitted α is below
	// AlphaLow (default 2) or above AlphaHigh (default 6) gets the finding
	// alpha_low or alpha_high, and its esd warning "over-trained" or
	// "under-trained".
	AlphaLow  float64 `json:"alpha_low,omitempty"`
	AlphaHigh float64 `json:"alpha_high,omitempty"`
}

// DefaultThresholds are the documented defaults. AlphaLow and AlphaHigh
// take theirs (DefaultAlphaLow, DefaultAlphaHigh) only with Options.ESD.
var DefaultThresholds = Thresholds{DeadHead: 1e-6, RankCollapsed: 0.1, Duplicate: 0.99, OutlierNorm: 5}

// Defaults of the α thresholds (WeightWatcher's).
const (
	DefaultAlphaLow  = esd.DefaultOverTrained
	DefaultAlphaHigh = esd.DefaultUnderTrained
)

// ErrESDFast is returned for Options with both ESD and Fast: the
// heavy-tail fit needs every singular value, fast mode computes only the
// leading ones.
var ErrESDFast = errors.New("the heavy-tail metrics (--esd) need every singular value, and fast mode (--fast) computes only the leading ones: use one or the other")

// Options control Run.
type Options struct {
	Heads bool // per-head stats, circuits and head findings
	// DropHeads, with Heads, computes the per-head statistics for the
	// findings but keeps them out of the report (and of emit), as
	// Report.DropHeads does afterwards, so that the report holds a few
	// statistics per layer instead of every head's.
	DropHeads bool
	Spectrum  bool // keep every singular value in the report
	Fast      bool // Lanczos estimates instead of full spectra
	// ESD adds every matrix's heavy-tail metrics (MatrixReport.ESD, from
	// all of its singular values) and the findings alpha_low and
	// alpha_high. It cannot be combined with Fast (ErrESDFast). A matrix
	// whose smallest singular values the Gram route resolves only
	// approximately (sv_tail_approximate) is decomposed directly instead,
	// so that every value the metrics use is exact.
	ESD bool
	// RankTol > 0 replaces the numpy rank tolerance by this absolute value.
	RankTol float64
	// Workers is the number of layers analysed at once (default GOMAXPROCS);
	// memory is about Workers × the largest layer.
	Workers int
	Thresholds
	// Progress, when set, is called after each layer is emitted.
	Progress func(done, total int)
	// Part, when set, makes Run analyse only its shard's layers and return
	// a partial report (see Merge).
	Part *Part
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	d := DefaultThresholds
	if o.DeadHead <= 0 {
		o.DeadHead = d.DeadHead
	}
	if o.RankCollapsed <= 0 {
		o.RankCollapsed = d.RankCollapsed
	}
	if o.Duplicate <= 0 {
		o.Duplicate = d.Duplicate
	}
	if o.OutlierNorm <= 0 {
		o.OutlierNorm = d.OutlierNorm
	}
	if o.ESD {
		if !(o.AlphaLow > 0) {
			o.AlphaLow = DefaultAlphaLow
		}
		if !(o.AlphaHigh > 0) {
			o.AlphaHigh = DefaultAlphaHigh
		}
	} else {
		o.AlphaLow, o.AlphaHigh = 0, 0
	}
}

// check refuses options that cannot be combined.
func (o *Options) check() error {
	if o.ESD && o.Fast {
		return ErrESDFast
	}
	if o.ESD && (math.IsInf(o.AlphaLow, 0) || math.IsInf(o.AlphaHigh, 0) || o.AlphaLow > o.AlphaHigh) {
		return fmt.Errorf("α thresholds: the low one (%g) must not exceed the high one (%g), and both must be finite", o.AlphaLow, o.AlphaHigh)
	}
	return nil
}

// Run analyses every layer of src. Layers go through a pool of
// opts.Workers goroutines; each finished layer is passed to emit in layer
// order (emit may be nil). The returned report holds every layer and the
// findings, which need all layers. An error from the source, emit or ctx
// stops the run.
//
// Memory is bounded by the work in flight, not by the model: at most
// opts.Workers layers are decoded at once, and each layer's matrices are
// dropped once its statistics are computed; the report keeps per-layer
// statistics only (singular values only with opts.Spectrum).
//
// With opts.Part, only the shard's layers (Shard.Layers of src's) are
// analysed and the report is partial: Schema SchemaPartial, Partial set,
// and only the findings of single layers (LayerFindings); Merge joins the
// parts into the report of the whole run.
func Run(ctx context.Context, src LayerSource, opts Options, emit func(LayerReport) error) (*Report, error) {
	opts.defaults()
	if err := opts.check(); err != nil {
		return nil, err
	}
	g := src.Geometry()
	idx := src.LayerIndices()
	rep := &Report{Schema: Schema, Model: g, Settings: settingsOf(opts), Layers: []LayerReport{}, Findings: []Finding{}}
	if pt := opts.Part; pt != nil {
		if err := pt.Shard.Valid(); err != nil {
			return nil, err
		}
		if pt.Fingerprint == "" {
			return nil, errors.New("a partial run needs the model's fingerprint (inspect.Fingerprint), so that parts of different models are not merged")
		}
		all := append([]int{}, idx...) // never null in JSON
		idx = append([]int{}, pt.Shard.Layers(all)...)
		rep.Schema = SchemaPartial
		rep.Partial = &Partial{Shard: pt.Shard.I, Shards: pt.Shard.N, Assignment: AssignContiguous, Layers: slices.Clone(idx), AllLayers: all,
			Fingerprint: pt.Fingerprint, Version: pt.Version, Numerics: CurrentNumerics()}
	}
	rep.Layers = make([]LayerReport, 0, len(idx))
	info := adapterInfo(src)
	var seen loraSeen
	if len(idx) == 0 {
		rep.Adapter = adapterOf(info, &seen)
		return rep, nil
	}
	ctx, cancel := context.WithCancel(ctx)

	type result struct {
		pos int
		lr  LayerReport
		err error
	}
	jobs := make(chan int)
	results := make(chan result, opts.Workers)
	var wg sync.WaitGroup
	for w := 0; w < min(opts.Workers, len(idx)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pos := range jobs {
				r := result{pos: pos}
				l, err := src.LoadLayer(idx[pos])
				if err != nil {
					r.err = fmt.Errorf("layer %d: %w", idx[pos], err)
				} else if l == nil {
					r.err = fmt.Errorf("layer %d: source returned no layer", idx[pos])
				} else {
					if l.Index != idx[pos] {
						l.Index = idx[pos]
					}
					seen.add(l)
					r.lr, r.err = AnalyzeLayer(l, g, opts)
				}
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	// Jobs go out as workers free up, so at most Workers layers are decoded
	// at once; finished layers waiting for an earlier one hold only their
	// (small) reports.
	go func() {
		defer close(jobs)
		for pos := range idx {
			select {
			case jobs <- pos:
			case <-ctx.Done():
				return
			}
		}
	}()
	// On every return: stop the feeder and workers, then wait for them, so
	// that no goroutine outlives Run.
	defer func() {
		cancel()
		wg.Wait()
	}()

	pending := map[int]LayerReport{}
	local := []Finding{}
	next := 0
	for next < len(idx) {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if r.err != nil {
			return nil, r.err
		}
		pending[r.pos] = r.lr
		for {
			lr, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			// Findings of this layer alone are made now, while its head
			// statistics are at hand; those across layers at the end.
			local = append(local, LayerFindings(lr, opts.Thresholds, opts.Heads)...)
			if opts.DropHeads {
				lr.dropHeads()
			}
			if emit != nil {
				if err := emit(lr); err != nil {
					return nil, err
				}
			}
			rep.Layers = append(rep.Layers, lr)
			next++
			if opts.Progress != nil {
				opts.Progress(next, len(idx))
			}
		}
	}
	rep.Findings = local
	rep.Adapter = adapterOf(info, &seen)
	if rep.Adapter != nil {
		// A LoRA update is low-rank by construction (rank r, stated in the
		// verdict): rank_collapsed would flag every head of every update.
		rep.Findings = slices.DeleteFunc(rep.Findings, func(f Finding) bool { return f.Kind == KindRankCollapsed })
	}
	if rep.Partial == nil {
		// Findings gives the same: LayerFindings of each layer, then these.
		rep.Findings = append(rep.Findings, CrossLayerFindings(rep.Layers, opts.Thresholds)...)
	}
	return rep, nil
}

func settingsOf(o Options) Settings {
	s := Settings{Mode: "full", Heads: o.Heads && !o.DropHeads, Spectrum: o.Spectrum, ESD: o.ESD, RankTol: Float(math.NaN()), Thresh: o.Thresholds}
	if o.Fast {
		s.Mode = "fast"
	}
	if o.RankTol > 0 {
		s.RankTol = Float(o.RankTol)
	}
	return s
}
