package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/infile"
	"github.com/qkvdev/qkv/internal/jsonmsg"
)

// Severity says what a check's problems do to the result.
type Severity string

const (
	Fail Severity = "fail" // a problem fails the check (exit status 1)
	Warn Severity = "warn" // a problem is reported, the check still passes
	Off  Severity = "off"  // the check does not run
)

// Check IDs, as they appear in reports and in a rules file's "severity".
const (
	CheckStructure      = "structure"       // the files parse and their byte ranges are valid
	CheckDType          = "dtype"           // a tensor's element type is not allowed, or cannot be decoded
	CheckNaN            = "nan"             // NaN values (also NaN block scales of quantized tensors)
	CheckInf            = "inf"             // ±Inf values
	CheckZeroTensor     = "zero_tensor"     // a weight matrix (2-D or more) that is all zeros
	CheckZeroVector     = "zero_vector"     // a 1-D tensor (bias, norm) that is all zeros
	CheckZeroRows       = "zero_rows"       // rows of a weight matrix that are all zeros
	CheckGeometry       = "geometry"        // layers / heads / head_dim differ from the rules; warns when head checks cannot run
	CheckNoAttention    = "no_attention"    // no attention layers could be found
	CheckDeadHead       = "dead_head"       // inspect's dead-head finding
	CheckDuplicateHeads = "duplicate_heads" // two heads of a matrix nearly equal
	CheckRankCollapsed  = "rank_collapsed"  // a head's effective rank collapsed
	CheckOutlierNorm    = "outlier_norm"    // a matrix's spectral norm far above its kind's median
	CheckBounds         = "bounds"          // a stat outside the rules' bounds
	CheckDrift          = "drift"           // a stat moved from the baseline report
)

// AllChecks lists the check IDs in report order.
var AllChecks = []string{CheckStructure, CheckDType, CheckNaN, CheckInf, CheckZeroTensor, CheckZeroVector, CheckZeroRows,
	CheckGeometry, CheckNoAttention, CheckDeadHead, CheckDuplicateHeads, CheckRankCollapsed, CheckOutlierNorm, CheckBounds, CheckDrift}

// DefaultSeverity is what each check does without a rules file.
var DefaultSeverity = map[string]Severity{
	CheckStructure: Fail, CheckDType: Fail, CheckNaN: Fail, CheckInf: Fail,
	CheckZeroTensor: Fail, CheckZeroVector: Warn, CheckZeroRows: Warn,
	CheckGeometry: Fail, CheckNoAttention: Warn,
	CheckDeadHead: Fail, CheckDuplicateHeads: Fail, CheckRankCollapsed: Warn, CheckOutlierNorm: Fail,
	CheckBounds: Fail, CheckDrift: Fail,
}

// Range is an inclusive [min, max] bound; a null end is open.
type Range [2]*float64

// UnmarshalJSON accepts exactly two numbers or nulls, min <= max (a plain
// Go array would drop a third value and take [5] as [5, null]).
func (r *Range) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("a bound is [min, max] with numbers or null, not %s", jsonmsg.Kind(b))
	}
	if len(raw) != 2 {
		return fmt.Errorf("a bound is [min, max], not %d values", len(raw))
	}
	var xs [2]*float64
	for i, x := range raw {
		if k := jsonmsg.Kind(x); k != "a number" && k != "null" {
			return fmt.Errorf("a bound is [min, max] with numbers or null, not %s", k)
		}
		if err := json.Unmarshal(x, &xs[i]); err != nil {
			return fmt.Errorf("a bound is [min, max] with numbers or null: %v", jsonmsg.Error(err, nil))
		}
	}
	if xs[0] != nil && xs[1] != nil && *xs[0] > *xs[1] {
		return fmt.Errorf("bound [%g, %g] has min above max", *xs[0], *xs[1])
	}
	*r = Range{xs[0], xs[1]}
	return nil
}

// Bounds limit one matrix kind's statistics.
type Bounds struct {
	Fro          *Range `json:"fro,omitempty"`
	SpectralNorm *Range `json:"spectral_norm,omitempty"`
	// EffectiveRankRatio bounds effective_rank / min(m, n).
	EffectiveRankRatio *Range `json:"effective_rank_ratio,omitempty"`
}

// Geometry is the expected shape of the model; zero fields are not checked.
type Geometry struct {
	Layers  int `json:"layers,omitempty"`
	Heads   int `json:"heads,omitempty"`
	KVHeads int `json:"kv_heads,omitempty"`
	HeadDim int `json:"head_dim,omitempty"`
	DModel  int `json:"d_model,omitempty"`
}

// Rules are a check's thresholds and expectations. Zero values take the
// defaults documented on each field.
type Rules struct {
	// AllowedDTypes lists the element types tensors may have (empty: any).
	AllowedDTypes []string `json:"allowed_dtypes,omitempty"`
	Geometry      Geometry `json:"geometry,omitempty"`
	// Bounds per matrix kind: "q", "k", "v", "o".
	Bounds map[string]Bounds `json:"bounds,omitempty"`
	// Thresholds of the attention findings (inspect's definitions).
	Thresholds inspect.Thresholds `json:"thresholds,omitempty"`
	// DuplicateFail: heads whose cosine exceeds this fail (default 0.99999,
	// an exact or nearly exact copy); between Thresholds.Duplicate and this
	// they only warn.
	DuplicateFail float64 `json:"duplicate_fail,omitempty"`
	// ZeroRowsMin: a matrix is reported when at least this many of its rows
	// are all zero (default 1).
	ZeroRowsMin int `json:"zero_rows_min,omitempty"`
	// Severity overrides what a check does: "fail", "warn" or "off".
	Severity map[string]Severity `json:"severity,omitempty"`
	// DriftTolerance is the relative change of a stat from the baseline
	// that counts as drift (default 1e-3).
	DriftTolerance float64 `json:"drift_tolerance,omitempty"`
	// DriftStats are the stats compared with the baseline (default fro,
	// max_abs, spectral_norm, effective_rank, stable_rank).
	DriftStats []string `json:"drift_stats,omitempty"`
}

// DefaultRules returns the rules used without a file.
func DefaultRules() Rules {
	return Rules{Thresholds: inspect.DefaultThresholds, DuplicateFail: 0.99999, ZeroRowsMin: 1,
		DriftTolerance: 1e-3, DriftStats: []string{"fro", "max_abs", "spectral_norm", "effective_rank", "stable_rank"}}
}

func (r *Rules) fill() {
	d := DefaultRules()
	t := &r.Thresholds
	if t.DeadHead <= 0 {
		t.DeadHead = d.Thresholds.DeadHead
	}
	if t.RankCollapsed <= 0 {
		t.RankCollapsed = d.Thresholds.RankCollapsed
	}
	if t.Duplicate <= 0 {
		t.Duplicate = d.Thresholds.Duplicate
	}
	if t.OutlierNorm <= 0 {
		t.OutlierNorm = d.Thresholds.OutlierNorm
	}
	if r.DuplicateFail <= 0 {
		r.DuplicateFail = d.DuplicateFail
	}
	if r.ZeroRowsMin <= 0 {
		r.ZeroRowsMin = d.ZeroRowsMin
	}
	if r.DriftTolerance <= 0 {
		r.DriftTolerance = d.DriftTolerance
	}
	if len(r.DriftStats) == 0 {
		r.DriftStats = d.DriftStats
	}
}

// Overrides are changes to rules from the command line. Zero values and
// empty lists change nothing.
type Overrides struct {
	// AllowDTypes replaces Rules.AllowedDTypes.
	AllowDTypes []string
	// FailOn, WarnOn and Skip set the severity of the named checks to
	// fail, warn and off, in that order (a check in two lists gets the later).
	FailOn, WarnOn, Skip []string
	DriftTolerance       float64
	DuplicateFail        float64
	// Thresholds replace the rules' thresholds one by one.
	Thresholds inspect.Thresholds
}

// Apply merges o into r. It refuses element types and check names qkv does
// not know, so that a typo does not silently disable a rule.
func (r *Rules) Apply(o Overrides) error {
	if len(o.AllowDTypes) > 0 {
		if err := CheckDTypeNames(o.AllowDTypes); err != nil {
			return fmt.Errorf("--allow-dtypes: %v", err)
		}
		r.AllowedDTypes = o.AllowDTypes
	}
	for _, x := range []struct {
		ids []string
		sev Severity
	}{{o.FailOn, Fail}, {o.WarnOn, Warn}, {o.Skip, Off}} {
		for _, id := range x.ids {
			if _, ok := DefaultSeverity[id]; !ok {
				return fmt.Errorf("unknown check %q (checks: %s)", id, strings.Join(AllChecks, ", "))
			}
			if r.Severity == nil {
				r.Severity = map[string]Severity{}
			}
			r.Severity[id] = x.sev
		}
	}
	for _, x := range []struct{ from, to *float64 }{{&o.DriftTolerance, &r.DriftTolerance}, {&o.DuplicateFail, &r.DuplicateFail},
		{&o.Thresholds.DeadHead, &r.Thresholds.DeadHead}, {&o.Thresholds.RankCollapsed, &r.Thresholds.RankCollapsed},
		{&o.Thresholds.Duplicate, &r.Thresholds.Duplicate}, {&o.Thresholds.OutlierNorm, &r.Thresholds.OutlierNorm}} {
		if *x.from > 0 {
			*x.to = *x.from
		}
	}
	return nil
}

// SeverityOf returns what check id does under these rules.
func (r *Rules) SeverityOf(id string) Severity {
	if s, ok := r.Severity[id]; ok {
		return s
	}
	return DefaultSeverity[id]
}

// LoadRules reads a rules file: JSON, with // line comments allowed (so a
// rules file can explain itself). Unknown keys are an error, so a typo does
// not silently disable a rule. Only a regular file of at most MaxRulesBytes
// is read (a FIFO would block, /dev/zero never ends).
func LoadRules(path string) (Rules, error) {
	b, err := infile.Read(path, MaxRulesBytes)
	if err != nil {
		return Rules{}, err
	}
	return ParseRules(b)
}

// MaxRulesBytes bounds a rules file (real ones are a few hundred bytes).
const MaxRulesBytes = 1 << 20

// ParseRules parses the contents of a rules file.
func ParseRules(b []byte) (Rules, error) {
	// Comments become spaces, so byte offsets are the file's.
	b = stripComments(b)
	if len(bytes.TrimSpace(b)) == 0 {
		return Rules{}, fmt.Errorf("rules: the file is empty; write {} for the defaults")
	}
	var r Rules
	if err := jsonmsg.Decode(b, &r); err != nil {
		return Rules{}, fmt.Errorf("rules: %v", err)
	}
	for id, s := range r.Severity {
		if _, ok := DefaultSeverity[id]; !ok {
			ids := append([]string(nil), AllChecks...)
			sort.Strings(ids)
			return Rules{}, fmt.Errorf("rules: severity names unknown check %q (checks: %s)", id, strings.Join(ids, ", "))
		}
		if s != Fail && s != Warn && s != Off {
			return Rules{}, fmt.Errorf("rules: severity of %s is %q; use fail, warn or off", id, s)
		}
	}
	for k := range r.Bounds {
		if k != "q" && k != "k" && k != "v" && k != "o" {
			return Rules{}, fmt.Errorf("rules: bounds for %q: matrix kinds are q, k, v, o", k)
		}
	}
	if err := CheckDTypeNames(r.AllowedDTypes); err != nil {
		return Rules{}, fmt.Errorf("rules: allowed_dtypes: %v", err)
	}
	t := r.Thresholds
	// check fits no power laws, so an α threshold would be ignored: refused
	// rather than accepted and silently without effect.
	if t.AlphaLow != 0 || t.AlphaHigh != 0 {
		return Rules{}, fmt.Errorf("rules: thresholds.alpha_low and thresholds.alpha_high are not checks: check fits no heavy-tail exponents (qkv inspect --esd --esd-alpha-low/--esd-alpha-high does)")
	}
	for _, x := range []struct {
		name string
		v    float64
	}{{"thresholds.dead_head", t.DeadHead}, {"thresholds.rank_collapsed", t.RankCollapsed}, {"thresholds.duplicate", t.Duplicate},
		{"thresholds.outlier_norm", t.OutlierNorm}, {"duplicate_fail", r.DuplicateFail}, {"drift_tolerance", r.DriftTolerance}, {"zero_rows_min", float64(r.ZeroRowsMin)}} {
		if x.v < 0 || math.IsNaN(x.v) {
			return Rules{}, fmt.Errorf("rules: %s is %g; it must be positive (0 or omitted: the default)", x.name, x.v)
		}
	}
	for _, s := range r.DriftStats {
		if _, ok := statOf(inspect.Stats{}, s); !ok {
			return Rules{}, fmt.Errorf("rules: drift_stats: unknown stat %q (stats: %s)", s, strings.Join(inspect.StatNames(), ", "))
		}
	}
	r.fill()
	return r, nil
}

// CheckDTypeNames reports names that are not element types qkv knows
// (case-insensitive), so that a typo in allowed_dtypes does not fail every
// tensor.
func CheckDTypeNames(names []string) error {
	known := map[string]bool{}
	for _, t := range dtype.All() {
		known[strings.ToUpper(t.Name())] = true
	}
	var bad []string
	for _, n := range names {
		if !known[strings.ToUpper(n)] {
			bad = append(bad, fmt.Sprintf("%q", n))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	var all []string
	for _, t := range dtype.All() {
		if !t.Removed() {
			all = append(all, t.Name())
		}
	}
	return fmt.Errorf("unknown element type %s (types: %s)", strings.Join(bad, ", "), strings.Join(all, ", "))
}

// stripComments blanks // comments outside strings, keeping byte offsets.
func stripComments(b []byte) []byte {
	out := append([]byte(nil), b...)
	inStr, esc := false, false
	for i := 0; i < len(out); i++ {
		c := out[i]
		switch {
		case inStr:
			if esc {
				esc = false
			} else if c == '\\' {
				esc = true
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for i < len(out) && out[i] != '\n' {
				out[i] = ' '
				i++
			}
		}
	}
	return out
}

// driftNeedsSpectra reports whether drift compares a stat of the spectrum,
// which then has to be exact (the baseline's are).
func (r *Rules) driftNeedsSpectra() bool {
	for _, s := range r.DriftStats {
		switch s {
		case "spectral_norm", "effective_rank", "stable_rank", "condition":
			return true
		}
	}
	return false
}

// statOf reads a named stat from a Stats value (inspect's JSON names).
func statOf(s inspect.Stats, name string) (float64, bool) { return s.Value(name) }
