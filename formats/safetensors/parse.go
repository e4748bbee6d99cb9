package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/qkvdev/qkv/formats/dtype"
)

// Parse reads the header of a whole safetensors file held in data (usually
// memory-mapped by the caller) and checks it. Only the first 8+HeaderLen
// bytes are read; the tensor bytes are never touched. Every error is an
// *Error.
//
// It follows the reference crate's validation, with these differences, each
// taken from the specification's text or needed to list odd files:
//   - the header must begin with '{' and may be padded only with spaces
//     (the specification's MUST and MAY; the crate does not yet enforce the
//     first and lets serde_json accept tabs and newlines as padding);
//   - duplicate keys are refused, in the header, in __metadata__ and in a
//     tensor entry ("Duplicate keys are disallowed" in the specification;
//     the crate's maps keep one silently);
//   - a dtype the crate does not know is listed (TensorInfo.DType.Known() is
//     false) rather than refused; its size check is skipped, its byte range
//     is still checked;
//   - offsets and dimensions must fit int64 (the crate allows u64).
//
// Like the crate, it ignores unknown fields in a tensor entry, reads
// "__metadata__": null as no metadata, and refuses JSON nested more than 128
// levels deep.
func Parse(data []byte, opts Options) (*File, error) {
	limit := opts.MaxHeaderBytes
	if limit <= 0 {
		limit = DefaultMaxHeaderBytes
	}
	size := int64(len(data))
	if opts.Size > 0 {
		if opts.Size < size {
			data = data[:opts.Size]
		}
		size = opts.Size
	}
	if size < 8 {
		return nil, &Error{Offset: 0, Msg: fmt.Sprintf("file is %d bytes, too short for the 8-byte header length", size)}
	}
	if len(data) < 8 {
		return nil, &Error{Offset: int64(len(data)), Msg: fmt.Sprintf("only the first %d bytes of the file were read, fewer than the 8-byte header length", len(data))}
	}
	n := binary.LittleEndian.Uint64(data)
	if n == 0 {
		return nil, &Error{Offset: 0, Msg: "header length is 0"}
	}
	if n > uint64(limit) {
		return nil, &Error{Offset: 0, Msg: fmt.Sprintf("header is %d bytes, more than the limit of %d; raise it with --max-header", n, limit)}
	}
	if n > uint64(size-8) {
		return nil, &Error{Offset: 0, Msg: fmt.Sprintf("header length %d runs past the end of the file (%d bytes)", n, size)}
	}
	if n > uint64(len(data)-8) {
		return nil, &Error{Offset: int64(len(data)), Msg: fmt.Sprintf("only the first %d bytes of the %d-byte header were read", max(len(data)-8, 0), n)}
	}
	hdr := data[8 : 8+n]
	if !utf8.Valid(hdr) {
		return nil, &Error{Offset: 8 + int64(firstInvalidUTF8(hdr)), Msg: "header is not valid UTF-8"}
	}
	if hdr[0] != '{' {
		return nil, &Error{Offset: 8, Msg: fmt.Sprintf("header must begin with '{', not %s", describeByte(hdr[0]))}
	}
	if off, ok := loneSurrogate(hdr); !ok {
		return nil, &Error{Offset: 8 + int64(off), Msg: "invalid JSON in header: \\u escape is an unpaired UTF-16 surrogate"}
	}

	f := &File{HeaderLen: int64(n), DataOffset: 8 + int64(n), Size: size}
	p := &parser{h: hdr, s: string(hdr)}
	if err := p.object(f); err != nil {
		return nil, err
	}
	if err := checkLayout(f); err != nil {
		return nil, err
	}
	return f, nil
}

// parser scans the header by hand, in one pass, allocating per tensor only
// its entry and its shape (names and dtypes are substrings of one copy of
// the header). It meets every problem in the order a streaming JSON reader
// does and says what encoding/json would say: for a syntax error it asks
// json.Unmarshal for the exact message and offset, so that messages are
// those of the parser it replaced (parse_ref_test.go; FuzzParse compares
// the two).
type parser struct {
	h []byte // the header
	s string // the header as a string: names are substrings of it
	i int    // the next byte to read

	dims []int64 // slab the shapes are cut from
	tmp  []int64 // an array being read
	seen map[string]int32
	str  strings.Builder
}

// errSyntax marks a syntax error found at p.i; errEOF a header that ends
// before the object does.
var (
	errSyntax = errors.New("syntax")
	errEOF    = errors.New("eof")
)

// fail turns the scanner's sentinels into the error Parse returns.
func (p *parser) fail(err error) error {
	switch err {
	case errSyntax:
		// The first syntax error in the header is the one met here (the
		// scan is in order); encoding/json says exactly what and where:
		// Offset is the number of bytes read, the offending byte included.
		var raw json.RawMessage
		var se *json.SyntaxError
		if errors.As(json.Unmarshal(p.h, &raw), &se) && se.Offset > 0 {
			return &Error{Offset: 8 + se.Offset - 1, Msg: "invalid JSON in header: " + se.Error()}
		}
		return &Error{Offset: 8 + int64(p.i), Msg: "invalid JSON in header: " + describeByte(p.h[min(p.i, len(p.h)-1)])}
	case errEOF:
		return &Error{Offset: 8 + int64(len(p.h)), Msg: "invalid JSON in header: it ends before the object is closed"}
	}
	return err
}

func (p *parser) ws() {
	for p.i < len(p.h) {
		switch p.h[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
			continue
		}
		return
	}
}

// peek skips white space and returns the next byte, errEOF at the end.
func (p *parser) peek() (byte, error) {
	p.ws()
	if p.i >= len(p.h) {
		return 0, errEOF
	}
	return p.h[p.i], nil
}

// expect reads the separator c.
func (p *parser) expect(c byte) error {
	b, err := p.peek()
	if err != nil {
		return err
	}
	if b != c {
		return errSyntax
	}
	p.i++
	return nil
}

// next moves to the next member of an object or array: it reads the ','
// before it (not before the first) and reports false at the closing
// delimiter, which it reads.
func (p *parser) next(first bool, closing byte) (bool, error) {
	b, err := p.peek()
	if err != nil {
		return false, err
	}
	if b == closing {
		p.i++
		return false, nil
	}
	if !first {
		if b != ',' {
			return false, errSyntax
		}
		p.i++
		if b, err = p.peek(); err != nil {
			return false, err
		}
		if b == closing {
			return false, errSyntax // a trailing comma
		}
	}
	return true, nil
}

// Kinds of JSON values, for messages.
type kindOf byte

const (
	kNull kindOf = iota
	kBool
	kString
	kNumber
	kObject
	kArray
)

func (k kindOf) String() string {
	return [...]string{"null", "a boolean", "a string", "a number", "an object", "an array"}[k]
}

// value reads the start of the next value: all of a string, number or
// literal (a string's text in str, a number's in num), only the '{' or '['
// of an object or array. off is the file offset where it starts.
func (p *parser) value() (k kindOf, str, num string, off int64, err error) {
	c, err := p.peek()
	if err != nil {
		return 0, "", "", 0, err
	}
	off = 8 + int64(p.i)
	switch {
	case c == '{':
		p.i++
		return kObject, "", "", off, nil
	case c == '[':
		p.i++
		return kArray, "", "", off, nil
	case c == '"':
		str, err = p.string()
		return kString, str, "", off, err
	case c == '-' || c >= '0' && c <= '9':
		num, err = p.number()
		return kNumber, "", num, off, err
	case c == 't':
		return kBool, "", "", off, p.literal("true")
	case c == 'f':
		return kBool, "", "", off, p.literal("false")
	case c == 'n':
		return kNull, "", "", off, p.literal("null")
	}
	return 0, "", "", off, errSyntax
}

func (p *parser) literal(word string) error {
	for k := 0; k < len(word); k++ {
		if p.i >= len(p.h) {
			return errEOF
		}
		if p.h[p.i] != word[k] {
			return errSyntax
		}
		p.i++
	}
	return nil
}

// number reads a JSON number and returns its text. It ends at the first
// byte that cannot continue it (what follows is the next token's problem).
func (p *parser) number() (string, error) {
	h, start := p.h, p.i
	digits := func() int {
		n := 0
		for p.i < len(h) && h[p.i] >= '0' && h[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	// need reports a number cut short: at the end of the header, or by a
	// byte that cannot follow.
	need := func() error {
		if p.i >= len(h) {
			return errEOF
		}
		return errSyntax
	}
	if h[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(h) && h[p.i] == '0':
		p.i++
	case digits() == 0:
		return "", need()
	}
	if p.i < len(h) && h[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return "", need()
		}
	}
	if p.i < len(h) && (h[p.i] == 'e' || h[p.i] == 'E') {
		p.i++
		if p.i < len(h) && (h[p.i] == '+' || h[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return "", need()
		}
	}
	return p.s[start:p.i], nil
}

// string reads a JSON string and returns its value: a substring of the
// header when it has no escapes. The header is valid UTF-8 and holds no
// unpaired surrogate escape (Parse checked both).
func (p *parser) string() (string, error) {
	h := p.h
	p.i++ // the opening quote
	start := p.i
	for p.i < len(h) {
		switch c := h[p.i]; {
		case c == '"':
			p.i++
			return p.s[start : p.i-1], nil
		case c == '\\':
			return p.escaped(start)
		case c < 0x20:
			return "", errSyntax
		}
		p.i++
	}
	return "", errEOF
}

// escaped finishes a string that holds escapes, from its start.
func (p *parser) escaped(start int) (string, error) {
	h := p.h
	b := &p.str
	b.Reset()
	b.WriteString(p.s[start:p.i])
	for p.i < len(h) {
		c := h[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c < 0x20:
			return "", errSyntax
		case c != '\\':
			b.WriteByte(c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(h) {
			return "", errEOF
		}
		switch e := h[p.i]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, err := p.hex4(p.i + 1)
			if err != nil {
				return "", err
			}
			p.i += 4
			if utf16.IsSurrogate(r) {
				// Parse checked that a low surrogate escape follows.
				r2, err := p.hex4(p.i + 3)
				if err != nil {
					return "", err
				}
				r = utf16.DecodeRune(r, r2)
				p.i += 6
			}
			b.WriteRune(r)
		default:
			return "", errSyntax
		}
		p.i++
	}
	return "", errEOF
}

// hex4 reads the four hex digits of a \u escape at h[at:]: a byte that is
// not one is a syntax error, the header's end before four is the end.
func (p *parser) hex4(at int) (rune, error) {
	if r, ok := hex4(p.h, at); ok {
		return r, nil
	}
	for k := at; k < min(at+4, len(p.h)); k++ {
		if _, ok := hexVal(p.h[k]); !ok {
			p.i = k
			return 0, errSyntax
		}
	}
	p.i = len(p.h)
	return 0, errEOF
}

// key reads an object's key and the ':' after it is left for colon.
func (p *parser) key() (string, int64, error) {
	c, err := p.peek()
	if err != nil {
		return "", 0, err
	}
	if c != '"' {
		return "", 0, errSyntax
	}
	off := 8 + int64(p.i)
	s, err := p.string()
	return s, off, err
}

// object reads the top-level object: __metadata__ and one entry per tensor.
func (p *parser) object(f *File) error {
	p.i = 1 // '{', checked by the caller
	// Size the tables for the tensors the header seems to list (each entry
	// names data_offsets once; a smallest entry is 45 bytes): growing them
	// costs more time and memory than the count.
	n := min(bytes.Count(p.h, []byte(`"data_offsets"`)), len(p.h)/45) + 1
	p.seen = make(map[string]int32, n)
	keyOffs := make([]int64, 0, n)
	f.Tensors = make([]TensorInfo, 0, n)
	for first := true; ; first = false {
		more, err := p.next(first, '}')
		if err != nil {
			return p.fail(err)
		}
		if !more {
			break
		}
		key, off, err := p.key()
		if err != nil {
			return p.fail(err)
		}
		if j, dup := p.seen[key]; dup {
			return &Error{Offset: off, Msg: fmt.Sprintf("duplicate key %s in header (first at byte %d)", strconv.Quote(key), keyOffs[j])}
		}
		if len(keyOffs) == math.MaxInt32 {
			return &Error{Offset: off, Msg: fmt.Sprintf("header lists more than %d tensors", math.MaxInt32)}
		}
		p.seen[key] = int32(len(keyOffs))
		keyOffs = append(keyOffs, off)
		if err := p.expect(':'); err != nil {
			return p.fail(err)
		}
		if key == "__metadata__" {
			if err := p.metadata(f); err != nil {
				return p.fail(err)
			}
			continue
		}
		t, err := p.tensor(key, off, f.DataOffset)
		if err != nil {
			return p.fail(err)
		}
		f.Tensors = append(f.Tensors, t)
	}
	if len(f.Tensors) == 0 {
		f.Tensors = nil
	}
	// The specification allows only spaces after the object.
	for i := p.i; i < len(p.h); i++ {
		if p.h[i] != ' ' {
			return &Error{Offset: 8 + int64(i), Msg: fmt.Sprintf("header has %s after its JSON object; only spaces may pad it", describeByte(p.h[i]))}
		}
	}
	return nil
}

func (p *parser) metadata(f *File) error {
	k, _, _, off, err := p.value()
	if err != nil {
		return err
	}
	if k == kNull { // the crate reads it as absent
		return nil
	}
	if k != kObject {
		return &Error{Offset: off, Msg: fmt.Sprintf("__metadata__ must be an object of strings, not %s", k)}
	}
	f.Metadata = [][2]string{}
	seen := map[string]int64{}
	for first := true; ; first = false {
		more, err := p.next(first, '}')
		if err != nil || !more {
			return err
		}
		key, koff, err := p.key()
		if err != nil {
			return err
		}
		if first, dup := seen[key]; dup {
			return &Error{Offset: koff, Msg: fmt.Sprintf("duplicate key %s in __metadata__ (first at byte %d)", strconv.Quote(key), first)}
		}
		seen[key] = koff
		if err := p.expect(':'); err != nil {
			return err
		}
		vk, s, _, voff, err := p.value()
		if err != nil {
			return err
		}
		if vk != kString {
			return &Error{Offset: voff, Msg: fmt.Sprintf("__metadata__ value for key %s is %s, not a string", strconv.Quote(key), vk)}
		}
		f.Metadata = append(f.Metadata, [2]string{key, s})
	}
}

// tensor reads one tensor entry and checks it on its own: field types, shape
// overflow and that the byte range fits the shape and dtype.
func (p *parser) tensor(name string, keyOff, dataOffset int64) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	fail := func(off int64, format string, args ...any) (TensorInfo, error) {
		return TensorInfo{}, &Error{Offset: off, Tensor: name, Msg: fmt.Sprintf(format, args...)}
	}
	k, _, _, off, err := p.value()
	if err != nil {
		return t, err
	}
	if k != kObject {
		return fail(off, "entry must be an object with dtype, shape and data_offsets, not %s", k)
	}
	var haveDType, haveShape, haveOffsets bool
	var shapeOff, offsetsOff int64
	for first := true; ; first = false {
		more, err := p.next(first, '}')
		if err != nil {
			return t, err
		}
		if !more {
			break
		}
		field, foff, err := p.key()
		if err != nil {
			return t, err
		}
		switch field {
		case "dtype":
			if haveDType {
				return fail(foff, "duplicate field \"dtype\"")
			}
			haveDType = true
			if err := p.expect(':'); err != nil {
				return t, err
			}
			vk, s, _, voff, err := p.value()
			if err != nil {
				return t, err
			}
			if vk != kString {
				return fail(voff, "dtype must be a string, not %s", vk)
			}
			t.DType = dtype.FromSafetensors(s)
		case "shape":
			if haveShape {
				return fail(foff, "duplicate field \"shape\"")
			}
			haveShape = true
			if err := p.expect(':'); err != nil {
				return t, err
			}
			aoff, err := p.intArray(name, "shape", -1)
			if err != nil {
				return t, err
			}
			t.Shape, shapeOff = p.cutShape(), aoff
		case "data_offsets":
			if haveOffsets {
				return fail(foff, "duplicate field \"data_offsets\"")
			}
			haveOffsets = true
			if err := p.expect(':'); err != nil {
				return t, err
			}
			aoff, err := p.intArray(name, "data_offsets", 2)
			if err != nil {
				return t, err
			}
			t.Begin, t.End, offsetsOff = p.tmp[0], p.tmp[1], aoff
		default:
			// The crate's serde derive ignores unknown fields; so do we.
			if err := p.expect(':'); err != nil {
				return t, err
			}
			if err := p.skipValue(2); err != nil {
				return t, err
			}
		}
	}
	switch {
	case !haveDType:
		return fail(keyOff, "entry has no dtype")
	case !haveShape:
		return fail(keyOff, "entry has no shape")
	case !haveOffsets:
		return fail(keyOff, "entry has no data_offsets")
	}
	if t.Begin > t.End {
		return fail(offsetsOff, "data_offsets [%d, %d] end before they begin", t.Begin, t.End)
	}
	// Multiply left to right with overflow checks, as the crate does.
	n := int64(1)
	for _, d := range t.Shape {
		if d != 0 && n > math.MaxInt64/d {
			return fail(shapeOff, "shape %s overflows a 64-bit element count", formatShape(t.Shape))
		}
		n *= d
	}
	if !t.DType.Known() {
		return t, nil // listed, not fatal: only the range checks apply
	}
	want, err := t.DType.ByteSize(n)
	if err != nil {
		return fail(shapeOff, "shape %s does not fit dtype %s: %v", formatShape(t.Shape), t.DType.Name(), err)
	}
	if got := t.End - t.Begin; got != want {
		return fail(addSat(dataOffset, t.Begin), "data_offsets [%d, %d] hold %d bytes, but %s %s needs %d",
			t.Begin, t.End, got, t.DType.Name(), formatShape(t.Shape), want)
	}
	return t, nil
}

// cutShape copies the array just read into the shapes' slab: one
// allocation per many tensors. A scalar's shape is empty, not nil.
func (p *parser) cutShape() []int64 {
	n := len(p.tmp)
	if p.dims == nil || cap(p.dims)-len(p.dims) < n {
		p.dims = make([]int64, 0, max(4096, n))
	}
	k := len(p.dims)
	p.dims = append(p.dims, p.tmp...)
	return p.dims[k : k+n : k+n]
}

// intArray reads an array of non-negative integers (of exactly want
// elements when want >= 0) into p.tmp and returns the offset of its '['.
func (p *parser) intArray(name, field string, want int) (int64, error) {
	what := func() string { // built only for an error: this runs per tensor
		if want == 2 {
			return field + " must be [begin, end], two non-negative integers"
		}
		return field + " must be an array of non-negative integers"
	}
	k, _, _, aoff, err := p.value()
	if err != nil {
		return 0, err
	}
	if k != kArray {
		return 0, &Error{Offset: aoff, Tensor: name, Msg: fmt.Sprintf("%s, not %s", what(), k)}
	}
	p.tmp = p.tmp[:0]
	for first := true; ; first = false {
		more, err := p.next(first, ']')
		if err != nil {
			return 0, err
		}
		if !more {
			break
		}
		vk, _, num, off, err := p.value()
		if err != nil {
			return 0, err
		}
		if vk != kNumber {
			return 0, &Error{Offset: off, Tensor: name, Msg: fmt.Sprintf("%s, but holds %s", what(), vk)}
		}
		v, msg := nonNegInt(num)
		if msg != "" {
			return 0, &Error{Offset: off, Tensor: name, Msg: fmt.Sprintf("%s value %s %s", field, num, msg)}
		}
		if want >= 0 && len(p.tmp) == want {
			return 0, &Error{Offset: off, Tensor: name, Msg: what() + ", but has more"}
		}
		p.tmp = append(p.tmp, v)
	}
	if want >= 0 && len(p.tmp) != want {
		return 0, &Error{Offset: aoff, Tensor: name, Msg: fmt.Sprintf("%s, but has %d", what(), len(p.tmp))}
	}
	return aoff, nil
}

// nonNegInt parses a JSON number that must be a plain non-negative integer
// fitting int64. serde_json, like this, refuses fractions, exponents and
// negative values for the crate's usize fields.
func nonNegInt(s string) (int64, string) {
	if strings.HasPrefix(s, "-") {
		return 0, "is negative"
	}
	if strings.ContainsAny(s, ".eE") {
		return 0, "is not an integer"
	}
	var v int64
	for k := 0; k < len(s); k++ {
		d := int64(s[k] - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, "is too large"
		}
		v = v*10 + d
	}
	return v, ""
}

// maxDepth is how deeply objects and arrays may nest, the top-level object
// included; serde_json's default recursion limit, which the crate keeps.
const maxDepth = 128

// skipValue reads and discards one JSON value of any shape found depth
// levels deep (a tensor entry's field: 2).
func (p *parser) skipValue(depth int) error {
	k, _, _, off, err := p.value()
	if err != nil || (k != kObject && k != kArray) {
		return err
	}
	if depth+1 > maxDepth {
		return &Error{Offset: off, Msg: fmt.Sprintf("invalid JSON in header: nested more than %d levels deep", maxDepth)}
	}
	closing := byte(']')
	if k == kObject {
		closing = '}'
	}
	for first := true; ; first = false {
		more, err := p.next(first, closing)
		if err != nil || !more {
			return err
		}
		if k == kObject {
			if _, _, err := p.key(); err != nil {
				return err
			}
			if err := p.expect(':'); err != nil {
				return err
			}
		}
		if err := p.skipValue(depth + 1); err != nil {
			return err
		}
	}
}

// checkLayout checks that the tensors' byte ranges, in offset order, tile the
// data buffer from 0 to its end with no gap and no overlap.
func checkLayout(f *File) error {
	dataLen := f.Size - f.DataOffset
	order := make([]int32, len(f.Tensors))
	for i := range order {
		order[i] = int32(i)
	}
	// Stable: of two tensors with the same range, the one listed first is
	// the one the other overlaps.
	slices.SortStableFunc(order, func(a, b int32) int {
		ta, tb := &f.Tensors[a], &f.Tensors[b]
		if ta.Begin != tb.Begin {
			return cmp.Compare(ta.Begin, tb.Begin)
		}
		return cmp.Compare(ta.End, tb.End)
	})
	var end int64
	var prev *TensorInfo
	for _, i := range order {
		t := &f.Tensors[i]
		at := addSat(f.DataOffset, t.Begin)
		switch {
		case t.Begin > end && prev == nil:
			return &Error{Offset: f.DataOffset, Tensor: t.Name, Msg: fmt.Sprintf("data bytes [0, %d) belong to no tensor: the first tensor begins at %d", t.Begin, t.Begin)}
		case t.Begin > end:
			return &Error{Offset: addSat(f.DataOffset, end), Tensor: t.Name, Msg: fmt.Sprintf("gap of %d bytes between tensor %s (ends at %d) and this tensor (begins at %d)", t.Begin-end, strconv.Quote(prev.Name), end, t.Begin)}
		case t.Begin < end:
			return &Error{Offset: at, Tensor: t.Name, Msg: fmt.Sprintf("data_offsets [%d, %d] overlap tensor %s, which ends at %d", t.Begin, t.End, strconv.Quote(prev.Name), end)}
		}
		if t.End > dataLen {
			return &Error{Offset: at, Tensor: t.Name, Msg: fmt.Sprintf("data_offsets [%d, %d] run past the end of the data buffer (%d bytes)", t.Begin, t.End, dataLen)}
		}
		end, prev = t.End, t
	}
	if end < dataLen {
		if prev == nil {
			return &Error{Offset: f.DataOffset, Msg: fmt.Sprintf("%d bytes of data follow the header, but it lists no tensors", dataLen)}
		}
		return &Error{Offset: addSat(f.DataOffset, end), Msg: fmt.Sprintf("%d trailing bytes after the last tensor %s (data buffer is %d bytes, tensors end at %d)", dataLen-end, strconv.Quote(prev.Name), dataLen, end)}
	}
	return nil
}

// addSat adds two non-negative offsets, saturating at MaxInt64.
func addSat(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

func formatShape(s []int64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	b.WriteByte(']')
	return b.String()
}

func describeByte(b byte) string {
	if b >= 0x21 && b < 0x7f {
		return fmt.Sprintf("%q", rune(b))
	}
	return fmt.Sprintf("byte 0x%02x", b)
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// loneSurrogate finds a \u escape that is half of a UTF-16 surrogate pair
// without its other half. encoding/json would silently turn it into U+FFFD
// (changing a tensor's name); serde_json refuses it. It reports the offset of
// the escape and false when it finds one. The header is valid UTF-8 here; its
// JSON syntax is checked later by the decoder.
func loneSurrogate(h []byte) (int, bool) {
	if !bytes.Contains(h, []byte(`\u`)) {
		return 0, true
	}
	inString := false
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !inString {
			if c == '"' {
				inString = true
			}
			continue
		}
		switch c {
		case '"':
			inString = false
		case '\\':
			if i+1 >= len(h) {
				return 0, true // the decoder reports the truncation
			}
			if h[i+1] != 'u' {
				i++
				continue
			}
			r, ok := hex4(h, i+2)
			if !ok {
				return 0, true // the decoder reports the bad escape
			}
			switch {
			case r >= 0xD800 && r < 0xDC00:
				if i+7 < len(h) && h[i+6] == '\\' && h[i+7] == 'u' {
					if r2, ok := hex4(h, i+8); ok && r2 >= 0xDC00 && r2 < 0xE000 {
						i += 11
						continue
					}
				}
				return i, false
			case r >= 0xDC00 && r < 0xE000:
				return i, false
			}
			i += 5
		}
	}
	return 0, true
}

func hex4(h []byte, at int) (rune, bool) {
	if at+4 > len(h) {
		return 0, false
	}
	var r rune
	for _, c := range h[at : at+4] {
		v, ok := hexVal(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | v
	}
	return r, true
}

func hexVal(c byte) (rune, bool) {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0'), true
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10), true
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}
