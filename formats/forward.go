package formats

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// This file hands out what a forward pass needs besides each layer's
// attention (LoadLayer): the block's norms and MLP (dense, or routed
// experts), the final norm and the LM head, and the settings that say how
// they combine (ForwardSpec). Like the attention contract, it states every
// choice, and lists what it does not model so that the forward refuses
// rather than computes something the model does not.

// Activations of an MLP, by what they compute (ForwardSpec.Activation).
const (
	// ActSiLU: x·sigmoid(x) (silu, swish).
	ActSiLU = "silu"
	// ActGELU: the exact GELU 0.5·x·(1 + erf(x/√2)) (gelu).
	ActGELU = "gelu"
	// ActGELUTanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
	// (gelu_new, gelu_pytorch_tanh).
	ActGELUTanh = "gelu_tanh"
	// ActBloomGELU: x·0.5·(1 + tanh(0.79788456·x·(1 + 0.044715·x²))), BLOOM's
	// literal constant.
	ActBloomGELU = "bloom_gelu"
	// ActReLU: max(x, 0).
	ActReLU = "relu"
	// ActQuickGELU: x·sigmoid(1.702·x).
	ActQuickGELU = "quick_gelu"
	// ActSwiGLUOAI: GPT-OSS's experts: gate = min(gate, limit), up =
	// clamp(up, −limit, limit), (up + 1)·gate·sigmoid(alpha·gate).
	ActSwiGLUOAI = "swiglu_oai"
)

// activationNames maps a config's activation name to what it computes.
var activationNames = map[string]string{
	"silu": ActSiLU, "swish": ActSiLU,
	"gelu":     ActGELU,
	"gelu_new": ActGELUTanh, "gelu_pytorch_tanh": ActGELUTanh,
	"bloom_gelu": ActBloomGELU,
	"relu":       ActReLU,
	"quick_gelu": ActQuickGELU,
	"swiglu_oai": ActSwiGLUOAI,
}

// Placements as ForwardSpec.Placement reports them.
const (
	PlacementPre      = "pre_norm"      // x + f(norm(x))
	PlacementPost     = "post_norm"     // norm(x + f(x)) (BERT)
	PlacementSubPost  = "sub_post_norm" // x + norm(f(x)) (OLMo 2)
	PlacementSandwich = "sandwich"      // x + norm2(f(norm1(x))) (Gemma 2/3)
)

// LM head sources (ForwardSpec.LMHead).
const (
	LMHeadTied     = "tied"     // the token-embedding matrix
	LMHeadSeparate = "separate" // its own matrix
	LMHeadNone     = "none"     // an encoder without one (BERT)
)

// MoESpec is how a mixture-of-experts layer routes each token.
type MoESpec struct {
	// Experts is the number of routed experts; TopK how many each token uses.
	Experts int `json:"experts"`
	TopK    int `json:"top_k"`
	// Scoring is "softmax" or "sigmoid" over the router logits.
	Scoring string `json:"scoring"`
	// SoftmaxAfterTopK: the top-k logits are chosen first and the softmax
	// runs over them alone (GPT-OSS).
	SoftmaxAfterTopK bool `json:"softmax_after_top_k,omitempty"`
	// NormTopK: the chosen scores are divided by their sum (plus
	// NormDenomEps).
	NormTopK     bool    `json:"norm_top_k"`
	NormDenomEps float64 `json:"norm_denominator_eps,omitempty"`
	// Scale multiplies the routing weights (routed_scaling_factor).
	Scale float64 `json:"scale"`
	// Groups > 1: group-limited routing: the experts form Groups equal
	// groups, each group is scored by GroupScore ("top2_sum": the sum of
	// its two best selection scores; "max": its best), only the TopKGroups
	// best groups stay, and the others' scores become 0 before the top-k.
	Groups     int    `json:"groups,omitempty"`
	TopKGroups int    `json:"top_k_groups,omitempty"`
	GroupScore string `json:"group_score,omitempty"`
	// ScoreCorrection: the expert choice uses score + the layer's
	// correction bias (DeepSeek V3's e_score_correction_bias); the
	// weights use the score alone.
	ScoreCorrection bool `json:"score_correction,omitempty"`
	// SwiGLULimit and SwiGLUAlpha are GPT-OSS's clamped SwiGLU.
	SwiGLULimit float64 `json:"swiglu_limit,omitempty"`
	SwiGLUAlpha float64 `json:"swiglu_alpha,omitempty"`
	// Formula says it in words.
	Formula string `json:"formula"`
}

// ForwardSpec is what a whole-model forward pass needs beyond the attention
// Geometry: how each block combines attention and MLP, the MLP's
// activation, mixture-of-experts routing, the final norm and LM head.
type ForwardSpec struct {
	Arch string `json:"arch"`
	// Placement is PlacementPre, PlacementPost, PlacementSubPost or
	// PlacementSandwich.
	Placement string `json:"placement"`
	// Norm and NormEps are the kind and epsilon of every block norm and of
	// the final norm; NormWeightOffset is 1 for Gemma's (1 + w) norms
	// (already added to every norm weight handed out).
	Norm             NormKind `json:"norm"`
	NormEps          float64  `json:"norm_eps"`
	NormWeightOffset float64  `json:"norm_weight_offset,omitempty"`
	// ParallelResidual: h + attn(·) + mlp(·) from the same h (GPT-NeoX,
	// Falcon); SharedNorm: the MLP reads the attention norm's output
	// (Falcon 7B) instead of its own norm of h.
	ParallelResidual bool `json:"parallel_residual"`
	SharedNorm       bool `json:"shared_norm,omitempty"`
	// Activation is one of the Act* names; ActivationName is how the
	// model names it.
	Activation     string `json:"activation"`
	ActivationName string `json:"activation_name"`
	// MoE is set when some layers route tokens to experts.
	MoE *MoESpec `json:"moe,omitempty"`
	// FinalNorm: a norm follows the last block.
	FinalNorm bool `json:"final_norm"`
	// LMHead is LMHeadTied, LMHeadSeparate or LMHeadNone.
	LMHead string `json:"lm_head"`
	// LMHeadBias: the LM head adds a bias (GPT-J).
	LMHeadBias bool `json:"lm_head_bias,omitempty"`
	// FinalLogitSoftcap > 0: logits = cap·tanh(logits/cap) (Gemma 2/3).
	FinalLogitSoftcap float64 `json:"final_logit_softcapping,omitempty"`
	// Layers is the number of blocks the forward runs (the config's
	// num_hidden_layers; layers past it, such as DeepSeek V3's
	// multi-token-prediction layer, are not part of the forward).
	Layers int `json:"layers"`
	// Unsupported lists what the forward does not model: Forward refuses.
	// Assumptions lists what the file does not say and qkv filled in.
	Unsupported []Unsupported `json:"unsupported,omitempty"`
	Assumptions []Unsupported `json:"assumptions,omitempty"`
}

// Norm is a block norm's weights (the effective multiplier: Gemma's 1 + w)
// and bias (nil for RMSNorm and bias-free LayerNorm).
type Norm struct {
	Weight, Bias []float32
}

// MLP is a feed-forward network in the DESIGN.md orientation: Gate and Up
// are [ff, d_model], Down is [d_model, ff]; Gate is empty for a plain MLP
// (down(act(up(x)))). Biases are nil when there are none.
type MLP struct {
	Gate, Up, Down             Matrix
	GateBias, UpBias, DownBias []float32
}

// MoE is a mixture-of-experts layer: the router [experts, d_model] (and its
// bias), DeepSeek V3's score-correction bias, an always-on shared MLP
// (DeepSeek), and the experts, decoded one at a time by Expert.
type MoE struct {
	Router          Matrix
	RouterBias      []float32
	ScoreCorrection []float32
	Shared          *MLP
	n               int
	load            func(e int) (*MLP, error)
}

// Experts is the number of routed experts.
func (e *MoE) Experts() int { return e.n }

// Expert decodes routed expert i.
func (e *MoE) Expert(i int) (*MLP, error) {
	if i < 0 || i >= e.n {
		return nil, fmt.Errorf("expert %d out of range (%d experts)", i, e.n)
	}
	return e.load(i)
}

// Block is one transformer block's weights for the forward pass. Attn is the
// attention layer as LoadLayer returns it (its NormWeight/NormBias is the
// pre-attention norm). PostAttnNorm normalises the attention output
// (Gemma 2/3, OLMo 2; BERT's attention.output.LayerNorm of x + attn);
// FFNNorm is the norm the MLP reads (Llama's post_attention_layernorm);
// PostFFNNorm normalises the MLP output (BERT: of a + mlp). Exactly one of
// MLP and MoE is set.
type Block struct {
	Index                              int
	Attn                               *Layer
	PostAttnNorm, FFNNorm, PostFFNNorm *Norm
	MLP                                *MLP
	MoE                                *MoE
}

// forwardArchs are the architectures whose whole block qkv models, each
// verified against a reference (../shared/reference/zoo forward files, or
// attn/testdata/forward's float64 script written from transformers'
// modeling code).
var forwardArchs = map[string]bool{
	"llama": true, "mistral": true, "mixtral": true, "qwen2": true, "qwen3": true, "qwen3_moe": true,
	"phi3": true, "gpt2": true, "gpt_neox": true, "bloom": true, "falcon": true, "bert": true,
	"gemma": true, "gemma2": true, "gemma3": true, "olmo2": true, "gpt_oss": true, "deepseek": true,
	"opt": true, "gpt_bigcode": true, "gptj": true,
}

// tensorRef is a tensor and how to read it.
type tensorRef struct {
	t *Tensor
	// conv1D: stored [in, out] (GPT-2).
	conv1D bool
}

// mlpSource names one MLP's tensors. gateUp is a fused [2·ff, d] tensor
// whose first ff rows are the gate (Phi-3, GGUF phi3 ffn_up).
type mlpSource struct {
	gate, up, down, gateUp             tensorRef
	gateBias, upBias, downBias, guBias *Tensor
}

// expertSource names a layer's routed experts: per-expert 2-D tensors
// (name pattern with %d), or stacked 3-D tensors [experts, ...].
type expertSource struct {
	n int
	// perExpert: one mlpSource per expert.
	perExpert []mlpSource
	// Stacked, in [experts, out, in] (GGUF, llama.cpp's converter).
	gate, up, down             *Tensor
	gateBias, upBias, downBias *Tensor
	// GPT-OSS Hugging Face form: gate_up [experts, d, 2·ff] with gate and
	// up interleaved in the last dimension (gate = even columns), down
	// [experts, ff, d], both stored [in, out].
	oaiGateUp, oaiGateUpBias, oaiDown, oaiDownBias *Tensor
}

// blockSource is one block's tensors outside attention.
type blockSource struct {
	postAttn, ffn, postFFN [2]*Tensor // weight, bias
	mlp                    *mlpSource
	router, routerBias     *Tensor
	scoreBias              *Tensor
	experts                *expertSource
	shared                 *mlpSource
}

// forwardStates caches each model's forward state (computed once: finding
// every block's tensors walks the tensor list per layer). A field of Model
// would do the same; Model belongs to find.go.
var forwardStates sync.Map // *Model → *forwardState

// forwardState is computed once per model.
type forwardState struct {
	spec   *ForwardSpec
	blocks map[int]*blockSource
	err    error
}

// ForwardSpec returns the settings of the model's forward pass, or an
// error when the model's layout cannot be read at all. What the forward
// does not model is listed in the spec's Unsupported (the forward refuses).
// It reads no tensor data.
func (m *Model) ForwardSpec() (*ForwardSpec, error) {
	st := m.forwardState()
	if st.err != nil {
		return nil, st.err
	}
	s := *st.spec
	return &s, nil
}

func (m *Model) forwardState() *forwardState {
	if v, ok := forwardStates.Load(m); ok {
		return v.(*forwardState)
	}
	st := &forwardState{}
	st.spec, st.blocks, st.err = m.buildForward()
	v, _ := forwardStates.LoadOrStore(m, st)
	return v.(*forwardState)
}

// fwdUnsupported appends one item.
func fwdUnsupported(l *[]Unsupported, kind, name, format string, args ...any) {
	*l = append(*l, Unsupported{Kind: kind, Name: name, Message: fmt.Sprintf(format, args...)})
}

func (m *Model) buildForward() (*ForwardSpec, map[int]*blockSource, error) {
	c := m.Checkpoint
	s := &ForwardSpec{Arch: m.archName, NormWeightOffset: m.Geo.NormWeightOffset}
	a := &m.arch
	if m.IsAdapter {
		return nil, nil, &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("a LoRA adapter has no forward pass of its own; run the base model")}
	}
	if m.entry == nil || !forwardArchs[a.Name] {
		name := m.archName
		if a.Name != "" {
			name = a.Name
		}
		fwdUnsupported(&s.Unsupported, "architecture", name, "the forward pass of architecture %q is not modeled by qkv (its blocks are not verified against a reference); --input-mode raw reruns each layer's attention alone", name)
		return s, nil, nil
	}
	gg := c.Format == FormatGGUF
	var conf cfg
	var meta ggufMeta
	if gg {
		meta = ggufMeta{c: c, f: c.GGUF(), prefix: m.archName + "."}
	} else {
		_, conf = hfModelType(cfg(c.Config))
		if conf == nil {
			conf = cfg{}
		}
	}

	// Block layout.
	switch a.Placement {
	case PostNorm:
		s.Placement = PlacementPost
	case SubPostNorm:
		s.Placement = PlacementSubPost
	default:
		s.Placement = PlacementPre
		if a.HF.PostAttnNorm != "" && a.HF.PostFFNNorm != "" {
			s.Placement = PlacementSandwich
		}
	}
	s.Norm = a.Norm
	if err := m.forwardEps(s, conf, meta); err != nil {
		return nil, nil, &Error{File: firstNonEmpty(c.ConfigPath, c.Path), Offset: -1, Err: err}
	}
	s.ParallelResidual = a.ParallelResidual
	switch {
	case gg && a.Name == "gpt_neox":
		if kv, ok := meta.lookup("use_parallel_residual"); ok {
			if b, ok := kv.Bool(); ok {
				s.ParallelResidual = b
			}
		}
	case !gg && a.Name == "falcon":
		s.ParallelResidual = conf.boolean("parallel_attn", true) || conf.boolean("new_decoder_architecture", conf.str("model_type") == "RefinedWeb")
	case !gg && a.ParallelSwitch != "":
		s.ParallelResidual = conf.boolean(a.ParallelSwitch, a.ParallelResidual)
	}

	// Activation.
	s.ActivationName = a.Activation
	if !gg {
		var keys []string
		switch a.Name {
		case "gemma", "gemma2", "gemma3":
			keys = []string{"hidden_activation", "hidden_act"}
		case "gpt2", "gpt_bigcode", "gptj", "opt":
			keys = []string{"activation_function"}
		case "falcon":
			keys = []string{"activation"}
		case "bloom", "gpt_oss":
			// Fixed by the modeling code (bloom_gelu; GPT-OSS's clamped SwiGLU).
		default:
			keys = []string{"hidden_act"}
		}
		for _, k := range keys {
			if v := conf.str(k); v != "" {
				s.ActivationName = v
				break
			}
		}
	}
	if a.Name == "gpt_oss" {
		s.ActivationName = "swiglu_oai"
	}
	s.Activation = activationNames[s.ActivationName]
	if s.Activation == "" {
		fwdUnsupported(&s.Unsupported, "config_key", "hidden_act", "model uses activation %q, which qkv's forward pass does not implement", s.ActivationName)
	}

	// Config keys that change the forward and are not modeled.
	if !gg {
		m.forwardConfigChecks(s, conf)
	} else {
		for _, k := range []string{"logit_scale", "embedding_scale", "residual_scale", "attention.scale"} {
			if _, ok := meta.lookup(k); ok {
				fwdUnsupported(&s.Unsupported, "metadata_key", meta.prefix+k, "model sets %s%s, which qkv's forward pass does not implement", meta.prefix, k)
			}
		}
	}

	// Final logit softcap.
	if gg {
		if v, ok, err := meta.positive("final_logit_softcapping"); err != nil {
			return nil, nil, &Error{File: c.Path, Offset: -1, Err: err}
		} else if ok {
			s.FinalLogitSoftcap = v
		}
	} else if v, ok, err := conf.positive("final_logit_softcapping", ""); err != nil {
		return nil, nil, &Error{File: firstNonEmpty(c.ConfigPath, c.Path), Offset: -1, Err: err}
	} else if ok {
		s.FinalLogitSoftcap = v
	}
	if s.FinalLogitSoftcap > 0 && a.Name != "gemma2" && a.Name != "gemma3" {
		fwdUnsupported(&s.Unsupported, "config_key", "final_logit_softcapping", "model caps its logits (final_logit_softcapping %g), which the %s forward does not do in Hugging Face", s.FinalLogitSoftcap, a.Name)
	}

	// How many blocks run.
	s.Layers = len(m.Layers)
	if m.Geo.NLayers > 0 && m.Geo.NLayers < s.Layers {
		s.Layers = m.Geo.NLayers
	}
	for i, l := range m.Layers {
		if l.Index != i {
			fwdUnsupported(&s.Unsupported, "tensor", fmt.Sprintf("layer %d", i), "the model's layers are not numbered 0..%d (layer %d is missing), so the residual stream cannot be built", len(m.Layers)-1, i)
			break
		}
		if len(l.CrossAttention) > 0 {
			fwdUnsupported(&s.Unsupported, "tensor", l.CrossAttention[0], "layer %d has cross-attention, which qkv's forward pass does not run", l.Index)
			break
		}
	}

	// Blocks.
	blocks := map[int]*blockSource{}
	var moeLayers []int
	for i := 0; i < s.Layers; i++ {
		ls := m.Layer(i)
		if ls == nil {
			break
		}
		bs, err := m.blockSource(ls, s)
		if err != nil {
			return nil, nil, err
		}
		blocks[i] = bs
		if bs.experts != nil {
			moeLayers = append(moeLayers, i)
		}
	}
	if len(moeLayers) > 0 {
		ms, err := m.moeSpec(s, conf, meta, blocks[moeLayers[0]])
		if err != nil {
			return nil, nil, &Error{File: firstNonEmpty(c.ConfigPath, c.Path), Offset: -1, Err: err}
		}
		s.MoE = ms
		for _, i := range moeLayers {
			b := blocks[i]
			if b.experts.n != ms.Experts {
				return nil, nil, &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("layer %d has %d experts, the configuration says %d", i, b.experts.n, ms.Experts)}
			}
			if ms.ScoreCorrection != (b.scoreBias != nil) {
				fwdUnsupported(&s.Unsupported, "tensor", fmt.Sprintf("layer %d e_score_correction_bias", i), "layer %d's router score-correction bias is %s, but the routing rule %s one", i, presence(b.scoreBias != nil), map[bool]string{true: "needs", false: "has no use for"}[ms.ScoreCorrection])
			}
		}
		if a.Name == "deepseek" && !gg {
			if k, _, ok := conf.int("first_k_dense_replace"); ok && len(moeLayers) > 0 && moeLayers[0] != k {
				fwdUnsupported(&s.Unsupported, "config_key", "first_k_dense_replace", "first_k_dense_replace is %d but the first layer with experts is %d", k, moeLayers[0])
			}
		}
	}
	m.finalSources(s, conf, meta)
	m.modelLevelChecks(s)
	return s, blocks, nil
}

func presence(b bool) string {
	if b {
		return "present"
	}
	return "absent"
}

// forwardEps reads the block norms' epsilon (BERT and OLMo 2 have no
// pre-attention norm, so the geometry does not carry it).
func (m *Model) forwardEps(s *ForwardSpec, conf cfg, meta ggufMeta) error {
	if m.Geo.Norm != NormNone && m.Geo.Norm != "" && m.Geo.NormEps > 0 {
		s.NormEps = m.Geo.NormEps
		return nil
	}
	if meta.f != nil {
		for _, k := range []string{"attention.layer_norm_rms_epsilon", "attention.layer_norm_epsilon"} {
			if e, ok, err := meta.epsilon(k); err != nil {
				return err
			} else if ok {
				s.NormEps = e
				return nil
			}
		}
	} else {
		eps, _, ok, err := conf.epsilon("rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "norm_epsilon", "layernorm_epsilon", "norm_eps")
		if err != nil {
			return err
		}
		if ok {
			s.NormEps = eps
			return nil
		}
	}
	switch s.Norm {
	case NormLayerNorm:
		s.NormEps = 1e-5
		fwdUnsupported(&s.Assumptions, "config_key", "layer_norm_eps", "no norm epsilon is given: qkv uses nn.LayerNorm's default 1e-5")
	default:
		s.NormEps = 1e-6
		fwdUnsupported(&s.Assumptions, "config_key", "rms_norm_eps", "no norm epsilon is given: qkv uses 1e-6")
	}
	return nil
}

// forwardConfigChecks refuses config.json settings that change the forward
// pass and that qkv does not model.
func (m *Model) forwardConfigChecks(s *ForwardSpec, conf cfg) {
	type kv struct {
		key string
		ok  func(v any) bool
	}
	absentOrFalse := func(v any) bool { b, isBool := v.(bool); return v == nil || isBool && !b }
	absentOrOne := func(v any) bool { f, ok := anyNum(v); return v == nil || ok && f == 1 }
	checks := []kv{
		{"logit_scale", absentOrOne}, {"logits_scaling", absentOrOne}, {"embedding_multiplier", absentOrOne},
		{"residual_multiplier", absentOrOne}, {"scale_emb", absentOrOne}, {"add_cross_attention", absentOrFalse},
	}
	switch m.arch.Name {
	case "bloom":
		checks = append(checks, kv{"apply_residual_connection_post_layernorm", absentOrFalse})
	case "bert":
		checks = append(checks, kv{"is_decoder", absentOrFalse})
	case "deepseek":
		mt := conf.str("model_type")
		checks = append(checks, kv{"scoring_func", func(v any) bool {
			want := "softmax"
			if mt == "deepseek_v3" {
				want = "sigmoid"
			}
			return v == nil || v == want
		}}, kv{"topk_method", func(v any) bool {
			if mt == "deepseek_v3" {
				return v == nil || v == "noaux_tc"
			}
			return v == nil || v == "greedy" || v == "group_limited_greedy"
		}})
		if mt == "deepseek_v2" {
			// transformers' DeepseekV2Moe never renormalises; DeepSeek's
			// own code does when this is set: the two disagree.
			checks = append(checks, kv{"norm_topk_prob", absentOrFalse})
		}
	case "opt":
		d := m.Geo.DModel
		// word_embed_proj_dim ≠ hidden_size adds project_in/project_out
		// (OPT-350m).
		checks = append(checks, kv{"word_embed_proj_dim", func(v any) bool { f, ok := anyNum(v); return v == nil || ok && int(f) == d }},
			kv{"_remove_final_layer_norm", absentOrFalse})
	case "gpt_oss":
		checks = append(checks, kv{"swiglu_limit", func(v any) bool { f, ok := anyNum(v); return v == nil || ok && f > 0 }})
	}
	for _, c := range checks {
		v, present := conf[c.key]
		if present && !c.ok(v) {
			fwdUnsupported(&s.Unsupported, "config_key", c.key, "model sets %s = %v, which qkv's forward pass of %s does not implement", c.key, describeValue(v), m.arch.Name)
		}
	}
}

// layerPrefix returns the name prefix of a layer's tensors ("model.layers.3."
// or "blk.3.").
func (m *Model) layerPrefix(ls *LayerSource) string {
	if m.Checkpoint.Format == FormatGGUF {
		return fmt.Sprintf("blk.%d.", ls.Number)
	}
	for _, p := range []*ProjSource{ls.O, ls.Q, ls.K, ls.V} {
		if p == nil || p.Tensor == nil {
			continue
		}
		if s := hfLayerRe().FindStringSubmatch(p.Tensor.Name); s != nil && s[2] == strconv.Itoa(ls.Number) {
			return strings.TrimSuffix(p.Tensor.Name, s[3])
		}
	}
	return ""
}

// attentionTensors lists the tensors LoadLayer reads for a layer.
func attentionTensors(ls *LayerSource) map[*Tensor]bool {
	used := map[*Tensor]bool{}
	add := func(ts ...*Tensor) {
		for _, t := range ts {
			if t != nil {
				used[t] = true
			}
		}
	}
	for _, p := range []*ProjSource{ls.Q, ls.K, ls.V, ls.O} {
		if p != nil {
			add(p.Tensor, p.Bias)
			add(p.Factors...)
		}
	}
	add(ls.NormWeight, ls.NormBias, ls.QNorm, ls.KNorm, ls.Sinks)
	if x := ls.MLA; x != nil {
		add(x.QA, x.QANorm, x.QB, x.KVA, x.KVANorm, x.KVB, x.KB, x.VB)
	}
	return used
}

// blockSource finds a layer's tensors outside attention and refuses (into
// s.Unsupported) what it cannot place.
func (m *Model) blockSource(ls *LayerSource, s *ForwardSpec) (*blockSource, error) {
	c := m.Checkpoint
	gg := c.Format == FormatGGUF
	a := &m.arch
	prefix := m.layerPrefix(ls)
	if prefix == "" {
		return nil, &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("layer %d: cannot tell its tensor-name prefix", ls.Index)}
	}
	used := attentionTensors(ls)
	get := func(name string) *Tensor {
		t := c.Tensor(prefix + name)
		if t != nil {
			used[t] = true
		}
		return t
	}
	// first returns the first alternative present (HF module names get
	// ".weight"/".bias"; GGUF names too).
	first := func(names string, suffix string) *Tensor {
		for _, n := range alternatives(names) {
			if t := get(n + suffix); t != nil {
				return t
			}
		}
		return nil
	}
	bs := &blockSource{}
	d := m.Geo.DModel
	vecCheck := func(t *Tensor, n int, what string) error {
		if t != nil && (len(t.Shape) != 1 || int(t.Shape[0]) != n) {
			return &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("%s has shape %v, expected [%d]", what, t.Shape, n)}
		}
		return nil
	}
	norm := func(dst *[2]*Tensor, names, what string) error {
		dst[0], dst[1] = first(names, ".weight"), first(names, ".bias")
		if dst[0] == nil && dst[1] != nil {
			return &Error{File: c.Path, Tensor: dst[1].Name, Offset: -1, Err: fmt.Errorf("%s has a bias but no weight", what)}
		}
		if err := vecCheck(dst[0], d, what); err != nil {
			return err
		}
		return vecCheck(dst[1], d, what+" bias")
	}

	// Norms outside attention.
	n := a.HF
	postAttn, ffnNorm, postFFN := n.PostAttnNorm, n.FFNNorm, n.PostFFNNorm
	if gg {
		postAttn, ffnNorm, postFFN = "", "", ""
		if n.PostAttnNorm != "" {
			postAttn = "post_attention_norm|attn_output_norm"
		}
		if n.FFNNorm != "" {
			ffnNorm = "ffn_norm|attn_norm_2"
			if n.PostAttnNorm == "" {
				// GPT-OSS: llama.cpp names the pre-MLP norm post_attention_norm.
				ffnNorm += "|post_attention_norm"
			}
		}
		if n.PostFFNNorm != "" {
			postFFN = "post_ffw_norm|layer_output_norm"
		}
	}
	for _, x := range []struct {
		dst   *[2]*Tensor
		names string
		what  string
	}{{&bs.postAttn, postAttn, "post-attention norm"}, {&bs.ffn, ffnNorm, "MLP norm"}, {&bs.postFFN, postFFN, "post-MLP norm"}} {
		if x.names == "" {
			continue
		}
		if err := norm(x.dst, x.names, x.what); err != nil {
			return nil, err
		}
	}

	// Which norms the placement needs.
	need := func(t *Tensor, what string) {
		if t == nil {
			fwdUnsupported(&s.Unsupported, "tensor", fmt.Sprintf("layer %d %s", ls.Index, what), "layer %d has no %s, which the %s block reads", ls.Index, what, a.Name)
		}
	}
	switch s.Placement {
	case PlacementPost:
		need(bs.postAttn[0], "post-attention norm")
		need(bs.postFFN[0], "post-MLP norm")
	case PlacementSubPost:
		need(bs.postAttn[0], "post-attention norm")
		need(bs.postFFN[0], "post-MLP norm")
	case PlacementSandwich:
		need(ls.NormWeight, "pre-attention norm")
		need(bs.postAttn[0], "post-attention norm")
		need(bs.ffn[0], "pre-MLP norm")
		need(bs.postFFN[0], "post-MLP norm")
	default:
		need(ls.NormWeight, "pre-attention norm")
		switch {
		case bs.ffn[0] != nil:
		case s.ParallelResidual && (a.Name == "falcon" || a.Name == "gptj"):
			s.SharedNorm = true
		default:
			need(nil, "MLP norm")
		}
	}

	// Dense MLP.
	conv := a.Conv1D && !gg
	ref := func(t *Tensor) tensorRef { return tensorRef{t: t, conv1D: conv && t != nil} }
	mlp := &mlpSource{}
	if gg {
		mlp.gate, mlp.gateBias = ref(get("ffn_gate.weight")), get("ffn_gate.bias")
		mlp.up, mlp.upBias = ref(get("ffn_up.weight")), get("ffn_up.bias")
		mlp.down, mlp.downBias = ref(get("ffn_down.weight")), get("ffn_down.bias")
	} else {
		mlp.gate, mlp.gateBias = ref(first(n.Gate, ".weight")), first(n.Gate, ".bias")
		mlp.up, mlp.upBias = ref(first(n.Up, ".weight")), first(n.Up, ".bias")
		mlp.down, mlp.downBias = ref(first(n.Down, ".weight")), first(n.Down, ".bias")
		mlp.gateUp, mlp.guBias = ref(first(n.GateUp, ".weight")), first(n.GateUp, ".bias")
	}
	hasDense := mlp.up.t != nil || mlp.gateUp.t != nil || mlp.down.t != nil || mlp.gate.t != nil

	// Experts.
	var ex *expertSource
	if gg {
		bs.router, bs.routerBias = get("ffn_gate_inp.weight"), get("ffn_gate_inp.bias")
		bs.scoreBias = get("exp_probs_b.bias")
		if bs.router != nil {
			ex = &expertSource{gate: get("ffn_gate_exps.weight"), up: get("ffn_up_exps.weight"), down: get("ffn_down_exps.weight"),
				gateBias: get("ffn_gate_exps.bias"), upBias: get("ffn_up_exps.bias"), downBias: get("ffn_down_exps.bias")}
			if ex.down == nil {
				// Older llama.cpp files: one 2-D tensor per expert.
				ex.down = nil
				for e := 0; ; e++ {
					dn := get(fmt.Sprintf("ffn_down.%d.weight", e))
					if dn == nil {
						break
					}
					ex.perExpert = append(ex.perExpert, mlpSource{gate: ref(get(fmt.Sprintf("ffn_gate.%d.weight", e))),
						up: ref(get(fmt.Sprintf("ffn_up.%d.weight", e))), down: ref(dn)})
				}
			}
			sh := &mlpSource{gate: ref(get("ffn_gate_shexp.weight")), up: ref(get("ffn_up_shexp.weight")), down: ref(get("ffn_down_shexp.weight"))}
			if sh.up.t != nil || sh.down.t != nil || sh.gate.t != nil {
				bs.shared = sh
			}
		}
	} else if n.Router != "" {
		routers := alternatives(n.Router)
		bs.router, bs.routerBias = get(routers[0]+".weight"), get(routers[0]+".bias")
		for _, r := range routers[1:] {
			if strings.HasSuffix(r, "e_score_correction_bias") {
				bs.scoreBias = get(r)
			}
		}
		if bs.router != nil {
			var err error
			if ex, err = m.hfExperts(n.Experts, get, conv); err != nil {
				return nil, err
			}
			if n.Shared != "" {
				sh := &mlpSource{}
				for _, name := range alternatives(n.Shared) {
					leaf := name[strings.LastIndexByte(name, '.')+1:]
					switch leaf {
					case "gate_proj":
						sh.gate = ref(get(name + ".weight"))
					case "up_proj":
						sh.up = ref(get(name + ".weight"))
					case "down_proj":
						sh.down = ref(get(name + ".weight"))
					}
				}
				if sh.up.t != nil || sh.down.t != nil || sh.gate.t != nil {
					bs.shared = sh
				}
			}
		}
	}
	switch {
	case ex != nil && hasDense:
		fwdUnsupported(&s.Unsupported, "tensor", prefix+"mlp", "layer %d has both a dense MLP and routed experts, which qkv's forward pass does not combine", ls.Index)
	case ex != nil:
		if err := m.checkExperts(ls.Index, bs, ex, s); err != nil {
			return nil, err
		}
		bs.experts = ex
	case hasDense:
		if err := m.checkMLP(ls.Index, mlp, s, "MLP"); err != nil {
			return nil, err
		}
		bs.mlp = mlp
	default:
		fwdUnsupported(&s.Unsupported, "tensor", fmt.Sprintf("layer %d MLP", ls.Index), "layer %d has no MLP tensors the %s layout names", ls.Index, a.Name)
	}
	if bs.shared != nil {
		if err := m.checkMLP(ls.Index, bs.shared, s, "shared expert"); err != nil {
			return nil, err
		}
	}

	// Every tensor of the layer must have been placed.
	ignore := map[string]bool{}
	if !gg {
		for _, x := range alternatives(n.Ignore) {
			ignore[x] = true
		}
	} else {
		ignore["attn_rot_embd"] = true
	}
	var leftover []string
	for _, t := range c.Tensors {
		if !strings.HasPrefix(t.Name, prefix) || used[t] || used[t.scaleFor] {
			continue
		}
		rest := strings.TrimPrefix(t.Name, prefix)
		if mod, _ := splitParam(rest); ignore[mod] || ignore[rest] {
			continue
		}
		leftover = append(leftover, t.Name)
	}
	sort.Strings(leftover)
	for i, name := range leftover {
		if i == 3 {
			fwdUnsupported(&s.Unsupported, "tensor", prefix+"…", "layer %d has %d more tensors qkv's forward pass does not use", ls.Index, len(leftover)-3)
			break
		}
		fwdUnsupported(&s.Unsupported, "tensor", name, "tensor %s is part of layer %d but not of the %s block qkv computes; the forward would differ from the model", name, ls.Index, a.Name)
	}
	return bs, nil
}

// hfExperts reads a Hugging Face expert list: per-expert names with N for the
// index (Mixtral w1/w2/w3, Qwen3-MoE and DeepSeek gate/up/down_proj), or
// GPT-OSS's stacked gate_up_proj/down_proj.
func (m *Model) hfExperts(names string, get func(string) *Tensor, conv bool) (*expertSource, error) {
	ex := &expertSource{}
	var perExpert []string
	for _, name := range alternatives(names) {
		if strings.Contains(name, ".N.") {
			perExpert = append(perExpert, name)
			continue
		}
		switch name[strings.LastIndexByte(name, '.')+1:] {
		case "gate_up_proj":
			ex.oaiGateUp = get(name)
		case "gate_up_proj_bias":
			ex.oaiGateUpBias = get(name)
		case "down_proj":
			ex.oaiDown = get(name)
		case "down_proj_bias":
			ex.oaiDownBias = get(name)
		}
	}
	if len(perExpert) > 0 {
		for e := 0; e < 1<<20; e++ {
			src := mlpSource{}
			found := false
			for _, pat := range perExpert {
				name := strings.Replace(pat, ".N.", "."+strconv.Itoa(e)+".", 1)
				w, b := get(name+".weight"), get(name+".bias")
				if w == nil {
					continue
				}
				found = true
				r := tensorRef{t: w, conv1D: conv}
				switch name[strings.LastIndexByte(name, '.')+1:] {
				case "w1", "gate_proj":
					src.gate, src.gateBias = r, b
				case "w3", "up_proj":
					src.up, src.upBias = r, b
				case "w2", "down_proj":
					src.down, src.downBias = r, b
				}
			}
			if !found {
				break
			}
			ex.perExpert = append(ex.perExpert, src)
		}
	}
	return ex, nil
}

// checkMLP checks one dense MLP's shapes (d_model known; ff from the down
// projection) and records its layout.
func (m *Model) checkMLP(layer int, src *mlpSource, s *ForwardSpec, what string) error {
	c := m.Checkpoint
	d := m.Geo.DModel
	dims := func(r tensorRef) (int, int, bool) {
		if r.t == nil || len(r.t.Shape) != 2 {
			return 0, 0, false
		}
		out, in := int(r.t.Shape[0]), int(r.t.Shape[1])
		if r.conv1D {
			out, in = in, out
		}
		return out, in, true
	}
	bad := func(t *Tensor, format string, args ...any) error {
		return &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("layer %d %s: %s", layer, what, fmt.Sprintf(format, args...))}
	}
	if src.down.t == nil {
		fwdUnsupported(&s.Unsupported, "tensor", fmt.Sprintf("layer %d %s down projection", layer, what), "layer %d's %s has no down projection", layer, what)
		return nil
	}
	dOut, ff, ok := dims(src.down)
	if !ok || dOut != d {
		return bad(src.down.t, "down projection has shape %v, expected [%d, ff]", src.down.t.Shape, d)
	}
	// GGUF phi3: ffn_up holds gate|up with no ffn_gate.
	if src.gate.t == nil && src.gateUp.t == nil && src.up.t != nil && m.arch.MLP == MLPGated {
		if o, _, ok := dims(src.up); ok && o == 2*ff {
			src.gateUp, src.up = src.up, tensorRef{}
			src.guBias, src.upBias = src.upBias, nil
		}
	}
	check := func(r tensorRef, rows int, name string) error {
		if r.t == nil {
			return nil
		}
		o, i, ok := dims(r)
		if !ok || o != rows || i != d {
			return bad(r.t, "%s has shape %v, expected [%d, %d] (out, in)", name, r.t.Shape, rows, d)
		}
		return nil
	}
	for _, x := range []struct {
		r    tensorRef
		rows int
		name string
	}{{src.gate, ff, "gate projection"}, {src.up, ff, "up projection"}, {src.gateUp, 2 * ff, "fused gate/up projection"}} {
		if err := check(x.r, x.rows, x.name); err != nil {
			return err
		}
	}
	for _, x := range []struct {
		t    *Tensor
		n    int
		name string
	}{{src.gateBias, ff, "gate bias"}, {src.upBias, ff, "up bias"}, {src.downBias, d, "down bias"}, {src.guBias, 2 * ff, "gate/up bias"}} {
		if x.t != nil && (len(x.t.Shape) != 1 || int(x.t.Shape[0]) != x.n) {
			return bad(x.t, "%s has shape %v, expected [%d]", x.name, x.t.Shape, x.n)
		}
	}
	gated := src.gate.t != nil || src.gateUp.t != nil
	switch {
	case src.up.t == nil && src.gateUp.t == nil:
		fwdUnsupported(&s.Unsupported, "tensor", fmt.Sprintf("layer %d %s up projection", layer, what), "no layer %d %s up projection: the forward pass needs one", layer, what)
	case gated != (m.arch.MLP != MLPPlain):
		kind := map[bool]string{true: "a gated", false: "a plain"}
		fwdUnsupported(&s.Unsupported, "tensor", fmt.Sprintf("layer %d %s", layer, what), "layer %d %s is %s MLP, but the %s layout has %s one", layer, what, kind[gated], m.arch.Name, kind[m.arch.MLP != MLPPlain])
	}
	return nil
}

// checkExperts checks a MoE layer's router and experts.
func (m *Model) checkExperts(layer int, bs *blockSource, ex *expertSource, s *ForwardSpec) error {
	c := m.Checkpoint
	d := m.Geo.DModel
	r := bs.router
	if len(r.Shape) != 2 || int(r.Shape[1]) != d || r.Shape[0] < 1 || r.Shape[0] > 1<<16 {
		return &Error{File: c.Path, Tensor: r.Name, Offset: -1, Err: fmt.Errorf("router has shape %v, expected [experts, %d]", r.Shape, d)}
	}
	n := int(r.Shape[0])
	for _, x := range []*Tensor{bs.routerBias, bs.scoreBias} {
		if x != nil && (len(x.Shape) != 1 || int(x.Shape[0]) != n) {
			return &Error{File: c.Path, Tensor: x.Name, Offset: -1, Err: fmt.Errorf("router bias has shape %v, expected [%d]", x.Shape, n)}
		}
	}
	ex.n = n
	bad := func(t *Tensor, format string, args ...any) error {
		return &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("layer %d experts: %s", layer, fmt.Sprintf(format, args...))}
	}
	switch {
	case len(ex.perExpert) > 0:
		if len(ex.perExpert) != n {
			fwdUnsupported(&s.Unsupported, "tensor", fmt.Sprintf("layer %d experts", layer), "layer %d has %d expert MLPs but a router over %d experts", layer, len(ex.perExpert), n)
			return nil
		}
		for e := range ex.perExpert {
			if err := m.checkMLP(layer, &ex.perExpert[e], s, fmt.Sprintf("expert %d", e)); err != nil {
				return err
			}
		}
	case ex.oaiGateUp != nil || ex.oaiDown != nil:
		gu, dn := ex.oaiGateUp, ex.oaiDown
		if gu == nil || dn == nil || ex.oaiGateUpBias == nil || ex.oaiDownBias == nil {
			fwdUnsupported(&s.Unsupported, "tensor", fmt.Sprintf("layer %d experts", layer), "layer %d's GPT-OSS experts lack gate_up_proj, down_proj or their biases", layer)
			return nil
		}
		if len(dn.Shape) != 3 || int(dn.Shape[0]) != n || int(dn.Shape[2]) != d {
			return bad(dn, "down_proj has shape %v, expected [%d, ff, %d]", dn.Shape, n, d)
		}
		ff := int(dn.Shape[1])
		if len(gu.Shape) != 3 || int(gu.Shape[0]) != n || int(gu.Shape[1]) != d || int(gu.Shape[2]) != 2*ff {
			return bad(gu, "gate_up_proj has shape %v, expected [%d, %d, %d]", gu.Shape, n, d, 2*ff)
		}
		if b := ex.oaiGateUpBias; len(b.Shape) != 2 || int(b.Shape[0]) != n || int(b.Shape[1]) != 2*ff {
			return bad(b, "gate_up_proj_bias has shape %v, expected [%d, %d]", b.Shape, n, 2*ff)
		}
		if b := ex.oaiDownBias; len(b.Shape) != 2 || int(b.Shape[0]) != n || int(b.Shape[1]) != d {
			return bad(b, "down_proj_bias has shape %v, expected [%d, %d]", b.Shape, n, d)
		}
	case ex.down != nil:
		dn := ex.down
		if len(dn.Shape) != 3 || int(dn.Shape[0]) != n || int(dn.Shape[1]) != d {
			return bad(dn, "down projections have shape %v, expected [%d, %d, ff]", dn.Shape, n, d)
		}
		ff := int(dn.Shape[2])
		for _, x := range []struct {
			t    *Tensor
			name string
		}{{ex.gate, "gate"}, {ex.up, "up"}} {
			if x.t == nil {
				fwdUnsupported(&s.Unsupported, "tensor", fmt.Sprintf("layer %d experts %s", layer, x.name), "layer %d's experts have no %s projections", layer, x.name)
				return nil
			}
			if len(x.t.Shape) != 3 || int(x.t.Shape[0]) != n || int(x.t.Shape[1]) != ff || int(x.t.Shape[2]) != d {
				return bad(x.t, "%s projections have shape %v, expected [%d, %d, %d]", x.name, x.t.Shape, n, ff, d)
			}
		}
		for _, x := range []struct {
			t    *Tensor
			cols int
		}{{ex.gateBias, ff}, {ex.upBias, ff}, {ex.downBias, d}} {
			if x.t != nil && (len(x.t.Shape) != 2 || int(x.t.Shape[0]) != n || int(x.t.Shape[1]) != x.cols) {
				return bad(x.t, "bias has shape %v, expected [%d, %d]", x.t.Shape, n, x.cols)
			}
		}
	default:
		fwdUnsupported(&s.Unsupported, "tensor", fmt.Sprintf("layer %d experts", layer), "layer %d has a router but no expert tensors qkv can read (GPT-OSS's MXFP4 _blocks/_scales form is not read)", layer)
	}
	return nil
}

// moeSpec reads the routing rule of the architecture's MoE layers.
func (m *Model) moeSpec(s *ForwardSpec, conf cfg, meta ggufMeta, first *blockSource) (*MoESpec, error) {
	a := &m.arch
	gg := meta.f != nil
	ms := &MoESpec{Scoring: "softmax", Scale: 1, Experts: first.experts.n}
	count := func(hfKeys []string, ggufKey string) (int, bool, error) {
		if gg {
			return meta.count(ggufKey)
		}
		for _, k := range hfKeys {
			if v, ok, err := conf.count(k, ""); err != nil || ok {
				return v, ok, err
			}
		}
		return 0, false, nil
	}
	var ok bool
	var err error
	if ms.TopK, ok, err = count([]string{"num_experts_per_tok", "experts_per_token"}, "expert_used_count"); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("the number of experts per token is not given (num_experts_per_tok / %sexpert_used_count)", meta.prefix)
	}
	if n, ok, err := count([]string{"num_local_experts", "num_experts", "n_routed_experts"}, "expert_count"); err != nil {
		return nil, err
	} else if ok && n != ms.Experts {
		return nil, fmt.Errorf("the configuration says %d experts, the router has %d", n, ms.Experts)
	}
	if ms.TopK > ms.Experts {
		return nil, fmt.Errorf("%d experts per token but only %d experts", ms.TopK, ms.Experts)
	}
	ggBool := func(key string, def bool) (bool, bool) {
		if kv, ok := meta.lookup(key); ok {
			if b, ok := kv.Bool(); ok {
				return b, true
			}
		}
		return def, false
	}
	switch a.Name {
	case "mixtral", "llama", "mistral":
		ms.NormTopK = true
		ms.Formula = "softmax over all experts' router logits, top-k, the k weights divided by their sum (Mixtral)"
	case "qwen3_moe":
		if gg {
			var given bool
			if ms.NormTopK, given = ggBool("expert_weights_norm", true); !given {
				fwdUnsupported(&s.Assumptions, "metadata_key", meta.prefix+"expert_weights_norm", "the GGUF does not say whether top-k weights are renormalised (Hugging Face's norm_topk_prob): qkv renormalises, as llama.cpp does")
			}
		} else {
			ms.NormTopK = conf.boolean("norm_topk_prob", false)
		}
		ms.Formula = "softmax over all experts' router logits, top-k" + map[bool]string{true: ", the k weights divided by their sum", false: " (weights not renormalised: norm_topk_prob false)"}[ms.NormTopK]
	case "gpt_oss":
		ms.SoftmaxAfterTopK = true
		ms.SwiGLULimit, ms.SwiGLUAlpha = 7, 1.702
		if !gg {
			if v, ok := conf.num("swiglu_limit"); ok {
				ms.SwiGLULimit = v
			}
		} else if v, ok, err := meta.positive("swiglu_limit"); err != nil {
			return nil, err
		} else if ok {
			ms.SwiGLULimit = v
		} else {
			fwdUnsupported(&s.Assumptions, "metadata_key", meta.prefix+"swiglu_limit", "the GGUF does not carry the SwiGLU clamp: qkv uses GPT-OSS's 7.0")
		}
		ms.Formula = fmt.Sprintf("top-k of the router logits (with the router bias), softmax over those k; experts: gate_up = x·W + b split into even (gate) and odd (up) columns, gate = min(gate, %g), up = clamp(up, −%g, %g), out = ((up + 1)·gate·sigmoid(%g·gate))·W_down + b_down", ms.SwiGLULimit, ms.SwiGLULimit, ms.SwiGLULimit, ms.SwiGLUAlpha)
	case "deepseek":
		if err := m.deepseekRouting(ms, s, conf, meta); err != nil {
			return nil, err
		}
	default:
		fwdUnsupported(&s.Unsupported, "architecture", a.Name, "the mixture-of-experts routing of %s is not modeled", a.Name)
	}
	return ms, nil
}

// deepseekRouting reads DeepSeek V2/V3's routing: V3 (sigmoid scores with
// the correction bias, groups scored by their top-2 sum, renormalised, times
// routed_scaling_factor); V2 (softmax, greedy or group-limited by the
// group maximum, times routed_scaling_factor, never renormalised in
// transformers).
func (m *Model) deepseekRouting(ms *MoESpec, s *ForwardSpec, conf cfg, meta ggufMeta) error {
	if meta.f == nil {
		v3 := conf.str("model_type") == "deepseek_v3"
		groups, _, okG := conf.int("n_group")
		topkGroups, _, okT := conf.int("topk_group")
		if v3 {
			ms.Scoring, ms.ScoreCorrection, ms.GroupScore = "sigmoid", true, "top2_sum"
			ms.NormTopK = conf.boolean("norm_topk_prob", true)
			ms.NormDenomEps = 1e-20
			ms.Scale = 2.5
			if !okG {
				groups = 8
			}
			if !okT {
				topkGroups = 4
			}
		} else {
			ms.GroupScore = "max"
			ms.Scale = 1
			if conf.str("topk_method") != "group_limited_greedy" {
				groups, topkGroups = 1, 1
			}
		}
		if v, ok := conf.num("routed_scaling_factor"); ok {
			ms.Scale = v
		}
		ms.Groups, ms.TopKGroups = groups, topkGroups
	} else {
		gf, _, err := meta.count("expert_gating_func")
		if err != nil {
			return err
		}
		switch gf {
		case 0, 1:
			ms.Scoring = "softmax"
		case 2:
			ms.Scoring, ms.GroupScore = "sigmoid", "top2_sum"
			ms.ScoreCorrection = true
		default:
			fwdUnsupported(&s.Unsupported, "metadata_key", meta.prefix+"expert_gating_func", "expert gating function %d is not modeled", gf)
		}
		if kv, ok := meta.lookup("expert_weights_norm"); ok {
			ms.NormTopK, _ = kv.Bool()
			ms.NormDenomEps = 1e-20
		}
		if v, ok, err := meta.positive("expert_weights_scale"); err != nil {
			return err
		} else if ok {
			ms.Scale = v
		}
		g, okG, err := meta.count("expert_group_count")
		if err != nil {
			return err
		}
		t, _, err := meta.count("expert_group_used_count")
		if err != nil {
			return err
		}
		ms.Groups, ms.TopKGroups = g, t
		if okG && g > 1 && ms.Scoring == "softmax" {
			fwdUnsupported(&s.Unsupported, "metadata_key", meta.prefix+"expert_group_count", "group-limited routing over softmax scores in a GGUF: qkv cannot tell DeepSeek V2's group maximum from V3's top-2 sum")
		}
		if !okG {
			ms.Groups, ms.TopKGroups = 1, 1
			if ms.Scoring == "sigmoid" {
				fwdUnsupported(&s.Assumptions, "metadata_key", meta.prefix+"expert_group_count", "the GGUF carries no expert_group_count: routing is not group-limited (llama.cpp's rule when the key is absent)")
			}
		}
	}
	if ms.Groups <= 1 {
		ms.Groups, ms.TopKGroups, ms.GroupScore = 0, 0, ""
	} else if ms.Experts%ms.Groups != 0 || ms.TopKGroups < 1 || ms.TopKGroups > ms.Groups || ms.GroupScore == "top2_sum" && ms.Experts/ms.Groups < 2 {
		return fmt.Errorf("group-limited routing with %d experts in %d groups, %d groups kept, is not possible", ms.Experts, ms.Groups, ms.TopKGroups)
	}
	var b strings.Builder
	if ms.Scoring == "sigmoid" {
		b.WriteString("scores = sigmoid(router logits); selection = scores + e_score_correction_bias")
	} else {
		b.WriteString("scores = softmax(router logits); selection = scores")
	}
	if ms.Groups > 1 {
		if ms.GroupScore == "top2_sum" {
			fmt.Fprintf(&b, "; %d groups scored by the sum of their 2 best selections, the best %d kept, other experts' selections set to 0", ms.Groups, ms.TopKGroups)
		} else {
			fmt.Fprintf(&b, "; %d groups scored by their best selection, the best %d kept, other experts' selections set to 0", ms.Groups, ms.TopKGroups)
		}
	}
	fmt.Fprintf(&b, "; top-%d experts by selection, weights = their scores", ms.TopK)
	if ms.NormTopK {
		b.WriteString(" / (their sum + 1e-20)")
	}
	fmt.Fprintf(&b, " × %g; plus the shared experts' MLP", ms.Scale)
	ms.Formula = b.String()
	return nil
}

// finalSources settles the final norm and the LM head.
func (m *Model) finalSources(s *ForwardSpec, conf cfg, meta ggufMeta) {
	c := m.Checkpoint
	a := &m.arch
	fn, _, head, _ := m.finalTensors(conf)
	s.FinalNorm = fn != nil
	switch {
	case a.HF.FinalNorm == "" && a.HF.LMHead == "" && !a.TiedDefault:
		s.LMHead = LMHeadNone
		return
	case fn == nil:
		fwdUnsupported(&s.Unsupported, "tensor", "final norm", "the model has no final norm tensor (%s)", firstNonEmpty(a.HF.FinalNorm, "output_norm"))
	}
	switch {
	case head != nil && head != m.emb.tokens:
		s.LMHead = LMHeadSeparate
	case m.emb.tokens != nil:
		s.LMHead = LMHeadTied
	default:
		s.LMHead = LMHeadNone
		fwdUnsupported(&s.Unsupported, "tensor", "lm_head", "the model has neither an LM head nor token embeddings")
	}
	if c.Format != FormatGGUF && !conf.boolean("tie_word_embeddings", a.TiedDefault) && head == nil {
		fwdUnsupported(&s.Unsupported, "tensor", firstNonEmpty(a.HF.LMHead, "lm_head"), "tie_word_embeddings is false but the checkpoint has no LM head tensor")
	}
}

// finalTensors locates the final norm (weight, bias) and the LM head (and
// its bias).
func (m *Model) finalTensors(conf cfg) (normW, normB, head, headB *Tensor) {
	c := m.Checkpoint
	a := &m.arch
	if c.Format == FormatGGUF {
		head = c.Tensor("output.weight")
		if head == nil {
			head = m.emb.tokens
		}
		return c.Tensor("output_norm.weight"), c.Tensor("output_norm.bias"), head, c.Tensor("output.bias")
	}
	bases := m.modelBases()
	find := func(names, suffix string) *Tensor {
		for _, b := range bases {
			for _, n := range alternatives(names) {
				if t := c.Tensor(b + n + suffix); t != nil {
					return t
				}
			}
		}
		return nil
	}
	normW, normB = find(a.HF.FinalNorm, ".weight"), find(a.HF.FinalNorm, ".bias")
	if a.HF.LMHead != "" {
		head, headB = find(a.HF.LMHead, ".weight"), find(a.HF.LMHead, ".bias")
	}
	if conf.boolean("tie_word_embeddings", a.TiedDefault) || head == nil && a.HF.LMHead == "" {
		head = m.emb.tokens
	}
	return normW, normB, head, headB
}

// modelBases are the name prefixes of model-level tensors.
func (m *Model) modelBases() []string {
	var bases []string
	seen := map[string]bool{}
	add := func(b string) {
		if !seen[b] {
			seen[b] = true
			bases = append(bases, b)
		}
	}
	for _, l := range m.Layers {
		add(l.Stack)
		for _, suf := range []string{"encoder.", "decoder.", "transformer."} {
			if strings.HasSuffix(l.Stack, suf) {
				add(strings.TrimSuffix(l.Stack, suf))
			}
		}
	}
	add("")
	add("model.")
	return bases
}

// lmHeadBiasArchs are the architectures whose LM head is a Linear with a
// bias; elsewhere Hugging Face does not load an lm_head.bias.
var lmHeadBiasArchs = map[string]bool{"gptj": true}

// modelLevelChecks refuses model-level tensors the forward would need to
// apply and does not: an LM head bias the architecture has no place for,
// and any tensor beside the layers of the chosen stack that is neither an
// embedding, the final norm nor the LM head (OPT-350m's project_in/out).
func (m *Model) modelLevelChecks(s *ForwardSpec) {
	c := m.Checkpoint
	conf := m.hfConf()
	fnW, fnB, head, headB := m.finalTensors(conf)
	if headB != nil {
		if lmHeadBiasArchs[m.arch.Name] {
			s.LMHeadBias = true
		} else {
			fwdUnsupported(&s.Unsupported, "tensor", headB.Name, "the LM head has a bias (%s), which the %s model has no place for", headB.Name, m.arch.Name)
		}
	}
	if c.Format == FormatGGUF || len(m.Layers) == 0 {
		return
	}
	stack := m.Layers[0].Stack
	if stack == "" {
		return
	}
	e := &m.emb
	known := map[*Tensor]bool{}
	for _, t := range []*Tensor{e.tokens, e.positions, e.tokenTypes, e.normW, e.normB, fnW, fnB, head, headB} {
		if t != nil {
			known[t] = true
		}
	}
	ignore := map[string]bool{}
	for _, x := range alternatives(m.arch.HF.Ignore) {
		ignore[x] = true
	}
	ignore["rotary_emb.inv_freq"] = true
	for _, t := range c.Tensors {
		if !strings.HasPrefix(t.Name, stack) || known[t] || known[t.scaleFor] {
			continue
		}
		if sm := hfLayerRe().FindStringSubmatch(t.Name); sm != nil && sm[1] == stack {
			continue // a layer's tensor
		}
		rest := strings.TrimPrefix(t.Name, stack)
		if mod, _ := splitParam(rest); ignore[mod] || ignore[rest] {
			continue
		}
		fwdUnsupported(&s.Unsupported, "tensor", t.Name, "tensor %s sits beside the layers but is not an embedding, the final norm or the LM head; qkv's forward pass does not apply it", t.Name)
	}
}

// LMHeadBias decodes the LM head's bias, nil when it has none.
func (m *Model) LMHeadBias() ([]float32, error) {
	s, err := m.ForwardSpec()
	if err != nil || !s.LMHeadBias {
		return nil, err
	}
	_, _, head, b := m.finalTensors(m.hfConf())
	if len(b.Shape) != 1 || b.Shape[0] != head.Shape[0] {
		return nil, &Error{File: m.Checkpoint.Path, Tensor: b.Name, Offset: -1, Err: fmt.Errorf("LM head bias has shape %v, expected [%d]", b.Shape, head.Shape[0])}
	}
	return m.Checkpoint.DecodeNew(b)
}

func (m *Model) hfConf() cfg {
	if m.Checkpoint.Format == FormatGGUF {
		return cfg{}
	}
	_, c := hfModelType(cfg(m.Checkpoint.Config))
	if c == nil {
		return cfg{}
	}
	return c
}

// ---- loading ----

// LoadBlock decodes block i: its attention (LoadLayer), the norms around
// it and its MLP (for MoE layers: the router, the shared MLP, and the
// experts on demand). It refuses a model whose ForwardSpec lists
// unsupported items.
func (m *Model) LoadBlock(i int) (*Block, error) {
	s, err := m.ForwardSpec()
	if err != nil {
		return nil, err
	}
	if len(s.Unsupported) > 0 {
		return nil, &Error{File: m.Checkpoint.Path, Offset: -1, Err: fmt.Errorf("the forward pass is not modeled: %s", s.Unsupported[0].Message)}
	}
	bs := m.forwardState().blocks[i]
	if bs == nil {
		return nil, fmt.Errorf("%s: no block %d (the forward runs blocks 0..%d)", m.Checkpoint.Path, i, s.Layers-1)
	}
	l, err := m.LoadLayer(i)
	if err != nil {
		return nil, err
	}
	b := &Block{Index: i, Attn: l}
	for _, x := range []struct {
		src [2]*Tensor
		dst **Norm
	}{{bs.postAttn, &b.PostAttnNorm}, {bs.ffn, &b.FFNNorm}, {bs.postFFN, &b.PostFFNNorm}} {
		if x.src[0] == nil {
			continue
		}
		nrm, err := m.loadNorm(x.src[0], x.src[1])
		if err != nil {
			return nil, err
		}
		*x.dst = nrm
	}
	if bs.mlp != nil {
		if b.MLP, err = m.loadMLP(bs.mlp); err != nil {
			return nil, err
		}
	}
	if ex := bs.experts; ex != nil {
		moe := &MoE{n: ex.n}
		c := m.Checkpoint
		v, err := c.DecodeNew(bs.router)
		if err != nil {
			return nil, err
		}
		moe.Router = Matrix{Rows: ex.n, Cols: m.Geo.DModel, Data: v}
		for _, x := range []struct {
			t   *Tensor
			dst *[]float32
		}{{bs.routerBias, &moe.RouterBias}, {bs.scoreBias, &moe.ScoreCorrection}} {
			if x.t != nil {
				if *x.dst, err = c.DecodeNew(x.t); err != nil {
					return nil, err
				}
			}
		}
		if bs.shared != nil {
			if moe.Shared, err = m.loadMLP(bs.shared); err != nil {
				return nil, err
			}
		}
		moe.load = func(e int) (*MLP, error) { return m.loadExpert(ex, e) }
		b.MoE = moe
	}
	return b, nil
}

// loadNorm decodes a norm, adding Gemma's 1 to Hugging Face weights.
func (m *Model) loadNorm(w, bias *Tensor) (*Norm, error) {
	c := m.Checkpoint
	n := &Norm{}
	var err error
	if n.Weight, err = c.DecodeNew(w); err != nil {
		return nil, err
	}
	if off := float32(m.Geo.NormWeightOffset); off != 0 && c.Format != FormatGGUF {
		for k := range n.Weight {
			n.Weight[k] += off
		}
	}
	if bias != nil {
		if n.Bias, err = c.DecodeNew(bias); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// loadMatrix decodes a 2-D tensor in the DESIGN.md orientation.
func (m *Model) loadMatrix(r tensorRef) (Matrix, error) {
	c := m.Checkpoint
	rows, cols := int(r.t.Shape[0]), int(r.t.Shape[1])
	v, err := c.DecodeNew(r.t)
	if err != nil {
		return Matrix{}, err
	}
	mat := Matrix{Rows: rows, Cols: cols, Data: v}
	if r.conv1D {
		mat = transpose(mat)
	}
	return mat, nil
}

// transpose returns mᵀ.
func transpose(m Matrix) Matrix {
	out := NewMatrix(m.Cols, m.Rows)
	for i := 0; i < m.Rows; i++ {
		row := m.Row(i)
		for j, v := range row {
			out.Data[j*out.Cols+i] = v
		}
	}
	return out
}

func (m *Model) loadMLP(src *mlpSource) (*MLP, error) {
	c := m.Checkpoint
	out := &MLP{}
	var err error
	for _, x := range []struct {
		r   tensorRef
		dst *Matrix
	}{{src.gate, &out.Gate}, {src.up, &out.Up}, {src.down, &out.Down}} {
		if x.r.t == nil {
			continue
		}
		if *x.dst, err = m.loadMatrix(x.r); err != nil {
			return nil, err
		}
	}
	for _, x := range []struct {
		t   *Tensor
		dst *[]float32
	}{{src.gateBias, &out.GateBias}, {src.upBias, &out.UpBias}, {src.downBias, &out.DownBias}} {
		if x.t == nil {
			continue
		}
		if *x.dst, err = c.DecodeNew(x.t); err != nil {
			return nil, err
		}
	}
	if src.gateUp.t != nil {
		gu, err := m.loadMatrix(src.gateUp)
		if err != nil {
			return nil, err
		}
		ff := gu.Rows / 2
		out.Gate = Matrix{Rows: ff, Cols: gu.Cols, Data: gu.Data[: ff*gu.Cols : ff*gu.Cols]}
		out.Up = Matrix{Rows: ff, Cols: gu.Cols, Data: gu.Data[ff*gu.Cols:]}
		if src.guBias != nil {
			b, err := c.DecodeNew(src.guBias)
			if err != nil {
				return nil, err
			}
			out.GateBias, out.UpBias = b[:ff:ff], b[ff:]
		}
	}
	return out, nil
}

// loadExpert decodes routed expert e.
func (m *Model) loadExpert(ex *expertSource, e int) (*MLP, error) {
	c := m.Checkpoint
	if len(ex.perExpert) > 0 {
		return m.loadMLP(&ex.perExpert[e])
	}
	slice := func(t *Tensor) (Matrix, error) {
		rows, cols := int(t.Shape[1]), int(t.Shape[2])
		mat := NewMatrix(rows, cols)
		return mat, c.DecodeRows(t, int64(e*rows), int64((e+1)*rows), mat.Data)
	}
	row := func(t *Tensor) ([]float32, error) {
		if t == nil {
			return nil, nil
		}
		n := int(t.Shape[1])
		v := make([]float32, n)
		return v, c.DecodeRows(t, int64(e), int64(e+1), v)
	}
	out := &MLP{}
	var err error
	if ex.oaiGateUp != nil {
		// [d, 2ff] stored [in, out], gate/up interleaved in columns.
		gu, err := slice(ex.oaiGateUp)
		if err != nil {
			return nil, err
		}
		guT := transpose(gu) // [2ff, d]
		ff := guT.Rows / 2
		out.Gate, out.Up = NewMatrix(ff, guT.Cols), NewMatrix(ff, guT.Cols)
		for j := 0; j < ff; j++ {
			copy(out.Gate.Row(j), guT.Row(2*j))
			copy(out.Up.Row(j), guT.Row(2*j+1))
		}
		b, err := row(ex.oaiGateUpBias)
		if err != nil {
			return nil, err
		}
		out.GateBias, out.UpBias = make([]float32, ff), make([]float32, ff)
		for j := 0; j < ff; j++ {
			out.GateBias[j], out.UpBias[j] = b[2*j], b[2*j+1]
		}
		dn, err := slice(ex.oaiDown) // [ff, d] stored [in, out]
		if err != nil {
			return nil, err
		}
		out.Down = transpose(dn)
		if out.DownBias, err = row(ex.oaiDownBias); err != nil {
			return nil, err
		}
		return out, nil
	}
	if out.Gate, err = slice(ex.gate); err != nil {
		return nil, err
	}
	if out.Up, err = slice(ex.up); err != nil {
		return nil, err
	}
	if out.Down, err = slice(ex.down); err != nil {
		return nil, err
	}
	if out.GateBias, err = row(ex.gateBias); err != nil {
		return nil, err
	}
	if out.UpBias, err = row(ex.upBias); err != nil {
		return nil, err
	}
	if out.DownBias, err = row(ex.downBias); err != nil {
		return nil, err
	}
	return out, nil
}

// FinalNorm decodes the norm after the last block, nil when the model has
// none (BERT).
func (m *Model) FinalNorm() (*Norm, error) {
	if _, err := m.ForwardSpec(); err != nil {
		return nil, err
	}
	w, b, _, _ := m.finalTensors(m.hfConf())
	if w == nil {
		return nil, nil
	}
	d := m.Geo.DModel
	for _, t := range []*Tensor{w, b} {
		if t != nil && (len(t.Shape) != 1 || int(t.Shape[0]) != d) {
			return nil, &Error{File: m.Checkpoint.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("final norm has shape %v, expected [%d]", t.Shape, d)}
		}
	}
	return m.loadNorm(w, b)
}

// LMHead returns the LM head's tensor ([vocab, d_model]: the token
// embeddings when tied), without decoding it: it is the largest matrix of
// many models, so callers decode it in row blocks (DecodeRows).
func (m *Model) LMHead() (*Tensor, error) {
	s, err := m.ForwardSpec()
	if err != nil {
		return nil, err
	}
	_, _, head, _ := m.finalTensors(m.hfConf())
	if s.LMHead == LMHeadNone || head == nil {
		return nil, &Error{File: m.Checkpoint.Path, Offset: -1, Err: fmt.Errorf("the model has no LM head (architecture %s)", s.Arch)}
	}
	if len(head.Shape) != 2 || int(head.Shape[1]) != m.Geo.DModel || head.Shape[0] < 1 {
		return nil, &Error{File: m.Checkpoint.Path, Tensor: head.Name, Offset: -1, Err: fmt.Errorf("LM head has shape %v, expected [vocab, %d]", head.Shape, m.Geo.DModel)}
	}
	return head, nil
}
