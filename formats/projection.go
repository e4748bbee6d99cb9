package formats

import (
	"encoding/json"
	"fmt"
)

// Projection names one of a layer's attention matrices ("q", "k", "v",
// "o"). Proj is the same as a small enum indexing [4]T arrays; new code
// should prefer Proj and PerProj.
type Projection string

const (
	ProjQ Projection = "q"
	ProjK Projection = "k"
	ProjV Projection = "v"
	ProjO Projection = "o"
)

// Projections lists the four projections in their canonical order.
var Projections = []Projection{ProjQ, ProjK, ProjV, ProjO}

// Index returns the projection as a Proj; ok is false for a name that is
// not one of q, k, v, o.
func (p Projection) Index() (Proj, bool) {
	x, err := ParseProj(string(p))
	return x, err == nil
}

// Proj is one of a layer's four attention projections, in the canonical
// order Q, K, V, O: the index into a PerProj array. It encodes to JSON and
// text as "q", "k", "v", "o".
type Proj uint8

const (
	Q Proj = iota
	K
	V
	O
)

// AllProjs lists the four projections in order.
var AllProjs = [4]Proj{Q, K, V, O}

var projNames = [4]string{"q", "k", "v", "o"}

// String returns "q", "k", "v" or "o".
func (p Proj) String() string {
	if p < 4 {
		return projNames[p]
	}
	return fmt.Sprintf("Proj(%d)", uint8(p))
}

// Name returns the projection as a Projection.
func (p Proj) Name() Projection { return Projection(p.String()) }

// ParseProj parses "q", "k", "v" or "o".
func ParseProj(s string) (Proj, error) {
	for i, n := range projNames {
		if s == n {
			return Proj(i), nil
		}
	}
	return 0, fmt.Errorf("%q is not a projection (q, k, v or o)", s)
}

// MarshalText encodes the projection as its name.
func (p Proj) MarshalText() ([]byte, error) {
	if p >= 4 {
		return nil, fmt.Errorf("invalid projection %d", uint8(p))
	}
	return []byte(projNames[p]), nil
}

// UnmarshalText decodes a projection name.
func (p *Proj) UnmarshalText(b []byte) error {
	x, err := ParseProj(string(b))
	if err != nil {
		return err
	}
	*p = x
	return nil
}

// PerProj holds one value per projection, indexed by Proj. Its JSON form is
// the object {"q": …, "k": …, "v": …, "o": …}.
type PerProj[T any] [4]T

// MarshalJSON writes {"q": …, "k": …, "v": …, "o": …} in that order.
func (a PerProj[T]) MarshalJSON() ([]byte, error) {
	out := []byte{'{'}
	for i, v := range a {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, projNames[i]...)
		out = append(out, '"', ':')
		out = append(out, b...)
	}
	return append(out, '}'), nil
}

// UnmarshalJSON reads the object form; missing keys leave zero values and
// unknown keys are refused.
func (a *PerProj[T]) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*a = PerProj[T]{}
	for k, raw := range m {
		p, err := ParseProj(k)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &a[p]); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// Weights returns the layer's four matrices indexed by Proj.
func (l *Layer) Weights() PerProj[Matrix] { return PerProj[Matrix]{l.Q, l.K, l.V, l.O} }

// Biases returns the layer's four biases indexed by Proj (nil: none).
func (l *Layer) Biases() PerProj[[]float32] {
	return PerProj[[]float32]{l.QBias, l.KBias, l.VBias, l.OBias}
}

// Sources returns the layer source's four projections indexed by Proj.
func (l *LayerSource) Sources() PerProj[*ProjSource] { return PerProj[*ProjSource]{l.Q, l.K, l.V, l.O} }
