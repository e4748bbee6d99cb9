package cmd

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/infile"
)

func init() { extraCommands = append(extraCommands, newMergeCmd) }

// maxPartBytes bounds one part's JSON: a part of an inspect --json
// --spectrum run of the largest models stays well below.
const maxPartBytes = 256 << 20

func newMergeCmd(s *Streams) *cobra.Command {
	var asJSON bool
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
		RunE: func(cmd *cobra.Command, args []string) error {
			parts := make([]*inspect.Report, len(args))
			for i, path := range args {
				b, err := infile.Read(path, maxPartBytes)
				if err != nil {
					return &exitError{code: ExitInput, err: fmt.Errorf("%s: %v", path, err)}
				}
				r, err := inspect.ReadReport(b)
				if err != nil {
					return &exitError{code: ExitInput, err: fmt.Errorf("%s: not a qkv inspect --json report or part: %v", path, err)}
				}
				parts[i] = r
			}
			rep, err := inspect.Merge(parts...)
			if err != nil {
				var me *inspect.MergeError
				if errors.As(err, &me) && me.Part >= 0 {
					// "part N" in the reason counts the files as given.
					err = fmt.Errorf("%s (part %d): %v", args[me.Part], me.Part+1, me.Err)
				}
				return &exitError{code: ExitInput, err: fmt.Errorf("cannot merge: %v", err)}
			}
			if asJSON {
				return rep.WriteJSON(s.Out)
			}
			return rep.Render(s.Out, s.Styled, s.Width)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON document (schema qkv.inspect/v1)")
	return c
}
