package inspect

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/jsonmsg"
	"github.com/qkvdev/qkv/internal/termui"
)

// MergeError is a reason Merge refuses its parts. Part is the index of the
// part at fault in Merge's arguments (-1 when the fault is not one part's),
// so that a caller can name its file.
type MergeError struct {
	Part int
	Err  error
}

func (e *MergeError) Error() string {
	if e.Part < 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("part %d: %v", e.Part+1, e.Err)
}

func (e *MergeError) Unwrap() error { return e.Err }

func mergeErr(part int, format string, args ...any) error {
	return &MergeError{Part: part, Err: fmt.Errorf(format, args...)}
}

// Merge joins the partial reports of a sharded run (Run with Options.Part,
// read back from their JSON) into the report the unsharded run gives: the
// same layers in the same order, the single-layer findings of each part,
// and every cross-layer finding (CrossLayerKinds) recomputed over all
// layers. The parts may come in any order. It refuses, naming the part:
// anything that is not a partial report; parts of different models
// (geometry or fingerprint), settings, layer selections, shard counts,
// versions or numerics; a shard given twice or missing; a part whose layers
// are not the ones its shard is assigned; and findings a part could not
// have made.
func Merge(parts ...*Report) (*Report, error) {
	if len(parts) == 0 {
		return nil, mergeErr(-1, "no parts to merge")
	}
	for i, p := range parts {
		switch {
		case p == nil:
			return nil, mergeErr(i, "empty")
		case p.Schema == Schema:
			return nil, mergeErr(i, "is a whole report (%s), not a part of a sharded run", Schema)
		case p.Schema != SchemaPartial:
			return nil, mergeErr(i, "schema %q is not %s", p.Schema, SchemaPartial)
		case p.Partial == nil:
			return nil, mergeErr(i, "has no \"partial\" section saying which shard it is")
		}
	}
	first := parts[0]
	fp := first.Partial
	if fp.Assignment != AssignContiguous {
		return nil, mergeErr(0, "layer assignment %q is not %q", fp.Assignment, AssignContiguous)
	}
	want := map[string]string{}
	for k, v := range map[string]any{"model": first.Model, "adapter": adapterIdentity(first.Adapter), "settings": first.Settings, "layer selection": fp.AllLayers} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, mergeErr(0, "%s: %v", k, err)
		}
		want[k] = string(b)
	}
	if fp.Shards < 1 {
		return nil, mergeErr(0, "shard count %d", fp.Shards)
	}
	byShard := map[int]int{} // shard → index into parts
	for i, p := range parts {
		pp := p.Partial
		switch {
		case pp.Shards != fp.Shards:
			return nil, mergeErr(i, "is shard %d of %d, but part 1 is of %d shards", pp.Shard, pp.Shards, fp.Shards)
		case pp.Shard < 0 || pp.Shard >= pp.Shards:
			return nil, mergeErr(i, "shard %d is not between 0 and %d", pp.Shard, pp.Shards-1)
		case pp.Assignment != fp.Assignment:
			return nil, mergeErr(i, "layer assignment %q differs from part 1's %q", pp.Assignment, fp.Assignment)
		case pp.Fingerprint == "" || pp.Fingerprint != fp.Fingerprint:
			return nil, mergeErr(i, "is of a different model: fingerprint %s, part 1 %s", pp.Fingerprint, fp.Fingerprint)
		case pp.Version != fp.Version:
			return nil, mergeErr(i, "was made by qkv %s, part 1 by %s: run every shard with one version", pp.Version, fp.Version)
		case pp.Numerics != fp.Numerics:
			return nil, mergeErr(i, "was computed on %s, part 1 on %s: the parts would merge into a report no single run gives; run every shard on one CPU architecture with one kernel (the number of CPUs does not matter)", pp.Numerics, fp.Numerics)
		}
		for k, v := range map[string]any{"model": p.Model, "adapter": adapterIdentity(p.Adapter), "settings": p.Settings, "layer selection": pp.AllLayers} {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, mergeErr(i, "%s: %v", k, err)
			}
			if string(b) != want[k] {
				return nil, mergeErr(i, "%s differs from part 1's: %s vs %s", k, clip(string(b)), clip(want[k]))
			}
		}
		if j, dup := byShard[pp.Shard]; dup {
			return nil, mergeErr(i, "shard %d of %d was given twice (parts %d and %d)", pp.Shard, pp.Shards, j+1, i+1)
		}
		byShard[pp.Shard] = i
		if err := checkPart(p, fp.AllLayers); err != nil {
			return nil, mergeErr(i, "shard %d of %d: %v", pp.Shard, pp.Shards, err)
		}
	}
	if len(byShard) != fp.Shards {
		// Every given shard is distinct and in range, so some are missing;
		// name at most a screenful of them.
		var missing []string
		for s := 0; s < fp.Shards && len(missing) < 20; s++ {
			if _, ok := byShard[s]; !ok {
				missing = append(missing, fmt.Sprint(s))
			}
		}
		if n := fp.Shards - len(byShard); n > len(missing) {
			missing = append(missing, "…")
		}
		return nil, mergeErr(-1, "%d of %d shards %s missing: %s (shards are numbered 0 to %d)", fp.Shards-len(byShard), fp.Shards, termui.IsAre(fp.Shards-len(byShard)), strings.Join(missing, ", "), fp.Shards-1)
	}
	order := make([]int, fp.Shards) // parts in shard order
	for s, i := range byShard {
		order[s] = i
	}

	out := &Report{Schema: Schema, Model: first.Model, Settings: first.Settings, Layers: make([]LayerReport, 0, len(fp.AllLayers)), Findings: []Finding{},
		Source: first.Source, QKV: first.QKV} // part 1's provenance (the version is the same in every part)
	out.Adapter = mergeAdapters(parts)
	for _, i := range order {
		out.Layers = append(out.Layers, parts[i].Layers...)
		out.Findings = append(out.Findings, parts[i].Findings...)
	}
	// The parts' layers are contiguous blocks in shard order, so this is
	// the run's order already; the sort makes the merge independent of it.
	pos := map[int]int{}
	for k, l := range fp.AllLayers {
		pos[l] = k
	}
	sort.SliceStable(out.Findings, func(a, b int) bool { return pos[out.Findings[a].Layer] < pos[out.Findings[b].Layer] })
	out.Findings = append(out.Findings, CrossLayerFindings(out.Layers, out.Settings.Thresh)...)
	for _, i := range order {
		attachSparks(out.Layers, parts[i].Partial.Sparks)
	}
	return out, nil
}

// checkPart checks that a part holds exactly its shard's layers, in order,
// and only findings of those layers that depend on one layer.
func checkPart(p *Report, all []int) error {
	pp := p.Partial
	want := Shard{I: pp.Shard, N: pp.Shards}.Layers(all)
	if !slices.Equal(pp.Layers, want) {
		return fmt.Errorf("lists layers %s, but the shard's layers are %s", layerList(pp.Layers), layerList(want))
	}
	got := make([]int, len(p.Layers))
	for k, l := range p.Layers {
		got[k] = l.Index
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("holds layers %s, but the shard's layers are %s", layerList(got), layerList(want))
	}
	for _, f := range p.Findings {
		if crossLayer(f.Kind) {
			return fmt.Errorf("holds a %s finding (layer %d), which a part cannot make: it compares layers", f.Kind, f.Layer)
		}
		if !slices.Contains(want, f.Layer) {
			return fmt.Errorf("holds a %s finding of layer %d, which is not one of its layers", f.Kind, f.Layer)
		}
	}
	return nil
}

func layerList(ix []int) string {
	if len(ix) == 0 {
		return "none"
	}
	s := make([]string, len(ix))
	for k, v := range ix {
		s[k] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}

// collectSparks lists the sparkline summaries of a report's matrices and
// head blocks.
func collectSparks(layers []LayerReport) []Spark {
	var out []Spark
	add := func(layer int, matrix string, head *int, v []float64) {
		if len(v) == 0 {
			return
		}
		fs := make([]Float, len(v))
		for k, x := range v {
			fs[k] = Float(x)
		}
		out = append(out, Spark{Layer: layer, Matrix: matrix, Head: head, Values: fs})
	}
	for _, l := range layers {
		for _, p := range formats.Projections {
			m := l.Matrix(p)
			if m == nil {
				continue
			}
			add(l.Index, string(p), nil, m.spark)
			for _, h := range m.Heads {
				add(l.Index, string(p), intp(h.Head), h.spark)
			}
		}
		for _, f := range l.Factors {
			add(l.Index, f.Name, nil, f.spark)
		}
	}
	return out
}

// attachSparks puts sparkline summaries back on the matrices they belong to.
func attachSparks(layers []LayerReport, sparks []Spark) {
	at := map[int]*LayerReport{}
	for k := range layers {
		at[layers[k].Index] = &layers[k]
	}
	for _, s := range sparks {
		l := at[s.Layer]
		if l == nil {
			continue
		}
		v := make([]float64, len(s.Values))
		for k, x := range s.Values {
			v[k] = float64(x)
		}
		var m *MatrixReport
		for _, p := range formats.Projections {
			if string(p) == s.Matrix {
				m = l.Matrix(p)
			}
		}
		if m == nil {
			// A latent-attention factor (q_a, q_b, kv_a, kv_b).
			for k := range l.Factors {
				if l.Factors[k].Name == s.Matrix && s.Head == nil {
					l.Factors[k].spark = v
				}
			}
			continue
		}
		if s.Head == nil {
			m.spark = v
			continue
		}
		for k := range m.Heads {
			if m.Heads[k].Head == *s.Head {
				m.Heads[k].spark = v
			}
		}
	}
}

// ReadReport reads a report (whole or partial) from its JSON.
func ReadReport(b []byte) (*Report, error) {
	var r Report
	// Unknown keys are let through, as they always were (a report of a
	// newer qkv); Unmarshal refuses data after the report.
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, jsonmsg.Error(err, &r)
	}
	if r.Schema != Schema && r.Schema != SchemaPartial {
		return nil, fmt.Errorf("schema %q is not %s or %s", r.Schema, Schema, SchemaPartial)
	}
	return &r, nil
}

// adapterIdentity is what every part of an adapter's run shares: the
// adapter's description without the ranks and scales of its part's
// updates (nil for a model).
func adapterIdentity(a *Adapter) *formats.AdapterInfo {
	if a == nil {
		return nil
	}
	id := a.AdapterInfo
	if id.Kind == AdapterKindUnknown { // rank and scale are the part's factors'
		id.Rank, id.Scale = 0, 0
	}
	return &id
}

// mergeAdapters is the merged report's Adapter (the parts agree on its
// description): the ranks and scales of every part's updates together.
func mergeAdapters(parts []*Report) *Adapter {
	if parts[0].Adapter == nil {
		return nil
	}
	a := &Adapter{AdapterInfo: parts[0].Adapter.AdapterInfo}
	ranks, scales := map[int]bool{}, map[float64]bool{}
	for _, p := range parts {
		if len(p.Layers) == 0 {
			continue // an empty shard has no updates
		}
		for _, r := range p.Adapter.seenRanks() {
			ranks[r] = true
		}
		for _, s := range p.Adapter.seenScales() {
			scales[s] = true
		}
	}
	rs, ss := sortedKeys(ranks), sortedKeys(scales)
	if a.Kind == AdapterKindUnknown && len(rs) > 0 { // as adapterOf has them
		a.Rank, a.Scale = rs[0], ss[0]
	}
	a.setSeen(rs, ss)
	return a
}
