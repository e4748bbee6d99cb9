package check

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/jsonmsg"
	"github.com/qkvdev/qkv/internal/termui"
)

// SchemaPartial names the JSON document of one part of a sharded check.
const SchemaPartial = "qkv.check.partial/v1"

// Part is one shard of a sharded check: the facts of its layers (the
// shard's contiguous block, as inspect assigns them) and of its tensors
// (those its layers hold, and a share balanced by bytes of the others, in
// checkpoint order), with everything Merge checks before joining parts.
type Part struct {
	Schema string `json:"schema"`
	// Source and QKV are the provenance blocks (set by the caller).
	Source *formats.SourceInfo `json:"source,omitempty"`
	QKV    *buildinfo.Info     `json:"qkv,omitempty"`
	Shard  int                 `json:"shard"`
	Shards int                 `json:"shards"`
	// Fingerprint identifies the checkpoint (inspect.Fingerprint of its
	// model; of its tensor list when no model was found); Version the qkv
	// that made the part.
	Fingerprint string `json:"fingerprint"`
	Version     string `json:"version"`
	// Rules are the rules the whole check applies (Merge evaluates them).
	Rules Rules `json:"rules"`
	// Baseline is the SHA-256 of the --baseline file, "" without one: Merge
	// needs the same file to recompute drift.
	Baseline string `json:"baseline_sha256,omitempty"`
	Facts    *Facts `json:"facts"`
}

// RunPart runs shard opts.Part.Shard of a check (opts.Part must be set;
// its Fingerprint may be empty: RunPart computes it). baselineHash is the
// SHA-256 of the baseline file ("" without one).
func RunPart(ctx context.Context, in Input, rules Rules, opts Options, baselineHash string) (*Part, error) {
	if opts.Part == nil {
		return nil, errors.New("check: RunPart needs Options.Part")
	}
	rules.fill()
	pt := *opts.Part
	if pt.Fingerprint == "" {
		var err error
		if pt.Fingerprint, err = fingerprint(in); err != nil {
			return nil, err
		}
	}
	opts.Part = &pt
	f, err := gather(ctx, in, &rules, opts)
	if err != nil {
		return nil, err
	}
	return &Part{Schema: SchemaPartial, Shard: pt.Shard.I, Shards: pt.Shard.N, Fingerprint: pt.Fingerprint, Version: pt.Version,
		Rules: rules, Baseline: baselineHash, Facts: f}, nil
}

// fingerprint identifies the input for merging: inspect's fingerprint of
// the model, or a hash of the checkpoint's tensor list (names, types,
// shapes, sizes) when there is no model, or of the path when it did not
// open.
func fingerprint(in Input) (string, error) {
	if in.Model != nil && in.OpenErr == nil && in.FindErr == nil {
		return inspect.Fingerprint(in.Model)
	}
	h := sha256.New()
	put := func(s string) {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	put("qkv.check.fingerprint/v1")
	if ck := in.Checkpoint; ck != nil {
		put(string(ck.Format))
		for _, t := range ck.Tensors {
			put(t.Name)
			put(t.Type.Name())
			put(fmt.Sprint(t.Shape, t.Bytes))
		}
	} else {
		put(in.Path)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// BaselineHash is the SHA-256 of a baseline file's bytes, as parts record it.
func BaselineHash(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// ReadPart reads a part's JSON.
func ReadPart(b []byte) (*Part, error) {
	var p Part
	if err := jsonmsg.Decode(b, &p); err != nil {
		return nil, err
	}
	if p.Schema != SchemaPartial {
		return nil, fmt.Errorf("schema %q is not %s", p.Schema, SchemaPartial)
	}
	if p.Facts == nil {
		return nil, errors.New("no \"facts\"")
	}
	return &p, nil
}

// MergeError is a reason Merge refuses its parts: inspect's, so that a
// caller names the part at fault the same way for either kind.
type MergeError = inspect.MergeError

func mergeErr(part int, format string, args ...any) error {
	return &MergeError{Part: part, Err: fmt.Errorf(format, args...)}
}

// header is what every part of one check holds alike.
type header struct {
	Fingerprint, Version, Baseline string
	Shards                         int
	Rules                          Rules
	Path                           string
	Open, Find, HeadsNoFit         *ErrFact
	Model                          *ModelFacts
	TensorCount                    int
	HeadsUnknown                   string
}

func headerOf(p *Part) header {
	f := p.Facts
	return header{p.Fingerprint, p.Version, p.Baseline, p.Shards, p.Rules, f.Path, f.Open, f.Find, f.HeadsNoFit, f.Model, f.TensorCount, f.HeadsUnknown}
}

// Merge joins the parts of a sharded check (in any order) into the result
// the unsharded check gives: the header checks once, every tensor's facts
// (each from the part that counted it), the attention statistics joined
// by inspect.Merge, and then every rule evaluated over the whole, so that
// the findings that compare layers (outlier_norm) and drift are those of
// the whole model. base is the baseline report when the parts were made
// with one, baseHash the SHA-256 of its file (BaselineHash). It refuses,
// naming the part: parts of different checkpoints, versions, rules or
// baselines; a shard given twice or missing; tensors counted twice or not
// at all.
func Merge(parts []*Part, base *inspect.Report, baseHash string) (*Result, error) {
	if len(parts) == 0 {
		return nil, mergeErr(-1, "no parts to merge")
	}
	for i, p := range parts {
		if p == nil || p.Facts == nil || p.Schema != SchemaPartial {
			return nil, mergeErr(i, "not a %s document", SchemaPartial)
		}
	}
	want, err := json.Marshal(headerOf(parts[0]))
	if err != nil {
		return nil, mergeErr(0, "%v", err)
	}
	first := parts[0]
	if first.Shards < 1 {
		return nil, mergeErr(0, "shard count %d", first.Shards)
	}
	byShard := map[int]int{}
	for i, p := range parts {
		switch {
		case p.Shards != first.Shards:
			return nil, mergeErr(i, "is shard %d of %d, but part 1 is of %d shards", p.Shard, p.Shards, first.Shards)
		case p.Shard < 0 || p.Shard >= p.Shards:
			return nil, mergeErr(i, "shard %d is not between 0 and %d", p.Shard, p.Shards-1)
		case p.Fingerprint != first.Fingerprint:
			return nil, mergeErr(i, "is of a different checkpoint: fingerprint %s, part 1 %s", p.Fingerprint, first.Fingerprint)
		case p.Version != first.Version:
			return nil, mergeErr(i, "was made by qkv %s, part 1 by %s: run every shard with one version", p.Version, first.Version)
		}
		got, err := json.Marshal(headerOf(p))
		if err != nil {
			return nil, mergeErr(i, "%v", err)
		}
		if !bytes.Equal(got, want) {
			return nil, mergeErr(i, "differs from part 1 in its rules, baseline or what it found of the checkpoint's structure (run every shard with the same flags on the same files)")
		}
		if j, dup := byShard[p.Shard]; dup {
			return nil, mergeErr(i, "shard %d of %d was given twice (parts %d and %d)", p.Shard, p.Shards, j+1, i+1)
		}
		byShard[p.Shard] = i
	}
	if len(byShard) != first.Shards {
		var missing []string
		for s := 0; s < first.Shards && len(missing) < 20; s++ {
			if _, ok := byShard[s]; !ok {
				missing = append(missing, fmt.Sprint(s))
			}
		}
		return nil, mergeErr(-1, "%d of %d shards %s missing: %s (shards are numbered 0 to %d)", first.Shards-len(byShard), first.Shards, termui.IsAre(first.Shards-len(byShard)), strings.Join(missing, ", "), first.Shards-1)
	}
	switch {
	case first.Baseline != "" && base == nil:
		return nil, mergeErr(-1, "the parts were checked against a baseline (%s): give the same file with --baseline", first.Baseline)
	case first.Baseline == "" && base != nil:
		return nil, mergeErr(-1, "the parts were checked without a baseline: --baseline does not apply")
	case first.Baseline != "" && baseHash != first.Baseline:
		return nil, mergeErr(-1, "--baseline is not the file the parts were checked against (%s, given %s)", first.Baseline, baseHash)
	}
	order := make([]int, first.Shards)
	for s, i := range byShard {
		order[s] = i
	}
	h := headerOf(first)
	f := &Facts{Path: h.Path, Open: h.Open, Find: h.Find, Model: h.Model, TensorCount: h.TensorCount, HeadsUnknown: h.HeadsUnknown,
		HeadsNoFit: h.HeadsNoFit, Tensors: make([]TensorFacts, 0, h.TensorCount)}
	seen := make([]int, h.TensorCount) // part+1 that counted each tensor
	var stats []*inspect.Report
	for _, i := range order {
		pf := parts[i].Facts
		for _, t := range pf.Tensors {
			if t.Index < 0 || t.Index >= h.TensorCount {
				return nil, mergeErr(i, "holds tensor %d, but the checkpoint has %d", t.Index, h.TensorCount)
			}
			if j := seen[t.Index]; j > 0 {
				return nil, mergeErr(i, "counts tensor %s, which part %d counts too", t.Name, j)
			}
			seen[t.Index] = i + 1
			f.Tensors = append(f.Tensors, t)
		}
		switch {
		case f.StatsErr != nil:
		case pf.StatsErr != nil:
			f.StatsErr, stats = pf.StatsErr, nil
		case pf.Stats != nil:
			stats = append(stats, pf.Stats)
		}
	}
	for k, j := range seen {
		if j == 0 {
			return nil, mergeErr(-1, "no part counts tensor %d of %d: the parts are not of one sharded check", k, h.TensorCount)
		}
	}
	slices.SortFunc(f.Tensors, func(a, b TensorFacts) int { return a.Index - b.Index })
	if f.StatsErr == nil && len(stats) > 0 {
		if len(stats) != len(parts) {
			return nil, mergeErr(-1, "only %d of %d parts hold attention statistics", len(stats), len(parts))
		}
		rep, err := inspect.Merge(stats...)
		if err != nil {
			var me *inspect.MergeError
			if errors.As(err, &me) && me.Part >= 0 {
				return nil, mergeErr(order[me.Part], "attention statistics: %v", me.Err)
			}
			return nil, mergeErr(-1, "attention statistics: %v", err)
		}
		rep.Source, rep.QKV, rep.IO = nil, nil, nil
		f.Stats = rep
	}
	rules := first.Rules
	rules.fill()
	res := evaluate(f, &rules, base)
	res.Source, res.QKV = first.Source, first.QKV
	return res, nil
}
