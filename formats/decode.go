package formats

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"

	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/source"
)

// checkRange checks the bytes [off, off+n) of tensor t against its file
// once more (the parsers check tensors' extents too).
func (c *Checkpoint) checkRange(t *Tensor, off, n int64) error {
	f := c.Files[t.File]
	if t.Bytes < 0 {
		return &Error{File: f.Path, Tensor: t.Name, Offset: t.Offset, Err: fmt.Errorf("cannot read: element type %s has no known layout", t.Type.Name())}
	}
	if t.Offset < 0 || t.Offset > f.Size || t.Bytes > f.Size-t.Offset {
		return &Error{File: f.Path, Tensor: t.Name, Offset: t.Offset, Err: fmt.Errorf("its %d bytes run past the end of the file (%d bytes)", t.Bytes, f.Size)}
	}
	if off < 0 || n < 0 || off > t.Bytes || n > t.Bytes-off {
		return &Error{File: f.Path, Tensor: t.Name, Offset: t.Offset, Err: fmt.Errorf("bytes [%d, %d) are outside the tensor's %d", off, off+n, t.Bytes)}
	}
	if f.Src == nil {
		return &Error{File: f.Path, Tensor: t.Name, Offset: t.Offset, Err: errors.New("the checkpoint is closed")}
	}
	return nil
}

// readBytes calls fn with bytes [off, off+n) of tensor t: for a local file
// a slice of the mapping (read under the fault guard; its pages are
// released when fn returns), for a remote one the bytes fetched for this
// call. fn must not keep the slice. Only the bytes asked for are read.
func (c *Checkpoint) readBytes(t *Tensor, off, n int64, fn func([]byte) error) error {
	if err := c.checkRange(t, off, n); err != nil {
		return err
	}
	f := c.Files[t.File]
	err := guard(func() error {
		b, err := f.Src.Bytes(t.Offset+off, n)
		if err != nil {
			return err
		}
		// The values are read: the mapped pages can go.
		defer release(f.Src, b)
		return fn(b)
	})
	if err == nil {
		return nil
	}
	var fe *Error
	if errors.As(err, &fe) {
		return err
	}
	if errors.Is(err, errFault) {
		return &Error{File: f.Path, Tensor: t.Name, Offset: t.Offset, Err: err}
	}
	var re *source.Error
	if errors.As(err, &re) {
		return &Error{File: f.Path, Tensor: t.Name, Offset: t.Offset + off, Err: oneLine{re.Err}}
	}
	return err
}

// release drops the pages of b, bytes of a local file's mapping, from the
// resident set (see source.Local.Release); other sources hold no mapping.
func release(src source.Source, b []byte) {
	if l, ok := src.(*source.Local); ok {
		l.Release(b)
	}
}

// ReadRaw calls fn with the tensor's stored bytes. fn must not keep the
// slice; reads inside fn that fault (the file shrank) become an error. The
// bytes' pages leave the process's resident set when fn returns.
func (c *Checkpoint) ReadRaw(t *Tensor, fn func([]byte) error) error {
	if err := c.checkRange(t, 0, 0); err != nil {
		return err
	}
	return c.readBytes(t, 0, t.Bytes, fn)
}

func (c *Checkpoint) checkDecodable(t *Tensor) error {
	f := c.Files[t.File]
	switch {
	case !t.Type.Known():
		name := t.Type.Name() // "type N (unknown)" for a GGUF id
		if c.Format == FormatSafetensors {
			name = strconv.Quote(name) // the dtype as the file spells it
		}
		return &Error{File: f.Path, Tensor: t.Name, Offset: t.Offset, Err: fmt.Errorf("cannot decode %s: its element type is unknown", name)}
	case !t.Type.Decodable():
		return &Error{File: f.Path, Tensor: t.Name, Offset: t.Offset, Err: fmt.Errorf("decoding %s to float32 is not supported", t.Type.Name())}
	case c.BigEndian() && t.Type.Quantized():
		return &Error{File: f.Path, Tensor: t.Name, Offset: t.Offset, Err: fmt.Errorf("decoding big-endian %s blocks is not supported", t.Type.Name())}
	}
	need, err := t.Type.ByteSize(t.Elements())
	if err != nil {
		return &Error{File: f.Path, Tensor: t.Name, Offset: t.Offset, Err: err}
	}
	if need != t.Bytes {
		return &Error{File: f.Path, Tensor: t.Name, Offset: t.Offset, Err: fmt.Errorf("holds %d bytes but %d elements of %s need %d", t.Bytes, t.Elements(), t.Type.Name(), need)}
	}
	return nil
}

// Decode decodes the whole tensor into dst, which must hold Elements()
// values, using all cores for large tensors.
func (c *Checkpoint) Decode(t *Tensor, dst []float32) error {
	if int64(len(dst)) != t.Elements() {
		return fmt.Errorf("decode %s: buffer holds %d values, tensor has %d", t.Name, len(dst), t.Elements())
	}
	return c.decodeRange(t, 0, dst)
}

// DecodeNew decodes the whole tensor into a new buffer.
func (c *Checkpoint) DecodeNew(t *Tensor) ([]float32, error) {
	if err := c.checkDecodable(t); err != nil {
		return nil, err
	}
	dst := make([]float32, t.Elements())
	return dst, c.Decode(t, dst)
}

// RowLen is the length of the tensor's innermost (contiguous) dimension.
func (t *Tensor) RowLen() int64 {
	if len(t.Shape) == 0 {
		return 1
	}
	return t.Shape[len(t.Shape)-1]
}

// DecodeRows decodes rows [r0, r1) of the tensor viewed as a matrix of
// Elements()/RowLen() rows, into dst (len (r1-r0)*RowLen()).
func (c *Checkpoint) DecodeRows(t *Tensor, r0, r1 int64, dst []float32) error {
	rl := t.RowLen()
	rows := t.Elements() / max(rl, 1)
	if r0 < 0 || r1 > rows || r0 > r1 {
		return &Error{File: c.Files[t.File].Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("rows [%d, %d) out of range: the tensor has %d rows", r0, r1, rows)}
	}
	if int64(len(dst)) != (r1-r0)*rl {
		return fmt.Errorf("decode %s: buffer holds %d values, rows need %d", t.Name, len(dst), (r1-r0)*rl)
	}
	if bs := int64(t.Type.BlockSize()); bs > 0 && rl%bs != 0 {
		if t.Note != noteFlatRun {
			return &Error{File: c.Files[t.File].Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("rows of %d are not whole %s blocks of %d", rl, t.Type.Name(), bs)}
		}
		// A legacy flat run: the rows straddle blocks, so the blocks that
		// hold them are decoded (at most one block more at either end).
		first, end := r0*rl, r1*rl
		b0, b1 := first/bs*bs, min((end+bs-1)/bs*bs, t.Elements())
		blocks := make([]float32, b1-b0)
		if err := c.decodeRange(t, b0, blocks); err != nil {
			return err
		}
		copy(dst, blocks[first-b0:end-b0])
		return nil
	}
	return c.decodeRange(t, r0*rl, dst)
}

// DecodeChunks decodes the whole tensor in order, in pieces of whole
// blocks of at most maxValues values (at least one block), and calls fn
// with each piece's first element index and values. The buffer is reused:
// fn must not keep it. Each piece's mapped pages are released once it is
// decoded, so memory stays at one piece (plus the pages being read)
// whatever the tensor's size or shape — a 1-D tensor of billions of values
// included.
func (c *Checkpoint) DecodeChunks(t *Tensor, maxValues int, fn func(first int64, vals []float32) error) error {
	if err := c.checkDecodable(t); err != nil {
		return err
	}
	n := t.Elements()
	bs := int64(max(t.Type.BlockSize(), 1))
	step := max(int64(maxValues)/bs, 1) * bs
	buf := make([]float32, min(step, n))
	for first := int64(0); first < n; first += step {
		vals := buf[:min(step, n-first)]
		if err := c.decodeRange(t, first, vals); err != nil {
			return err
		}
		if err := fn(first, vals); err != nil {
			return err
		}
	}
	return nil
}

// decodeRange decodes len(dst) elements starting at element first, which
// must both be whole blocks. Only the bytes of those blocks are read.
func (c *Checkpoint) decodeRange(t *Tensor, first int64, dst []float32) error {
	if err := c.decodeRaw(t, first, dst); err != nil || t.scale == nil {
		return err
	}
	return c.applyScale(t, first, dst)
}

// decodeRaw is decodeRange without the weight's scale tensor.
func (c *Checkpoint) decodeRaw(t *Tensor, first int64, dst []float32) error {
	if err := c.checkDecodable(t); err != nil {
		return err
	}
	if err := c.checkRange(t, 0, 0); err != nil {
		return err
	}
	bs, bb := int64(t.Type.BlockSize()), int64(t.Type.BlockBytes())
	lo, hi := first/bs*bb, (first+int64(len(dst)))/bs*bb
	decode := dtype.Decode
	if c.BigEndian() {
		decode = dtype.DecodeBigEndian
	}
	path := c.Files[t.File].Path
	wrap := func(err error) error {
		if err == nil {
			return nil
		}
		return &Error{File: path, Tensor: t.Name, Offset: t.Offset, Err: err}
	}
	return c.readBytes(t, lo, hi-lo, func(src []byte) error {
		blocks := int64(len(dst)) / bs
		workers := int64(runtime.GOMAXPROCS(0))
		if len(dst) < 1<<16 || workers == 1 || blocks < 2 {
			return wrap(decode(t.Type, dst, src))
		}
		workers = min(workers, blocks)
		per := (blocks + workers - 1) / workers
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := int64(0); w < workers; w++ {
			b, e := w*per, min((w+1)*per, blocks)
			if b >= e {
				continue
			}
			wg.Add(1)
			go func(w, b, e int64) {
				defer wg.Done()
				errs[w] = guard(func() error { return decode(t.Type, dst[b*bs:e*bs], src[b*bb:e*bb]) })
			}(w, b, e)
		}
		wg.Wait()
		return wrap(errors.Join(errs...))
	})
}
