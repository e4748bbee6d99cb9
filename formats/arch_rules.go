package formats

import "fmt"

// fusedKind is how an architecture packs Q, K and V into one tensor's rows
// (in the tensor's [out, in] orientation).
type fusedKind int

const (
	fusedUnknown fusedKind = iota
	// fusedContig: all Q rows, then all K rows, then all V rows (Phi-3
	// qkv_proj, GPT-2 c_attn after transposing, every GGUF attn_qkv).
	fusedContig
	// fusedPerHead: per head h, [q_h; k_h; v_h] (GPT-NeoX and BLOOM
	// query_key_value, Falcon without multi-query).
	fusedPerHead
	// fusedGrouped: per KV group g, [the group's query heads; k_g; v_g]
	// (Falcon new_decoder_architecture).
	fusedGrouped
)

func (k fusedKind) String() string {
	switch k {
	case fusedContig:
		return "q|k|v row blocks"
	case fusedPerHead:
		return "interleaved per head [q_h; k_h; v_h]"
	case fusedGrouped:
		return "grouped per KV head [q heads of the group; k_g; v_g]"
	}
	return "unknown"
}

// archInfo is what extraction needs to know about an architecture beyond
// tensor names.
type archInfo struct {
	name     string
	fused    fusedKind // rule for a fused QKV tensor
	conv1D   bool      // c_attn/c_proj stored [in, out] (GPT-2 Conv1D)
	permuted bool      // GGUF: Q/K rows permuted by llama.cpp's converter for RoPE
	preNorm  bool      // a norm runs before attention (false: BERT/BART post-norm)
	causal   bool
	// nativeInterleaved: the Hugging Face model itself rotates pairs (2i,
	// 2i+1) (GPT-J rotate_every_two, Cohere), so its Q/K rows are in
	// interleaved order; they are reported as such, not converted.
	nativeInterleaved bool
}

// fusedRows returns, for a fused tensor, the stored rows that form Q, K and
// V in Hugging Face order. The fused tensor must have (nh+2*nkv)*hd rows.
func fusedRows(kind fusedKind, nh, nkv, hd int) (q, k, v []int, err error) {
	if nh <= 0 || nkv <= 0 || hd <= 0 {
		return nil, nil, nil, fmt.Errorf("splitting a fused QKV tensor needs the head counts and head_dim (n_heads %d, n_kv_heads %d, head_dim %d)", nh, nkv, hd)
	}
	q = make([]int, 0, nh*hd)
	k = make([]int, 0, nkv*hd)
	v = make([]int, 0, nkv*hd)
	seq := func(dst []int, start, n int) []int {
		for i := 0; i < n; i++ {
			dst = append(dst, start+i)
		}
		return dst
	}
	switch kind {
	case fusedContig:
		q = seq(q, 0, nh*hd)
		k = seq(k, nh*hd, nkv*hd)
		v = seq(v, (nh+nkv)*hd, nkv*hd)
	case fusedPerHead:
		if nkv != nh {
			return nil, nil, nil, fmt.Errorf("a per-head interleaved QKV tensor needs n_kv_heads == n_heads (have %d and %d)", nkv, nh)
		}
		for h := 0; h < nh; h++ {
			base := 3 * h * hd
			q = seq(q, base, hd)
			k = seq(k, base+hd, hd)
			v = seq(v, base+2*hd, hd)
		}
	case fusedGrouped:
		if nh%nkv != 0 {
			return nil, nil, nil, fmt.Errorf("n_heads %d is not a multiple of n_kv_heads %d", nh, nkv)
		}
		g := nh / nkv
		for j := 0; j < nkv; j++ {
			base := j * (g + 2) * hd
			q = seq(q, base, g*hd)
			k = seq(k, base+g*hd, hd)
			v = seq(v, base+(g+1)*hd, hd)
		}
	default:
		return nil, nil, nil, fmt.Errorf("the fused QKV layout of this architecture is unknown")
	}
	return q, k, v, nil
}

// unpermuteRows undoes llama.cpp's RoPE permutation of Q/K rows: within each
// head of hd rows, stored row 2*j+s holds Hugging Face row s*hd/2+j. The
// result lists, for each HF row, the stored row (composed with src when src
// is not nil: the stored rows are src's entries).
func unpermuteRows(src []int, nHeads, hd, rows int) ([]int, error) {
	if hd%2 != 0 || nHeads*hd != rows {
		return nil, fmt.Errorf("cannot undo the RoPE row permutation: %d rows are not %d heads of an even head_dim %d", rows, nHeads, hd)
	}
	out := make([]int, rows)
	half := hd / 2
	for h := 0; h < nHeads; h++ {
		for s := 0; s < 2; s++ {
			for j := 0; j < half; j++ {
				stored := h*hd + 2*j + s
				if src != nil {
					stored = src[stored]
				}
				out[h*hd+s*half+j] = stored
			}
		}
	}
	return out, nil
}

// ---- Hugging Face architectures ----

// hfFusedContig lists model types whose fused QKV tensor is [q; k; v].
var hfFusedContig = map[string]bool{
	"phi3": true, "phimoe": true, "mpt": true, "baichuan": true, "chatglm": true,
	"phi-msft": true, "gpt_bigcode": true, "gpt2": true,
}

// hfPostNorm lists model types with no norm before attention.
var hfPostNorm = map[string]bool{
	"bert": true, "roberta": true, "xlm-roberta": true, "electra": true, "camembert": true,
	"bart": true, "marian": true, "blenderbot-small": true,
}

// hfEncoderOnly lists model types whose attention is bidirectional.
var hfEncoderOnly = map[string]bool{
	"bert": true, "roberta": true, "xlm-roberta": true, "electra": true, "camembert": true,
	"distilbert": true, "deberta": true, "deberta-v2": true, "modernbert": true,
}

// hfNoRoPE lists model types without rotary embeddings.
var hfNoRoPE = map[string]bool{
	"gpt2": true, "gpt_bigcode": true, "bloom": true, "bert": true, "roberta": true,
	"xlm-roberta": true, "electra": true, "camembert": true, "bart": true, "mbart": true,
	"marian": true, "opt": true, "mpt": true, "gpt_neo": true, "distilbert": true,
	"blenderbot-small": true,
}

// hfArch returns the architecture rules of a Hugging Face model type; the
// config decides Falcon's layout.
func hfArch(modelType string, c cfg) archInfo {
	a := archInfo{name: modelType, preNorm: !hfPostNorm[modelType], causal: !hfEncoderOnly[modelType],
		nativeInterleaved: modelType == "gptj" || modelType == "cohere" || modelType == "cohere2"}
	switch modelType {
	case "gpt2":
		a.fused, a.conv1D = fusedContig, true
	case "gpt_neox", "bloom":
		a.fused = fusedPerHead
	case "falcon", "RefinedWeb", "RefinedWebModel":
		switch {
		case c.boolean("new_decoder_architecture", modelType == "RefinedWeb"): // RW-40B's own type
			a.fused = fusedGrouped
		case c.boolean("multi_query", true):
			a.fused = fusedContig // [q heads; k; v] with one KV head
		default:
			a.fused = fusedPerHead
		}
	default:
		if hfFusedContig[modelType] {
			a.fused = fusedContig
		}
	}
	return a
}

// ---- llama.cpp (GGUF) architectures ----

// ggufPermuted lists GGUF architectures whose converter permutes Q/K rows
// from Hugging Face's rotate_half order into GPT-J pairs (llama.cpp "normal"
// RoPE on a model trained with rotate_half).
var ggufPermuted = map[string]bool{
	"llama": true, "mistral": true, "deci": true, "granite": true, "granitemoe": true,
	"baichuan": true, "minicpm": true, "xverse": true, "llama4": true, "internlm2": true,
	"olmo": true,
}

var ggufEncoderOnly = map[string]bool{
	"bert": true, "nomic-bert": true, "nomic-bert-moe": true, "jina-bert-v2": true, "t5encoder": true,
}

var ggufPostNorm = map[string]bool{
	"bert": true, "nomic-bert": true, "nomic-bert-moe": true, "jina-bert-v2": true,
}

var ggufNoRoPE = map[string]bool{
	"gpt2": true, "bloom": true, "bert": true, "mpt": true, "starcoder": true,
	"jina-bert-v2": true, "jais": true, "refact": true, "t5": true, "t5encoder": true,
}

var ggufALiBi = map[string]bool{"bloom": true, "mpt": true, "jina-bert-v2": true, "refact": true, "jais": true}

func ggufArch(arch string) archInfo {
	return archInfo{
		name:     arch,
		fused:    fusedContig, // llama.cpp's graph reads attn_qkv as q|k|v for every architecture
		permuted: ggufPermuted[arch],
		preNorm:  !ggufPostNorm[arch],
		causal:   !ggufEncoderOnly[arch],
	}
}
