package inspect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/termui"
	"github.com/qkvdev/qkv/internal/testref"
)

// openModel opens a checkpoint and finds its attention layers.
func openModel(t *testing.T, path string) *formats.Model {
	t.Helper()
	ck, err := formats.Open(path, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mergeModels are every zoo model in Hugging Face form and tiny-llama.
func mergeModels(t *testing.T) []string {
	shared := testref.SharedDir(t)
	var dirs []string
	for _, g := range []string{"zoo", "zoo-modern"} {
		d, _ := filepath.Glob(filepath.Join(shared, "reference", g, "*", "hf"))
		dirs = append(dirs, d...)
	}
	if len(dirs) < 14 {
		t.Fatalf("found %d zoo hf folders under %s, want at least 14", len(dirs), shared)
	}
	return append(dirs, filepath.Join("..", "testdata", "tiny-llama"))
}

// runVariant is one way a report is made and written: the options, and
// whether the per-head detail is dropped before writing (the command's
// default without --heads).
type runVariant struct {
	name      string
	opts      Options
	dropHeads bool
}

var mergeVariants = []runVariant{
	{"default", Options{Heads: true}, true},
	{"drop_option", Options{Heads: true, DropHeads: true}, false},
	{"heads_spectrum", Options{Heads: true, Spectrum: true}, false},
	{"fast", Options{Heads: true, Fast: true}, true},
	{"esd_spectrum", Options{Heads: true, Spectrum: true, ESD: true}, false},
	// Thresholds that make α findings on most zoo matrices.
	{"esd_thresholds", Options{Heads: true, ESD: true, Thresholds: Thresholds{AlphaLow: 4, AlphaHigh: 5}}, true},
}

// runJSON runs src under v (as part when set) and returns the report and
// its JSON.
func runJSON(t *testing.T, src LayerSource, v runVariant, part *Part) (*Report, []byte) {
	t.Helper()
	opts := v.opts
	opts.Workers = 2
	opts.Part = part
	rep, err := Run(context.Background(), src, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.dropHeads {
		rep.DropHeads()
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	return rep, buf.Bytes()
}

// shardedJSON runs every shard of n, reads each part back from its JSON
// and merges them (in reverse order: merge must not depend on it).
func shardedJSON(t *testing.T, src LayerSource, v runVariant, n int, fp string) (*Report, []byte, []*Report) {
	t.Helper()
	var parts []*Report
	for i := n - 1; i >= 0; i-- {
		_, b := runJSON(t, src, v, &Part{Shard: Shard{I: i, N: n}, Fingerprint: fp, Version: "test"})
		p, err := ReadReport(b)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	merged, err := Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := merged.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	return merged, buf.Bytes(), parts
}

func render(t *testing.T, r *Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Render(&buf, termui.Style{Width: 160}); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func firstDiff(a, b []byte) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			lo := max(0, i-80)
			return fmt.Sprintf("at byte %d: %q vs %q", i, a[lo:min(len(a), i+80)], b[lo:min(len(b), i+80)])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

// TestMergeByteIdentical: merging the parts of N = 1, 2, 3 and 7 shards
// gives byte for byte the JSON (and the table) of the unsharded run, on
// every zoo model, tiny-llama and the planted model, for the default
// output, --heads --spectrum and --fast.
func TestMergeByteIdentical(t *testing.T) {
	type model struct {
		name string
		src  LayerSource
		fp   string
	}
	var models []model
	for _, dir := range mergeModels(t) {
		m := openModel(t, dir)
		fp, err := Fingerprint(m)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
		if filepath.Base(dir) == "tiny-llama" {
			name = "tiny-llama"
		}
		models = append(models, model{name, m, fp})
	}
	models = append(models, model{"planted", plantedModel(), "sha256:planted"})
	for _, m := range models {
		for _, v := range mergeVariants {
			if m.src.Geometry().NHeads == 0 {
				v.opts.Heads = false
			}
			t.Run(m.name+"/"+v.name, func(t *testing.T) {
				whole, want := runJSON(t, m.src, v, nil)
				wantTable := render(t, whole)
				for _, n := range []int{1, 2, 3, 7} {
					merged, got, parts := shardedJSON(t, m.src, v, n, m.fp)
					if !bytes.Equal(got, want) {
						t.Errorf("N=%d: merged JSON differs from the unsharded run's %s", n, firstDiff(got, want))
					}
					if table := render(t, merged); table != wantTable {
						t.Errorf("N=%d: merged table differs from the unsharded run's:\n%s\nwant\n%s", n, table, wantTable)
					}
					for _, p := range parts {
						for _, f := range p.Findings {
							if crossLayer(f.Kind) {
								t.Errorf("N=%d: part %d holds cross-layer finding %+v", n, p.Partial.Shard, f)
							}
						}
					}
				}
			})
		}
	}
}

// TestMergeCrossLayerFinding: tiny-llama's exploding W_O (layer 3) is an
// outlier only against the other layers: no part can see it, the merged
// report has it, as the unsharded run does.
func TestMergeCrossLayerFinding(t *testing.T) {
	m := openModel(t, filepath.Join("..", "testdata", "tiny-llama"))
	fp, err := Fingerprint(m)
	if err != nil {
		t.Fatal(err)
	}
	v := mergeVariants[0]
	whole, _ := runJSON(t, m, v, nil)
	outlier := func(fs []Finding) *Finding {
		for i := range fs {
			if fs[i].Kind == KindOutlierNorm && fs[i].Layer == 3 && fs[i].Matrix == "o" {
				return &fs[i]
			}
		}
		return nil
	}
	want := outlier(whole.Findings)
	if want == nil {
		t.Fatalf("the unsharded run has no outlier_norm finding for layer 3's W_O: %+v", whole.Findings)
	}
	for _, n := range []int{2, 4} {
		merged, _, parts := shardedJSON(t, m, v, n, fp)
		for _, p := range parts {
			if f := outlier(p.Findings); f != nil {
				t.Errorf("N=%d: part %d has the outlier finding", n, p.Partial.Shard)
			}
		}
		got := outlier(merged.Findings)
		if got == nil || got.Message != want.Message || got.Threshold != want.Threshold {
			t.Errorf("N=%d: merged outlier finding %+v, want %+v", n, got, want)
		}
	}
}

// TestMergeLayerSelection: a run over selected layers (--layers) shards and
// merges like a whole one.
func TestMergeLayerSelection(t *testing.T) {
	m := openModel(t, filepath.Join("..", "testdata", "tiny-llama"))
	src := &subset{m, []int{0, 2, 3}}
	v := mergeVariants[2]
	_, want := runJSON(t, src, v, nil)
	for _, n := range []int{2, 3, 5} {
		_, got, _ := shardedJSON(t, src, v, n, "sha256:x")
		if !bytes.Equal(got, want) {
			t.Errorf("N=%d: %s", n, firstDiff(got, want))
		}
	}
}

type subset struct {
	LayerSource
	ix []int
}

func (s *subset) LayerIndices() []int { return s.ix }

func TestMergeRefuses(t *testing.T) {
	src := plantedModel()
	v := runVariant{"", Options{Heads: true}, false}
	part := func(i, n int, mod func(*Part, *Options)) *Report {
		p := &Part{Shard: Shard{I: i, N: n}, Fingerprint: "sha256:a", Version: "v1"}
		o := v
		if mod != nil {
			mod(p, &o.opts)
		}
		_, b := runJSON(t, src, o, p)
		r, err := ReadReport(b)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	whole, _ := runJSON(t, src, v, nil)
	p0, p1, p2 := part(0, 3, nil), part(1, 3, nil), part(2, 3, nil)
	if _, err := Merge(p0, p1, p2); err != nil {
		t.Fatalf("the unaltered parts do not merge: %v", err)
	}
	edit := func(r *Report, f func(*Report)) *Report {
		var buf bytes.Buffer
		if err := r.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		c, err := ReadReport(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		f(c)
		return c
	}
	cases := []struct {
		name  string
		parts []*Report
		part  int // the part the error must blame (-1: none)
		want  string
	}{
		{"none", nil, -1, "no parts"},
		{"whole report", []*Report{p0, whole, p2}, 1, "whole report"},
		{"missing", []*Report{p0, p2}, -1, "1 of 3 shards is missing: 1"},
		{"twice", []*Report{p0, p1, p1, p2}, 2, "shard 1 of 3 was given twice"},
		{"other count", []*Report{p0, p1, part(1, 2, nil)}, 2, "of 2, but part 1 is of 3"},
		{"other model", []*Report{p0, part(1, 3, func(p *Part, _ *Options) { p.Fingerprint = "sha256:b" }), p2}, 1, "different model"},
		{"other version", []*Report{p0, p1, part(2, 3, func(p *Part, _ *Options) { p.Version = "v2" })}, 2, "qkv v2"},
		{"other settings", []*Report{p0, part(1, 3, func(_ *Part, o *Options) { o.OutlierNorm = 3 }), p2}, 1, "settings differs"},
		{"other mode", []*Report{p0, part(1, 3, func(_ *Part, o *Options) { o.Fast = true }), p2}, 1, "settings differs"},
		{"esd in one part", []*Report{p0, p1, part(2, 3, func(_ *Part, o *Options) { o.ESD = true })}, 2, "settings differs"},
		{"other numerics", []*Report{p0, edit(p1, func(r *Report) { r.Partial.Numerics.Kernel = "test-kernel" }), p2}, 1, "with the test-kernel kernel"},
		{"a part of an earlier version's CPU count", []*Report{p0, edit(p1, func(r *Report) { r.Partial.Numerics.Procs = 8 }), p2}, 1, "8 CPUs (a part of an earlier version"},
		{"other geometry", []*Report{edit(p0, func(r *Report) { r.Model.NHeads = 8 }), p1, p2}, 1, "model differs"},
		{"other selection", []*Report{p0, edit(p1, func(r *Report) { r.Partial.AllLayers = []int{0, 1, 2, 3} }), p2}, 1, "layer selection differs"},
		{"wrong layers", []*Report{p0, edit(p1, func(r *Report) { r.Layers = r.Layers[:1]; r.Partial.Layers = r.Partial.Layers[:1] }), p2}, 1, "the shard's layers are 1,2"},
		{"layer list lies", []*Report{p0, edit(p1, func(r *Report) { r.Layers = r.Layers[:1] }), p2}, 1, "holds layers 1, but"},
		{"cross-layer finding", []*Report{p0, p1, edit(p2, func(r *Report) {
			r.Findings = append(r.Findings, Finding{Kind: KindOutlierNorm, Layer: 4, Matrix: "o"})
		})}, 2, "outlier_norm finding"},
		{"finding of another layer", []*Report{edit(p0, func(r *Report) {
			r.Findings = append(r.Findings, Finding{Kind: KindDeadHead, Layer: 4, Matrix: "q"})
		}), p1, p2}, 0, "layer 4, which is not one of its layers"},
		{"bad shard", []*Report{p0, edit(p1, func(r *Report) { r.Partial.Shard = 5 }), p2}, 1, "not between 0 and 2"},
		{"huge count", []*Report{part(0, 1<<40, nil)}, -1, "1099511627775 of 1099511627776 shards are missing: 1, 2, 3,"},
		{"assignment", []*Report{edit(p0, func(r *Report) { r.Partial.Assignment = "round-robin" }), p1, p2}, 0, "assignment"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Merge(c.parts...)
			if err == nil {
				t.Fatalf("merged; want an error with %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q lacks %q", err, c.want)
			}
			var me *MergeError
			if !errors.As(err, &me) || me.Part != c.part {
				t.Errorf("error %q blames part %v, want %d", err, me, c.part)
			}
		})
	}
}

func TestPartialRunRefuses(t *testing.T) {
	for _, p := range []*Part{
		{Shard: Shard{I: 0, N: 0}, Fingerprint: "x"},
		{Shard: Shard{I: 3, N: 3}, Fingerprint: "x"},
		{Shard: Shard{I: -1, N: 3}, Fingerprint: "x"},
		{Shard: Shard{I: 0, N: 2}},
	} {
		if _, err := Run(context.Background(), plantedModel(), Options{Part: p}, nil); err == nil {
			t.Errorf("%+v: ran", p)
		}
	}
}

// TestPartialDocument: a part says what it is and is refused where a whole
// report is expected.
func TestPartialDocument(t *testing.T) {
	_, b := runJSON(t, plantedModel(), mergeVariants[0], &Part{Shard: Shard{I: 3, N: 7}, Fingerprint: "sha256:p", Version: "v9"})
	r, err := ReadReport(b)
	if err != nil {
		t.Fatal(err)
	}
	// 5 layers in 7 shards: ⌊3·5/7⌋ = 2, ⌊4·5/7⌋ = 2: shard 3 is empty.
	if r.Schema != SchemaPartial || r.Partial.Shard != 3 || r.Partial.Shards != 7 || len(r.Layers) != 0 ||
		fmt.Sprint(r.Partial.AllLayers) != "[0 1 2 3 4]" || r.Partial.Version != "v9" || r.Partial.Numerics != CurrentNumerics() {
		t.Errorf("partial document: %s", b)
	}
	for _, want := range []string{`"schema": "qkv.inspect.partial/v1"`, `"layers": []`, `"findings": []`, `"assignment": "contiguous"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("partial document lacks %s:\n%s", want, b)
		}
	}
	_, whole := runJSON(t, plantedModel(), mergeVariants[0], nil)
	if bytes.Contains(whole, []byte(`"partial"`)) || bytes.Contains(whole, []byte(`"sparks"`)) {
		t.Errorf("a whole report carries partial fields")
	}
	if _, err := ReadReport([]byte(`{"schema": "qkv.check/v1"}`)); err == nil {
		t.Errorf("read a check result as a report")
	}
	if _, err := ReadReport(append(append([]byte{}, b...), b...)); err == nil {
		t.Errorf("read two documents as one")
	}
}

// TestDropHeadsOption: Options.DropHeads gives the report Report.DropHeads
// gives after a run with every head's detail, byte for byte, and emits
// layers without the detail.
func TestDropHeadsOption(t *testing.T) {
	srcs := map[string]LayerSource{"planted": plantedModel(), "tiny-llama": openModel(t, filepath.Join("..", "testdata", "tiny-llama"))}
	for name, src := range srcs {
		for _, fast := range []bool{false, true} {
			_, want := runJSON(t, src, runVariant{"", Options{Heads: true, Fast: fast}, true}, nil)
			var emitted []LayerReport
			rep, err := Run(context.Background(), src, Options{Heads: true, DropHeads: true, Fast: fast}, func(l LayerReport) error { emitted = append(emitted, l); return nil })
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := rep.WriteJSON(&buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s fast=%v: %s", name, fast, firstDiff(buf.Bytes(), want))
			}
			if len(emitted) == 0 || emitted[0].Q.Heads != nil || emitted[0].Circuits != nil {
				t.Errorf("%s: emitted layers carry head detail", name)
			}
			if !strings.Contains(buf.String(), "dead_head") && name == "planted" {
				t.Errorf("%s: head findings lost", name)
			}
		}
	}
}

// wideModel is a 3-layer model 320 wide (8 heads of 40): its Gram matrices
// are 320×320, past the size from which linalg splits the symmetric
// products of the eigensolver into parts.
func wideModel() *testModel {
	g := formats.Geometry{Arch: "test", DModel: 320, NLayers: 3, NHeads: 8, NKVHeads: 8, HeadDim: 40}
	r := rand.New(rand.NewSource(31))
	m := &testModel{g: g}
	for i := 0; i < 3; i++ {
		m.layers = append(m.layers, &formats.Layer{Index: i,
			Q: randMatrix(r, 320, 320, 0.1), K: randMatrix(r, 320, 320, 0.1),
			V: randMatrix(r, 320, 320, 0.05), O: randMatrix(r, 320, 320, 0.05)})
	}
	return m
}

// TestMergeAcrossCPUCounts: parts computed at different GOMAXPROCS merge
// into byte for byte the JSON of an unsharded run at yet another, with
// every singular value kept: no statistic depends on the number of CPUs.
func TestMergeAcrossCPUCounts(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	src := wideModel()
	v := runVariant{"spectrum", Options{Spectrum: true, ESD: true}, false}
	runtime.GOMAXPROCS(2)
	_, want := runJSON(t, src, v, nil)
	var parts []*Report
	for i, procs := range []int{1, 3, 8} {
		runtime.GOMAXPROCS(procs)
		_, b := runJSON(t, src, v, &Part{Shard: Shard{I: i, N: 3}, Fingerprint: "sha256:wide", Version: "test"})
		p, err := ReadReport(b)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, p)
	}
	merged, err := Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := merged.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("parts at GOMAXPROCS 1, 3 and 8 merge into JSON that differs from the run at 2: %s", firstDiff(buf.Bytes(), want))
	}
	if !bytes.Contains(want, []byte(`"method": "gram"`)) {
		t.Errorf("the wide model's spectra did not take the Gram route (the one with split sums)")
	}
}
