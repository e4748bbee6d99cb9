package formats

import "fmt"

// LayersReport is the plain-data description of where every layer's
// projections come from.
type LayersReport struct {
	Schema      string        `json:"schema"` // "qkv.layers/v1"
	Path        string        `json:"path"`
	Format      string        `json:"format"`
	Model       Geometry      `json:"model"`
	IsAdapter   bool          `json:"is_adapter"`
	Adapter     *AdapterInfo  `json:"adapter,omitempty"`
	OtherStacks []string      `json:"other_stacks,omitempty"`
	Layers      []LayerReport `json:"layers"`
	// Warnings lists what qkv does not model (Geometry.Unsupported: the
	// rerun refuses) and what it assumed (Geometry.Assumptions), each with
	// "severity" unsupported or assumption.
	Warnings []Warning `json:"warnings"`
}

// Warning is one entry of LayersReport.Warnings.
type Warning struct {
	Severity string `json:"severity"` // "unsupported" or "assumption"
	Unsupported
}

// LayerReport describes one layer.
type LayerReport struct {
	Index int         `json:"index"`
	Stack string      `json:"stack,omitempty"`
	Q     *ProjReport `json:"q"`
	K     *ProjReport `json:"k"`
	V     *ProjReport `json:"v"`
	O     *ProjReport `json:"o"`
	Norm  *NormReport `json:"norm,omitempty"`
	// QNorm, KNorm and Sinks name the Q/K norm weights and the sink logits.
	QNorm *string `json:"q_norm,omitempty"`
	KNorm *string `json:"k_norm,omitempty"`
	Sinks *string `json:"sinks,omitempty"`
	// MLA names a latent-attention layer's stored factors (and their
	// shapes): q_a, q_a_norm, q_b, kv_a, kv_a_norm, kv_b (or GGUF k_b, v_b).
	MLA []FactorReport `json:"mla,omitempty"`
	// CrossAttention lists cross-attention tensors (not extracted).
	CrossAttention []string `json:"cross_attention,omitempty"`
}

// FactorReport is one stored latent-attention factor.
type FactorReport struct {
	Name   string  `json:"name"` // q_a, q_a_norm, q_b, kv_a, kv_a_norm, kv_b, k_b, v_b
	Tensor string  `json:"tensor"`
	Shape  []int64 `json:"shape"`
	DType  string  `json:"dtype"`
}

// ProjReport describes one projection's source.
type ProjReport struct {
	Tensors []string `json:"tensors"`
	Shape   [2]int   `json:"shape"` // [out, in] as extracted
	DType   string   `json:"dtype"`
	Fused   bool     `json:"fused"`
	Bias    *string  `json:"bias"`
	// RowOrder (Q and K): "half-split", RowOrderNativePairs (the model's
	// own RoPE pairs), or "interleaved (un-permuted on extraction)" for GGUF
	// files whose converter permuted the rows.
	RowOrder   string  `json:"row_order,omitempty"`
	Split      string  `json:"split,omitempty"`
	Transposed bool    `json:"transposed,omitempty"`
	LoRARank   int     `json:"lora_rank,omitempty"`
	LoRAScale  float64 `json:"lora_scale,omitempty"`
	// Effective says how a latent-attention matrix is built from Tensors.
	Effective string `json:"effective,omitempty"`
	// RankBound is the rank the latent dimension allows an effective
	// matrix (q_lora_rank, or kv_lora_rank + the shared rope rows).
	RankBound int `json:"rank_bound,omitempty"`
}

// NormReport describes the pre-attention norm.
type NormReport struct {
	Kind   NormKind `json:"kind"`
	Weight string   `json:"weight"`
	Bias   *string  `json:"bias"`
	Eps    float64  `json:"eps"`
}

// Describe reports every layer's tensors without reading tensor data.
func (m *Model) Describe() LayersReport {
	r := LayersReport{Schema: "qkv.layers/v1", Path: m.Checkpoint.Path, Format: string(m.Checkpoint.Format),
		Model: m.Geo, IsAdapter: m.IsAdapter, Adapter: m.Adapter, OtherStacks: m.OtherStacks, Layers: []LayerReport{},
		Warnings: []Warning{}}
	for _, u := range m.Geo.Unsupported {
		r.Warnings = append(r.Warnings, Warning{"unsupported", u})
	}
	for _, u := range m.Geo.Assumptions {
		r.Warnings = append(r.Warnings, Warning{"assumption", u})
	}
	name := func(t *Tensor) *string {
		if t == nil {
			return nil
		}
		n := t.Name
		return &n
	}
	for i := range m.Layers {
		ls := &m.Layers[i]
		lr := LayerReport{Index: ls.Index, Stack: ls.Stack, CrossAttention: ls.CrossAttention,
			QNorm: name(ls.QNorm), KNorm: name(ls.KNorm), Sinks: name(ls.Sinks)}
		for _, p := range Projections {
			ps := ls.Proj(p)
			if ps == nil {
				continue
			}
			pr := &ProjReport{Shape: [2]int{ps.Out, ps.In}, Fused: ps.Fused, Split: ps.Split, Transposed: ps.Transposed, Effective: ps.Effective}
			switch {
			case ps.LoRA != nil:
				pr.Tensors = []string{ps.LoRA.A.Name, ps.LoRA.B.Name}
				pr.DType = ps.LoRA.A.Type.Name()
				pr.LoRARank, pr.LoRAScale = ps.LoRA.Rank, ps.LoRA.Scale
			case ps.Factors != nil:
				for _, t := range ps.Factors {
					pr.Tensors = append(pr.Tensors, t.Name)
				}
				pr.DType = ps.Tensor.Type.Name()
			default:
				pr.Tensors = []string{ps.Tensor.Name}
				pr.DType = ps.Tensor.Type.Name()
			}
			if ml := m.Geo.MLA; ml != nil && ps.Effective != "" {
				switch p {
				case ProjQ:
					pr.RankBound = ml.QLoraRank
				case ProjK:
					pr.RankBound = ml.KVLoraRank + ml.QKRopeHeadDim
				case ProjV:
					pr.RankBound = ml.KVLoraRank
				}
			}
			if ps.Bias != nil {
				pr.Bias = name(ps.Bias)
			}
			if p == ProjQ || p == ProjK {
				switch {
				case ps.Permuted:
					pr.RowOrder = RowOrderInterleaved + " (un-permuted on extraction)"
				case m.Geo.RopeStyle == RopeInterleavedPairs:
					pr.RowOrder = RowOrderNativePairs
				default:
					pr.RowOrder = RowOrderHF
				}
			}
			switch p {
			case ProjQ:
				lr.Q = pr
			case ProjK:
				lr.K = pr
			case ProjV:
				lr.V = pr
			case ProjO:
				lr.O = pr
			}
		}
		if ls.NormWeight != nil {
			nr := &NormReport{Kind: m.Geo.Norm, Weight: ls.NormWeight.Name, Eps: m.Geo.NormEps}
			nr.Bias = name(ls.NormBias)
			lr.Norm = nr
		}
		if src := ls.MLA; src != nil {
			for _, f := range []struct {
				name string
				t    *Tensor
			}{{"q_a", src.QA}, {"q_a_norm", src.QANorm}, {"q_b", src.QB}, {"kv_a", src.KVA}, {"kv_a_norm", src.KVANorm},
				{"kv_b", src.KVB}, {"k_b", src.KB}, {"v_b", src.VB}} {
				if f.t != nil {
					lr.MLA = append(lr.MLA, FactorReport{Name: f.name, Tensor: f.t.Name, Shape: f.t.Shape, DType: f.t.Type.Name()})
				}
			}
		}
		r.Layers = append(r.Layers, lr)
	}
	return r
}

// ExtractedTensor is one array of a layer as `qkv extract` writes it.
type ExtractedTensor struct {
	Name  string // "layers.{i}.q", "layers.{i}.q_norm", ...
	Shape []int64
	Data  []float32
}

// Extracted lists a loaded layer's arrays under the names of the reference
// files (../shared/reference/SPEC.md): for each selected projection
// layers.{i}.{p} (…_delta for adapters) and layers.{i}.{p}_bias; then
// layers.{i}.q_norm / k_norm (effective multipliers), layers.{i}.sinks,
// and for latent attention the factors q_a, q_a_norm, q_b, kv_a,
// kv_a_norm, kv_b and k_nope, k_rope (q, k, v are the effective matrices).
func (m *Model) Extracted(l *Layer, projs []Projection) []ExtractedTensor {
	var out []ExtractedTensor
	pre := fmt.Sprintf("layers.%d.", l.Index)
	addM := func(name string, mat Matrix) {
		if !mat.Empty() {
			out = append(out, ExtractedTensor{pre + name, []int64{int64(mat.Rows), int64(mat.Cols)}, mat.Data})
		}
	}
	addV := func(name string, v []float32) {
		if v != nil {
			out = append(out, ExtractedTensor{pre + name, []int64{int64(len(v))}, v})
		}
	}
	want := map[Projection]bool{}
	for _, p := range projs {
		want[p] = true
		suffix := ""
		if m.IsAdapter {
			suffix = "_delta"
		}
		addM(string(p)+suffix, l.Matrix(p))
		addV(string(p)+"_bias", l.Bias(p))
	}
	if want[ProjQ] {
		addV("q_norm", l.QNorm)
	}
	if want[ProjK] {
		addV("k_norm", l.KNorm)
	}
	if want[ProjQ] || want[ProjK] {
		addV("sinks", l.Sinks)
	}
	if ml := l.MLA; ml != nil {
		if want[ProjQ] && !ml.QA.Empty() { // without q_a, q is q_proj itself
			addM("q_a", ml.QA)
			addV("q_a_norm", ml.QANorm)
			addM("q_b", ml.QB)
		}
		if want[ProjK] || want[ProjV] {
			addM("kv_a", ml.KVA)
			addV("kv_a_norm", ml.KVANorm)
			addM("kv_b", ml.KVB)
		}
		if want[ProjK] && m.Geo.MLA != nil {
			g := m.Geo
			nope, rope, d := g.MLA.QKNopeHeadDim, g.MLA.QKRopeHeadDim, g.DModel
			kn := NewMatrix(g.NHeads*nope, d)
			for h := 0; h < g.NHeads; h++ {
				copy(kn.Data[h*nope*d:(h+1)*nope*d], l.K.Data[h*(nope+rope)*d:(h*(nope+rope)+nope)*d])
			}
			addM("k_nope", kn)
			addM("k_rope", Matrix{Rows: rope, Cols: d, Data: l.K.Data[nope*d : (nope+rope)*d]})
		}
	}
	return out
}
