package cmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/infile"
	"github.com/qkvdev/qkv/internal/termui"
)

// maxPartBytes bounds one part's JSON: a part of an inspect --json
// --spectrum run of the largest models stays well below.
const maxPartBytes = 256 << 20

// MergeOptions are the options of qkv merge.
type MergeOptions struct {
	IO    *Streams
	Parts []string // the part files, as given
	JSON  bool
}

// NewCmdMerge builds qkv merge; runF (nil: mergeRun) does the work.
func NewCmdMerge(s *Streams, runF func(context.Context, *MergeOptions) error) *cobra.Command {
	opts := &MergeOptions{IO: s}
	c := &cobra.Command{
		Use:   "merge PART.json...",
		Short: "Join the partial reports of a sharded inspect run into the whole report",
		Long: `Join the parts written by 'qkv inspect --shard I/N --json' (one per shard,
I from 0 to N-1, in any order) into the report the unsharded run gives —
the same JSON byte for byte — recomputing the findings that compare layers
(outlier spectral norms against the median of every layer).

Parts are refused (exit 3, naming the file) when they are not parts, come
from different models (geometry or fingerprint), settings, layer
selections, qkv versions or CPU set-ups (architecture, kernel, CPU count:
the last bits of the statistics depend on them), when a shard is given
twice or is missing, or when a part does not hold exactly its shard's
layers.`,
		Example: `  qkv inspect ./model --json --shard 0/2 > part0.json
  qkv inspect ./model --json --shard 1/2 > part1.json
  qkv merge part0.json part1.json --json > report.json
  qkv merge parts/*.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("merge takes the part files (PART.json ...)")
			}
			return nil
		},
		PreRunE: checkSharedFlags,
		RunE: func(c *cobra.Command, args []string) error {
			opts.Parts = args
			return runOr(c, runF, mergeRun, opts)
		},
	}
	c.Flags().BoolVar(&opts.JSON, "json", false, "print one JSON document (schema qkv.inspect/v1)")
	return c
}

// mergeRun reads the parts and prints the whole report.
func mergeRun(_ context.Context, o *MergeOptions) error {
	parts := make([]*inspect.Report, len(o.Parts))
	for i, path := range o.Parts {
		b, err := infile.Read(path, maxPartBytes)
		if err != nil {
			return inputError("%s: %v", path, err)
		}
		r, err := inspect.ReadReport(b)
		if err != nil {
			return inputError("%s: not a qkv inspect --json report or part: %v", path, err)
		}
		parts[i] = r
	}
	rep, err := inspect.Merge(parts...)
	if err != nil {
		var me *inspect.MergeError
		if errors.As(err, &me) && me.Part >= 0 {
			// "part N" in the reason counts the files as given.
			err = fmt.Errorf("%s (part %d): %v", o.Parts[me.Part], me.Part+1, me.Err)
		}
		return inputError("cannot merge: %v", err)
	}
	if o.JSON {
		return rep.WriteJSON(o.IO.Out)
	}
	return rep.Render(o.IO.Out, termui.Style{Styled: o.IO.Styled, Width: o.IO.Width})
}
