package formats

import (
	"fmt"
	"math"
	"strings"

	"github.com/qkvdev/qkv/formats/gguf"
)

// geoSource records where the geometry came from, for error messages.
type geoSource struct {
	geo   Geometry
	from  string // "config.json", "GGUF metadata", "tensor shapes"
	hasKV bool   // the KV head count was given, not defaulted
	hasHD bool   // head_dim was given explicitly
}

// hfModelType returns config.json's model_type (or one implied by its
// "architectures" class names), looking into text_config for multimodal
// wrappers, and the config object that holds the geometry.
func hfModelType(c cfg) (string, cfg) {
	if c == nil {
		return "", nil
	}
	if !c.has("hidden_size") && !c.has("n_embd") && !c.has("d_model") {
		if tc := c.object("text_config"); tc != nil {
			c = tc
		}
	}
	if mt := c.str("model_type"); mt != "" {
		return mt, c
	}
	for _, a := range c.architectures() {
		for _, x := range []struct{ prefix, mt string }{
			{"GPT2", "gpt2"}, {"GPTNeoX", "gpt_neox"}, {"GPTBigCode", "gpt_bigcode"}, {"GPTJ", "gptj"},
			{"Bloom", "bloom"}, {"Falcon", "falcon"}, {"Llama", "llama"}, {"Mistral", "mistral"},
			{"Qwen2", "qwen2"}, {"Phi3", "phi3"}, {"Bert", "bert"}, {"Bart", "bart"}, {"Roberta", "roberta"},
		} {
			if strings.HasPrefix(a, x.prefix) {
				return x.mt, c
			}
		}
	}
	return "", c
}

// hfGeometry reads the attention geometry from config.json. stack is the
// layer stack the geometry is for ("model.decoder." selects BART's decoder
// settings).
func hfGeometry(c cfg, modelType string, a archInfo, stack string) geoSource {
	g := Geometry{Arch: modelType, Causal: a.causal, PreNorm: a.preNorm}
	s := geoSource{from: "config.json"}
	if c == nil {
		return s
	}
	g.DModel, _, _ = c.int("hidden_size", "n_embd", "d_model", "n_embed", "dim")
	layerKeys := []string{"num_hidden_layers", "n_layer", "num_layers", "n_layers", "decoder_layers"}
	headKeys := []string{"num_attention_heads", "n_head", "num_heads", "n_heads", "decoder_attention_heads"}
	if strings.Contains(stack, "encoder") {
		layerKeys = append([]string{"encoder_layers"}, layerKeys...)
		headKeys = append([]string{"encoder_attention_heads"}, headKeys...)
		g.Causal = false
	} else if strings.Contains(stack, "decoder") {
		layerKeys = append([]string{"decoder_layers"}, layerKeys...)
		headKeys = append([]string{"decoder_attention_heads"}, headKeys...)
	}
	g.NLayers, _, _ = c.int(layerKeys...)
	g.NHeads, _, _ = c.int(headKeys...)
	g.VocabSize, _, _ = c.int("vocab_size", "padded_vocab_size")

	// KV heads: HF Falcon's rule first, then the usual keys.
	switch {
	case modelType == "falcon" || modelType == "RefinedWeb" || modelType == "RefinedWebModel":
		if c.boolean("new_decoder_architecture", modelType == "RefinedWeb") || !c.boolean("multi_query", true) {
			g.NKVHeads, _, s.hasKV = c.int("num_kv_heads", "n_head_kv")
		} else {
			g.NKVHeads, s.hasKV = 1, true
		}
	case modelType == "gpt_bigcode" && c.boolean("multi_query", true):
		g.NKVHeads, s.hasKV = 1, true
	default:
		g.NKVHeads, _, s.hasKV = c.int("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num")
	}
	if g.NKVHeads == 0 {
		g.NKVHeads = g.NHeads
	}
	if hd, _, ok := c.int("head_dim", "kv_channels"); ok && hd > 0 {
		g.HeadDim, s.hasHD = hd, true
	} else if g.NHeads > 0 && g.DModel%g.NHeads == 0 {
		g.HeadDim = g.DModel / g.NHeads
	}

	// Position encoding.
	switch {
	case modelType == "bloom":
		g.ALiBi = true
	case (modelType == "falcon" || modelType == "RefinedWeb" || modelType == "RefinedWebModel") && c.boolean("alibi", false):
		g.ALiBi = true
	case modelType == "mpt" && c.object("attn_config").boolean("alibi", false):
		g.ALiBi = true
	}
	if !g.ALiBi && !hfNoRoPE[modelType] && g.HeadDim > 0 {
		g.RopeTheta = 10000
		if th, _, ok := c.float("rope_theta", "rotary_emb_base", "rope_base"); ok && th > 0 {
			g.RopeTheta = th
		}
		g.RotaryDims = g.HeadDim
		if rd, _, ok := c.int("rotary_dim"); ok && rd > 0 {
			g.RotaryDims = rd
		} else if f, _, ok := c.float("partial_rotary_factor", "rotary_pct"); ok && f > 0 && f <= 1 {
			g.RotaryDims = int(f * float64(g.HeadDim))
		} else if modelType == "gpt_neox" {
			g.RotaryDims = int(0.25 * float64(g.HeadDim)) // GPTNeoXConfig's default rotary_pct
		}
	}

	// Norm epsilon; the kind is settled from the norm tensors found.
	if e, k, ok := c.float("rms_norm_eps", "layer_norm_epsilon", "layer_norm_eps", "norm_epsilon", "layernorm_epsilon", "norm_eps"); ok {
		g.NormEps = e
		if k == "rms_norm_eps" {
			g.Norm = NormRMS
		} else {
			g.Norm = NormLayerNorm
		}
	}
	switch modelType {
	case "bart", "mbart", "marian":
		g.NormEps = 1e-5 // nn.LayerNorm's default; BART's config has no epsilon
		g.Norm = NormLayerNorm
	}
	if !g.PreNorm {
		g.Norm = NormNone
	}
	s.geo = g
	return s
}

// ggufGeometry reads the attention geometry from GGUF metadata.
func ggufGeometry(f *gguf.File, a archInfo) (geoSource, error) {
	s := geoSource{from: "GGUF metadata"}
	arch := a.name
	g := Geometry{Arch: arch, Causal: a.causal, PreNorm: a.preNorm}
	p := arch + "."
	var err error
	get := func(key string) (int, bool) {
		kv, ok := f.Lookup(p + key)
		if !ok || err != nil {
			return 0, false
		}
		n, ok := kv.Uint()
		if !ok {
			if l, isList := kv.Value.([]any); isList && len(l) > 0 {
				// Per-layer counts (OpenELM and friends): accept them when equal.
				first, ok1 := anyUint(l[0])
				for _, x := range l {
					if v, ok2 := anyUint(x); !ok2 || v != first {
						err = fmt.Errorf("%s%s varies per layer, which is not supported", p, key)
						return 0, false
					}
				}
				n, ok = first, ok1
			}
		}
		if !ok || n > 1<<40 {
			err = fmt.Errorf("%s%s is not a usable count (%v)", p, key, kv.Value)
			return 0, false
		}
		return int(n), true
	}
	getF := func(key string) (float64, bool) {
		kv, ok := f.Lookup(p + key)
		if !ok {
			return 0, false
		}
		v, ok := kv.Float()
		return v, ok && !math.IsNaN(v) && !math.IsInf(v, 0)
	}
	g.DModel, _ = get("embedding_length")
	g.NLayers, _ = get("block_count")
	g.NHeads, _ = get("attention.head_count")
	g.NKVHeads, s.hasKV = get("attention.head_count_kv")
	if g.NKVHeads == 0 {
		g.NKVHeads = g.NHeads
	}
	if hd, ok := get("attention.key_length"); ok && hd > 0 {
		g.HeadDim, s.hasHD = hd, true
	} else if g.NHeads > 0 && g.DModel%g.NHeads == 0 {
		g.HeadDim = g.DModel / g.NHeads
	}
	if err != nil {
		return s, err
	}
	if kv, ok := f.Lookup("tokenizer.ggml.tokens"); ok && kv.Count < 1<<40 {
		g.VocabSize = int(kv.Count)
	}
	if kv, ok := f.Lookup(p + "attention.causal"); ok {
		if b, ok := kv.Bool(); ok {
			g.Causal = b
		}
	}
	g.ALiBi = ggufALiBi[arch]
	if !g.ALiBi && !ggufNoRoPE[arch] && g.HeadDim > 0 {
		g.RotaryDims = g.HeadDim
		if rd, ok := get("rope.dimension_count"); ok && rd > 0 {
			g.RotaryDims = rd
		}
		g.RopeTheta = 10000
		if th, ok := getF("rope.freq_base"); ok && th > 0 {
			g.RopeTheta = th
		}
	}
	if e, ok := getF("attention.layer_norm_rms_epsilon"); ok {
		g.Norm, g.NormEps = NormRMS, e
	} else if e, ok := getF("attention.layer_norm_epsilon"); ok {
		g.Norm, g.NormEps = NormLayerNorm, e
	}
	if !g.PreNorm {
		g.Norm = NormNone
	}
	s.geo = g
	return s, err
}

func anyUint(x any) (uint64, bool) {
	kv := gguf.KV{Value: x}
	return kv.Uint()
}
