package check

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/dtype"
)

// valueScan counts NaN, Inf and all-zero rows over a tensor's values fed
// in order, in pieces of any length.
type valueScan struct {
	rowLen, col, row   int64
	nan, inf, zeroRows int64
	firstZeroRow       int64 // the smallest stored row that is all zero; -1: none
	allZero, rowZero   bool
	// rowOf maps the rows as fed to the stored rows (nil: the same).
	rowOf []int
}

func newValueScan(rowLen int64) valueScan {
	return valueScan{rowLen: rowLen, allZero: true, rowZero: true, firstZeroRow: -1}
}

// feed counts the next values. Each row's piece is first summarised
// branch-free from the values' bits (is any value non-zero, is any NaN or
// ±Inf); only a piece holding a NaN or Inf is counted value by value.
func (s *valueScan) feed(vals []float32) {
	for len(vals) > 0 {
		n := min(int64(len(vals)), s.rowLen-s.col)
		nonzero, nonfinite := summarize(vals[:n])
		if nonzero {
			s.rowZero = false
		}
		if nonfinite {
			for _, v := range vals[:n] {
				if v != v {
					s.nan++
				} else if math.IsInf(float64(v), 0) {
					s.inf++
				}
			}
		}
		vals = vals[n:]
		if s.col += n; s.col == s.rowLen {
			s.endRow()
		}
	}
}

func (s *valueScan) endRow() {
	if s.rowZero {
		s.zeroRows++
		stored := s.row
		if s.rowOf != nil && s.row < int64(len(s.rowOf)) {
			stored = int64(s.rowOf[s.row])
		}
		if s.firstZeroRow < 0 || stored < s.firstZeroRow {
			s.firstZeroRow = stored
		}
	} else {
		s.allZero = false
	}
	s.row, s.col, s.rowZero = s.row+1, 0, true
}

// merge adds the counts of a scan of other whole rows of the same tensor.
func (s *valueScan) merge(o valueScan) {
	s.nan += o.nan
	s.inf += o.inf
	s.zeroRows += o.zeroRows
	s.allZero = s.allZero && o.allZero
	if o.firstZeroRow >= 0 && (s.firstZeroRow < 0 || o.firstZeroRow < s.firstZeroRow) {
		s.firstZeroRow = o.firstZeroRow
	}
}

// Bits of float32 values, two to a word: the sign bits, and the exponent
// fields with the one added that carries into the lane's top bit exactly
// when the exponent is all ones (NaN or Inf).
const (
	magnitude2 = 0x7fffffff_7fffffff
	exponent2  = 0x7f800000_7f800000
	carry2     = 0x00800000_00800000
	top2       = 0x80000000_80000000
)

// summarize reports whether any of vals is non-zero (−0 counts as zero)
// and whether any is NaN or ±Inf, two values per 64-bit word.
func summarize(vals []float32) (nonzero, nonfinite bool) {
	var or, ex uint64
	if len(vals) > 0 && uintptr(unsafe.Pointer(&vals[0]))%8 != 0 {
		u := uint64(math.Float32bits(vals[0]))
		or, ex = u&magnitude2, (u&exponent2)+carry2
		vals = vals[1:]
	}
	if n := len(vals) / 2; n > 0 {
		words := unsafe.Slice((*uint64)(unsafe.Pointer(&vals[0])), n)
		var or1, ex1 uint64
		i := 0
		for ; i+1 < len(words); i += 2 {
			a, b := words[i], words[i+1]
			or |= a & magnitude2
			or1 |= b & magnitude2
			ex |= (a & exponent2) + carry2
			ex1 |= (b & exponent2) + carry2
		}
		if i < len(words) {
			or |= words[i] & magnitude2
			ex |= (words[i] & exponent2) + carry2
		}
		or |= or1
		ex |= ex1
		vals = vals[2*n:]
	}
	if len(vals) > 0 {
		u := uint64(math.Float32bits(vals[0]))
		or |= u & magnitude2
		ex |= (u & exponent2) + carry2
	}
	return or != 0, ex&top2 != 0
}

// scanPiece is a stretch of a tensor the scan decodes at once: whole rows
// [r0, r1), or the whole tensor when its rows are longer than a piece.
type scanPiece struct {
	tensor int // index into facts.tensors
	r0, r1 int64
	long   bool
}

// pieceValues is how many values the scan decodes at once: small enough
// that the float32 buffer stays in a core's cache between the decoder
// writing it and the scan reading it.
const pieceValues = 1 << 15

// pieces splits a tensor into scan pieces of whole rows.
func pieces(k int, t *formats.Tensor, chunk int64) []scanPiece {
	rowLen := max(t.RowLen(), 1)
	if rowLen > chunk/4 {
		return []scanPiece{{tensor: k, long: true}}
	}
	rows := t.Elements() / rowLen
	per := max(min(pieceValues, chunk/4)/rowLen, 1)
	out := make([]scanPiece, 0, (rows+per-1)/per)
	for r0 := int64(0); r0 < rows; r0 += per {
		out = append(out, scanPiece{tensor: k, r0: r0, r1: min(r0+per, rows)})
	}
	return out
}

// scanRowsInto decodes rows [r0, r1) of t into buf (grown as needed) and
// feeds them to sc.
func scanRowsInto(ck *formats.Checkpoint, t *formats.Tensor, r0, r1 int64, buf []float32, sc *valueScan) ([]float32, error) {
	need := int((r1 - r0) * sc.rowLen)
	if cap(buf) < need {
		buf = make([]float32, need)
	}
	if err := ck.DecodeRows(t, r0, r1, buf[:need]); err != nil {
		return buf, err
	}
	sc.feed(buf[:need])
	return buf, nil
}

// scanLongRows decodes a tensor whose rows are longer than the chunk (a
// huge 1-D tensor) in pieces of whole blocks, so that the buffer stays
// within the chunk whatever the shape a header declares.
func scanLongRows(ck *formats.Checkpoint, t *formats.Tensor, chunk int64, buf []float32, sc *valueScan) ([]float32, error) {
	typ := t.Type
	bs, bb := int64(typ.BlockSize()), int64(typ.BlockBytes())
	if ck.BigEndian() && typ.Quantized() {
		return buf, fmt.Errorf("decoding big-endian %s blocks is not supported", typ.Name())
	}
	if sc.rowLen%bs != 0 {
		return buf, fmt.Errorf("rows of %d are not whole %s blocks of %d", sc.rowLen, typ.Name(), bs)
	}
	decode := dtype.Decode
	if ck.BigEndian() {
		decode = dtype.DecodeBigEndian
	}
	n := t.Elements()
	step := max(chunk/4/bs, 1) * bs
	if cap(buf) < int(step) {
		buf = make([]float32, step)
	}
	err := ck.ReadRaw(t, func(raw []byte) error {
		if need, err := typ.ByteSize(n); err != nil || need != int64(len(raw)) {
			return fmt.Errorf("holds %d bytes but %d elements of %s need %d (%v)", len(raw), n, typ.Name(), need, err)
		}
		for e0 := int64(0); e0 < n; e0 += step {
			e1 := min(e0+step, n)
			dst := buf[:e1-e0]
			if err := decode(typ, dst, raw[e0/bs*bb:e1/bs*bb]); err != nil {
				return err
			}
			sc.feed(dst)
		}
		return nil
	})
	return buf, err
}
