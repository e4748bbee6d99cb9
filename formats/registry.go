package formats

import (
	"sort"
	"strings"
	"sync"
)

// The architecture registry: one declarative entry per architecture (see
// registry_entries.go) states everything finding, extracting and rerunning
// its attention needs, and what a forward pass needs besides. Adding an
// architecture is one entry plus its tests.

// Arch is one architecture's entry.
type Arch struct {
	// Name is the registry key and the reported Geometry.Arch of Hugging
	// Face checkpoints (GGUF files report their general.architecture).
	Name string
	// ModelTypes are config.json model_type values; Classes are
	// "architectures" class names (used when model_type is missing); GGUF
	// are general.architecture values. Each value belongs to one entry.
	ModelTypes, Classes, GGUF []string
	// Summary is the README's one line about the architecture.
	Summary string
	// Verified says what the entry is tested against.
	Verified string
	// Incomplete, when set, says what the entry does not describe: its
	// projections are extracted, but the rerun refuses and layers/inspect
	// warn (Geometry.Unsupported).
	Incomplete string

	// HF names the Hugging Face tensors of a layer (relative to
	// "<stack>layers.N.") and of the model (relative to the stack's base).
	// GGUF files use llama.cpp's names, which are the same for every
	// architecture (ggufNames); the roles an entry's HF names use are the
	// roles its GGUF form may hold.
	HF Names

	// Fused is the row layout of the Hugging Face fused QKV tensor (GGUF
	// attn_qkv is always q|k|v). Conv1D: HF weights stored [in, out].
	// GGUFPermuted: llama.cpp's converter permuted Q/K rows for RoPE.
	Fused        FusedLayout
	Conv1D       bool
	GGUFPermuted bool

	// Encoder: bidirectional attention (no causal mask).
	Encoder bool
	// Norm is the kind of every block norm; NormOffset is 1 for (1 + w)
	// norms (added to Hugging Face weights on extraction: llama.cpp's
	// converter stores 1 + w already). Placement says where the norm of
	// the attention block sits.
	Norm       NormKind
	NormOffset float64
	Placement  Placement
	// QKNorm is the Q/K norm; QKNormSwitch names a config key that turns
	// it on or off (Llama 4's use_qk_norm), QKNormRoPEOnly limits it to
	// layers with RoPE (Llama 4).
	QKNorm         QKNorm
	QKNormSwitch   string
	QKNormRoPEOnly bool

	// Position is how positions enter attention. RopeStyle is the Hugging
	// Face rotation (RopeHalfSplit or RopeInterleavedPairs); RotaryFraction
	// is the default fraction of head_dim rotated (0: all).
	Position       Position
	RopeStyle      string
	RotaryFraction float64
	// RopeThetaDefault is the model class's default base when the config
	// gives none (0: 10000).
	RopeThetaDefault float64
	// LocalRope: sliding layers have their own RoPE base (Gemma 3's
	// rope_local_base_freq, or rope_parameters keyed by layer type).
	LocalRope bool
	// NoPE: layers without RoPE from no_rope_layers (Llama 4).
	NoPE bool

	// Scale is the rule for the score scale.
	Scale ScaleRule
	// Softcap: attn_logit_softcapping is read.
	Softcap bool
	// Sliding is the rule that makes layers sliding-window layers.
	Sliding SlidingRule
	// SlidingPattern is the default period of SlidingPattern (Gemma 3: 6);
	// WindowDefault the configuration class's default sliding_window.
	SlidingPattern, WindowDefault int
	// Chunked: rope layers use chunked attention (Llama 4).
	Chunked bool
	// Sinks: per-head sink logits (GPT-OSS).
	Sinks bool
	// EmbedScale: token embeddings are multiplied by sqrt(d_model).
	EmbedScale bool
	// MLA: multi-head latent attention (DeepSeek V2/V3).
	MLA bool

	// MLP is the feed-forward kind; ParallelResidual: attention and MLP
	// read the same residual (GPT-NeoX, Falcon, GPT-J); ParallelSwitch
	// names the config key that turns it off.
	MLP              MLPKind
	Activation       string
	ParallelResidual bool
	ParallelSwitch   string
	// TiedDefault: the LM head is the input embedding unless the config's
	// tie_word_embeddings says otherwise.
	TiedDefault bool

	// NotModeled lists config keys that change attention when they differ
	// from the value given (nil: absent or null): qkv does not model them.
	NotModeled []KeyValue

	// config settles what only the config can say (Falcon's fused layout
	// and KV heads); nil for most architectures.
	config func(c cfg, a *Arch, s *geoSource)
}

// KeyValue is a config key and the value that qkv models.
type KeyValue struct {
	Key   string
	Value any
}

// Names are tensor names by role. A name may list alternatives separated
// by "|"; digits of expert indices are written N ("mlp.experts.N.w1").
// Names are module paths: ".weight" and ".bias" are added, except for
// parameters stored without them (GPT-OSS "self_attn.sinks").
type Names struct {
	// Attention.
	Q, K, V, O, QKV string
	// AttnNorm is the norm whose output the attention reads (pre-norm).
	AttnNorm     string
	QNorm, KNorm string
	Sinks        string
	// Multi-head latent attention; GGUF splits kv_b into k_b and v_b.
	QA, QANorm, QB, KVA, KVANorm, KVB, KB, VB string
	// Cross is the prefix of cross-attention modules (listed, not extracted).
	Cross string

	// Outside attention: PostAttnNorm normalises the attention output
	// (OLMo 2, Gemma 2/3, BERT's post-LayerNorm); FFNNorm is the norm the
	// MLP reads (Llama's post_attention_layernorm); PostFFNNorm
	// normalises the MLP output.
	PostAttnNorm, FFNNorm, PostFFNNorm string
	// MLP: Gate/Up/Down (GateUp fused: gate rows first), Router and the
	// expert and shared-expert tensors of MoE layers.
	Gate, Up, Down, GateUp string
	Router                 string
	Experts                string
	Shared                 string
	// Other lists further known tensors of a layer outside attention
	// (BART's encoder_attn_layer_norm); Ignore lists buffers that are not
	// weights (rotary inv_freq, GPT-2's causal mask).
	Other, Ignore string

	// Model-level tensors, relative to the stack's base ("model." for
	// "model.layers."): token, position and token-type embeddings, the
	// embedding norm, the final norm and the LM head.
	Embed, PosEmbed, TokenTypes, EmbedNorm, FinalNorm, LMHead string
}

// FusedLayout is how an architecture packs Q, K and V into one tensor's rows
// (in the tensor's [out, in] orientation).
type FusedLayout int

const (
	fusedUnknown FusedLayout = iota
	// FusedContig: all Q rows, then all K rows, then all V rows (Phi-3
	// qkv_proj, GPT-2 c_attn after transposing, every GGUF attn_qkv).
	FusedContig
	// FusedPerHead: per head h, [q_h; k_h; v_h] (GPT-NeoX and BLOOM
	// query_key_value, Falcon without multi-query).
	FusedPerHead
	// FusedGrouped: per KV group g, [the group's query heads; k_g; v_g]
	// (Falcon new_decoder_architecture).
	FusedGrouped
)

// Placement is where a block's attention norm sits.
type Placement int

const (
	// PreNorm: x + attn(norm(x)).
	PreNorm Placement = iota
	// PostNorm: norm(x + attn(x)) (BERT, BART).
	PostNorm
	// SubPostNorm: x + norm(attn(x)) (OLMo 2): no norm before attention.
	SubPostNorm
)

// Position is how positions enter attention.
type Position int

const (
	PosRoPE Position = iota
	PosALiBi
	PosLearned // learned absolute embeddings added to the input
	PosNone
	// PosLearnedOrALiBi: Falcon and MPT decide by config (alibi).
	PosConfigALiBi
)

// ScaleRule is how the score scale is chosen.
type ScaleRule int

const (
	// ScaleHeadDim: 1/sqrt(head_dim).
	ScaleHeadDim ScaleRule = iota
	// ScaleQueryPreAttn: query_pre_attn_scalar^-0.5 (Gemma 2/3).
	ScaleQueryPreAttn
	// ScaleMLA: (qk_nope_head_dim + qk_rope_head_dim)^-0.5, times mscale²
	// under YaRN with mscale_all_dim (DeepSeek).
	ScaleMLA
)

// SlidingRule is how an architecture decides which layers slide.
type SlidingRule int

const (
	SlidingNone SlidingRule = iota
	// SlidingAll: every layer when sliding_window is set (Mistral, Mixtral, Phi-3).
	SlidingAll
	// SlidingQwen: layers ≥ max_window_layers when use_sliding_window.
	SlidingQwen
	// SlidingAlternate: even layers slide (Gemma 2, GPT-OSS).
	SlidingAlternate
	// SlidingPattern: layer i slides unless (i+1) % sliding_window_pattern == 0 (Gemma 3).
	SlidingPattern
)

// MLPKind is the feed-forward block.
type MLPKind int

const (
	// MLPGated: down(act(gate(x)) * up(x)).
	MLPGated MLPKind = iota
	// MLPPlain: down(act(up(x))).
	MLPPlain
	// MLPMoE: routed experts (some layers may be dense); listed, not analysed.
	MLPMoE
)

// registry indexes the entries.
type registryIndex struct {
	byModelType, byClass, byGGUF map[string]*Arch
}

// registry is built on first use, not at start-up.
var registry = sync.OnceValue(func() registryIndex {
	r := registryIndex{map[string]*Arch{}, map[string]*Arch{}, map[string]*Arch{}}
	for _, a := range archEntries {
		for _, m := range a.ModelTypes {
			if r.byModelType[m] != nil {
				panic("registry: model type " + m + " in two entries")
			}
			r.byModelType[m] = a
		}
		for _, c := range a.Classes {
			r.byClass[c] = a
		}
		for _, g := range a.GGUF {
			if r.byGGUF[g] != nil {
				panic("registry: GGUF architecture " + g + " in two entries")
			}
			r.byGGUF[g] = a
		}
	}
	return r
})

// Architectures returns every registry entry, sorted by name.
func Architectures() []*Arch {
	out := append([]*Arch(nil), archEntries...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupArch returns the entry of a Hugging Face model_type or class name,
// or of a GGUF general.architecture (gguf true), nil when there is none.
func LookupArch(name string, gguf bool) *Arch {
	if gguf {
		return registry().byGGUF[name]
	}
	if a := registry().byModelType[name]; a != nil {
		return a
	}
	return registry().byClass[name]
}

// alternatives splits a "|"-separated name list.
func alternatives(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "|")
}

// hasRole reports whether the entry's Hugging Face names use a role (what
// the GGUF form of the same architecture must hold too).
func (a *Arch) hasRole(r role) bool {
	switch r {
	case roleQNorm:
		return a.HF.QNorm != ""
	case roleKNorm:
		return a.HF.KNorm != ""
	case roleSinks:
		return a.HF.Sinks != ""
	case roleQA, roleQANorm, roleQB, roleKVA, roleKVANorm, roleKVB, roleKB, roleVB:
		return a.MLA
	case roleNorm:
		return a.HF.AttnNorm != ""
	}
	return true
}
