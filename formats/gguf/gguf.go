// Package gguf parses GGUF files — the checkpoint format of ggml and
// llama.cpp — in versions 1, 2 and 3, little- and big-endian, and writes them
// for the project's test fixtures.
//
// Parse reads only the header: the metadata key/value pairs and the tensor
// infos. It treats every byte as untrusted: each count, length and offset is
// checked against the bytes that remain before it is used to allocate, index
// or loop, and every failure is an *Error naming the cause and the byte
// offset of the offending field. Long metadata arrays (tokenizer vocabularies)
// are validated and skipped without being decoded; File.Array decodes any
// range of them on demand.
//
// Layout (all integers in the file's byte order):
//
//	magic "GGUF" | version u32 | tensor count | kv count
//	kv:     key string | value type u32 | value
//	array:  element type u32 | count | elements
//	string: length | bytes (UTF-8, no NUL)
//	tensor: name string | n_dims u32 | ne[n_dims] | ggml type u32 | offset u64
//	padding to the alignment | tensor data
//
// Counts, lengths and ne are u32 in version 1 and u64 from version 2 on.
package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"

	"github.com/qkvdev/qkv/formats/dtype"
)

// Error is a parse error: what went wrong and the byte offset of the field
// that caused it. Callers prefix the file name.
type Error struct {
	Offset int64
	Msg    string

	truncated bool // the bytes given end before the file does (ErrTruncated)
}

func (e *Error) Error() string { return fmt.Sprintf("at byte %d: %s", e.Offset, e.Msg) }

// Is makes errors.Is(err, ErrTruncated) hold for a parse that ran out of
// the bytes it was given before the file's end.
func (e *Error) Is(target error) bool { return e.truncated && target == ErrTruncated }

// ErrTruncated: Parse (or Array) needs bytes beyond the data it was given
// but within Options.Size — the header continues past the prefix read so
// far; a longer prefix may parse. The error is an *Error that says which
// field was being read.
var ErrTruncated = errors.New("the data given ends before the header does")

func errorf(off int64, format string, args ...any) *Error {
	return &Error{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// Limits and defaults.
const (
	// DefaultAlignment is the data alignment when general.alignment is absent
	// (GGUF_DEFAULT_ALIGNMENT; version 1 used it too).
	DefaultAlignment = 32
	// MaxDims is GGML_MAX_DIMS: a tensor has 1 to MaxDims dimensions.
	MaxDims = 4
	// MaxArrayDepth bounds how deeply arrays may nest (ggml itself reads no
	// nested arrays at all); it bounds the parser's recursion.
	MaxArrayDepth = 8
	// DefaultLazyArrayMax is Options.LazyArrayMax when that is 0.
	DefaultLazyArrayMax = 64
	// AlignmentKey is the metadata key that sets the data alignment.
	AlignmentKey = "general.alignment"

	// checkpointEvery is the spacing of the element offsets remembered for
	// lazy string arrays, so that Array need not walk from the start.
	checkpointEvery = 1024

	// maxPrealloc caps the KVs and tensor infos allocated before they are
	// read; more are appended as they parse.
	maxPrealloc = 4096
)

// KV is one metadata key/value pair.
type KV struct {
	Key         string
	Type        ValueType // Array for arrays
	ElemType    ValueType // for arrays: the element type (Array for nested arrays)
	Count       uint64    // arrays: element count; scalars: 1
	Offset      int64     // file offset of this key/value record (its key length)
	ValueOffset int64     // file offset of the value (for arrays: of the element type field)
	End         int64     // file offset just after the value
	// Value holds scalars as uint8, int8, uint16, int16, uint32, int32,
	// float32, bool, string, uint64, int64 or float64. Arrays that hold at
	// most Options.LazyArrayMax elements in all (nested arrays' elements
	// included) are []any of decoded elements, nested arrays []any of []any.
	// Larger arrays are nil: validated and skipped, decode them with
	// File.Array.
	Value any
	Lazy  bool // Value was left undecoded

	// For lazy string arrays: the file offset of every checkpointEvery-th
	// element, so that Array can start near the requested range.
	checkpoints []int64
}

// TensorInfo describes one tensor as the header lists it.
type TensorInfo struct {
	Name       string
	Dims       []uint64   // ne as stored, innermost (contiguous) first
	Type       dtype.Type // unknown ids give a Type whose Known is false
	Offset     uint64     // relative to the data section
	InfoOffset int64      // file offset of this tensor-info record
	Bytes      int64      // byte size from the type's layout; -1 when the type is unknown
	// FlatRun: the rows are not whole blocks, but the tensor is one flat run
	// of blocks (legacy quantization, 2023): decodable whole, not by row.
	FlatRun bool

	dimsOffset   int64 // file offset of ne[0]
	offsetOffset int64 // file offset of the offset field
}

// Elements returns the tensor's element count (the product of Dims). Parse
// has checked that it fits in int64.
func (t *TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= int64(d)
	}
	return n
}

// File is a parsed GGUF header.
type File struct {
	Version    uint32
	BigEndian  bool
	KVs        []KV         // in file order
	Tensors    []TensorInfo // in file order
	Alignment  uint64       // general.alignment, or 32
	DataOffset int64        // absolute file offset where tensor data starts (aligned)
	Size       int64        // the file's size (Options.Size, or len(data))

	keys  map[string]int // key -> index in KVs
	names map[string]int // tensor name -> index in Tensors
}

// Options tune Parse.
type Options struct {
	// LazyArrayMax: arrays with more elements than this (nested arrays'
	// elements included) are validated and skipped instead of decoded.
	// 0 means DefaultLazyArrayMax; negative means every array is lazy.
	LazyArrayMax int
	// Size is the file's size when data is only its beginning (a header
	// read over the network); 0 means len(data). Every bound — counts,
	// lengths, tensor extents, File.Size — is checked against it as strictly
	// as against a whole file; a field that lies past len(data) but inside
	// Size gives an error matching ErrTruncated.
	Size int64
}

// Lookup returns the key/value pair with the given key. Parse builds an
// index for it; a File assembled by hand is searched in order.
func (f *File) Lookup(key string) (*KV, bool) {
	if f.keys != nil {
		if i, ok := f.keys[key]; ok {
			return &f.KVs[i], true
		}
		return nil, false
	}
	for i := range f.KVs {
		if f.KVs[i].Key == key {
			return &f.KVs[i], true
		}
	}
	return nil, false
}

// Tensor returns the tensor info with the given name.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	if f.names != nil {
		if i, ok := f.names[name]; ok {
			return &f.Tensors[i], true
		}
		return nil, false
	}
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// DataRange returns the absolute byte range [start, end) of a tensor's data.
// ok is false when the type's size is unknown.
func (f *File) DataRange(t *TensorInfo) (start, end int64, ok bool) {
	if t.Bytes < 0 {
		return 0, 0, false
	}
	start = f.DataOffset + int64(t.Offset)
	return start, start + t.Bytes, true
}

// what names a field for error messages. It is formatted only when an
// error happens, so that the happy path allocates nothing for it.
type what struct {
	format string // arguments in order: i, s, t (those present)
	i      int64
	s      string
	t      ValueType
	hasI   bool
	hasS   bool
	hasT   bool
	length bool // the length field of this string
}

func (w what) String() string {
	args := make([]any, 0, 3)
	if w.hasI {
		args = append(args, w.i)
	}
	if w.hasS {
		args = append(args, w.s)
	}
	if w.hasT {
		args = append(args, w.t)
	}
	s := fmt.Sprintf(w.format, args...)
	if w.length {
		s += " length"
	}
	return s
}

// decoder reads fields of one byte order and version from data, the first
// len(data) bytes of a file of size bytes. Bounds are checked against size;
// a field inside size but past len(data) is a truncation (ErrTruncated).
// off never exceeds size, but may exceed len(data) (a skipped array).
type decoder struct {
	data []byte
	size int
	off  int
	be   bool
	v1   bool // lengths, counts and ne are u32
}

func (d *decoder) remaining() int { return d.size - d.off }

// need fails unless n more bytes are available.
func (d *decoder) need(n int, w what) error {
	if n > d.size-d.off {
		return errorf(int64(d.off), "unexpected end of file reading %s: need %d bytes, %d remain", w, n, d.remaining())
	}
	return d.present(d.off, n, w)
}

// present fails with a truncation unless bytes [at, at+n) are in data.
func (d *decoder) present(at, n int, w what) error {
	if n > len(d.data)-at {
		e := errorf(int64(at), "the header continues past the %d bytes read: %s needs bytes [%d, %d)", len(d.data), w, at, at+n)
		e.truncated = true
		return e
	}
	return nil
}

func (d *decoder) u16at(p int) uint16 {
	if d.be {
		return binary.BigEndian.Uint16(d.data[p:])
	}
	return binary.LittleEndian.Uint16(d.data[p:])
}

func (d *decoder) u32at(p int) uint32 {
	if d.be {
		return binary.BigEndian.Uint32(d.data[p:])
	}
	return binary.LittleEndian.Uint32(d.data[p:])
}

func (d *decoder) u64at(p int) uint64 {
	if d.be {
		return binary.BigEndian.Uint64(d.data[p:])
	}
	return binary.LittleEndian.Uint64(d.data[p:])
}

func (d *decoder) u32(w what) (uint32, error) {
	if err := d.need(4, w); err != nil {
		return 0, err
	}
	v := d.u32at(d.off)
	d.off += 4
	return v, nil
}

func (d *decoder) u64(w what) (uint64, error) {
	if err := d.need(8, w); err != nil {
		return 0, err
	}
	v := d.u64at(d.off)
	d.off += 8
	return v, nil
}

// lenSize is the width of a length, count or ne field.
func (d *decoder) lenSize() int {
	if d.v1 {
		return 4
	}
	return 8
}

// length reads a length, count or ne field (u32 in v1, u64 after).
func (d *decoder) length(w what) (uint64, error) {
	if d.v1 {
		v, err := d.u32(w)
		return uint64(v), err
	}
	return d.u64(w)
}

// strBounds reads a string's length and checks that its bytes are present;
// it returns the start and end of the bytes and leaves d after them.
func (d *decoder) strBounds(w what) (int, int, error) {
	at := d.off
	lw := w
	lw.length = true
	n, err := d.length(lw)
	if err != nil {
		return 0, 0, err
	}
	if n > uint64(d.remaining()) {
		return 0, 0, errorf(int64(at), "%s: string length %d exceeds the %d bytes remaining", w, n, d.remaining())
	}
	s := d.off
	d.off += int(n)
	return s, d.off, nil
}

func (d *decoder) str(w what) (string, error) {
	s, e, err := d.strBounds(w)
	if err != nil {
		return "", err
	}
	if err := d.present(s, e-s, w); err != nil {
		return "", err
	}
	return string(d.data[s:e]), nil
}

// Parse parses the header of a GGUF file. data is the whole file (normally
// memory-mapped by the caller); Parse keeps no reference to it.
func Parse(data []byte, opts Options) (*File, error) {
	lazyMax := opts.LazyArrayMax
	if lazyMax == 0 {
		lazyMax = DefaultLazyArrayMax
	}
	size := int64(len(data))
	if opts.Size > 0 {
		if opts.Size < size {
			data = data[:opts.Size]
		}
		size = opts.Size
	}
	if int64(int(size)) != size {
		return nil, errorf(0, "file of %d bytes is too large for this platform", size)
	}
	p := &parser{d: decoder{data: data, size: int(size)}, lazyMax: lazyMax}
	f, err := p.parse(opts)
	if err != nil {
		return nil, err
	}
	return f, nil
}

type parser struct {
	d       decoder
	lazyMax int
	key     string // the key being parsed, for messages
	legacy  bool   // version 1 or 2: flat runs of blocks are accepted

	checkpoints []int64 // left by skipArray for the KV being parsed
}

func (p *parser) parse(opts Options) (*File, error) {
	d := &p.d
	if err := d.need(4, what{format: "magic"}); err != nil {
		return nil, err
	}
	if string(d.data[:4]) != "GGUF" {
		return nil, errorf(0, "bad magic %q, want \"GGUF\"", d.data[:4])
	}
	d.off = 4
	if err := d.need(4, what{format: "version"}); err != nil {
		return nil, err
	}
	f := &File{Size: int64(d.size)}
	// The version is written in the file's byte order, so a big-endian
	// version 3 reads as 0x03000000 little-endian.
	le := binary.LittleEndian.Uint32(d.data[4:])
	be := binary.BigEndian.Uint32(d.data[4:])
	switch {
	case le >= 1 && le <= 3:
		f.Version = le
	case be >= 1 && be <= 3:
		f.Version, f.BigEndian = be, true
	case le != 0 && le&0xFFFF == 0:
		return nil, errorf(4, "unsupported GGUF version %d (big-endian)", be)
	default:
		return nil, errorf(4, "unsupported GGUF version %d", le)
	}
	d.off = 8
	d.be = f.BigEndian
	d.v1 = f.Version == 1
	p.legacy = f.Version < 3

	ls := d.lenSize()
	// Smallest records: a KV is a key length, a type and a 1-byte value; a
	// tensor info is a name length, n_dims, one ne, a type and an offset.
	minKV := ls + 4 + 1
	minTensor := ls + 4 + ls + 4 + 8

	ntAt := int64(d.off)
	nt, err := d.length(what{format: "tensor count"})
	if err != nil {
		return nil, err
	}
	nkvAt := int64(d.off)
	nkv, err := d.length(what{format: "kv count"})
	if err != nil {
		return nil, err
	}
	rem := uint64(d.remaining())
	if nkv > rem/uint64(minKV) {
		return nil, errorf(nkvAt, "kv count %d exceeds what the remaining %d bytes can hold (at least %d bytes each)", nkv, rem, minKV)
	}
	if nt > rem/uint64(minTensor) || nt*uint64(minTensor)+nkv*uint64(minKV) > rem {
		return nil, errorf(ntAt, "tensor count %d exceeds what the remaining %d bytes can hold (at least %d bytes each)", nt, rem-nkv*uint64(minKV), minTensor)
	}

	// Preallocate no more than a bounded number of records: the minimum
	// sizes above bound the count by the file size, but a KV or tensor info
	// in memory is several times its smallest encoding.
	f.KVs = make([]KV, 0, min(nkv, maxPrealloc))
	f.keys = make(map[string]int, min(nkv, maxPrealloc))
	for i := uint64(0); i < nkv; i++ {
		kv, err := p.parseKV(i)
		if err != nil {
			return nil, err
		}
		if j, dup := f.keys[kv.Key]; dup {
			return nil, errorf(kv.Offset, "duplicate key %q (first at byte %d)", kv.Key, f.KVs[j].Offset)
		}
		f.keys[kv.Key] = len(f.KVs)
		f.KVs = append(f.KVs, kv)
	}

	f.Alignment = DefaultAlignment
	if kv, ok := f.Lookup(AlignmentKey); ok {
		a, err := alignment(kv)
		if err != nil {
			return nil, err
		}
		f.Alignment = a
	}

	f.Tensors = make([]TensorInfo, 0, min(nt, maxPrealloc))
	names := make(map[string]int, min(nt, maxPrealloc))
	for i := uint64(0); i < nt; i++ {
		t, err := p.parseTensorInfo(i)
		if err != nil {
			return nil, err
		}
		if j, dup := names[t.Name]; dup {
			return nil, errorf(t.InfoOffset, "duplicate tensor name %q (first at byte %d)", t.Name, f.Tensors[j].InfoOffset)
		}
		names[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	f.names = names

	// The data section starts at the end of the tensor infos rounded up to
	// the alignment (version 1 did the same).
	end := uint64(d.off)
	start := end
	if r := end % f.Alignment; r != 0 {
		pad := f.Alignment - r
		if start+pad < start || start+pad > math.MaxInt64 {
			return nil, errorf(int64(end), "data section start overflows (alignment %d)", f.Alignment)
		}
		start += pad
	}
	f.DataOffset = int64(start)

	if err := checkTensorData(f); err != nil {
		return nil, err
	}
	return f, nil
}

func (p *parser) parseKV(i uint64) (KV, error) {
	d := &p.d
	kv := KV{Offset: int64(d.off), Count: 1}
	key, err := d.str(what{format: "key %d", i: int64(i), hasI: true})
	if err != nil {
		return kv, err
	}
	kv.Key = key
	p.key = key
	typeAt := d.off
	t, err := d.u32(what{format: "type of key %q", s: key, hasS: true})
	if err != nil {
		return kv, err
	}
	kv.Type = ValueType(t)
	if !kv.Type.Valid() {
		return kv, errorf(int64(typeAt), "key %q: invalid value type %d", key, t)
	}
	kv.ValueOffset = int64(d.off)
	if kv.Type != Array {
		v, err := p.scalar(kv.Type, false)
		if err != nil {
			return kv, err
		}
		kv.Value = v
		kv.End = int64(d.off)
		return kv, nil
	}

	elem, count, total, err := p.skipArray(1)
	if err != nil {
		return kv, err
	}
	kv.ElemType, kv.Count = elem, count
	if p.lazyMax >= 0 && count <= uint64(p.lazyMax) && total <= uint64(p.lazyMax) {
		after := d.off
		d.off = int(kv.ValueOffset)
		v, err := p.array(1)
		if err != nil {
			return kv, err // not reached: skipArray validated the same bytes
		}
		d.off = after
		kv.Value = v
		kv.End = int64(d.off)
		return kv, nil
	}
	kv.Lazy = true
	kv.checkpoints, p.checkpoints = p.checkpoints, nil
	kv.End = int64(d.off)
	return kv, nil
}

// scalar decodes one value of a non-array type at d.off.
func (p *parser) scalar(t ValueType, elem bool) (any, error) {
	d := &p.d
	w := what{format: "value of key %q", s: p.key, hasS: true}
	if elem {
		w.format = "element of key %q"
	}
	if t == String {
		return d.str(w)
	}
	w.format += " (%s)"
	w.t, w.hasT = t, true
	n := fixedSize[t]
	if err := d.need(n, w); err != nil {
		return nil, err
	}
	v := decodeFixed(d, t, d.off)
	d.off += n
	return v, nil
}

// decodeFixed decodes a fixed-size value at p; the caller checked bounds.
func decodeFixed(d *decoder, t ValueType, p int) any {
	switch t {
	case Uint8:
		return d.data[p]
	case Int8:
		return int8(d.data[p])
	case Uint16:
		return d.u16at(p)
	case Int16:
		return int16(d.u16at(p))
	case Uint32:
		return d.u32at(p)
	case Int32:
		return int32(d.u32at(p))
	case Float32:
		return math.Float32frombits(d.u32at(p))
	case Bool:
		return d.data[p] != 0
	case Uint64:
		return d.u64at(p)
	case Int64:
		return int64(d.u64at(p))
	case Float64:
		return math.Float64frombits(d.u64at(p))
	}
	return nil
}

// arrayHeader reads an array's element type and count at d.off, checking
// the type, the nesting depth and that the remaining bytes can hold count
// elements of at least their minimum size.
func (p *parser) arrayHeader(depth int) (ValueType, uint64, error) {
	d := &p.d
	at := d.off
	if depth > MaxArrayDepth {
		return 0, 0, errorf(int64(at), "key %q: arrays nested too deep (more than %d levels)", p.key, MaxArrayDepth)
	}
	et, err := d.u32(what{format: "array element type of key %q", s: p.key, hasS: true})
	if err != nil {
		return 0, 0, err
	}
	elem := ValueType(et)
	if !elem.Valid() {
		return 0, 0, errorf(int64(at), "key %q: invalid array element type %d", p.key, et)
	}
	countAt := d.off
	count, err := d.length(what{format: "array count of key %q", s: p.key, hasS: true})
	if err != nil {
		return 0, 0, err
	}
	min := p.minSize(elem)
	if count > uint64(d.remaining())/uint64(min) {
		return 0, 0, errorf(int64(countAt), "key %q: array count %d exceeds what the remaining %d bytes can hold (at least %d bytes per %s element)", p.key, count, d.remaining(), min, elem)
	}
	return elem, count, nil
}

// minSize is the fewest bytes one element of type t can occupy.
func (p *parser) minSize(t ValueType) int {
	switch t {
	case String:
		return p.d.lenSize()
	case Array:
		return 4 + p.d.lenSize()
	}
	return fixedSize[t]
}

// skipArray validates the array at d.off (its element type field) and moves
// past it without allocating. It returns the element type, the count and
// the number of elements at every nesting level together.
func (p *parser) skipArray(depth int) (ValueType, uint64, uint64, error) {
	d := &p.d
	elem, count, err := p.arrayHeader(depth)
	if err != nil {
		return 0, 0, 0, err
	}
	total := count
	switch elem {
	case String:
		// Remember where to restart for a top-level array that stays lazy.
		record := depth == 1 && count > checkpointEvery && (p.lazyMax < 0 || count > uint64(p.lazyMax))
		cps, err := p.skipStrings(count, record)
		if err != nil {
			return 0, 0, 0, err
		}
		p.checkpoints = cps
	case Array:
		for i := uint64(0); i < count; i++ {
			_, _, sub, err := p.skipArray(depth + 1)
			if err != nil {
				return 0, 0, 0, err
			}
			total += sub
		}
	default:
		// arrayHeader checked that count*size bytes remain.
		d.off += int(count) * fixedSize[elem]
	}
	return elem, count, total, nil
}

// skipStrings moves past count strings at d.off, checking each length but
// allocating nothing: the hot loop of vocabulary files. With record it also
// returns the offset of every checkpointEvery-th string.
func (p *parser) skipStrings(count uint64, record bool) ([]int64, error) {
	d := &p.d
	data, size, off, ls, be := d.data, d.size, d.off, d.lenSize(), d.be
	var cps []int64
	if record {
		cps = make([]int64, 0, count/checkpointEvery+1)
	}
	for i := uint64(0); i < count; i++ {
		if record && i&(checkpointEvery-1) == 0 {
			cps = append(cps, int64(off))
		}
		if ls > len(data)-off {
			d.off = off
			return nil, d.need(ls, what{format: "length of element %d of key %q", i: int64(i), hasI: true, s: p.key, hasS: true})
		}
		// (need fails either way: past size, or past the bytes given.)
		var n uint64
		if ls == 8 {
			n = binary.LittleEndian.Uint64(data[off:])
			if be {
				n = bits.ReverseBytes64(n)
			}
		} else {
			v := binary.LittleEndian.Uint32(data[off:])
			if be {
				v = bits.ReverseBytes32(v)
			}
			n = uint64(v)
		}
		if n > uint64(size-off-ls) {
			return nil, errorf(int64(off), "element %d of key %q: string length %d exceeds the %d bytes remaining", i, p.key, n, size-off-ls)
		}
		off += ls + int(n)
	}
	d.off = off
	return cps, nil
}

// array decodes the whole array at d.off (its element type field).
func (p *parser) array(depth int) ([]any, error) {
	elem, count, err := p.arrayHeader(depth)
	if err != nil {
		return nil, err
	}
	out := make([]any, count)
	for i := range out {
		if out[i], err = p.element(elem, depth); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// element decodes one array element of type elem at d.off.
func (p *parser) element(elem ValueType, depth int) (any, error) {
	if elem == Array {
		return p.array(depth + 1)
	}
	return p.scalar(elem, true)
}

func (p *parser) parseTensorInfo(i uint64) (TensorInfo, error) {
	d := &p.d
	t := TensorInfo{InfoOffset: int64(d.off), Bytes: -1}
	name, err := d.str(what{format: "name of tensor %d", i: int64(i), hasI: true})
	if err != nil {
		return t, err
	}
	t.Name = name
	ndAt := d.off
	nd, err := d.u32(what{format: "n_dims of tensor %q", s: name, hasS: true})
	if err != nil {
		return t, err
	}
	if nd == 0 || nd > MaxDims {
		return t, errorf(int64(ndAt), "tensor %q: %d dimensions, want 1 to %d (GGML_MAX_DIMS is %d)", name, nd, MaxDims, MaxDims)
	}
	t.dimsOffset = int64(d.off)
	t.Dims = make([]uint64, nd)
	elems := uint64(1)
	overflow := false
	for j := range t.Dims {
		at := d.off
		v, err := d.length(what{format: "ne[%d] of tensor %q", i: int64(j), hasI: true, s: name, hasS: true})
		if err != nil {
			return t, err
		}
		if v == 0 {
			return t, errorf(int64(at), "tensor %q: ne[%d] is 0, every dimension must be at least 1", name, j)
		}
		if v > math.MaxInt64 {
			return t, errorf(int64(at), "tensor %q: ne[%d] = %d does not fit in int64", name, j, v)
		}
		t.Dims[j] = v
		hi, lo := bits.Mul64(elems, v)
		if hi != 0 || lo > math.MaxInt64 {
			overflow = true
		}
		elems = lo
	}
	if overflow {
		return t, errorf(t.dimsOffset, "tensor %q: element count of shape %v overflows int64", name, t.Dims)
	}
	typeAt := d.off
	id, err := d.u32(what{format: "type of tensor %q", s: name, hasS: true})
	if err != nil {
		return t, err
	}
	t.Type = dtype.FromGGML(id)
	if t.Type.Known() {
		bs, bb := uint64(t.Type.BlockSize()), uint64(t.Type.BlockBytes())
		// ggml stores rows as whole blocks, so ne[0] must divide evenly;
		// files quantized in 2023 (GGUF v1/v2) may hold one flat run of
		// blocks over the whole tensor instead, which is self-consistent
		// when the element count divides evenly.
		if t.Dims[0]%bs != 0 {
			if !p.legacy || elems%bs != 0 {
				return t, errorf(int64(typeAt), "tensor %q: row of %d elements is not a multiple of the %s block size %d", name, t.Dims[0], t.Type.Name(), bs)
			}
			t.FlatRun = true
		}
		hi, lo := bits.Mul64(elems/bs, bb)
		if hi != 0 || lo > math.MaxInt64 {
			return t, errorf(int64(typeAt), "tensor %q: byte size of shape %v of %s overflows int64", name, t.Dims, t.Type.Name())
		}
		t.Bytes = int64(lo)
	}
	t.offsetOffset = int64(d.off)
	if t.Offset, err = d.u64(what{format: "offset of tensor %q", s: name, hasS: true}); err != nil {
		return t, err
	}
	return t, nil
}

// checkTensorData checks each tensor's offset against the alignment and the
// file's end, and that no two tensors' bytes overlap.
func checkTensorData(f *File) error {
	room := uint64(0) // bytes from DataOffset to the end of the file
	if f.Size > f.DataOffset {
		room = uint64(f.Size - f.DataOffset)
	}
	for i := range f.Tensors {
		t := &f.Tensors[i]
		if t.Offset%f.Alignment != 0 {
			return errorf(t.offsetOffset, "tensor %q: data offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		if t.Offset > math.MaxInt64-uint64(f.DataOffset) || (t.Bytes >= 0 && uint64(t.Bytes) > math.MaxInt64-uint64(f.DataOffset)-t.Offset) {
			return errorf(t.offsetOffset, "tensor %q: data offset %d overflows the file offset", t.Name, t.Offset)
		}
		start := f.DataOffset + int64(t.Offset)
		if t.Bytes < 0 {
			if t.Offset > room {
				return errorf(t.offsetOffset, "tensor %q: data offset %d is past the end of the file (%d bytes)", t.Name, start, f.Size)
			}
			continue
		}
		if t.Offset > room || uint64(t.Bytes) > room-t.Offset {
			return errorf(t.offsetOffset, "tensor %q: data [%d, %d) runs past the end of the file (%d bytes)", t.Name, start, start+t.Bytes, f.Size)
		}
	}

	// Overlap: sort the tensors of known size by offset and compare
	// neighbours. Unknown types have no known extent and are skipped.
	idx := make([]int, 0, len(f.Tensors))
	for i := range f.Tensors {
		if f.Tensors[i].Bytes > 0 {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return f.Tensors[idx[a]].Offset < f.Tensors[idx[b]].Offset })
	// far is the tensor reaching furthest so far, so that a tensor inside a
	// big one is caught even when a small one lies between them.
	var far *TensorInfo
	for _, i := range idx {
		b := &f.Tensors[i]
		if far != nil && b.Offset < far.Offset+uint64(far.Bytes) {
			return errorf(b.offsetOffset, "tensor %q (data offsets [%d, %d)) overlaps tensor %q ([%d, %d))",
				b.Name, b.Offset, b.Offset+uint64(b.Bytes), far.Name, far.Offset, far.Offset+uint64(far.Bytes))
		}
		if far == nil || b.Offset+uint64(b.Bytes) > far.Offset+uint64(far.Bytes) {
			far = b
		}
	}
	return nil
}

// alignment returns the data alignment that a general.alignment pair sets.
func alignment(kv *KV) (uint64, error) {
	switch kv.Type {
	case Uint8, Uint16, Uint32, Uint64, Int8, Int16, Int32, Int64:
	default:
		return 0, errorf(kv.ValueOffset, "%s has type %s, want an integer", AlignmentKey, kv.Type)
	}
	a, ok := kv.Uint()
	if !ok || a == 0 || a&(a-1) != 0 {
		i, _ := kv.Int()
		if ok {
			return 0, errorf(kv.ValueOffset, "%s = %d is not a non-zero power of two", AlignmentKey, a)
		}
		return 0, errorf(kv.ValueOffset, "%s = %d is not a non-zero power of two", AlignmentKey, i)
	}
	return a, nil
}
