package safetensors

// The parser Parse replaced: encoding/json's Decoder.Token over the header,
// kept as the reference the hand-written scanner must agree with exactly
// (FuzzParse, TestParseAgainstReference) and measured against
// (BenchmarkParseHeader).

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/qkvdev/qkv/formats/dtype"
)

// refParse is Parse as it was, with json.Decoder.Token.
func refParse(data []byte, opts Options) (*File, error) {
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
	p := &refParser{hdr: hdr, dec: json.NewDecoder(bytes.NewReader(hdr))}
	p.dec.UseNumber()
	if err := p.object(f); err != nil {
		return nil, err
	}
	if err := checkLayout(f); err != nil {
		return nil, err
	}
	return f, nil
}

// parser walks the header with json.Decoder.Token, so that it sees every key
// (encoding/json's maps silently keep the last of duplicate keys) and knows
// where each token starts.
type refParser struct {
	hdr []byte
	dec *json.Decoder
}

// next returns the next token and its offset in the file.
func (p *refParser) next() (json.Token, int64, error) {
	off := p.dec.InputOffset()
	// InputOffset is the end of the previous token; the next one starts
	// after any whitespace and separator.
	for off < int64(len(p.hdr)) {
		switch p.hdr[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	tok, err := p.dec.Token()
	if err != nil {
		return nil, 8 + off, p.syntaxError(err, off)
	}
	return tok, 8 + off, nil
}

func (p *refParser) syntaxError(err error, off int64) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		// The decoder's offsets are loose; a whole-buffer validation scan
		// meets the same first error and says exactly where: Offset is
		// the number of bytes read, the offending byte included.
		var raw json.RawMessage
		var exact *json.SyntaxError
		if errors.As(json.Unmarshal(p.hdr, &raw), &exact) && exact.Offset > 0 {
			return &Error{Offset: 8 + exact.Offset - 1, Msg: "invalid JSON in header: " + exact.Error()}
		}
		return &Error{Offset: 8 + se.Offset, Msg: "invalid JSON in header: " + se.Error()}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Offset: 8 + int64(len(p.hdr)), Msg: "invalid JSON in header: it ends before the object is closed"}
	}
	return &Error{Offset: 8 + off, Msg: "invalid JSON in header: " + err.Error()}
}

// object reads the top-level object: __metadata__ and one entry per tensor.
func (p *refParser) object(f *File) error {
	if _, _, err := p.next(); err != nil { // '{', checked by the caller
		return err
	}
	seen := map[string]int64{}
	for p.dec.More() {
		tok, off, err := p.next()
		if err != nil {
			return err
		}
		key, _ := tok.(string) // the decoder only returns strings as object keys
		if first, dup := seen[key]; dup {
			return &Error{Offset: off, Msg: fmt.Sprintf("duplicate key %s in header (first at byte %d)", strconv.Quote(key), first)}
		}
		seen[key] = off
		if key == "__metadata__" {
			if err := p.metadata(f); err != nil {
				return err
			}
			continue
		}
		t, err := p.tensor(key, off, f.DataOffset)
		if err != nil {
			return err
		}
		f.Tensors = append(f.Tensors, t)
	}
	if _, _, err := p.next(); err != nil { // '}'
		return err
	}
	// The specification allows only spaces after the object.
	for i := p.dec.InputOffset(); i < int64(len(p.hdr)); i++ {
		if p.hdr[i] != ' ' {
			return &Error{Offset: 8 + i, Msg: fmt.Sprintf("header has %s after its JSON object; only spaces may pad it", describeByte(p.hdr[i]))}
		}
	}
	return nil
}

func (p *refParser) metadata(f *File) error {
	tok, off, err := p.next()
	if err != nil {
		return err
	}
	if tok == nil { // null: the crate reads it as absent
		return nil
	}
	if tok != json.Delim('{') {
		return &Error{Offset: off, Msg: fmt.Sprintf("__metadata__ must be an object of strings, not %s", refKind(tok))}
	}
	f.Metadata = [][2]string{}
	seen := map[string]int64{}
	for p.dec.More() {
		tok, koff, err := p.next()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if first, dup := seen[key]; dup {
			return &Error{Offset: koff, Msg: fmt.Sprintf("duplicate key %s in __metadata__ (first at byte %d)", strconv.Quote(key), first)}
		}
		seen[key] = koff
		val, voff, err := p.next()
		if err != nil {
			return err
		}
		s, ok := val.(string)
		if !ok {
			return &Error{Offset: voff, Msg: fmt.Sprintf("__metadata__ value for key %s is %s, not a string", strconv.Quote(key), refKind(val))}
		}
		f.Metadata = append(f.Metadata, [2]string{key, s})
	}
	_, _, err = p.next() // '}'
	return err
}

// tensor reads one tensor entry and checks it on its own: field types, shape
// overflow and that the byte range fits the shape and dtype.
func (p *refParser) tensor(name string, keyOff, dataOffset int64) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	fail := func(off int64, format string, args ...any) (TensorInfo, error) {
		return TensorInfo{}, &Error{Offset: off, Tensor: name, Msg: fmt.Sprintf(format, args...)}
	}
	tok, off, err := p.next()
	if err != nil {
		return t, err
	}
	if tok != json.Delim('{') {
		return fail(off, "entry must be an object with dtype, shape and data_offsets, not %s", refKind(tok))
	}
	var haveDType, haveShape, haveOffsets bool
	var shapeOff, offsetsOff int64
	for p.dec.More() {
		tok, foff, err := p.next()
		if err != nil {
			return t, err
		}
		field, _ := tok.(string)
		switch field {
		case "dtype":
			if haveDType {
				return fail(foff, "duplicate field \"dtype\"")
			}
			haveDType = true
			v, voff, err := p.next()
			if err != nil {
				return t, err
			}
			s, ok := v.(string)
			if !ok {
				return fail(voff, "dtype must be a string, not %s", refKind(v))
			}
			t.DType = dtype.FromSafetensors(s)
		case "shape":
			if haveShape {
				return fail(foff, "duplicate field \"shape\"")
			}
			haveShape = true
			dims, aoff, err := p.intArray(name, "shape", -1)
			if err != nil {
				return t, err
			}
			t.Shape, shapeOff = dims, aoff
		case "data_offsets":
			if haveOffsets {
				return fail(foff, "duplicate field \"data_offsets\"")
			}
			haveOffsets = true
			r, aoff, err := p.intArray(name, "data_offsets", 2)
			if err != nil {
				return t, err
			}
			t.Begin, t.End, offsetsOff = r[0], r[1], aoff
		default:
			// The crate's serde derive ignores unknown fields; so do we.
			if err := p.skipValue(); err != nil {
				return t, err
			}
		}
	}
	if _, _, err := p.next(); err != nil { // '}'
		return t, err
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

// intArray reads an array of non-negative integers (of exactly want
// elements when want >= 0) and returns it with the offset of its '['.
func (p *refParser) intArray(name, field string, want int) ([]int64, int64, error) {
	what := func() string { // built only for an error: this runs per tensor
		if want == 2 {
			return field + " must be [begin, end], two non-negative integers"
		}
		return field + " must be an array of non-negative integers"
	}
	tok, aoff, err := p.next()
	if err != nil {
		return nil, 0, err
	}
	if tok != json.Delim('[') {
		return nil, 0, &Error{Offset: aoff, Tensor: name, Msg: fmt.Sprintf("%s, not %s", what(), refKind(tok))}
	}
	out := []int64{} // [] stays non-nil: a scalar's shape
	for p.dec.More() {
		tok, off, err := p.next()
		if err != nil {
			return nil, 0, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, 0, &Error{Offset: off, Tensor: name, Msg: fmt.Sprintf("%s, but holds %s", what(), refKind(tok))}
		}
		v, msg := refNonNegInt(string(num))
		if msg != "" {
			return nil, 0, &Error{Offset: off, Tensor: name, Msg: fmt.Sprintf("%s value %s %s", field, string(num), msg)}
		}
		if want >= 0 && len(out) == want {
			return nil, 0, &Error{Offset: off, Tensor: name, Msg: what() + ", but has more"}
		}
		out = append(out, v)
	}
	if _, _, err := p.next(); err != nil { // ']'
		return nil, 0, err
	}
	if want >= 0 && len(out) != want {
		return nil, 0, &Error{Offset: aoff, Tensor: name, Msg: fmt.Sprintf("%s, but has %d", what(), len(out))}
	}
	return out, aoff, nil
}

// refNonNegInt parses a JSON number that must be a plain non-negative integer
// fitting int64. serde_json, like this, refuses fractions, exponents and
// negative values for the crate's usize fields.
func refNonNegInt(s string) (int64, string) {
	if strings.HasPrefix(s, "-") {
		return 0, "is negative"
	}
	if strings.ContainsAny(s, ".eE") {
		return 0, "is not an integer"
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, "is too large"
	}
	return v, ""
}

// refMaxDepth is how deeply objects and arrays may nest, the top-level object
// included; serde_json's default recursion limit, which the crate keeps.
const refMaxDepth = 128

// skipValue reads and discards one JSON value of any shape, found inside a
// tensor entry (so already two levels deep).
func (p *refParser) skipValue() error {
	depth := 0
	for {
		tok, off, err := p.next()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			if 2+depth > refMaxDepth {
				return &Error{Offset: off, Msg: fmt.Sprintf("invalid JSON in header: nested more than %d levels deep", refMaxDepth)}
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// refKind names a JSON token's type for error messages.
func refKind(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case json.Delim:
		switch v {
		case '{':
			return "an object"
		case '[':
			return "an array"
		}
		return "'" + v.String() + "'"
	}
	return fmt.Sprintf("%T", tok)
}
