package check

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
)

// evaluate applies the rules to what the pass found, in report order:
// structure, then each tensor's checks in checkpoint order, then the
// attention checks.
func evaluate(in Input, rules *Rules, f *facts) *Result {
	res := &Result{Schema: Schema, Path: in.Path, Failures: []Problem{}, Warnings: []Problem{}, Checks: []string{}}
	c := &collector{rules: rules, res: res, ran: map[string]bool{}}
	if c.enabled(CheckStructure) && in.OpenErr != nil {
		c.report(CheckStructure, tensorOf(in.OpenErr), nil, "%s", c.errText(in.OpenErr))
	}
	if in.Checkpoint != nil {
		tensorChecks(c, f)
	}
	if in.Checkpoint != nil && in.OpenErr == nil {
		attentionChecks(c, in, f)
	}
	if in.Model != nil {
		setLayers(res, in.Model)
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

func (c *collector) add(id string, sev Severity, tensor string, layer *int, format string, args ...any) {
	// One line per message: error texts from parsers may hold newlines.
	msg := oneLine.Replace(fmt.Sprintf(format, args...))
	p := Problem{Check: id, Tensor: tensor, Layer: layer, Message: msg}
	switch sev {
	case Fail:
		c.res.Failures = append(c.res.Failures, p)
	case Warn:
		c.res.Warnings = append(c.res.Warnings, p)
	}
}

var oneLine = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ")

func (c *collector) report(id, tensor string, layer *int, format string, args ...any) {
	c.add(id, c.rules.SeverityOf(id), tensor, layer, format, args...)
}

func (c *collector) enabled(id string) bool {
	if c.rules.SeverityOf(id) == Off {
		return false
	}
	c.ran[id] = true
	return true
}

// tensorChecks applies the value checks to every tensor's counts.
func tensorChecks(c *collector, f *facts) {
	allowed := map[string]bool{}
	for _, d := range c.rules.AllowedDTypes {
		allowed[strings.ToUpper(d)] = true
	}
	doDType := c.enabled(CheckDType)
	doNaN, doInf := c.enabled(CheckNaN), c.enabled(CheckInf)
	doZeroT, doZeroV, doZeroR := c.enabled(CheckZeroTensor), c.enabled(CheckZeroVector), c.enabled(CheckZeroRows)
	for i := range f.tensors {
		tf := &f.tensors[i]
		t := tf.t
		c.res.Tensors++
		if doDType && len(allowed) > 0 && !allowed[strings.ToUpper(t.Type.Name())] {
			c.report(CheckDType, t.Name, nil, "element type %s is not allowed (allowed: %s)", t.Type.Name(), strings.Join(c.rules.AllowedDTypes, ", "))
		}
		if !t.Type.Decodable() {
			if doDType {
				c.report(CheckDType, t.Name, nil, "element type %s cannot be decoded, so its values were not checked", t.Type.Name())
			}
			continue
		}
		if t.Elements() == 0 {
			continue
		}
		sc := tf.scan
		allZero := sc.allZero
		if tf.err != nil {
			c.report(CheckStructure, t.Name, nil, "%s", c.errText(tf.err))
			allZero = false
		}
		var badScales int64
		if doNaN && tf.scanned && t.Type.Quantized() {
			if tf.scaleErr != nil {
				c.report(CheckStructure, t.Name, nil, "%s", c.errText(tf.scaleErr))
			}
			badScales = tf.badScales
		}
		blocks := t.Elements() / int64(max(t.Type.BlockSize(), 1))
		switch {
		case doNaN && sc.nan > 0 && badScales > 0:
			c.report(CheckNaN, t.Name, nil, "%d NaN values of %d; %d of %d %s blocks have a NaN or infinite scale", sc.nan, t.Elements(), badScales, blocks, t.Type.Name())
		case doNaN && sc.nan > 0:
			c.report(CheckNaN, t.Name, nil, "%d NaN values of %d", sc.nan, t.Elements())
		case doNaN && badScales > 0:
			c.report(CheckNaN, t.Name, nil, "%d of %d %s blocks have a NaN or infinite scale (their decoded values are finite)", badScales, blocks, t.Type.Name())
		}
		if doInf && sc.inf > 0 {
			c.report(CheckInf, t.Name, nil, "%d infinite values of %d", sc.inf, t.Elements())
		}
		matrix := len(t.Shape) >= 2
		rows := t.Elements() / max(t.RowLen(), 1)
		switch {
		case allZero && matrix && doZeroT:
			c.report(CheckZeroTensor, t.Name, nil, "every value is zero (%s)", shapeText(t.Shape))
		case allZero && !matrix && doZeroV:
			c.report(CheckZeroVector, t.Name, nil, "every value is zero (%s)", shapeText(t.Shape))
		case !allZero && matrix && doZeroR && sc.zeroRows >= int64(c.rules.ZeroRowsMin):
			c.report(CheckZeroRows, t.Name, nil, "%d of %d rows are all zero (first: row %d)", sc.zeroRows, rows, sc.firstZeroRow)
		}
	}
}

// headChecks are the checks that need per-head statistics.
var headChecks = []string{CheckDeadHead, CheckDuplicateHeads, CheckRankCollapsed}

// attentionChecks applies the attention rules to the model's geometry and
// inspect's statistics.
func attentionChecks(c *collector, in Input, f *facts) {
	if in.FindErr != nil && !noAttention(in.FindErr) {
		// Attention layers are there but their geometry or factors cannot
		// be resolved (heads that do not divide the width, KV heads above
		// heads, a head count of the wrong type, LoRA ranks that disagree,
		// a fused update whose split needs the base model): layers and
		// inspect refuse such a file, and a gate must fail it.
		if c.enabled(CheckStructure) {
			c.report(CheckStructure, tensorOf(in.FindErr), nil, "attention layers cannot be resolved, so attention checks were skipped: %s", firstLine(c.errText(in.FindErr)))
		}
		return
	}
	if in.FindErr != nil || in.Model == nil {
		if g := c.rules.Geometry; g != (Geometry{}) && c.enabled(CheckGeometry) {
			c.report(CheckGeometry, "", nil, "no attention layers found, so the geometry the rules expect cannot be confirmed")
		}
		if c.enabled(CheckNoAttention) {
			msg := "no attention layers found"
			if in.FindErr != nil {
				msg += ": " + firstLine(c.errText(in.FindErr))
			}
			c.report(CheckNoAttention, "", nil, "%s; attention checks skipped", msg)
		}
		return
	}
	m := in.Model
	g := m.Geometry()
	if c.enabled(CheckGeometry) {
		want := c.rules.Geometry
		for _, x := range []struct {
			name      string
			want, got int
		}{{"layers", want.Layers, len(m.Layers)}, {"heads", want.Heads, g.NHeads}, {"kv_heads", want.KVHeads, g.NKVHeads},
			{"head_dim", want.HeadDim, g.HeadDim}, {"d_model", want.DModel, g.DModel}} {
			if x.want > 0 && x.want != x.got {
				c.report(CheckGeometry, "", nil, "%s is %d, the rules expect %d", x.name, x.got, x.want)
			}
		}
	}
	// Head findings need head counts that fit the matrices; the checks that
	// ran say which did, and a warning says why the others did not (a gate
	// that skips silently would pass a checkpoint it never looked at).
	doDead, doDup, doRank := false, false, false
	switch {
	case f.headsUnknown != nil:
		if c.rules.SeverityOf(CheckGeometry) != Off {
			var skipped []string
			for _, id := range headChecks {
				if c.rules.SeverityOf(id) != Off {
					skipped = append(skipped, id)
				}
			}
			if len(skipped) > 0 {
				var fe *formats.Error
				msg := f.headsUnknown.Error()
				if errors.As(f.headsUnknown, &fe) {
					msg = fe.Err.Error()
				}
				c.add(CheckGeometry, Warn, "", nil, "%s not checked: %s", strings.Join(skipped, ", "), msg)
			}
		}
	case f.headsNoFit != nil:
		// Per-head analysis does not fit where whole matrices do (latent
		// attention's value heads, an adapter lacking some projections):
		// check what can be checked and say what was not.
		if f.statsErr == nil {
			c.add(CheckGeometry, Warn, tensorOf(f.headsNoFit), nil, "per-head checks skipped: %s", c.errText(f.headsNoFit))
		}
	default:
		doDead, doDup, doRank = c.enabled(CheckDeadHead), c.enabled(CheckDuplicateHeads), c.enabled(CheckRankCollapsed)
	}
	if f.statsErr != nil {
		// A projection that cannot be loaded (an undecodable type, a LoRA
		// pair that does not fit) is a structure problem of this
		// checkpoint, not a reason to stop without a report.
		for _, id := range headChecks {
			delete(c.ran, id)
		}
		c.enabled(CheckStructure)
		c.report(CheckStructure, tensorOf(f.statsErr), nil, "attention checks skipped: %s", c.errText(f.statsErr))
		return
	}
	rep := f.stats
	c.res.Layers = len(rep.Layers)
	for _, fd := range rep.Findings {
		tensor := projTensor(m, fd.Layer, fd.Matrix)
		where := fmt.Sprintf("layers.%d.%s", fd.Layer, fd.Matrix)
		switch fd.Kind {
		case inspect.KindDeadHead:
			if doDead {
				c.report(CheckDeadHead, tensor, intp(fd.Layer), "%s: %s", where, fd.Message)
			}
		case inspect.KindRankCollapsed:
			if doRank {
				c.report(CheckRankCollapsed, tensor, intp(fd.Layer), "%s: %s", where, fd.Message)
			}
		case inspect.KindDuplicateHeads:
			if doDup {
				sev := c.rules.SeverityOf(CheckDuplicateHeads)
				if float64(fd.Value) <= c.rules.DuplicateFail {
					sev = Warn
				}
				c.add(CheckDuplicateHeads, sev, tensor, intp(fd.Layer), "%s: %s", where, fd.Message)
			}
		}
	}
	if c.enabled(CheckOutlierNorm) {
		outliers(c, m, rep)
	}
	if len(c.rules.Bounds) > 0 && c.enabled(CheckBounds) {
		bounds(c, m, rep)
	}
	if in.Baseline != nil && c.enabled(CheckDrift) {
		drift(c, m, rep, in.Baseline)
	}
}

// setLayers gives problems of a layer's attention tensors (weights, biases,
// LoRA factors, the pre-attention norm) that layer, so that a script can
// group them whichever check found them.
func setLayers(res *Result, m *formats.Model) {
	layerOf := map[string]int{}
	add := func(t *formats.Tensor, l int) {
		if t != nil {
			layerOf[t.Name] = l
		}
	}
	for i := range m.Layers {
		ls := &m.Layers[i]
		for _, p := range formats.Projections {
			ps := ls.Proj(p)
			if ps == nil {
				continue
			}
			add(ps.Tensor, ls.Index)
			add(ps.Bias, ls.Index)
			if ps.LoRA != nil {
				add(ps.LoRA.A, ls.Index)
				add(ps.LoRA.B, ls.Index)
			}
		}
		add(ls.NormWeight, ls.Index)
		add(ls.NormBias, ls.Index)
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
func projTensor(m *formats.Model, layer int, p string) string {
	ls := m.Layer(layer)
	if ls == nil {
		return fmt.Sprintf("layers.%d.%s", layer, p)
	}
	ps := ls.Proj(formats.Projection(p))
	switch {
	case ps == nil:
		return fmt.Sprintf("layers.%d.%s", layer, p)
	case ps.LoRA != nil:
		return ps.LoRA.B.Name
	}
	return ps.Tensor.Name
}

// errText is an error's message for a problem: a *formats.Error without
// the tensor (the problem names it) and without the file when it is the
// checkpoint's path (the report names it), so that a line never repeats
// its prefix ("x: x: tensor "t": ..." before). Other files — a shard, a
// config.json — stay named, relative to the checkpoint's folder.
func (c *collector) errText(err error) string {
	var fe *formats.Error
	if !errors.As(err, &fe) {
		return err.Error()
	}
	var b strings.Builder
	switch file := fe.File; {
	case file == "" || file == c.res.Path:
	case strings.HasPrefix(file, strings.TrimSuffix(c.res.Path, "/")+"/"):
		// A file of the checkpoint's folder: named within it.
		b.WriteString(strings.TrimPrefix(file, strings.TrimSuffix(c.res.Path, "/")+"/") + ": ")
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

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// outliers flags a matrix whose spectral norm exceeds OutlierNorm times the
// median of the same kind in the other layers (leave-one-out, so that one
// scaled layer stands out even in a two-layer model).
func outliers(c *collector, m *formats.Model, rep *inspect.Report) {
	for _, p := range formats.Projections {
		type entry struct {
			layer int
			norm  float64
		}
		var es []entry
		for _, l := range rep.Layers {
			if mr := l.Matrix(p); mr != nil && mr.SpectralNorm.Valid() {
				es = append(es, entry{l.Index, float64(mr.SpectralNorm)})
			}
		}
		if len(es) < 2 {
			continue
		}
		for i, e := range es {
			var others []float64
			for j, o := range es {
				if j != i {
					others = append(others, o.norm)
				}
			}
			med := median(others)
			if med > 0 && e.norm > c.rules.Thresholds.OutlierNorm*med {
				c.report(CheckOutlierNorm, projTensor(m, e.layer, string(p)), intp(e.layer),
					"layers.%d.%s: spectral norm %.4g is %.1f× the median %.4g of %s in the other layers (limit %g×)",
					e.layer, p, e.norm, e.norm/med, med, p, c.rules.Thresholds.OutlierNorm)
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

func bounds(c *collector, m *formats.Model, rep *inspect.Report) {
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
			for _, x := range []struct {
				name string
				r    *Range
				v    float64
			}{{"fro", b.Fro, float64(mr.Fro)}, {"spectral_norm", b.SpectralNorm, float64(mr.SpectralNorm)}, {"effective_rank_ratio", b.EffectiveRankRatio, ratio}} {
				if x.r == nil {
					continue
				}
				lo, hi := x.r[0], x.r[1]
				if math.IsNaN(x.v) || (lo != nil && x.v < *lo) || (hi != nil && x.v > *hi) {
					c.report(CheckBounds, projTensor(m, l.Index, string(p)), intp(l.Index), "layers.%d.%s: %s = %.6g is outside %s",
						l.Index, p, x.name, x.v, rangeText(x.r))
				}
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

// drift compares each matrix's stats with the baseline report.
func drift(c *collector, m *formats.Model, rep *inspect.Report, base *inspect.Report) {
	baseByIndex := map[int]*inspect.LayerReport{}
	for i := range base.Layers {
		baseByIndex[base.Layers[i].Index] = &base.Layers[i]
	}
	if len(base.Layers) != len(rep.Layers) {
		c.report(CheckDrift, "", nil, "the baseline has %d layers, the checkpoint %d", len(base.Layers), len(rep.Layers))
	}
	tol := c.rules.DriftTolerance
	for _, l := range rep.Layers {
		bl := baseByIndex[l.Index]
		if bl == nil {
			c.report(CheckDrift, "", intp(l.Index), "layer %d is not in the baseline", l.Index)
			continue
		}
		for _, p := range formats.Projections {
			now, was := l.Matrix(p), bl.Matrix(p)
			switch {
			case now == nil && was == nil:
				continue
			case now == nil || was == nil:
				c.report(CheckDrift, projTensor(m, l.Index, string(p)), intp(l.Index), "layers.%d.%s is present in only one of the baseline and the checkpoint", l.Index, p)
				continue
			case now.Shape != was.Shape:
				c.report(CheckDrift, projTensor(m, l.Index, string(p)), intp(l.Index), "layers.%d.%s: shape %v, baseline %v", l.Index, p, now.Shape, was.Shape)
				continue
			}
			var moved []string
			for _, s := range c.rules.DriftStats {
				a, _ := statOf(was.Stats, s)
				b, _ := statOf(now.Stats, s)
				if math.IsNaN(a) && math.IsNaN(b) {
					continue
				}
				rel := math.Abs(b-a) / math.Max(math.Abs(a), 1e-30)
				if math.IsNaN(rel) || rel > tol {
					moved = append(moved, fmt.Sprintf("%s %.6g → %.6g (%+.3g%%)", s, a, b, 100*(b-a)/math.Max(math.Abs(a), 1e-30)))
				}
			}
			if len(moved) > 0 {
				c.report(CheckDrift, projTensor(m, l.Index, string(p)), intp(l.Index), "layers.%d.%s drifted from the baseline beyond %g relative: %s",
					l.Index, p, tol, strings.Join(moved, ", "))
			}
		}
	}
}
