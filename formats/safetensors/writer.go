package safetensors

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/qkvdev/qkv/formats/dtype"
)

// WriteTensor is one tensor to write: its header entry and a callback that
// streams its bytes.
type WriteTensor struct {
	Name  string
	DType dtype.Type // any type with a safetensors name and a known layout
	Shape []int64
	Size  int64 // bytes; must equal DType.ByteSize(prod(Shape))
	// Write writes exactly Size bytes of little-endian, row-major data.
	Write func(w io.Writer) error
}

// Write writes a safetensors file: the header with __metadata__ first (when
// metadata is not nil, entries in the order given) and the tensors sorted by
// name, laid out contiguously in that order, the header padded with spaces to
// a multiple of 8 bytes. It fails before writing anything if a tensor is
// malformed, and fails if a Write callback writes more or fewer than Size
// bytes.
func Write(w io.Writer, tensors []WriteTensor, metadata [][2]string) error {
	order := make([]int, len(tensors))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return tensors[order[a]].Name < tensors[order[b]].Name })

	hdr, err := buildHeader(tensors, order, metadata)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	if _, err := bw.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := bw.Write(hdr); err != nil {
		return err
	}
	for _, i := range order {
		t := &tensors[i]
		if t.Size == 0 && t.Write == nil {
			continue
		}
		cw := &countingWriter{w: bw, limit: t.Size}
		werr := t.Write(cw)
		switch {
		case cw.over:
			return fmt.Errorf("safetensors: tensor %q: Write wrote more than its %d bytes", t.Name, t.Size)
		case werr != nil:
			return fmt.Errorf("safetensors: tensor %q: %w", t.Name, werr)
		case cw.err != nil:
			return fmt.Errorf("safetensors: tensor %q: %w", t.Name, cw.err)
		case cw.n != t.Size:
			return fmt.Errorf("safetensors: tensor %q: Write wrote %d bytes, want %d", t.Name, cw.n, t.Size)
		}
	}
	return bw.Flush()
}

// buildHeader checks every tensor and returns the padded JSON header.
func buildHeader(tensors []WriteTensor, order []int, metadata [][2]string) ([]byte, error) {
	b := []byte{'{'}
	first := true
	if metadata != nil {
		b = append(b, `"__metadata__":{`...)
		seen := make(map[string]bool, len(metadata))
		for i, kv := range metadata {
			if !utf8.ValidString(kv[0]) || !utf8.ValidString(kv[1]) {
				return nil, fmt.Errorf("safetensors: __metadata__ entry %q is not valid UTF-8", kv[0])
			}
			if seen[kv[0]] {
				return nil, fmt.Errorf("safetensors: duplicate __metadata__ key %q", kv[0])
			}
			seen[kv[0]] = true
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, kv[0])
			b = append(b, ':')
			b = appendJSONString(b, kv[1])
		}
		b = append(b, '}')
		first = false
	}
	var offset int64
	for k, i := range order {
		t := &tensors[i]
		if err := checkWriteTensor(t); err != nil {
			return nil, err
		}
		if k > 0 && tensors[order[k-1]].Name == t.Name {
			return nil, fmt.Errorf("safetensors: duplicate tensor name %q", t.Name)
		}
		if t.Size > math.MaxInt64-offset {
			return nil, errors.New("safetensors: total data size overflows int64")
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, t.Name)
		b = append(b, `:{"dtype":`...)
		b = appendJSONString(b, t.DType.SafetensorsName())
		b = append(b, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendInt(b, offset, 10)
		b = append(b, ',')
		offset += t.Size
		b = strconv.AppendInt(b, offset, 10)
		b = append(b, "]}"...)
	}
	b = append(b, '}')
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	if len(b) > DefaultMaxHeaderBytes {
		return nil, fmt.Errorf("safetensors: header would be %d bytes, more than readers accept (%d)", len(b), DefaultMaxHeaderBytes)
	}
	return b, nil
}

func checkWriteTensor(t *WriteTensor) error {
	if t.Name == "__metadata__" {
		return errors.New("safetensors: a tensor may not be named __metadata__")
	}
	if !utf8.ValidString(t.Name) {
		return fmt.Errorf("safetensors: tensor name %q is not valid UTF-8", t.Name)
	}
	if !t.DType.Known() || t.DType.SafetensorsName() == "" {
		return fmt.Errorf("safetensors: tensor %q: dtype %s cannot be stored in safetensors", t.Name, t.DType.Name())
	}
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("safetensors: tensor %q: negative dimension in shape %s", t.Name, formatShape(t.Shape))
		}
		if d != 0 && n > math.MaxInt64/d {
			return fmt.Errorf("safetensors: tensor %q: shape %s overflows a 64-bit element count", t.Name, formatShape(t.Shape))
		}
		n *= d
	}
	want, err := t.DType.ByteSize(n)
	if err != nil {
		return fmt.Errorf("safetensors: tensor %q: %w", t.Name, err)
	}
	if t.Size != want {
		return fmt.Errorf("safetensors: tensor %q: Size is %d bytes, but %s %s needs %d", t.Name, t.Size, t.DType.Name(), formatShape(t.Shape), want)
	}
	if t.Write == nil && t.Size != 0 {
		return fmt.Errorf("safetensors: tensor %q: no Write callback for %d bytes", t.Name, t.Size)
	}
	return nil
}

// appendJSONString appends s as a JSON string, escaping only what JSON
// requires (quotes, backslashes, control characters), so that names such as
// "a<b" stay readable.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// countingWriter passes at most limit bytes through and counts them.
type countingWriter struct {
	w     io.Writer
	limit int64
	n     int64
	over  bool
	err   error
}

var errTooMany = errors.New("write exceeds the tensor's declared size")

func (c *countingWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.limit-c.n {
		c.over = true
		return 0, errTooMany
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

// F32Tensor returns a WriteTensor for float32 data in little-endian order.
// Write reports an error if len(data) does not match the shape.
func F32Tensor(name string, shape []int64, data []float32) WriteTensor {
	return WriteTensor{
		Name:  name,
		DType: dtype.F32,
		Shape: shape,
		Size:  4 * int64(len(data)),
		Write: func(w io.Writer) error { return WriteFloat32s(w, data) },
	}
}

// WriteFloat32s writes vals as little-endian float32 bytes: on a
// little-endian machine straight from their memory, else through a small
// buffer.
func WriteFloat32s(w io.Writer, vals []float32) error {
	if littleEndianHost && len(vals) > 0 {
		_, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(&vals[0])), 4*len(vals)))
		return err
	}
	var buf [4096]byte
	for rest := vals; len(rest) > 0; {
		k := min(len(rest), len(buf)/4)
		for i, v := range rest[:k] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		if _, err := w.Write(buf[:4*k]); err != nil {
			return err
		}
		rest = rest[k:]
	}
	return nil
}

// littleEndianHost: float32 values in memory are laid out as safetensors
// stores them.
var littleEndianHost = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
