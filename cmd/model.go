package cmd

import (
	"fmt"
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
}

func (f *modelFlags) add(c *cobra.Command) {
	c.Flags().StringArrayVar(&f.maps, "map", nil, "map projections of an unknown architecture: q=REGEX,k=REGEX,v=REGEX,o=REGEX (layer number = first capture group)")
	c.Flags().IntVar(&f.heads, "n-heads", 0, "number of query heads (overrides config/metadata)")
	c.Flags().IntVar(&f.kvHeads, "n-kv-heads", 0, "number of key/value heads (overrides config/metadata)")
	c.Flags().IntVar(&f.headDim, "head-dim", 0, "head dimension (overrides config/metadata)")
	addMaxHeaderFlag(c, &f.maxHeader)
}

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
		if re.NumSubexp() < 1 {
			return nil, usageError("--map %s: the expression needs a capture group for the layer number, e.g. layers\\.(\\d+)\\.wq", k)
		}
		out[formats.Projection(k)] = re
	}
	return out, nil
}

// openModel opens a checkpoint and finds its attention layers.
func openModel(path string, f *modelFlags) (*formats.Checkpoint, *formats.Model, error) {
	mp, err := parseMap(f.maps)
	if err != nil {
		return nil, nil, err
	}
	ck, err := openCheckpoint(path, f.maxHeader)
	if err != nil {
		return nil, nil, err
	}
	m, err := formats.FindModel(ck, formats.FindOptions{Map: mp, NHeads: f.heads, NKVHeads: f.kvHeads, HeadDim: f.headDim})
	if err != nil {
		ck.Close()
		return nil, nil, err
	}
	return ck, m, nil
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
