// Package attn reruns one layer's attention from its extracted projections on
// sample inputs, the way PyTorch does it in float32, and measures what each
// head does with the resulting attention pattern.
//
// The computation, for an input x of shape [T, d_model], follows the Hugging
// Face implementations (see Run): optional pre-norm with the layer's own
// weights, q/k/v projections with biases, RoPE (rotate_half on the HF row
// order, partial where the geometry says so), ALiBi (BLOOM), grouped-query
// attention, a causal mask for decoders, softmax, and the output projection.
//
// Inputs come from RandomInput (Go's math/rand/v2 PCG, not torch's
// generator), from the caller, or from token embeddings via BuildInput.
//
// Per-head metrics (see HeadMetrics) summarise each pattern; Document and
// WriteJSON give the "qkv.attn/v1" JSON form and render.go draws the patterns
// as heatmaps for a terminal.
package attn
