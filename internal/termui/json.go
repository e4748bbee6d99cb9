package termui

import (
	"encoding/json"
	"io"
	"math"
	"strconv"
)

// WriteJSON writes v as one indented JSON document followed by a newline,
// without HTML escaping (names keep their < and &): every command's --json.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Float is a float64 that JSON writes as its shortest exact decimal, or
// null when it is NaN or ±Inf (JSON has no such numbers; the report says
// why with a flag beside it). null reads back as NaN.
type Float float64

// MarshalJSON writes the number, or null for NaN/Inf.
func (f Float) MarshalJSON() ([]byte, error) {
	return AppendJSONFloat(nil, float64(f), 64), nil
}

// UnmarshalJSON reads a number or null (as NaN).
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	*f = Float(v)
	return err
}

// Valid reports whether f is a finite number.
func (f Float) Valid() bool { return finite(float64(f)) }

// AppendJSONFloat appends v as JSON: its shortest decimal at bitSize (32
// for a float32 value) or null when it is NaN or ±Inf.
func AppendJSONFloat(b []byte, v float64, bitSize int) []byte {
	if !finite(v) {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, bitSize)
}

// JSONValue is v for a JSON document: nil (null) when it is NaN or ±Inf,
// with nonFinite saying so, so that the caller can set its flag.
func JSONValue(v float64) (out any, nonFinite bool) {
	if !finite(v) {
		return nil, true
	}
	return v, false
}
