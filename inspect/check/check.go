// Package check is qkv's CI gate: it checks every tensor of a checkpoint
// (structure, element types, NaN/Inf, all-zero tensors and rows) and its
// attention matrices (dead, duplicated and rank-collapsed heads, outlier
// spectral norms, geometry, bounds on statistics, drift from a baseline
// report), and says whether the checkpoint passes. Rules set the thresholds
// and which problems fail and which only warn.
//
// A check is one pass at decode speed: every tensor is decoded once, and
// the attention statistics are what the rules need — spectral norms from
// block Lanczos with their bounds unless a rule needs exact values, per-head
// work only for the head checks. A check can be split into shards (Part)
// whose partial results Merge joins into the whole result.
package check

import (
	"context"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/buildinfo"
	"github.com/qkvdev/qkv/internal/termui"
)

// Schema names the JSON document's format.
const Schema = "qkv.check/v1"

// Problem is one failure or warning. Stat, Value and Threshold give the
// measurement behind it when there is one (null otherwise): Value is
// compared with Threshold as the check says; Bounds, when set, bracket a
// Value that was estimated (a spectral norm from block Lanczos).
type Problem struct {
	Check     string            `json:"check"`
	Tensor    string            `json:"tensor"`
	Layer     *int              `json:"layer"`
	Stat      *string           `json:"stat"`
	Value     *termui.Float     `json:"value"`
	Threshold *termui.Float     `json:"threshold"`
	Bounds    *[2]inspect.Float `json:"bounds,omitempty"`
	Message   string            `json:"message"`
}

// Result is the outcome of a check.
type Result struct {
	Schema string `json:"schema"`
	// Source and QKV say which checkpoint and which qkv build (set by the
	// caller; omitted when not).
	Source *formats.SourceInfo `json:"source,omitempty"`
	QKV    *buildinfo.Info     `json:"qkv,omitempty"`
	IO     *source.IO          `json:"io,omitempty"`
	Path   string              `json:"path"`
	Passed bool                `json:"passed"`
	// Spectra says how spectral norms were found: "bounds" (block
	// Lanczos, with bounds; exact where a rule needed it) or "exact".
	Spectra  string    `json:"spectra,omitempty"`
	Failures []Problem `json:"failures"`
	Warnings []Problem `json:"warnings"`
	// Checks lists the checks that ran.
	Checks  []string `json:"checks"`
	Tensors int      `json:"tensors_checked"`
	Layers  int      `json:"layers_checked"`
}

// Input is what a check looks at. OpenErr is set when the checkpoint could
// not be opened (a structure failure); FindErr when its attention layers
// could not be found.
type Input struct {
	Path       string
	Checkpoint *formats.Checkpoint
	OpenErr    error
	Model      *formats.Model
	FindErr    error
	// Baseline is an earlier `qkv inspect --json` report, or nil.
	Baseline *inspect.Report
}

// Options tune Run.
type Options struct {
	Workers int // layers analysed at once (default GOMAXPROCS)
	// Exact computes every matrix's full spectrum, as `qkv inspect` does,
	// instead of spectral norms' bounds.
	Exact bool
	// ChunkBytes bounds the float32 buffer of a piece of the tensor scan
	// (default 128 KiB: pieces stay in cache).
	ChunkBytes int64
	// Part, when set, makes the run one shard of a sharded check (see
	// RunPart).
	Part *inspect.Part
	// Progress, when set, is called as tensors are counted.
	Progress func(done, total int)
}

func (o Options) chunk() int64 {
	if o.ChunkBytes > 0 {
		return o.ChunkBytes
	}
	return 4 * pieceValues
}

// Run checks the input under rules in one pass: gather decodes every
// tensor once into facts, and the rules are evaluated against the facts.
func Run(ctx context.Context, in Input, rules Rules, opts Options) (*Result, error) {
	rules.fill()
	opts.Part = nil
	f, err := gather(ctx, in, &rules, opts)
	if err != nil {
		return nil, err
	}
	return evaluate(f, &rules, in.Baseline), nil
}
