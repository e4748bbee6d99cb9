package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/inspect/check"
	"github.com/qkvdev/qkv/internal/infile"
)

// maxPartBytes bounds one part's JSON: a part of an inspect --json
// --spectrum run of the largest models stays well below.
const maxPartBytes = 256 << 20

// MergeOptions are the options of qkv merge.
type MergeOptions struct {
	IO    *Streams
	Parts []string // the part files, as given
	// Format is text or json for inspect parts; text, json, github, junit
	// or markdown for check parts.
	Format string
	// BaselinePath is the --baseline file check parts were made with.
	BaselinePath string
	// Getenv reads GITHUB_STEP_SUMMARY (os.Getenv when nil).
	Getenv func(string) string
}

// NewCmdMerge builds qkv merge; runF (nil: mergeRun) does the work.
func NewCmdMerge(s *Streams, runF func(context.Context, *MergeOptions) error) *cobra.Command {
	opts := &MergeOptions{IO: s}
	c := &cobra.Command{
		Use:   "merge PART.json...",
		Short: "Join the parts of a sharded inspect or check run into the whole result",
		Long: `Join the parts written by 'qkv inspect --shard I/N --json' or 'qkv check
--shard I/N' (one per shard, I from 0 to N-1, in any order) into the result
the unsharded run gives — the same JSON byte for byte. The first file's
schema says which: inspect parts give the inspect report, recomputing the
findings that compare layers (outlier spectral norms against the median of
every layer); check parts give the check's result — the header checks
once, every tensor's problems in checkpoint order, the attention checks
recomputed over the whole model (findings, leave-one-out outlier norms,
bounds, drift with the same --baseline file) — printed as check prints it
(--format text, json, github, junit or markdown) and exiting 1 when it
fails.

Parts are refused (exit 3, naming the file) when they are not parts, come
from different models (geometry or fingerprint), settings, layer
selections, qkv versions or CPU set-ups (architecture, kernel, CPU count:
the last bits of the statistics depend on them), when a shard is given
twice or is missing, or when a part does not hold exactly its shard's
layers.`,
		Example: `  qkv inspect ./model --json --shard 0/2 > part0.json
  qkv inspect ./model --json --shard 1/2 > part1.json
  qkv merge part0.json part1.json --json > report.json
  qkv merge parts/*.json
  qkv check ./model --shard 0/2 > c0.json; qkv check ./model --shard 1/2 > c1.json
  qkv merge c0.json c1.json --format github`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("merge takes the part files (PART.json ...)")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.Parts = args
			return runOr(c, runF, mergeRun, opts)
		},
	}
	var asJSON bool
	c.Flags().BoolVar(&asJSON, "json", false, "same as --format json")
	c.Flags().StringVar(&opts.Format, "format", "text", "output: text or json; for check parts also github, junit or markdown")
	c.Flags().StringVar(&opts.BaselinePath, "baseline", "", "the --baseline file the check parts were made with (drift)")
	c.PreRunE = func(c *cobra.Command, args []string) error {
		if err := checkSharedFlags(c, args); err != nil {
			return err
		}
		if asJSON {
			opts.Format = "json"
		}
		switch opts.Format {
		case "text", "json", "github", "junit", "markdown":
			return nil
		}
		return usageError("--format must be text, json, github, junit or markdown, not %q", opts.Format)
	}
	return c
}

// mergeRun reads the parts and prints the whole result: the first file's
// schema says whether they are inspect's or check's parts.
func mergeRun(_ context.Context, o *MergeOptions) error {
	raw := make([][]byte, len(o.Parts))
	for i, path := range o.Parts {
		b, err := infile.Read(path, maxPartBytes)
		if err != nil {
			return inputError("%s: %v", path, err)
		}
		raw[i] = b
	}
	if first, _ := partKind(raw[0]); first == kindCheckPart {
		return mergeCheckParts(o, raw)
	}
	switch {
	case o.Format != "text" && o.Format != "json":
		return usageError("--format %s applies to check parts; inspect parts merge into text or json", o.Format)
	case o.BaselinePath != "":
		return usageError("--baseline applies to check parts, not to inspect's")
	}
	parts := make([]*inspect.Report, len(o.Parts))
	for i, path := range o.Parts {
		r, err := inspect.ReadReport(raw[i])
		if err != nil {
			if err := otherKind(o, raw, i); err != nil {
				return err
			}
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
	if o.Format == "json" {
		return rep.WriteJSON(o.IO.Out)
	}
	return rep.Render(o.IO.Out, o.IO.style())
}

// The kinds of file qkv merge is given, as its messages name them.
const (
	kindCheckPart   = "a qkv check --shard part"
	kindInspectPart = "a qkv inspect --shard part"
	kindInspect     = "a whole qkv inspect --json report"
)

// partKind says which kind of file b is by its schema: "" when it is not
// a JSON object with a known schema; schema is the string the object's
// "schema" holds (nil when it is not an object with a string there).
func partKind(b []byte) (kind string, schema *string) {
	var head struct {
		Schema *string `json:"schema"`
	}
	if json.Unmarshal(b, &head) != nil || head.Schema == nil {
		return "", nil
	}
	switch *head.Schema {
	case check.SchemaPartial:
		return kindCheckPart, head.Schema
	case inspect.SchemaPartial:
		return kindInspectPart, head.Schema
	case inspect.Schema:
		return kindInspect, head.Schema
	}
	return "", head.Schema
}

// otherKind names part i when it is of the other kind than the first
// (check's or inspect's), rather than refusing it for the other kind's keys
// (nil when it is not). Only a part that did not read is looked at again.
func otherKind(o *MergeOptions, raw [][]byte, i int) error {
	first, _ := partKind(raw[0])
	k, _ := partKind(raw[i])
	// inspect.Merge names a whole report among inspect parts.
	if first == "" || k == "" || (k == kindCheckPart) == (first == kindCheckPart) {
		return nil
	}
	return inputError("%s: %s, but %s is %s: qkv merge joins the parts of one kind", o.Parts[i], k, o.Parts[0], first)
}

// mergeCheckParts joins the parts of a sharded check and prints the result
// as qkv check does.
func mergeCheckParts(o *MergeOptions, raw [][]byte) error {
	parts := make([]*check.Part, len(raw))
	for i, b := range raw {
		p, err := check.ReadPart(b)
		if err != nil {
			if err := otherKind(o, raw, i); err != nil {
				return err
			}
			return inputError("%s: not a qkv check --shard part: %v", o.Parts[i], err)
		}
		parts[i] = p
	}
	var (
		base     *inspect.Report
		baseHash string
	)
	if o.BaselinePath != "" {
		var err error
		if base, baseHash, err = readBaseline(o.BaselinePath); err != nil {
			return err
		}
	}
	res, err := check.Merge(parts, base, baseHash)
	if err != nil {
		var me *check.MergeError
		if errors.As(err, &me) && me.Part >= 0 {
			err = fmt.Errorf("%s (part %d): %v", o.Parts[me.Part], me.Part+1, me.Err)
		}
		return inputError("cannot merge: %v", err)
	}
	return writeCheckResult(o.IO, res, o.Format, o.Getenv)
}
