package cmd

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/formats"
)

// modelFlags are the flags every command that finds attention layers takes.
type modelFlags struct {
	maps      []string
	heads     int
	kvHeads   int
	headDim   int
	maxHeader int64
	loraScale float64
	base      string
}

func (f *modelFlags) add(c *cobra.Command) {
	c.Flags().Var(&stringList{p: &f.maps}, "map", "map projections of an unknown architecture: q=REGEX,k=REGEX,v=REGEX,o=REGEX (layer number = first capture group; without one, a single tensor as layer 0)")
	c.Flags().IntVar(&f.heads, "n-heads", 0, "number of query heads (overrides config/metadata)")
	c.Flags().IntVar(&f.kvHeads, "n-kv-heads", 0, "number of key/value heads (overrides config/metadata)")
	c.Flags().IntVar(&f.headDim, "head-dim", 0, "head dimension (overrides config/metadata)")
	c.Flags().Float64Var(&f.loraScale, "lora-scale", 0, "LoRA adapters: the scale of ΔW = scale·B·A (default: the rule the adapter's config implies)")
	c.Flags().StringVar(&f.base, "base", "", "LoRA adapters: the base model (a folder or its config.json) that gives the head counts")
	addMaxHeaderFlag(c, &f.maxHeader)
}

// stringList is a repeatable string flag: pflag's stringArray without the
// CSV writer (and its 4 KiB buffer) pflag spends on the default value of
// each one when the command is built.
type stringList struct {
	p       *[]string
	changed bool
}

func (l *stringList) Set(v string) error {
	if !l.changed {
		*l.p, l.changed = nil, true
	}
	*l.p = append(*l.p, v)
	return nil
}

// String is "" when empty: help shows no "(default [])".
func (l *stringList) String() string {
	if len(*l.p) == 0 {
		return ""
	}
	return "[" + strings.Join(*l.p, ",") + "]"
}
func (l *stringList) Type() string { return "stringArray" }

// parseMap reads --map values: comma-separated q=, k=, v=, o= entries; a
// comma inside a regular expression stays in it when the next piece does not
// start a new entry.
func parseMap(values []string) (map[formats.Projection]*regexp.Regexp, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := map[formats.Projection]*regexp.Regexp{}
	var entries []string
	for _, v := range values {
		for _, piece := range strings.Split(v, ",") {
			if len(piece) >= 2 && strings.ContainsRune("qkvo", rune(piece[0])) && piece[1] == '=' || len(entries) == 0 {
				entries = append(entries, piece)
			} else {
				entries[len(entries)-1] += "," + piece
			}
		}
	}
	for _, e := range entries {
		k, expr, ok := strings.Cut(e, "=")
		if !ok || len(k) != 1 || !strings.Contains("qkvo", k) {
			return nil, usageError("--map: %q is not q=REGEX, k=REGEX, v=REGEX or o=REGEX", e)
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, usageError("--map %s: %v", k, err)
		}
		out[formats.Projection(k)] = re
	}
	return out, nil
}

// ModelInput is a checkpoint to open and how to find its attention
// layers, with --map and the geometry flags resolved.
type ModelInput struct {
	Path      string
	MaxHeader int64
	Find      formats.FindOptions
}

// resolve reads the flags into a ModelInput for path.
func (f *modelFlags) resolve(path string) (ModelInput, error) {
	mp, err := parseMap(f.maps)
	if err != nil {
		return ModelInput{}, err
	}
	return ModelInput{Path: path, MaxHeader: f.maxHeader,
		Find: formats.FindOptions{Map: mp, NHeads: f.heads, NKVHeads: f.kvHeads, HeadDim: f.headDim, LoRAScale: f.loraScale, Base: f.base}}, nil
}

// open opens the checkpoint and finds its attention layers.
func (in ModelInput) open(ctx context.Context) (*formats.Checkpoint, *formats.Model, error) {
	ck, err := openCheckpoint(ctx, in.Path, in.MaxHeader)
	if err != nil {
		return nil, nil, err
	}
	m, err := in.find(ck)
	if err != nil {
		ck.Close()
		return nil, nil, err
	}
	return ck, m, nil
}

// find finds the attention layers of an open checkpoint. The adapter flags
// are refused for a model: given, they would silently change nothing.
func (in ModelInput) find(ck *formats.Checkpoint) (*formats.Model, error) {
	m, err := formats.FindModel(ck, in.Find)
	if err != nil {
		return nil, err
	}
	if !m.IsAdapter {
		switch {
		case in.Find.LoRAScale != 0:
			return nil, usageError("--lora-scale: %s is not a LoRA adapter", in.Path)
		case in.Find.Base != "":
			return nil, usageError("--base: %s is not a LoRA adapter", in.Path)
		}
	}
	return m, nil
}

// parseLayers reads a layer selection like "0-3,7" against the layers a
// model has; "" selects all.
func parseLayers(spec string, have []int) ([]int, error) {
	if spec == "" {
		return have, nil
	}
	ok := map[int]bool{}
	for _, i := range have {
		ok[i] = true
	}
	sel := map[int]bool{}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return nil, usageError("--layers: %q is not a layer number or range like 0-3", part)
		}
		if b-a > 1<<20 {
			return nil, usageError("--layers: range %q is too large", part)
		}
		for i := a; i <= b; i++ {
			if !ok[i] {
				return nil, usageError("--layers: the model has no layer %d (it has %s)", i, rangeString(have))
			}
			sel[i] = true
		}
	}
	var out []int
	for i := range sel {
		out = append(out, i)
	}
	sort.Ints(out)
	return out, nil
}

func rangeString(ix []int) string {
	if len(ix) == 0 {
		return "no layers"
	}
	return fmt.Sprintf("layers %d-%d", ix[0], ix[len(ix)-1])
}

// parseProjections reads a --matrices list like "q,k".
func parseProjections(spec string) ([]formats.Projection, error) {
	if spec == "" {
		return formats.Projections, nil
	}
	var out []formats.Projection
	seen := map[string]bool{}
	for _, p := range strings.Split(spec, ",") {
		p = strings.TrimSpace(p)
		if !strings.Contains("qkvo", p) || len(p) != 1 {
			return nil, usageError("--matrices: %q is not one of q, k, v, o", p)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, formats.Projection(p))
		}
	}
	return out, nil
}

// checkSharedFlags refuses nonsense values of the flags several commands
// share; every command runs it before its own checks (PreRunE). Zero is
// their default ("not given"); given explicitly it is nonsense, so Changed
// tells the two apart.
func checkSharedFlags(c *cobra.Command, _ []string) error {
	fl := c.Flags()
	intFlag := func(name string) (int64, bool) {
		f := fl.Lookup(name)
		if f == nil || !f.Changed {
			return 0, false
		}
		v, err := strconv.ParseInt(f.Value.String(), 10, 64)
		return v, err == nil
	}
	if v, ok := intFlag("max-header"); ok && v <= 0 {
		return usageError("--max-header must be a positive number of bytes, not %d", v)
	}
	for _, name := range []string{"n-heads", "n-kv-heads", "head-dim"} {
		if v, ok := intFlag(name); ok && v < 1 {
			return usageError("--%s must be at least 1, not %d", name, v)
		}
	}
	for _, name := range []string{"workers", "parallel"} {
		if v, ok := intFlag(name); ok && (v < 1 || v > maxWorkers) {
			return usageError("--%s must be between 1 and %d, not %d", name, maxWorkers, v)
		}
	}
	// Lists given but empty ("--layers $EMPTY" in a script) would silently
	// mean "all" or "none".
	for _, name := range []string{"layers", "heads", "tokens", "matrices"} {
		if f := fl.Lookup(name); f != nil && f.Changed && strings.Trim(f.Value.String(), " ,") == "" {
			return usageError("--%s: no values in %q", name, f.Value.String())
		}
	}
	// Thresholds and tolerances: zero means "the default"; given, a value
	// must be a positive finite number (NaN would silently never match).
	for _, name := range []string{"lora-scale", "rank-tol", "dead", "collapsed", "duplicate", "duplicate-fail", "outlier", "drift-tol"} {
		f := fl.Lookup(name)
		if f == nil || !f.Changed {
			continue
		}
		v, err := strconv.ParseFloat(f.Value.String(), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
			return usageError("--%s must be a positive finite number, not %s", name, f.Value.String())
		}
		if (name == "duplicate" || name == "duplicate-fail") && v > 1 {
			return usageError("--%s is a cosine similarity: at most 1, not %s", name, f.Value.String())
		}
	}
	return nil
}

// maxWorkers bounds --workers: each worker holds a layer's matrices.
const maxWorkers = 1024

// openCheckpoint opens PATH for a command (errors are *formats.Error: exit
// status 3). A remote PATH is read through the run's client (remote.go),
// ctx bounding its reads.
func openCheckpoint(ctx context.Context, path string, maxHeader int64) (*formats.Checkpoint, error) {
	opts, err := openOptions(ctx, path, maxHeader)
	if err != nil {
		return nil, err
	}
	return formats.Open(path, opts)
}
