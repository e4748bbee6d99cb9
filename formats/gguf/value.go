package gguf

import (
	"fmt"
	"math"
)

// ValueType is the type tag of a metadata value (gguf_type in ggml).
type ValueType uint32

// The metadata value types, numbered as in the GGUF specification.
const (
	Uint8   ValueType = 0
	Int8    ValueType = 1
	Uint16  ValueType = 2
	Int16   ValueType = 3
	Uint32  ValueType = 4
	Int32   ValueType = 5
	Float32 ValueType = 6
	Bool    ValueType = 7
	String  ValueType = 8
	Array   ValueType = 9
	Uint64  ValueType = 10
	Int64   ValueType = 11
	Float64 ValueType = 12

	numValueTypes = 13
)

var valueTypeNames = [numValueTypes]string{
	"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
	"bool", "string", "array", "uint64", "int64", "float64",
}

// fixedSize is the encoded size of each fixed-size value type; 0 for string
// and array, whose size depends on their content.
var fixedSize = [numValueTypes]int{1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8}

// String returns the specification's lower-case name ("uint32", "string"),
// or "type N" for a tag the specification does not define.
func (v ValueType) String() string {
	if v < numValueTypes {
		return valueTypeNames[v]
	}
	return fmt.Sprintf("type %d", uint32(v))
}

// Valid reports whether v is one of the 13 defined value types.
func (v ValueType) Valid() bool { return v < numValueTypes }

// Uint returns the value as a uint64 when it is a scalar integer (or an
// integral float) that is non-negative and fits.
func (kv *KV) Uint() (uint64, bool) {
	switch x := kv.Value.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8, int16, int32, int64:
		i, _ := kv.Int()
		if i < 0 {
			return 0, false
		}
		return uint64(i), true
	case float32:
		return floatToUint(float64(x))
	case float64:
		return floatToUint(x)
	}
	return 0, false
}

// Int returns the value as an int64 when it is a scalar integer (or an
// integral float) that fits.
func (kv *KV) Int() (int64, bool) {
	switch x := kv.Value.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case float32:
		return floatToInt(float64(x))
	case float64:
		return floatToInt(x)
	}
	return 0, false
}

// Float returns the value as a float64 when it is a scalar number. Integers
// beyond 2^53 are rounded.
func (kv *KV) Float() (float64, bool) {
	switch x := kv.Value.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	case int8, int16, int32, int64:
		i, _ := kv.Int()
		return float64(i), true
	case uint8, uint16, uint32, uint64:
		u, _ := kv.Uint()
		return float64(u), true
	}
	return 0, false
}

// String returns the value when it is a scalar string.
func (kv *KV) String() (string, bool) {
	s, ok := kv.Value.(string)
	return s, ok
}

// Bool returns the value when it is a scalar bool.
func (kv *KV) Bool() (bool, bool) {
	b, ok := kv.Value.(bool)
	return b, ok
}

func floatToUint(f float64) (uint64, bool) {
	// 2^64 is exactly representable; anything at or above it does not fit.
	if f != math.Trunc(f) || f < 0 || f >= 18446744073709551616.0 {
		return 0, false
	}
	return uint64(f), true
}

func floatToInt(f float64) (int64, bool) {
	if f != math.Trunc(f) || f < -9223372036854775808.0 || f >= 9223372036854775808.0 {
		return 0, false
	}
	return int64(f), true
}
