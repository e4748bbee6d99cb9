package check

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/termui"
)

// evaluate applies the rules to the facts of a run (or of merged parts),
// in report order: structure, then each tensor's checks in checkpoint
// order, then the attention checks.
func evaluate(f *Facts, rules *Rules, base *inspect.Report) *Result {
	res := &Result{Schema: Schema, Path: f.Path, Failures: []Problem{}, Warnings: []Problem{}, Checks: []string{}}
	c := &collector{rules: rules, res: res, ran: map[string]bool{}}
	if c.enabled(CheckStructure) && f.Open != nil {
		c.report(CheckStructure, f.Open.Tensor, nil, nil, "%s", f.Open.Message)
	}
	if f.Open == nil {
		tensorChecks(c, f)
		attentionChecks(c, f, base)
	}
	if f.Stats != nil {
		res.Spectra = "bounds"
		if f.Stats.Settings.Mode == ModeExact {
			res.Spectra = "exact"
		}
	}
	if f.Model != nil {
		setLayers(res, f.Model)
	}
	for _, id := range AllChecks {
		if c.ran[id] {
			res.Checks = append(res.Checks, id)
		}
	}
	res.Passed = len(res.Failures) == 0
	return res
}

type collector struct {
	rules *Rules
	res   *Result
	ran   map[string]bool
}

// measure is the number behind a problem.
type measure struct {
	stat             string
	value, threshold float64
	bounds           *[2]inspect.Float
}

func (c *collector) add(id string, sev Severity, tensor string, layer *int, m *measure, format string, args ...any) {
	// One line per message: error texts from parsers may hold newlines.
	msg := oneLine.Replace(fmt.Sprintf(format, args...))
	p := Problem{Check: id, Tensor: tensor, Layer: layer, Message: msg}
	if m != nil {
		stat, v, th := m.stat, termui.Float(m.value), termui.Float(m.threshold)
		p.Stat, p.Value, p.Threshold, p.Bounds = &stat, &v, &th, m.bounds
	}
	switch sev {
	case Fail:
		c.res.Failures = append(c.res.Failures, p)
	case Warn:
		c.res.Warnings = append(c.res.Warnings, p)
	}
}

var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

func (c *collector) report(id, tensor string, layer *int, m *measure, format string, args ...any) {
	c.add(id, c.rules.SeverityOf(id), tensor, layer, m, format, args...)
}

func (c *collector) enabled(id string) bool {
	if c.rules.SeverityOf(id) == Off {
		return false
	}
	c.ran[id] = true
	return true
}

// tensorChecks applies the value checks to every tensor's counts.
func tensorChecks(c *collector, f *Facts) {
	allowed := map[string]bool{}
	for _, d := range c.rules.AllowedDTypes {
		allowed[strings.ToUpper(d)] = true
	}
	doDType := c.enabled(CheckDType)
	doNaN, doInf := c.enabled(CheckNaN), c.enabled(CheckInf)
	doZeroT, doZeroV, doZeroR := c.enabled(CheckZeroTensor), c.enabled(CheckZeroVector), c.enabled(CheckZeroRows)
	for i := range f.Tensors {
		t := &f.Tensors[i]
		c.res.Tensors++
		if doDType && len(allowed) > 0 && !allowed[strings.ToUpper(t.DType)] {
			c.report(CheckDType, t.Name, nil, nil, "element type %s is not allowed (allowed: %s)", t.DType, strings.Join(c.rules.AllowedDTypes, ", "))
		}
		if !t.Decodable {
			if doDType {
				c.report(CheckDType, t.Name, nil, nil, "element type %s cannot be decoded, so its values were not checked", t.DType)
			}
			continue
		}
		if t.Elements == 0 {
			continue
		}
		allZero := t.AllZero
		if t.Err != "" {
			c.report(CheckStructure, t.Name, nil, nil, "%s", t.Err)
			allZero = false
		}
		var badScales int64
		if doNaN && t.Scanned && t.Quantized {
			if t.ScaleErr != "" {
				c.report(CheckStructure, t.Name, nil, nil, "%s", t.ScaleErr)
			}
			badScales = t.BadScales
		}
		blocks := t.Elements / int64(max(t.BlockSize, 1))
		switch {
		case doNaN && t.NaN > 0 && badScales > 0:
			c.report(CheckNaN, t.Name, nil, &measure{stat: "nan_count", value: float64(t.NaN)},
				"%d NaN values of %d; %d of %d %s blocks have a NaN or infinite scale", t.NaN, t.Elements, badScales, blocks, t.DType)
		case doNaN && t.NaN > 0:
			c.report(CheckNaN, t.Name, nil, &measure{stat: "nan_count", value: float64(t.NaN)}, "%d NaN values of %d", t.NaN, t.Elements)
		case doNaN && badScales > 0:
			c.report(CheckNaN, t.Name, nil, &measure{stat: "nonfinite_scale_blocks", value: float64(badScales)},
				"%d of %d %s blocks have a NaN or infinite scale (their decoded values are finite)", badScales, blocks, t.DType)
		}
		if doInf && t.Inf > 0 {
			c.report(CheckInf, t.Name, nil, &measure{stat: "inf_count", value: float64(t.Inf)}, "%d infinite values of %d", t.Inf, t.Elements)
		}
		matrix := len(t.Shape) >= 2
		rows := t.Elements / max(t.RowLen, 1)
		switch {
		case allZero && matrix && doZeroT:
			c.report(CheckZeroTensor, t.Name, nil, &measure{stat: "zero_fraction", value: 1, threshold: 1}, "every value is zero (%s)", shapeText(t.Shape))
		case allZero && !matrix && doZeroV:
			c.report(CheckZeroVector, t.Name, nil, &measure{stat: "zero_fraction", value: 1, threshold: 1}, "every value is zero (%s)", shapeText(t.Shape))
		case !allZero && matrix && doZeroR && t.ZeroRows >= int64(c.rules.ZeroRowsMin):
			c.report(CheckZeroRows, t.Name, nil, &measure{stat: "zero_rows", value: float64(t.ZeroRows), threshold: float64(c.rules.ZeroRowsMin)},
				"%d of %d rows are all zero (first: row %d)", t.ZeroRows, rows, t.FirstZeroRow)
		}
	}
}

// headChecks are the checks that need per-head statistics.
var headChecks = []string{CheckDeadHead, CheckDuplicateHeads, CheckRankCollapsed}

// attentionChecks applies the attention rules to the model's geometry and
// its statistics.
func attentionChecks(c *collector, f *Facts, base *inspect.Report) {
	if f.Find != nil && !f.Find.NoAttention {
		// Attention layers are there but their geometry or factors cannot
		// be resolved (heads that do not divide the width, KV heads above
		// heads, a head count of the wrong type, LoRA ranks that disagree,
		// a fused update whose split needs the base model): layers and
		// inspect refuse such a file, and a gate must fail it.
		if c.enabled(CheckStructure) {
			c.report(CheckStructure, f.Find.Tensor, nil, nil, "attention layers cannot be resolved, so attention checks were skipped: %s", firstLine(f.Find.Message))
		}
		return
	}
	if f.Find != nil || f.Model == nil {
		if g := c.rules.Geometry; g != (Geometry{}) && c.enabled(CheckGeometry) {
			c.report(CheckGeometry, "", nil, nil, "no attention layers found, so the geometry the rules expect cannot be confirmed")
		}
		if c.enabled(CheckNoAttention) {
			msg := "no attention layers found"
			if f.Find != nil {
				msg += ": " + firstLine(f.Find.Message)
			}
			c.report(CheckNoAttention, "", nil, nil, "%s; attention checks skipped", msg)
		}
		return
	}
	m := f.Model
	if c.enabled(CheckGeometry) {
		// What qkv does not model makes the attention checks less certain
		// (a model type outside the registry is split into heads by
		// guesses): a warning each, never silence, as layers and inspect
		// say. Assumptions are about the rerun's settings (score scale,
		// sliding pattern), which no check here depends on.
		for _, u := range m.Unmodelled {
			c.add(CheckGeometry, Warn, "", nil, nil, "not modelled: %s", u.Message)
		}
		want := c.rules.Geometry
		for _, x := range []struct {
			name      string
			want, got int
		}{{"layers", want.Layers, m.Layers}, {"heads", want.Heads, m.Heads}, {"kv_heads", want.KVHeads, m.KVHeads},
			{"head_dim", want.HeadDim, m.HeadDim}, {"d_model", want.DModel, m.DModel}} {
			if x.want > 0 && x.want != x.got {
				c.report(CheckGeometry, "", nil, &measure{stat: x.name, value: float64(x.got), threshold: float64(x.want)}, "%s is %d, the rules expect %d", x.name, x.got, x.want)
			}
		}
	}
	// Head findings need head counts that fit the matrices; the checks that
	// ran say which did, and a warning says why the others did not (a gate
	// that skips silently would pass a checkpoint it never looked at).
	doDead, doDup, doRank := false, false, false
	switch {
	case f.HeadsUnknown != "":
		if c.rules.SeverityOf(CheckGeometry) != Off {
			var skipped []string
			for _, id := range headChecks {
				if c.rules.SeverityOf(id) != Off {
					skipped = append(skipped, id)
				}
			}
			if len(skipped) > 0 {
				c.add(CheckGeometry, Warn, "", nil, nil, "%s not checked: %s", strings.Join(skipped, ", "), f.HeadsUnknown)
			}
		}
	case f.HeadsNoFit != nil:
		// Per-head analysis does not fit where whole matrices do (latent
		// attention's value heads, an adapter lacking some projections):
		// check what can be checked and say what was not.
		if f.StatsErr == nil {
			c.add(CheckGeometry, Warn, f.HeadsNoFit.Tensor, nil, nil, "per-head checks skipped: %s", f.HeadsNoFit.Message)
		}
	default:
		doDead, doDup, doRank = c.enabled(CheckDeadHead), c.enabled(CheckDuplicateHeads), c.enabled(CheckRankCollapsed)
	}
	if f.StatsErr != nil {
		// A projection that cannot be loaded (an undecodable type, a LoRA
		// pair that does not fit) is a structure problem of this
		// checkpoint, not a reason to stop without a report.
		for _, id := range headChecks {
			delete(c.ran, id)
		}
		c.enabled(CheckStructure)
		c.report(CheckStructure, f.StatsErr.Tensor, nil, nil, "attention checks skipped: %s", f.StatsErr.Message)
		return
	}
	rep := f.Stats
	if rep == nil {
		return
	}
	c.res.Layers = len(rep.Layers)
	for _, fd := range rep.Findings {
		tensor := projTensor(m, fd.Layer, fd.Matrix)
		where := fmt.Sprintf("layers.%d.%s", fd.Layer, fd.Matrix)
		switch fd.Kind {
		case inspect.KindDeadHead:
			if doDead {
				c.report(CheckDeadHead, tensor, intp(fd.Layer), &measure{stat: "fro", value: float64(fd.Value), threshold: float64(fd.Threshold)}, "%s: %s", where, fd.Message)
			}
		case inspect.KindRankCollapsed:
			if doRank {
				c.report(CheckRankCollapsed, tensor, intp(fd.Layer), &measure{stat: "effective_rank", value: float64(fd.Value), threshold: float64(fd.Threshold)}, "%s: %s", where, fd.Message)
			}
		case inspect.KindDuplicateHeads:
			if doDup {
				sev, th := c.rules.SeverityOf(CheckDuplicateHeads), c.rules.DuplicateFail
				if float64(fd.Value) <= c.rules.DuplicateFail {
					sev, th = Warn, float64(fd.Threshold)
				}
				c.add(CheckDuplicateHeads, sev, tensor, intp(fd.Layer), &measure{stat: "cosine", value: float64(fd.Value), threshold: th}, "%s: %s", where, fd.Message)
			}
		}
	}
	if c.enabled(CheckOutlierNorm) {
		outliers(c, m, rep)
	}
	if len(c.rules.Bounds) > 0 && c.enabled(CheckBounds) {
		bounds(c, m, rep)
	}
	if base != nil && c.enabled(CheckDrift) {
		drift(c, m, rep, base)
	}
}

// setLayers gives problems of a layer's attention tensors (weights, biases,
// LoRA factors, the pre-attention norm) that layer, so that a script can
// group them whichever check found them.
func setLayers(res *Result, m *ModelFacts) {
	layerOf := map[string]int{}
	for _, lt := range m.LayerTensors {
		for _, n := range lt.Tensors {
			layerOf[n] = lt.Index
		}
	}
	for _, ps := range [][]Problem{res.Failures, res.Warnings} {
		for i := range ps {
			if l, ok := layerOf[ps[i].Tensor]; ok && ps[i].Layer == nil {
				ps[i].Layer = intp(l)
			}
		}
	}
}

func shapeText(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "shape [" + strings.Join(parts, ", ") + "]"
}

func intp(i int) *int { return &i }

// projTensor names the stored tensor a projection comes from.
func projTensor(m *ModelFacts, layer int, p string) string {
	for _, lt := range m.LayerTensors {
		if lt.Index == layer {
			if name, ok := lt.Proj[p]; ok {
				return name
			}
		}
	}
	return fmt.Sprintf("layers.%d.%s", layer, p)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// bracket is a spectral norm's known range: [value, value] when exact,
// the Lanczos bounds when estimated.
func bracket(mr *inspect.MatrixReport) (lo, hi float64, estimated bool) {
	v := float64(mr.SpectralNorm)
	if b := mr.SpectralNormBounds; b != nil && b[0].Valid() && b[1].Valid() {
		return float64(b[0]), float64(b[1]), true
	}
	return v, v, false
}

// outliers flags a matrix whose spectral norm exceeds OutlierNorm times the
// median of the same kind in the other layers (leave-one-out, so that one
// scaled layer stands out even in a two-layer model). With estimated norms
// the bounds decide: a matrix is an outlier when its lower bound exceeds
// the limit from the others' upper bounds, and is not when its upper bound
// stays within the limit from their lower bounds; between the two the
// bounds cannot decide, which a warning says (--exact decides).
func outliers(c *collector, m *ModelFacts, rep *inspect.Report) {
	lim := c.rules.Thresholds.OutlierNorm
	for _, p := range formats.Projections {
		type entry struct {
			layer  int
			lo, hi float64
			est    bool
		}
		var es []entry
		for _, l := range rep.Layers {
			if mr := l.Matrix(p); mr != nil && mr.SpectralNorm.Valid() {
				lo, hi, est := bracket(mr)
				es = append(es, entry{l.Index, lo, hi, est})
			}
		}
		if len(es) < 2 {
			continue
		}
		for i, e := range es {
			var los, his []float64
			anyEst := e.est
			for j, o := range es {
				if j != i {
					los, his = append(los, o.lo), append(his, o.hi)
					anyEst = anyEst || o.est
				}
			}
			medLo, medHi := median(los), median(his)
			if !(medLo > 0) {
				continue
			}
			tensor, where := projTensor(m, e.layer, string(p)), fmt.Sprintf("layers.%d.%s", e.layer, p)
			switch {
			case !anyEst && e.lo > lim*medLo:
				c.report(CheckOutlierNorm, tensor, intp(e.layer), &measure{stat: "spectral_norm", value: e.lo, threshold: lim * medLo},
					"%s: spectral norm %.4g is %.1f× the median %.4g of %s in the other layers (limit %g×)", where, e.lo, e.lo/medLo, medLo, p, lim)
			case anyEst && e.lo > lim*medHi:
				c.report(CheckOutlierNorm, tensor, intp(e.layer), &measure{stat: "spectral_norm", value: e.lo, threshold: lim * medHi, bounds: &[2]inspect.Float{inspect.Float(e.lo), inspect.Float(e.hi)}},
					"%s: spectral norm in [%.4g, %.4g] is at least %.1f× the median of %s in the other layers (at most %.4g; limit %g×; Lanczos bounds)", where, e.lo, e.hi, e.lo/medHi, p, medHi, lim)
			case anyEst && e.hi > lim*medLo:
				c.add(CheckOutlierNorm, Warn, tensor, intp(e.layer), &measure{stat: "spectral_norm", value: e.lo, threshold: lim * medLo, bounds: &[2]inspect.Float{inspect.Float(e.lo), inspect.Float(e.hi)}},
					"%s: spectral norm in [%.4g, %.4g] may be more than %g× the median of %s in the other layers (in [%.4g, %.4g]): the Lanczos bounds cannot decide; qkv check --exact does", where, e.lo, e.hi, lim, p, medLo, medHi)
			}
		}
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// bounds checks each matrix's stats against the rules' ranges. An
// estimated spectral norm is decided by its bounds: the analysis computed
// the exact value wherever a range's end fell between them.
func bounds(c *collector, m *ModelFacts, rep *inspect.Report) {
	for _, l := range rep.Layers {
		for _, p := range formats.Projections {
			b, ok := c.rules.Bounds[string(p)]
			mr := l.Matrix(p)
			if !ok || mr == nil {
				continue
			}
			ratio := math.NaN()
			if mn := min(mr.Shape[0], mr.Shape[1]); mn > 0 {
				ratio = float64(mr.EffectiveRank) / float64(mn)
			}
			lo, hi, est := bracket(mr)
			for _, x := range []struct {
				name   string
				r      *Range
				lo, hi float64
				est    bool
			}{{"fro", b.Fro, float64(mr.Fro), float64(mr.Fro), false}, {"spectral_norm", b.SpectralNorm, lo, hi, est},
				{"effective_rank_ratio", b.EffectiveRankRatio, ratio, ratio, false}} {
				if x.r == nil {
					continue
				}
				min, max := x.r[0], x.r[1]
				var th float64
				switch {
				case math.IsNaN(x.lo) || math.IsNaN(x.hi):
					th = math.NaN()
				case min != nil && x.hi < *min:
					th = *min
				case max != nil && x.lo > *max:
					th = *max
				default:
					continue
				}
				meas := &measure{stat: x.name, value: x.lo, threshold: th}
				if x.est {
					meas.bounds = &[2]inspect.Float{inspect.Float(x.lo), inspect.Float(x.hi)}
					c.report(CheckBounds, projTensor(m, l.Index, string(p)), intp(l.Index), meas, "layers.%d.%s: %s in [%.6g, %.6g] (Lanczos bounds) is outside %s",
						l.Index, p, x.name, x.lo, x.hi, rangeText(x.r))
					continue
				}
				c.report(CheckBounds, projTensor(m, l.Index, string(p)), intp(l.Index), meas, "layers.%d.%s: %s = %.6g is outside %s",
					l.Index, p, x.name, x.lo, rangeText(x.r))
			}
		}
	}
}

func rangeText(r *Range) string {
	f := func(p *float64) string {
		if p == nil {
			return "…"
		}
		return fmt.Sprintf("%g", *p)
	}
	return "[" + f(r[0]) + ", " + f(r[1]) + "]"
}

// drift compares each matrix's stats with the baseline report: one problem
// per stat that moved beyond the tolerance.
func drift(c *collector, m *ModelFacts, rep *inspect.Report, base *inspect.Report) {
	baseByIndex := map[int]*inspect.LayerReport{}
	for i := range base.Layers {
		baseByIndex[base.Layers[i].Index] = &base.Layers[i]
	}
	if len(base.Layers) != len(rep.Layers) {
		c.report(CheckDrift, "", nil, &measure{stat: "layers", value: float64(len(rep.Layers)), threshold: float64(len(base.Layers))},
			"the baseline has %d layers, the checkpoint %d", len(base.Layers), len(rep.Layers))
	}
	tol := c.rules.DriftTolerance
	for _, l := range rep.Layers {
		bl := baseByIndex[l.Index]
		if bl == nil {
			c.report(CheckDrift, "", intp(l.Index), nil, "layer %d is not in the baseline", l.Index)
			continue
		}
		for _, p := range formats.Projections {
			now, was := l.Matrix(p), bl.Matrix(p)
			tensor := projTensor(m, l.Index, string(p))
			switch {
			case now == nil && was == nil:
				continue
			case now == nil || was == nil:
				c.report(CheckDrift, tensor, intp(l.Index), nil, "layers.%d.%s is present in only one of the baseline and the checkpoint", l.Index, p)
				continue
			case now.Shape != was.Shape:
				c.report(CheckDrift, tensor, intp(l.Index), nil, "layers.%d.%s: shape %v, baseline %v", l.Index, p, now.Shape, was.Shape)
				continue
			}
			for _, s := range c.rules.DriftStats {
				a, _ := statOf(was.Stats, s)
				b, _ := statOf(now.Stats, s)
				if math.IsNaN(a) && math.IsNaN(b) {
					continue
				}
				rel := math.Abs(b-a) / math.Max(math.Abs(a), 1e-30)
				if math.IsNaN(rel) || rel > tol {
					c.report(CheckDrift, tensor, intp(l.Index), &measure{stat: s, value: rel, threshold: tol},
						"layers.%d.%s: %s drifted from the baseline beyond %g relative: %.6g → %.6g (%+.3g%%)",
						l.Index, p, s, tol, a, b, 100*(b-a)/math.Max(math.Abs(a), 1e-30))
				}
			}
		}
	}
}
