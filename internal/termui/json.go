package termui

import (
	"encoding/json"
	"io"
	"math"
	"reflect"
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

// AppendJSONArrays appends v — a []float32 or []float64, or slices of those
// nested to any depth ([][]float32, [][][][]float64, …) — as JSON arrays,
// NaN and ±Inf as null, float32 values in their shortest float32 form. A
// nil slice is null. Any other type is written as null.
func AppendJSONArrays(b []byte, v any) []byte {
	switch x := v.(type) {
	case []float32:
		return appendFloats(b, x, 32)
	case []float64:
		return appendFloats(b, x, 64)
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice || rv.IsNil() {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i := 0; i < rv.Len(); i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONArrays(b, rv.Index(i).Interface())
	}
	return append(b, ']')
}

// appendFloats appends one array of floats (null for a nil slice).
func appendFloats[T float32 | float64](b []byte, x []T, bitSize int) []byte {
	if x == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, f := range x {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONFloat(b, float64(f), bitSize)
	}
	return append(b, ']')
}
