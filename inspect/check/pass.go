package check

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/inspect"
)

// facts is what one pass over a checkpoint found, before any rule is
// applied: each tensor's value counts, and the statistics of the attention
// matrices. Rules are evaluated against it afterwards (evaluate.go).
type facts struct {
	// tensors holds one entry per tensor of the checkpoint, in its order.
	tensors []tensorFacts
	// headsUnknown and headsNoFit are nil when per-head statistics were
	// computed; otherwise one says why not: the head counts are unknown, or
	// they do not fit the matrices.
	headsUnknown, headsNoFit error
	// stats is inspect's report of the attention matrices; statsErr says
	// why there is none (a projection that cannot be loaded).
	stats    *inspect.Report
	statsErr error
}

// tensorFacts are one tensor's value counts.
type tensorFacts struct {
	t *formats.Tensor
	// scanned: the values were decoded and counted (err is nil);
	// viaLayer: while inspect analysed their layer (not by the scan).
	scanned, viaLayer bool
	err               error // the values could not be decoded
	scan              valueScan
	// badScales counts blocks of a quantized tensor whose scale is NaN or
	// Inf; scaleErr says why they could not be counted.
	badScales int64
	scaleErr  error
}

// gather makes the pass: every tensor's values are decoded once — the
// attention projections while inspect analyses their layers, every other
// tensor (and a projection whose layer could not be loaded) by the scan.
func gather(ctx context.Context, in Input, th inspect.Thresholds, opts Options) (*facts, error) {
	f := &facts{}
	ck := in.Checkpoint
	if ck == nil {
		return f, nil
	}
	f.tensors = make([]tensorFacts, len(ck.Tensors))
	index := make(map[*formats.Tensor]*tensorFacts, len(ck.Tensors))
	for i, t := range ck.Tensors {
		f.tensors[i].t = t
		index[t] = &f.tensors[i]
	}
	if in.OpenErr == nil && in.FindErr == nil && in.Model != nil {
		if err := f.statistics(ctx, in.Model, index, th, opts); err != nil {
			return nil, err
		}
	}
	chunk := opts.ChunkBytes
	if chunk <= 0 {
		chunk = 64 << 20
	}
	var buf []float32
	for i := range f.tensors {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tf := &f.tensors[i]
		t := tf.t
		if !t.Type.Decodable() || t.Elements() == 0 {
			continue
		}
		if !tf.scanned {
			rowLen := max(t.RowLen(), 1)
			tf.scan = newValueScan(rowLen)
			var err error
			if rowLen <= chunk/4 {
				buf, err = scanRows(ck, t, chunk, buf, &tf.scan)
			} else {
				buf, err = scanLongRows(ck, t, chunk, buf, &tf.scan)
			}
			tf.scanned, tf.err = err == nil, err
		}
		// A NaN or Inf block scale is a broken block even where the
		// decoded values come out finite (a scale the decoder does not
		// read, or a NaN times codes that happen to vanish elsewhere).
		if tf.scanned && t.Type.Quantized() {
			tf.scaleErr = ck.ReadRaw(t, func(b []byte) error {
				n, err := dtype.NonFiniteScales(t.Type, b)
				tf.badScales = n
				return err
			})
		}
	}
	return f, nil
}

// statistics runs inspect over the model's layers, with per-head
// statistics when the head counts are known and fit every matrix, and
// counts the values of the projections it loads.
func (f *facts) statistics(ctx context.Context, m *formats.Model, index map[*formats.Tensor]*tensorFacts, th inspect.Thresholds, opts Options) error {
	f.headsUnknown = m.HeadsKnown()
	if f.headsUnknown == nil {
		f.headsNoFit = headsFit(m)
	}
	src := &scanningSource{Model: m, index: index}
	iopts := inspect.Options{Heads: f.headsUnknown == nil && f.headsNoFit == nil, Fast: opts.Fast, Workers: opts.Workers, Thresholds: th}
	f.stats, f.statsErr = inspect.Run(ctx, src, iopts, nil)
	if f.statsErr != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// headsFit says whether every projection splits into the geometry's head
// blocks (q and o: n_heads, k and v: n_kv_heads blocks; head_dim rows for q
// and k, the value head dim for v and o, o by columns), as inspect's
// per-head statistics need; an adapter missing
// a projection is fine. Knowing it before the layers are decoded keeps the
// pass to one: inspect runs once, with heads or without.
func headsFit(m *formats.Model) error {
	g := m.Geometry()
	for i := range m.Layers {
		ls := &m.Layers[i]
		for _, p := range formats.Projections {
			ps := ls.Proj(p)
			if ps == nil {
				continue
			}
			count, n, what, hd := g.NHeads, ps.Out, "rows", g.HeadDim
			switch p {
			case formats.ProjK:
				count = g.NKVHeads
			case formats.ProjV:
				count, hd = g.NKVHeads, g.ValueHeadDim()
			case formats.ProjO:
				n, what, hd = ps.In, "columns", g.ValueHeadDim()
			}
			if count <= 0 || hd <= 0 {
				return fmt.Errorf("layer %d: %s: geometry has %d heads of dimension %d", ls.Index, p, count, hd)
			}
			if n != count*hd {
				return fmt.Errorf("layer %d: %s: matrix has %d %s, want %d heads × %d", ls.Index, p, n, what, count, hd)
			}
		}
	}
	return nil
}

// scanningSource is the model as inspect's layer source; each layer it
// loads also gives the value counts of the stored tensors its projections
// are (see direct), so that those are not decoded a second time.
type scanningSource struct {
	*formats.Model
	mu    sync.Mutex
	index map[*formats.Tensor]*tensorFacts
}

func (s *scanningSource) LoadLayer(i int) (*formats.Layer, error) {
	l, err := s.Model.LoadLayer(i)
	if err != nil {
		return nil, err
	}
	ls := s.Model.Layer(i)
	if ls == nil {
		return l, nil
	}
	for _, p := range formats.Projections {
		ps := ls.Proj(p)
		if !direct(ps) {
			continue
		}
		mat := l.Matrix(p)
		if len(mat.Data) != ps.Out*ps.In {
			continue
		}
		sc := newValueScan(int64(ps.In))
		sc.rowOf = ps.Rows
		sc.feed(mat.Data)
		s.record(ps.Tensor, sc)
		if b := l.Bias(p); ps.Bias != nil && int64(len(b)) == ps.Bias.Elements() {
			bs := newValueScan(max(ps.Bias.RowLen(), 1))
			bs.feed(b)
			s.record(ps.Bias, bs)
		}
	}
	return l, nil
}

func (s *scanningSource) record(t *formats.Tensor, sc valueScan) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tf := s.index[t]; tf != nil {
		tf.scan, tf.scanned, tf.viaLayer = sc, true, true
	}
}

// direct reports whether a projection's extracted matrix holds exactly its
// stored tensor's values, row for row: a [out, in] weight read as it is or
// with its rows permuted (GGUF's RoPE order undone). Fused, transposed,
// LoRA and latent-attention matrices are built from their tensors, so
// those are counted by the scan.
func direct(ps *formats.ProjSource) bool {
	if ps == nil || ps.Tensor == nil || ps.LoRA != nil || ps.Effective != "" || ps.Fused || ps.Transposed {
		return false
	}
	t := ps.Tensor
	if len(t.Shape) != 2 || t.Shape[0] != int64(ps.Out) || t.Shape[1] != int64(ps.In) {
		return false
	}
	if ps.Rows == nil {
		return true
	}
	if len(ps.Rows) != ps.Out {
		return false
	}
	seen := make([]bool, ps.Out)
	for _, r := range ps.Rows {
		if r < 0 || r >= ps.Out || seen[r] {
			return false
		}
		seen[r] = true
	}
	return true
}

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

func (s *valueScan) feed(vals []float32) {
	for len(vals) > 0 {
		n := min(int64(len(vals)), s.rowLen-s.col)
		for _, v := range vals[:n] {
			if v != 0 {
				s.rowZero = false
				if v != v {
					s.nan++
				} else if math.IsInf(float64(v), 0) {
					s.inf++
				}
			}
		}
		vals = vals[n:]
		if s.col += n; s.col == s.rowLen {
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
	}
}

// scanRows decodes whole rows, as many at a time as fit in chunk bytes of
// float32 (formats decodes large pieces on every core).
func scanRows(ck *formats.Checkpoint, t *formats.Tensor, chunk int64, buf []float32, sc *valueScan) ([]float32, error) {
	rows := t.Elements() / sc.rowLen
	perChunk := max(chunk/4/sc.rowLen, 1)
	for r0 := int64(0); r0 < rows; r0 += perChunk {
		r1 := min(r0+perChunk, rows)
		need := int((r1 - r0) * sc.rowLen)
		if cap(buf) < need {
			buf = make([]float32, need)
		}
		if err := ck.DecodeRows(t, r0, r1, buf[:need]); err != nil {
			return buf, err
		}
		sc.feed(buf[:need])
	}
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

// noAttention reports whether an error of formats.FindModel says the
// checkpoint has no attention layers at all (no tensors, none under a name
// any known architecture or --map gives, or a GGUF without an architecture:
// a data or vocabulary file) — a warning for a gate — rather than
// attention layers that cannot be resolved, which fail it.
func noAttention(err error) bool { return errors.Is(err, formats.ErrNoAttention) }

func tensorOf(err error) string {
	var fe *formats.Error
	if errors.As(err, &fe) {
		return fe.Tensor
	}
	return ""
}
