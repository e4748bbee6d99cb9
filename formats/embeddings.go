package formats

import (
	"fmt"
	"math"
	"strings"
)

// Embeddings is what a model's first layer receives for some token ids,
// in pieces: x = TokenRows·TokenScale + Positions + TokenType, then, when
// NormWeight is set, LayerNorm(x; NormWeight, NormBias, NormEps).
type Embeddings struct {
	// TokenRows is [T, d]: the token-embedding rows for the ids.
	TokenRows Matrix
	// TokenScale multiplies TokenRows: 1, or sqrt(d_model) for models that
	// scale their embeddings (BART with scale_embedding, Gemma).
	TokenScale float32
	// Positions is [T, d]: learned absolute position embeddings for
	// positions 0..T-1 (GPT-2 wpe, BERT position_embeddings, GGUF
	// position_embd; BART's offset of 2 already applied), or empty.
	Positions Matrix
	// TokenType is BERT's token_type_embeddings row 0 (GGUF token_types), or nil.
	TokenType []float32
	// NormWeight and NormBias are the embedding LayerNorm (BERT
	// embeddings.LayerNorm, BLOOM word_embeddings_layernorm, BART
	// layernorm_embedding, GGUF token_embd_norm), or nil.
	NormWeight, NormBias []float32
	NormEps              float64
}

// embeddingSource locates the embedding tensors.
type embeddingSource struct {
	tokens, positions, tokenTypes, normW, normB *Tensor
	posOffset                                   int
	eps                                         float64
	scale                                       float32
}

// findEmbeddings locates the input embedding tensors near the chosen layer
// stacks.
func (m *Model) findEmbeddings(stacks []string) {
	c := m.Checkpoint
	e := &m.emb
	e.scale = 1
	if c.Format == FormatGGUF {
		e.tokens = c.Tensor("token_embd.weight")
		e.positions = c.Tensor("position_embd.weight")
		e.tokenTypes = c.Tensor("token_types.weight")
		e.normW = c.Tensor("token_embd_norm.weight")
		e.normB = c.Tensor("token_embd_norm.bias")
		if kv, ok := c.GGUF().Lookup(m.archName + ".attention.layer_norm_epsilon"); ok {
			e.eps, _ = kv.Float()
		}
		if m.arch.EmbedScale {
			e.scale = float32(math.Sqrt(float64(m.Geo.DModel)))
		}
		return
	}
	modelType, conf := hfModelType(cfg(c.Config))
	var bases []string
	seen := map[string]bool{}
	add := func(b string) {
		if !seen[b] {
			seen[b] = true
			bases = append(bases, b)
		}
	}
	for _, s := range stacks {
		if s == "\x00map" {
			continue
		}
		add(s)
		for _, suf := range []string{"encoder.", "decoder.", "transformer."} {
			if strings.HasSuffix(s, suf) {
				add(strings.TrimSuffix(s, suf))
			}
		}
	}
	add("")
	add("model.")
	find := func(leaves ...string) *Tensor {
		for _, b := range bases {
			for _, l := range leaves {
				if t := c.Tensor(b + l); t != nil {
					return t
				}
			}
		}
		return nil
	}
	// The entry's names; for architectures the registry does not know, the
	// names of every entry.
	names := []Names{m.arch.HF}
	if m.entry == nil {
		names = names[:0]
		for _, a := range archEntries {
			names = append(names, a.HF)
		}
	}
	leaves := func(pick func(Names) string, suffix string) []string {
		var out []string
		for _, n := range names {
			for _, s := range alternatives(pick(n)) {
				out = append(out, s+suffix)
			}
		}
		return out
	}
	e.tokens = find(leaves(func(n Names) string { return n.Embed }, ".weight")...)
	e.positions = find(leaves(func(n Names) string { return n.PosEmbed }, ".weight")...)
	e.tokenTypes = find(leaves(func(n Names) string { return n.TokenTypes }, ".weight")...)
	e.normW = find(leaves(func(n Names) string { return n.EmbedNorm }, ".weight")...)
	e.normB = find(leaves(func(n Names) string { return n.EmbedNorm }, ".bias")...)
	if eps, _, ok := conf.float("layer_norm_eps", "layer_norm_epsilon"); ok {
		e.eps = eps
	}
	switch modelType {
	case "bart", "mbart", "opt":
		e.posOffset = 2
		e.eps = 1e-5
		if modelType != "opt" && conf.boolean("scale_embedding", false) {
			e.scale = float32(math.Sqrt(float64(m.Geo.DModel)))
		}
	case "roberta", "xlm-roberta", "camembert":
		pad, _, ok := conf.int("pad_token_id")
		if !ok {
			pad = 1
		}
		e.posOffset = pad + 1
	}
	if m.arch.EmbedScale {
		e.scale = float32(math.Sqrt(float64(m.Geo.DModel)))
	}
}

// Embeddings returns the input embedding pieces for the token ids.
func (m *Model) Embeddings(tokens []int) (*Embeddings, error) {
	c := m.Checkpoint
	e := &m.emb
	if e.tokens == nil {
		return nil, &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("no token-embedding matrix found (an adapter, or a layout this tool does not know); --tokens needs one")}
	}
	t := e.tokens
	if len(t.Shape) != 2 {
		return nil, &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("token embeddings must be 2-D, have shape %v", t.Shape)}
	}
	vocab, d := t.Shape[0], int(t.Shape[1])
	if m.Geo.DModel != 0 && d != m.Geo.DModel {
		return nil, &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("token embeddings have width %d, d_model is %d", d, m.Geo.DModel)}
	}
	for _, id := range tokens {
		if id < 0 || int64(id) >= vocab {
			return nil, &Error{File: c.Path, Tensor: t.Name, Offset: -1, Err: fmt.Errorf("token id %d is outside the vocabulary (size %d: ids 0..%d)", id, vocab, vocab-1)}
		}
	}
	T := len(tokens)
	out := &Embeddings{TokenRows: NewMatrix(T, d), TokenScale: e.scale, NormEps: e.eps}
	for i, id := range tokens {
		if err := c.DecodeRows(t, int64(id), int64(id)+1, out.TokenRows.Row(i)); err != nil {
			return nil, err
		}
	}
	if p := e.positions; p != nil && T > 0 {
		if len(p.Shape) != 2 || int(p.Shape[1]) != d {
			return nil, &Error{File: c.Path, Tensor: p.Name, Offset: -1, Err: fmt.Errorf("position embeddings have shape %v, expected [positions, %d]", p.Shape, d)}
		}
		if int64(e.posOffset+T) > p.Shape[0] {
			return nil, &Error{File: c.Path, Tensor: p.Name, Offset: -1, Err: fmt.Errorf("%d tokens need more than the model's %d learned positions", T, p.Shape[0]-int64(e.posOffset))}
		}
		out.Positions = NewMatrix(T, d)
		if err := c.DecodeRows(p, int64(e.posOffset), int64(e.posOffset+T), out.Positions.Data); err != nil {
			return nil, err
		}
	}
	if tt := e.tokenTypes; tt != nil {
		if len(tt.Shape) != 2 || int(tt.Shape[1]) != d || tt.Shape[0] < 1 {
			return nil, &Error{File: c.Path, Tensor: tt.Name, Offset: -1, Err: fmt.Errorf("token type embeddings have shape %v, expected [types, %d]", tt.Shape, d)}
		}
		out.TokenType = make([]float32, d)
		if err := c.DecodeRows(tt, 0, 1, out.TokenType); err != nil {
			return nil, err
		}
	}
	for _, x := range []struct {
		t   *Tensor
		dst *[]float32
	}{{e.normW, &out.NormWeight}, {e.normB, &out.NormBias}} {
		if x.t == nil {
			continue
		}
		if len(x.t.Shape) != 1 || int(x.t.Shape[0]) != d {
			return nil, &Error{File: c.Path, Tensor: x.t.Name, Offset: -1, Err: fmt.Errorf("embedding norm has shape %v, expected [%d]", x.t.Shape, d)}
		}
		v, err := c.DecodeNew(x.t)
		if err != nil {
			return nil, err
		}
		*x.dst = v
	}
	return out, nil
}
