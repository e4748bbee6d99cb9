// Package check is qkv's CI gate: it checks every tensor of a checkpoint
// (structure, element types, NaN/Inf, all-zero tensors and rows) and its
// attention matrices (inspect's findings, geometry, bounds, drift from a
// baseline report), and says whether the checkpoint passes. Rules set the
// thresholds and which problems fail and which only warn.
package check

import (
	"context"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
)

// Schema names the JSON document's format.
const Schema = "qkv.check/v1"

// Problem is one failure or warning.
type Problem struct {
	Check   string `json:"check"`
	Tensor  string `json:"tensor"`
	Layer   *int   `json:"layer"`
	Message string `json:"message"`
}

// Result is the outcome of a check.
type Result struct {
	Schema   string    `json:"schema"`
	Path     string    `json:"path"`
	Passed   bool      `json:"passed"`
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
	Workers int  // layers analysed at once (default GOMAXPROCS)
	Fast    bool // Lanczos estimates instead of full spectra
	// ChunkBytes bounds the float32 buffer of the tensor scan (default 64 MiB).
	ChunkBytes int64
}

// Run checks the input under rules in one pass: gather decodes every
// tensor once (the attention projections while inspect computes their
// statistics, the rest by a scan) into facts, and the rules are then
// evaluated against those facts.
func Run(ctx context.Context, in Input, rules Rules, opts Options) (*Result, error) {
	rules.fill()
	f, err := gather(ctx, in, rules.Thresholds, opts)
	if err != nil {
		return nil, err
	}
	return evaluate(in, &rules, f), nil
}
