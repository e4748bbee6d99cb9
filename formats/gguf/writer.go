package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"

	"github.com/qkvdev/qkv/formats/dtype"
)

// Writer writes a GGUF file; the project's fixture generator uses it for
// testdata and hostile files. It validates only what it must to encode the
// values: it does not check shapes against data sizes, alignment values or
// versions, so that tests can write files a parser has to reject.
type Writer struct {
	Version   uint32 // 0 means 3; 1 writes u32 lengths, counts and ne
	BigEndian bool   // every header field byte-swapped; tensor Data is written as given
	// Alignment pads the data section and each tensor's data. 0 means the
	// value of a general.alignment pair in KVs when it is a power of two,
	// else 32. A non-32 Alignment with no general.alignment pair adds one
	// (uint32) after the given pairs.
	Alignment uint64
	// KVs are written in order. Only Key, Type, ElemType and Value are used.
	// Value is a Go value of the Type's kind (any Go integer for integer
	// types, range-checked; float32 or float64 for floats). An array's Value
	// is a slice ([]any or typed, e.g. []string, []int32); elements of a
	// nested array (ElemType Array) are KV values (their ElemType and Value
	// used), or slices whose element type is inferred from their Go type.
	KVs     []KV
	Tensors []WriterTensor
}

// WriterTensor is one tensor to write.
type WriterTensor struct {
	Name string
	Dims []uint64   // ne, innermost first
	Type dtype.Type // written as its GGML id (unknown ids too)
	Data []byte     // written as given, then zero-padded to the alignment
	// OffsetOverride, when non-nil, is written as the tensor's offset
	// instead of the computed one (the data still goes where the computed
	// offset points): for hostile files.
	OffsetOverride *uint64
}

// WriteTo writes the file to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	e := &encoder{version: w.Version, be: w.BigEndian}
	if e.version == 0 {
		e.version = 3
	}
	align := w.Alignment
	kvs := w.KVs
	if align == 0 {
		align = DefaultAlignment
		for i := range kvs {
			if kvs[i].Key == AlignmentKey {
				if a, ok := kvs[i].Uint(); ok && a != 0 && a&(a-1) == 0 {
					align = a
				}
			}
		}
	} else if align != DefaultAlignment {
		found := false
		for i := range kvs {
			found = found || kvs[i].Key == AlignmentKey
		}
		if !found {
			if align > math.MaxUint32 {
				return 0, fmt.Errorf("gguf writer: alignment %d does not fit general.alignment (uint32)", align)
			}
			kvs = append(kvs[:len(kvs):len(kvs)], KV{Key: AlignmentKey, Type: Uint32, Value: uint32(align)})
		}
	}

	e.raw([]byte("GGUF"))
	e.u32(e.version)
	e.length(uint64(len(w.Tensors)))
	e.length(uint64(len(kvs)))
	for i := range kvs {
		kv := &kvs[i]
		e.str(kv.Key)
		e.u32(uint32(kv.Type))
		if kv.Type == Array {
			e.array(kv.ElemType, kv.Value, 1)
		} else {
			e.scalar(kv.Type, kv.Value)
		}
		if e.err != nil {
			return 0, fmt.Errorf("gguf writer: key %q: %w", kv.Key, e.err)
		}
	}
	var offset uint64
	for i := range w.Tensors {
		t := &w.Tensors[i]
		e.str(t.Name)
		e.u32(uint32(len(t.Dims)))
		for _, d := range t.Dims {
			e.length(d)
		}
		id, ok := t.Type.GGMLID()
		if !ok {
			return 0, fmt.Errorf("gguf writer: tensor %q: type %s has no GGML id", t.Name, t.Type)
		}
		e.u32(id)
		if t.OffsetOverride != nil {
			e.u64(*t.OffsetOverride)
		} else {
			e.u64(offset)
		}
		offset += pad(uint64(len(t.Data)), align)
		if e.err != nil {
			return 0, fmt.Errorf("gguf writer: tensor %q: %w", t.Name, e.err)
		}
	}
	header := e.buf
	if len(w.Tensors) > 0 {
		header = append(header, make([]byte, pad(uint64(len(header)), align)-uint64(len(header)))...)
	}

	bw := bufio.NewWriter(out)
	var n int64
	m, err := bw.Write(header)
	n += int64(m)
	if err != nil {
		return n, err
	}
	zeros := make([]byte, 256)
	for i := range w.Tensors {
		m, err := bw.Write(w.Tensors[i].Data)
		n += int64(m)
		if err != nil {
			return n, err
		}
		for gap := pad(uint64(len(w.Tensors[i].Data)), align) - uint64(len(w.Tensors[i].Data)); gap > 0; {
			k := min(gap, uint64(len(zeros)))
			m, err := bw.Write(zeros[:k])
			n += int64(m)
			if err != nil {
				return n, err
			}
			gap -= k
		}
	}
	return n, bw.Flush()
}

// pad rounds n up to a multiple of align (a power of two).
func pad(n, align uint64) uint64 {
	if r := n % align; r != 0 {
		return n + align - r
	}
	return n
}

// encoder appends fields in one byte order and version; the first error
// sticks.
type encoder struct {
	buf     []byte
	version uint32
	be      bool
	err     error
}

func (e *encoder) order() binary.AppendByteOrder {
	if e.be {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func (e *encoder) raw(b []byte)   { e.buf = append(e.buf, b...) }
func (e *encoder) u16(v uint16)   { e.buf = e.order().AppendUint16(e.buf, v) }
func (e *encoder) u32(v uint32)   { e.buf = e.order().AppendUint32(e.buf, v) }
func (e *encoder) u64(v uint64)   { e.buf = e.order().AppendUint64(e.buf, v) }
func (e *encoder) fail(err error) { e.err = errors.Join(e.err, err) }

func (e *encoder) length(n uint64) {
	if e.version == 1 {
		if n > math.MaxUint32 {
			e.fail(fmt.Errorf("length %d does not fit a version 1 u32", n))
		}
		e.u32(uint32(n))
		return
	}
	e.u64(n)
}

func (e *encoder) str(s string) {
	e.length(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) scalar(t ValueType, v any) {
	if t == String {
		s, ok := v.(string)
		if !ok {
			e.fail(fmt.Errorf("value %v (%T) is not a string", v, v))
		}
		e.str(s)
		return
	}
	switch t {
	case Bool:
		b, ok := v.(bool)
		if !ok {
			e.fail(fmt.Errorf("value %v (%T) is not a bool", v, v))
		}
		if b {
			e.buf = append(e.buf, 1)
		} else {
			e.buf = append(e.buf, 0)
		}
	case Float32, Float64:
		var f float64
		switch x := v.(type) {
		case float32:
			f = float64(x)
		case float64:
			f = x
		default:
			e.fail(fmt.Errorf("value %v (%T) is not a float", v, v))
		}
		if t == Float32 {
			e.u32(math.Float32bits(float32(f)))
		} else {
			e.u64(math.Float64bits(f))
		}
	case Uint8, Int8, Uint16, Int16, Uint32, Int32, Uint64, Int64:
		bitsv, err := intBits(t, v)
		if err != nil {
			e.fail(err)
		}
		switch fixedSize[t] {
		case 1:
			e.buf = append(e.buf, byte(bitsv))
		case 2:
			e.u16(uint16(bitsv))
		case 4:
			e.u32(uint32(bitsv))
		case 8:
			e.u64(bitsv)
		}
	default:
		e.fail(fmt.Errorf("cannot encode value type %s", t))
	}
}

// intBits converts any Go integer to the bit pattern of integer type t,
// failing when the value is out of t's range.
func intBits(t ValueType, v any) (uint64, error) {
	rv := reflect.ValueOf(v)
	var neg bool
	var u uint64
	var i int64
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i = rv.Int()
		neg = i < 0
		u = uint64(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u = rv.Uint()
		i = int64(u)
	default:
		return 0, fmt.Errorf("value %v (%T) is not an integer", v, v)
	}
	var lo int64
	var hi uint64
	switch t {
	case Uint8:
		hi = math.MaxUint8
	case Uint16:
		hi = math.MaxUint16
	case Uint32:
		hi = math.MaxUint32
	case Uint64:
		hi = math.MaxUint64
	case Int8:
		lo, hi = math.MinInt8, math.MaxInt8
	case Int16:
		lo, hi = math.MinInt16, math.MaxInt16
	case Int32:
		lo, hi = math.MinInt32, math.MaxInt32
	case Int64:
		lo, hi = math.MinInt64, math.MaxInt64
	}
	if neg && i < lo || !neg && u > hi {
		return 0, fmt.Errorf("value %v out of range for %s", v, t)
	}
	return u, nil
}

func (e *encoder) array(elem ValueType, v any, depth int) {
	if depth > 64 {
		e.fail(errors.New("arrays nested too deep to write"))
		return
	}
	rv := reflect.ValueOf(v)
	if v != nil && rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		e.fail(fmt.Errorf("array value %T is not a slice", v))
		return
	}
	n := 0
	if v != nil {
		n = rv.Len()
	}
	e.u32(uint32(elem))
	e.length(uint64(n))
	for i := 0; i < n; i++ {
		x := rv.Index(i).Interface()
		if elem != Array {
			e.scalar(elem, x)
			continue
		}
		switch in := x.(type) {
		case KV:
			e.array(in.ElemType, in.Value, depth+1)
		case *KV:
			e.array(in.ElemType, in.Value, depth+1)
		default:
			e.array(inferElem(x), x, depth+1)
		}
	}
}

// inferElem guesses the element type of a nested array given as a Go slice.
func inferElem(v any) ValueType {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() || (rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array) {
		return Uint8
	}
	et := rv.Type().Elem()
	if et.Kind() == reflect.Interface {
		if rv.Len() == 0 {
			return Uint8
		}
		first := rv.Index(0).Elem()
		if !first.IsValid() {
			return Uint8
		}
		et = first.Type()
	}
	switch et.Kind() {
	case reflect.Uint8:
		return Uint8
	case reflect.Int8:
		return Int8
	case reflect.Uint16:
		return Uint16
	case reflect.Int16:
		return Int16
	case reflect.Uint32:
		return Uint32
	case reflect.Int32:
		return Int32
	case reflect.Float32:
		return Float32
	case reflect.Bool:
		return Bool
	case reflect.String:
		return String
	case reflect.Uint64, reflect.Uint:
		return Uint64
	case reflect.Int64, reflect.Int:
		return Int64
	case reflect.Float64:
		return Float64
	case reflect.Slice, reflect.Array, reflect.Struct, reflect.Pointer:
		return Array
	}
	return Uint8
}
