package check

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/inspect"
)

// gather makes the pass over the checkpoint and returns its facts. Every
// tensor's values are decoded once: the attention tensors whose values
// their decoded layer holds (layerCovers) are counted from it while the
// layer is analysed; every other tensor is decoded by the scan, in pieces
// small enough to stay in cache, on every core, at the same time as the
// layers. With opts.Part, only the part's layers and tensors are looked at
// (see partTensors).
func gather(ctx context.Context, in Input, rules *Rules, opts Options) (*Facts, error) {
	f := &Facts{Path: in.Path, Tensors: []TensorFacts{}}
	if in.OpenErr != nil {
		f.Open = &ErrFact{Tensor: tensorOf(in.OpenErr), Message: errText(in.Path, in.OpenErr)}
	}
	ck := in.Checkpoint
	if ck == nil {
		return f, nil
	}
	f.TensorCount = len(ck.Tensors)
	tfs := make([]TensorFacts, len(ck.Tensors))
	index := make(map[*formats.Tensor]int, len(ck.Tensors))
	for i, t := range ck.Tensors {
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		tfs[i] = TensorFacts{Index: i, Name: t.Name, DType: t.Type.Name(), Shape: shape, Elements: t.Elements(), RowLen: max(t.RowLen(), 1),
			BlockSize: t.Type.BlockSize(), Decodable: t.Type.Decodable(), Quantized: t.Type.Quantized(), FirstZeroRow: -1}
		index[t] = i
	}
	m := in.Model
	if in.OpenErr == nil && in.FindErr != nil {
		f.Find = &ErrFact{Tensor: tensorOf(in.FindErr), Message: errText(in.Path, in.FindErr), NoAttention: noAttention(in.FindErr)}
	}
	if in.OpenErr != nil || in.FindErr != nil {
		m = nil
	}
	// Which layer counts each covered tensor (the first that reads it).
	covers := map[int][]cover{}
	coveredBy := map[int]int{} // tensor index → layer index
	var layers []int
	if m != nil {
		f.Model = modelFacts(m)
		layers = m.LayerIndices()
		for _, li := range layers {
			for _, c := range layerCovers(m.Layer(li)) {
				k := index[c.t]
				if _, taken := coveredBy[k]; !taken && c.t.Type.Decodable() && c.t.Elements() > 0 {
					coveredBy[k] = li
					covers[li] = append(covers[li], c)
				}
			}
		}
	}
	// A part looks at its shard's layers and tensors only.
	mine := func(int) bool { return true }
	if pt := opts.Part; pt != nil {
		if err := pt.Shard.Valid(); err != nil {
			return nil, err
		}
		layers = pt.Shard.Layers(layers)
		own := partTensors(ck, coveredBy, layers, pt.Shard)
		mine = func(k int) bool { return own[k] }
	}

	var a *analyzer
	if m != nil {
		var err error
		if a, err = f.plan(m, rules, opts, in.Baseline != nil); err != nil {
			return nil, err
		}
	}
	var (
		done     atomic.Int64
		total    int64
		progress = func() {
			if opts.Progress != nil {
				opts.Progress(int(done.Add(1)), int(total))
			}
		}
	)
	for k := range tfs {
		if mine(k) {
			total++
		}
	}
	if opts.Progress != nil {
		opts.Progress(0, int(total)) // shown from the first second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The layers, counting the tensors they cover.
	var (
		wg      sync.WaitGroup
		lrs     = make([]inspect.LayerReport, len(layers))
		lerrs   = make([]error, len(layers))
		lscans  = make([]map[int]valueScan, len(layers))
		scanned = make([]bool, len(tfs)) // counted via a layer
	)
	if a != nil && len(layers) > 0 {
		workers := opts.Workers
		if workers <= 0 {
			workers = runtime.GOMAXPROCS(0)
		}
		jobs := make(chan int)
		for w := 0; w < min(workers, len(layers)); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for pos := range jobs {
					lrs[pos], lscans[pos], lerrs[pos] = analyzeLayer(m, layers[pos], covers[layers[pos]], index, a)
					for range lscans[pos] {
						progress()
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(jobs)
			for pos := range layers {
				select {
				case jobs <- pos:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	// The scan of every other tensor of the part, at the same time.
	var scan []int
	for k := range tfs {
		if _, covered := coveredBy[k]; mine(k) && !covered {
			scan = append(scan, k)
		}
	}
	serr := scanTensors(ctx, in.Path, ck, tfs, scan, opts.chunk(), progress)
	wg.Wait()
	if serr != nil {
		return nil, serr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, sc := range lscans {
		for k, s := range sc {
			tf := &tfs[k]
			tf.Scanned, tf.viaLayer = true, true
			tf.NaN, tf.Inf, tf.ZeroRows, tf.FirstZeroRow, tf.AllZero = s.nan, s.inf, s.zeroRows, s.firstZeroRow, s.allZero
			scanned[k] = true
		}
	}
	// Covered tensors whose layer could not be loaded, or whose values the
	// layer did not hold as expected: decoded by the scan now.
	var rest []int
	for k, li := range coveredBy {
		if mine(k) && !scanned[k] && slices.Contains(layers, li) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	if err := scanTensors(ctx, in.Path, ck, tfs, rest, opts.chunk(), progress); err != nil {
		return nil, err
	}
	// A NaN or Inf block scale is a broken block even where the decoded
	// values come out finite (a scale the decoder does not read, or a NaN
	// times codes that happen to vanish elsewhere).
	for k := range tfs {
		tf, t := &tfs[k], ck.Tensors[k]
		if !mine(k) || !tf.Scanned || !t.Type.Quantized() {
			continue
		}
		err := ck.ReadRaw(t, func(b []byte) error {
			n, err := dtype.NonFiniteScales(t.Type, b)
			tf.BadScales = n
			return err
		})
		if err != nil {
			tf.ScaleErr = errText(in.Path, err)
		}
	}
	for k := range tfs {
		if mine(k) {
			f.Tensors = append(f.Tensors, tfs[k])
		}
	}
	if a != nil {
		f.statistics(m, a, layers, lrs, lerrs, opts)
	}
	return f, nil
}

// analyzeLayer loads one layer, counts the values of the tensors it
// covers, and analyses it.
func analyzeLayer(m *formats.Model, li int, covers []cover, index map[*formats.Tensor]int, a *analyzer) (inspect.LayerReport, map[int]valueScan, error) {
	l, err := m.LoadLayer(li)
	if err != nil {
		return inspect.LayerReport{}, nil, fmt.Errorf("layer %d: %w", li, err)
	}
	scans := map[int]valueScan{}
	for i := range covers {
		if sc, ok := covers[i].count(l); ok {
			scans[index[covers[i].t]] = sc
		}
	}
	lr, err := a.layer(l)
	return lr, scans, err
}

// scanTensors decodes and counts the listed tensors in pieces spread over
// every core; a tensor's error is that of its first piece that failed.
func scanTensors(ctx context.Context, path string, ck *formats.Checkpoint, tfs []TensorFacts, list []int, chunk int64, progress func()) error {
	type pieceResult struct {
		sc  valueScan
		err error
	}
	var all []scanPiece
	first := map[int]int{} // tensor → index of its first piece
	left := map[int]*atomic.Int64{}
	for _, k := range list {
		t := ck.Tensors[k]
		if !t.Type.Decodable() || t.Elements() == 0 {
			progress()
			continue
		}
		ps := pieces(k, t, chunk)
		first[k] = len(all)
		n := &atomic.Int64{}
		n.Store(int64(len(ps)))
		left[k] = n
		all = append(all, ps...)
	}
	results := make([]pieceResult, len(all))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []float32
			for {
				i := int(next.Add(1) - 1)
				if i >= len(all) || ctx.Err() != nil {
					return
				}
				pc := all[i]
				t := ck.Tensors[pc.tensor]
				sc := newValueScan(max(t.RowLen(), 1))
				var err error
				if pc.long {
					buf, err = scanLongRows(ck, t, chunk, buf, &sc)
				} else {
					sc.row = pc.r0
					buf, err = scanRowsInto(ck, t, pc.r0, pc.r1, buf, &sc)
				}
				results[i] = pieceResult{sc, err}
				if left[pc.tensor].Add(-1) == 0 {
					progress()
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, k := range list {
		i0, ok := first[k]
		if !ok {
			continue
		}
		tf := &tfs[k]
		total := newValueScan(tf.RowLen)
		var err error
		for i := i0; i < len(all) && all[i].tensor == k; i++ {
			if r := results[i]; r.err != nil {
				err = r.err
				break
			} else if i == i0 {
				total = r.sc
			} else {
				total.merge(r.sc)
			}
		}
		if err != nil {
			tf.Scanned, tf.Err = false, errText(path, err)
			continue
		}
		tf.Scanned = true
		tf.NaN, tf.Inf, tf.ZeroRows, tf.FirstZeroRow, tf.AllZero = total.nan, total.inf, total.zeroRows, total.firstZeroRow, total.allZero
	}
	return nil
}

// partTensors picks the tensors part s looks at: those its layers count,
// and a contiguous share, balanced by bytes, of the tensors no layer
// counts (in checkpoint order, so that the parts' problems come in the
// checkpoint's order when they are put together).
func partTensors(ck *formats.Checkpoint, coveredBy map[int]int, layers []int, s inspect.Shard) map[int]bool {
	own := map[int]bool{}
	for k, li := range coveredBy {
		if slices.Contains(layers, li) {
			own[k] = true
		}
	}
	var total, seen int64
	for k, t := range ck.Tensors {
		if _, c := coveredBy[k]; !c {
			total += max(t.Bytes, 1)
		}
	}
	for k, t := range ck.Tensors {
		if _, c := coveredBy[k]; c {
			continue
		}
		// The shard of the tensor's first byte.
		shard := 0
		if total > 0 {
			shard = int(seen * int64(s.N) / total)
		}
		if shard == s.I {
			own[k] = true
		}
		seen += max(t.Bytes, 1)
	}
	return own
}

// modelFacts outline m for the attention checks.
func modelFacts(m *formats.Model) *ModelFacts {
	g := m.Geometry()
	mf := &ModelFacts{Layers: len(m.Layers), Heads: g.NHeads, KVHeads: g.NKVHeads, HeadDim: g.HeadDim, DModel: g.DModel, LayerTensors: []LayerTensors{},
		Unmodelled: g.Unsupported}
	for i := range m.Layers {
		ls := &m.Layers[i]
		lt := LayerTensors{Index: ls.Index, Proj: map[string]string{}, Tensors: []string{}}
		add := func(t *formats.Tensor) {
			if t != nil && !slices.Contains(lt.Tensors, t.Name) {
				lt.Tensors = append(lt.Tensors, t.Name)
			}
		}
		for _, p := range formats.Projections {
			ps := ls.Proj(p)
			if ps == nil {
				continue
			}
			switch {
			case ps.LoRA != nil:
				lt.Proj[string(p)] = ps.LoRA.B.Name
			case ps.Tensor != nil:
				lt.Proj[string(p)] = ps.Tensor.Name
			}
			add(ps.Tensor)
			add(ps.Bias)
			if ps.LoRA != nil {
				add(ps.LoRA.A)
				add(ps.LoRA.B)
			}
		}
		add(ls.NormWeight)
		add(ls.NormBias)
		mf.LayerTensors = append(mf.LayerTensors, lt)
	}
	return mf
}

// plan decides what the layers' analysis computes: per-head statistics
// when a head check is on and the heads fit (else Facts says why not),
// full spectra when the rules need exact values.
func (f *Facts) plan(m *formats.Model, rules *Rules, opts Options, baseline bool) (*analyzer, error) {
	a := &analyzer{g: m.Geometry(), th: rules.Thresholds, exact: opts.Exact || (baseline && rules.driftNeedsSpectra()), bounds: rules.Bounds,
		rank: rules.SeverityOf(CheckRankCollapsed) != Off}
	headCheck := false
	for _, id := range headChecks {
		headCheck = headCheck || rules.SeverityOf(id) != Off
	}
	if err := m.HeadsKnown(); err != nil {
		var fe *formats.Error
		msg := err.Error()
		if errors.As(err, &fe) {
			msg = fe.Err.Error()
		}
		f.HeadsUnknown = msg
	} else if err := headsFit(m); err != nil {
		f.HeadsNoFit = &ErrFact{Tensor: tensorOf(err), Message: errText(f.Path, err)}
	} else {
		a.heads = headCheck
	}
	a.rank = a.rank && a.heads
	return a, nil
}

// statistics assembles the layers' reports into the run's report (a part's
// partial report with opts.Part), or records the first layer that failed.
func (f *Facts) statistics(m *formats.Model, a *analyzer, layers []int, lrs []inspect.LayerReport, lerrs []error, opts Options) {
	for _, err := range lerrs {
		if err != nil {
			f.StatsErr = &ErrFact{Tensor: tensorOf(err), Message: errText(f.Path, err)}
			return
		}
	}
	g := m.Geometry()
	rep := &inspect.Report{Schema: inspect.Schema, Model: g, Layers: []inspect.LayerReport{}, Findings: []inspect.Finding{},
		Settings: inspect.Settings{Mode: a.mode(), RankTol: inspect.Float(nanValue), Thresh: a.th}}
	if pt := opts.Part; pt != nil {
		all := append([]int{}, m.LayerIndices()...)
		rep.Schema = inspect.SchemaPartial
		rep.Partial = &inspect.Partial{Shard: pt.Shard.I, Shards: pt.Shard.N, Assignment: inspect.AssignContiguous, Layers: append([]int{}, layers...),
			AllLayers: all, Fingerprint: pt.Fingerprint, Version: pt.Version, Numerics: inspect.CurrentNumerics()}
	}
	for _, lr := range lrs {
		rep.Findings = append(rep.Findings, inspect.LayerFindings(lr, a.th, a.heads)...)
		// The findings hold what the rules read of the heads.
		lr.Circuits = nil
		for _, mr := range []*inspect.MatrixReport{lr.Q, lr.K, lr.V, lr.O} {
			if mr != nil {
				mr.Heads, mr.MostSimilar = nil, nil
			}
		}
		rep.Layers = append(rep.Layers, lr)
	}
	if rep.Partial == nil {
		// As inspect.Merge does for the parts.
		rep.Findings = append(rep.Findings, inspect.CrossLayerFindings(rep.Layers, a.th)...)
	}
	f.Stats = rep
}

var nanValue = math.NaN()

// headsFit says whether every projection splits into the geometry's head
// blocks (q and o: n_heads, k and v: n_kv_heads blocks; head_dim rows for q
// and k, the value head dim for v and o, o by columns), as the per-head
// statistics need; an adapter missing a projection is fine. Knowing it
// before the layers are decoded keeps the pass to one.
func headsFit(m *formats.Model) error {
	g := m.Geometry()
	for i := range m.Layers {
		ls := &m.Layers[i]
		for _, p := range formats.Projections {
			ps := ls.Proj(p)
			if ps == nil {
				continue
			}
			count, n, what, hd := g.NHeads, ps.Out, "rows", g.HeadDim
			switch p {
			case formats.ProjK:
				count = g.NKVHeads
			case formats.ProjV:
				count, hd = g.NKVHeads, g.ValueHeadDim()
			case formats.ProjO:
				n, what, hd = ps.In, "columns", g.ValueHeadDim()
			}
			if count <= 0 || hd <= 0 {
				return fmt.Errorf("layer %d: %s: geometry has %d heads of dimension %d", ls.Index, p, count, hd)
			}
			if n != count*hd {
				return fmt.Errorf("layer %d: %s: matrix has %d %s, want %d heads × %d", ls.Index, p, n, what, count, hd)
			}
		}
	}
	return nil
}

// noAttention reports whether an error of formats.FindModel says the
// checkpoint has no attention layers at all (no tensors, none under a name
// any known architecture or --map gives, or a GGUF without an architecture:
// a data or vocabulary file) — a warning for a gate — rather than
// attention layers that cannot be resolved, which fail it.
func noAttention(err error) bool { return errors.Is(err, formats.ErrNoAttention) }

func tensorOf(err error) string {
	var fe *formats.Error
	if errors.As(err, &fe) {
		return fe.Tensor
	}
	return ""
}

// errText is an error's message for a problem: a *formats.Error without
// the tensor (the problem names it) and without the file when it is the
// checkpoint's path (the report names it), so that a line never repeats
// its prefix ("x: x: tensor "t": ..." before). Other files — a shard, a
// config.json — stay named, relative to the checkpoint's folder.
func errText(path string, err error) string {
	var fe *formats.Error
	if !errors.As(err, &fe) {
		return err.Error()
	}
	var b strings.Builder
	switch file := fe.File; {
	case file == "" || file == path:
	case strings.HasPrefix(file, strings.TrimSuffix(path, "/")+"/"):
		// A file of the checkpoint's folder: named within it.
		b.WriteString(strings.TrimPrefix(file, strings.TrimSuffix(path, "/")+"/") + ": ")
	default:
		b.WriteString(file + ": ")
	}
	b.WriteString(fe.Err.Error())
	if fe.Offset >= 0 {
		fmt.Fprintf(&b, " (at byte %d)", fe.Offset)
	}
	// The *formats.Error may be wrapped ("layer 0: ..."): keep the context.
	return strings.Replace(err.Error(), fe.Error(), b.String(), 1)
}
