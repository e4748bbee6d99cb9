package attn

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// OutTensor is one float32 tensor of what `attn --out` writes: its name and
// shape.
type OutTensor struct {
	Name  string
	Shape []int64
}

// elements returns the tensor's value count, or an error when it overflows.
func (t OutTensor) elements() (int64, error) {
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 || (d != 0 && n > math.MaxInt64/4/d) {
			return 0, fmt.Errorf("attn: tensor %s: shape %v is too large", t.Name, t.Shape)
		}
		n *= d
	}
	return n, nil
}

// OutWriter writes a float32 safetensors file tensor by tensor as the
// layers are computed: the header, with every tensor's shape and offsets,
// first; then each tensor's data in the order announced, so that nothing
// but the tensor being written is held. (safetensors.Write lays tensors out
// sorted by name, and "layers.10" sorts before "layers.2": a forward pass
// cannot produce them in that order without keeping layers.) Readers find
// tensors by the header's offsets, so the order is theirs to ignore.
type OutWriter struct {
	w       io.Writer
	tensors []OutTensor
	sizes   []int64
	next    int   // the tensor being written
	left    int64 // of its values, still to come
	buf     []byte
	err     error
}

// NewOutWriter writes the header of a file holding tensors, in this order,
// with metadata (string pairs, in order), and returns the writer of their
// data.
func NewOutWriter(w io.Writer, tensors []OutTensor, metadata [][2]string) (*OutWriter, error) {
	o := &OutWriter{w: w, tensors: tensors, sizes: make([]int64, len(tensors))}
	var b bytes.Buffer
	b.WriteByte('{')
	if metadata != nil {
		b.WriteString(`"__metadata__":{`)
		for i, kv := range metadata {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, kv[0])
			b.WriteByte(':')
			writeJSONString(&b, kv[1])
		}
		b.WriteByte('}')
	}
	seen := map[string]bool{}
	var off int64
	for i, t := range tensors {
		if seen[t.Name] || t.Name == "__metadata__" {
			return nil, fmt.Errorf("attn: tensor name %q written twice", t.Name)
		}
		seen[t.Name] = true
		n, err := t.elements()
		if err != nil {
			return nil, err
		}
		o.sizes[i] = n
		if metadata != nil || i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, t.Name)
		b.WriteString(`:{"dtype":"F32","shape":[`)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(d, 10))
		}
		if 4*n > math.MaxInt64-off {
			return nil, errors.New("attn: the output's size overflows 64 bits")
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, off+4*n)
		off += 4 * n
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(b.Len()))
	if _, err := w.Write(n[:]); err != nil {
		return nil, err
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return nil, err
	}
	if len(tensors) > 0 {
		o.left = o.sizes[0]
	}
	return o, nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s) // a string always marshals
	b.Write(q)
}

// Write writes the named tensor's values, which may come in several parts
// (rows); the tensor must be the next one announced, and its parts together
// exactly its size.
func (o *OutWriter) Write(name string, parts ...[]float32) error {
	if o.err != nil {
		return o.err
	}
	if o.next >= len(o.tensors) || o.tensors[o.next].Name != name {
		o.err = fmt.Errorf("attn: tensor %s written out of the announced order", name)
		return o.err
	}
	for _, p := range parts {
		if int64(len(p)) > o.left {
			o.err = fmt.Errorf("attn: tensor %s: more values than its shape %v holds", name, o.tensors[o.next].Shape)
			return o.err
		}
		o.left -= int64(len(p))
		for len(p) > 0 {
			k := min(len(p), 16384)
			o.buf = o.buf[:0]
			for _, v := range p[:k] {
				o.buf = binary.LittleEndian.AppendUint32(o.buf, math.Float32bits(v))
			}
			if _, err := o.w.Write(o.buf); err != nil {
				o.err = err
				return err
			}
			p = p[k:]
		}
	}
	if o.left != 0 {
		o.err = fmt.Errorf("attn: tensor %s: %d values short of its shape %v", name, o.left, o.tensors[o.next].Shape)
		return o.err
	}
	o.next++
	if o.next < len(o.tensors) {
		o.left = o.sizes[o.next]
	}
	return nil
}

// Close reports whether every tensor announced was written.
func (o *OutWriter) Close() error {
	if o.err != nil {
		return o.err
	}
	if o.next != len(o.tensors) {
		return fmt.Errorf("attn: %d of the %d tensors announced were written", o.next, len(o.tensors))
	}
	return nil
}

// ProbsParts returns a result's probabilities as rows, head by head: the
// data of its layers.{i}.probs [n_heads, T, T].
func ProbsParts(r *Result) [][]float32 {
	var parts [][]float32
	for _, head := range r.Probs {
		parts = append(parts, head...)
	}
	return parts
}
