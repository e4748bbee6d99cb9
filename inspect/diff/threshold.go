package diff

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
)

// Metrics are the names of ProjDiff's metrics, as JSON and the thresholds
// name them.
var Metrics = []string{"rel_fro", "cosine", "max_abs", "snr_db", "spectral_norm_change", "effective_rank_change", "delta_effective_rank"}

// signedMetrics are compared with their limits by absolute value: a change
// either way is a change.
var signedMetrics = map[string]bool{"spectral_norm_change": true, "effective_rank_change": true}

// Bounds of a Threshold.
const (
	Above = "above" // fails when the metric is above the limit
	Below = "below" // fails when the metric is below the limit
)

// Threshold fails a projection whose Metric is above (or below) Limit.
type Threshold struct {
	Metric string  `json:"metric"`
	Bound  string  `json:"bound"`
	Limit  float64 `json:"limit"`
}

func (t Threshold) String() string {
	op := ">"
	if t.Bound == Below {
		op = "<"
	}
	m := t.Metric
	if signedMetrics[m] {
		m = "|" + m + "|"
	}
	return fmt.Sprintf("%s %s %s", m, op, strconv.FormatFloat(t.Limit, 'g', -1, 64))
}

// ParseThreshold reads "METRIC=LIMIT" (--fail-above, --fail-below): a
// metric of Metrics and a finite number.
func ParseThreshold(s, bound string) (Threshold, error) {
	name, val, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok {
		return Threshold{}, fmt.Errorf("%q is not METRIC=LIMIT (for example rel_fro=0.05)", s)
	}
	known := false
	for _, m := range Metrics {
		known = known || m == name
	}
	if !known {
		return Threshold{}, fmt.Errorf("unknown metric %q (one of %s)", name, strings.Join(Metrics, ", "))
	}
	lim, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
	if err != nil || math.IsNaN(lim) || math.IsInf(lim, 0) {
		return Threshold{}, fmt.Errorf("%s: the limit %q is not a finite number", name, val)
	}
	return Threshold{Metric: name, Bound: bound, Limit: lim}, nil
}

// Failure is one projection that failed one threshold.
type Failure struct {
	Layer      int           `json:"layer"`
	Projection string        `json:"projection"`
	Metric     string        `json:"metric"`
	Bound      string        `json:"bound"`
	Value      inspect.Float `json:"value"`
	Limit      float64       `json:"limit"`
	// Reason says why an undefined value fails (NaN/Inf, a shape error).
	Reason string `json:"reason,omitempty"`
}

// Metric returns the named metric of d (NaN for an unknown name).
func (d *ProjDiff) Metric(name string) inspect.Float {
	switch name {
	case "rel_fro":
		return d.RelFro
	case "cosine":
		return d.Cosine
	case "max_abs":
		return d.MaxAbs
	case "snr_db":
		return d.SNRdB
	case "spectral_norm_change":
		return d.SpectralNormChange
	case "effective_rank_change":
		return d.EffectiveRankChange
	case "delta_effective_rank":
		return d.DeltaEffectiveRank
	}
	return inspect.Float(math.NaN())
}

// Check applies the thresholds to every compared projection and records
// them, the failures and whether the report passed. A projection that
// holds NaN/Inf or could not be compared fails every threshold: its
// metrics are undefined, and an undefined value never passes silently.
// Identical matrices pass (their undefined SNR and delta rank mean "no
// difference").
func (r *Report) Check(ts []Threshold) {
	r.Thresholds = append([]Threshold{}, ts...)
	r.Failures = []Failure{}
	for _, l := range r.Layers {
		for _, p := range formats.Projections {
			d := l.Get(p)
			if d == nil {
				continue
			}
			for _, t := range ts {
				if f, bad := d.check(t); bad {
					f.Layer, f.Projection = l.Index, string(p)
					r.Failures = append(r.Failures, f)
				}
			}
		}
	}
	r.Passed = len(r.Failures) == 0
}

// check applies one threshold to d.
func (d *ProjDiff) check(t Threshold) (Failure, bool) {
	f := Failure{Metric: t.Metric, Bound: t.Bound, Limit: t.Limit}
	v := d.Metric(t.Metric)
	f.Value = v
	switch {
	case d.Error != "":
		f.Reason = d.Error
		return f, true
	case d.NonFinite:
		f.Reason = d.nonFiniteText()
		return f, true
	case d.Identical:
		return f, false
	case !v.Valid():
		f.Reason = t.Metric + " is undefined"
		return f, true
	}
	x := float64(v)
	if signedMetrics[t.Metric] {
		x = math.Abs(x)
	}
	if t.Bound == Below {
		return f, x < t.Limit
	}
	return f, x > t.Limit
}

// nonFiniteText says which side holds what: "3 NaN in B".
func (d *ProjDiff) nonFiniteText() string {
	var parts []string
	side := func(nan, inf int, name string) {
		var what []string
		if nan > 0 {
			what = append(what, fmt.Sprintf("%d NaN", nan))
		}
		if inf > 0 {
			what = append(what, fmt.Sprintf("%d Inf", inf))
		}
		if len(what) > 0 {
			parts = append(parts, strings.Join(what, " and ")+" in "+name)
		}
	}
	side(d.NaNA, d.InfA, "A")
	side(d.NaNB, d.InfB, "B")
	if len(parts) == 0 {
		return "NaN or Inf"
	}
	return strings.Join(parts, ", ")
}
