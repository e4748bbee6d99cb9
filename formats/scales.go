package formats

import (
	"fmt"
	"math"
	"strings"
	"sync"
)

// Scaled weights. FP8 and INT8 safetensors checkpoints store each linear
// weight in 8 bits beside a float scale tensor; the weight is the product.
// Two layouts are read:
//
//   - "X.weight_scale_inv" (transformers' fp8 quant_method: DeepSeek V3/R1,
//     Qwen3 FP8): one scale per block of quantization_config's
//     weight_block_size (128×128 when it gives none), the scale tensor
//     [⌈out/bo⌉, ⌈in/bi⌉]; W[i, j] = q[i, j] · s[i/bo, j/bi] (despite its
//     name the stored value multiplies).
//   - "X.weight_scale" (compressed-tensors, FBGEMM FP8, ModelOpt): one
//     scale for the tensor ([] or [1]), one per output row ([out] or
//     [out, 1]), or one per block ([so, si] dividing the weight exactly, or
//     the config's block size).
//
// The scale is applied wherever the weight is decoded (Checkpoint.Decode,
// DecodeRows, DecodeChunks), so extraction, inspect, the forward pass and
// export all see the dequantised weight; the weight's Note says so. A
// zero point (asymmetric quantization) is not modeled: such a weight keeps
// no scale and its scale tensors stay unconsumed, which layers and the
// rerun report.

// tensorScale is the scale of one weight.
type tensorScale struct {
	t *Tensor
	// bo × bi is the block of weight elements each scale value covers;
	// rows and cols are the weight's matrix shape and sr × sc the scale's.
	bo, bi, rows, cols, sr, sc int64
	rule                       string

	once   sync.Once
	values []float32
	err    error
}

// scaleValues decodes the scale tensor once.
func (c *Checkpoint) scaleValues(s *tensorScale) ([]float32, error) {
	s.once.Do(func() {
		s.values, s.err = c.decodePlain(s.t)
		if s.err != nil {
			return
		}
		for i, v := range s.values {
			if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
				s.err = &Error{File: c.Files[s.t.File].Path, Tensor: s.t.Name, Offset: -1, Err: fmt.Errorf("scale %d is %v, not a finite number", i, v)}
				return
			}
		}
	})
	return s.values, s.err
}

// decodePlain decodes a tensor whole without applying any scale of its own.
func (c *Checkpoint) decodePlain(t *Tensor) ([]float32, error) {
	if err := c.checkDecodable(t); err != nil {
		return nil, err
	}
	dst := make([]float32, t.Elements())
	return dst, c.decodeRaw(t, 0, dst)
}

// applyScale multiplies the decoded elements [first, first+len(dst)) of a
// scaled weight by their scales (in float32, as the dequantising kernels
// do).
func (c *Checkpoint) applyScale(t *Tensor, first int64, dst []float32) error {
	s := t.scale
	sv, err := c.scaleValues(s)
	if err != nil {
		return err
	}
	for k := range dst {
		e := first + int64(k)
		i, j := e/s.cols, e%s.cols
		dst[k] *= sv[(i/s.bo)*s.sc+j/s.bi]
	}
	return nil
}

// quantBlock returns the block size [rows, cols] quantization_config gives
// (weight_block_size, or a compressed-tensors group's block_structure), nil
// when it gives none.
func quantBlock(qc cfg) []int64 {
	read := func(v any) []int64 {
		l, ok := v.([]any)
		if !ok || len(l) != 2 {
			return nil
		}
		var out []int64
		for _, x := range l {
			f, ok := anyNum(x)
			if !ok || f < 1 || f != math.Trunc(f) || f > 1<<20 {
				return nil
			}
			out = append(out, int64(f))
		}
		return out
	}
	if b := read(qc["weight_block_size"]); b != nil {
		return b
	}
	if groups := qc.object("config_groups"); groups != nil {
		for _, k := range sortedKeys(groups) {
			if b := read(groups.object(k).object("weights")["block_structure"]); b != nil {
				return b
			}
		}
	}
	return nil
}

// quantConfig returns config.json's quantization_config (or its text
// model's), nil when there is none.
func quantConfig(conf cfg) cfg {
	if qc := conf.object("quantization_config"); qc != nil {
		return qc
	}
	return conf.object("text_config").object("quantization_config")
}

// attachScales finds every 8-bit weight's scale tensor (see above).
func (c *Checkpoint) attachScales() error {
	if c.Format != FormatSafetensors {
		return nil
	}
	qc := quantConfig(cfg(c.Config))
	block := quantBlock(qc)
	for _, w := range c.Tensors {
		base, ok := strings.CutSuffix(w.Name, ".weight")
		if !ok || len(w.Shape) != 2 {
			continue
		}
		switch w.Type.SafetensorsName() {
		case "F8_E4M3", "F8_E5M2", "I8":
		default:
			continue
		}
		if c.Tensor(base+".weight_zero_point") != nil {
			continue // asymmetric: not modeled (the tensors stay unconsumed)
		}
		st, inv := c.Tensor(base+".weight_scale_inv"), true
		if st == nil {
			st, inv = c.Tensor(base+".weight_scale"), false
		}
		if st == nil {
			continue
		}
		s, err := scaleLayout(w, st, inv, block)
		if err != nil {
			return &Error{File: c.Files[st.File].Path, Tensor: st.Name, Offset: -1, Err: err}
		}
		w.scale = s
		st.scaleFor = w
		note := fmt.Sprintf("%s weight × %s (%s)", w.Type.Name(), st.Name, s.rule)
		if w.Note != "" {
			note = w.Note + "; " + note
		}
		w.Note = note
	}
	return nil
}

// scaleLayout settles which weight elements each scale value covers.
func scaleLayout(w, st *Tensor, inv bool, block []int64) (*tensorScale, error) {
	rows, cols := w.Shape[0], w.Shape[1]
	s := &tensorScale{t: st, rows: rows, cols: cols}
	switch st.Type.SafetensorsName() {
	case "F32", "BF16", "F16", "F64":
	default:
		return nil, fmt.Errorf("is %s; a weight scale must be a float tensor", st.Type.Name())
	}
	shape := st.Shape
	n := st.Elements()
	ceil := func(a, b int64) int64 { return (a + b - 1) / b }
	switch {
	case !inv && n == 1:
		s.bo, s.bi, s.sr, s.sc, s.rule = rows, cols, 1, 1, "one scale for the tensor"
		return s, nil
	case !inv && n == rows && (len(shape) == 1 || len(shape) == 2 && shape[1] == 1):
		s.bo, s.bi, s.sr, s.sc, s.rule = 1, cols, rows, 1, "one scale per output row"
		return s, nil
	case len(shape) != 2:
		return nil, fmt.Errorf("has shape %v, which is not a layout of scales qkv knows for weight %s %v", shape, w.Name, w.Shape)
	}
	sr, sc := shape[0], shape[1]
	var bo, bi int64
	switch {
	case block != nil:
		bo, bi = block[0], block[1]
	case inv:
		bo, bi = 128, 128 // transformers' fp8 default
	case rows%sr == 0 && cols%sc == 0:
		bo, bi = rows/sr, cols/sc
	default:
		return nil, fmt.Errorf("has shape %v, which does not divide weight %s %v into equal blocks, and config.json gives no block size", shape, w.Name, w.Shape)
	}
	if ceil(rows, bo) != sr || ceil(cols, bi) != sc {
		return nil, fmt.Errorf("has shape %v, but weight %s %v in blocks of %d×%d needs [%d, %d]", shape, w.Name, w.Shape, bo, bi, ceil(rows, bo), ceil(cols, bi))
	}
	s.bo, s.bi, s.sr, s.sc = bo, bi, sr, sc
	s.rule = fmt.Sprintf("one scale per %d×%d block", bo, bi)
	return s, nil
}
