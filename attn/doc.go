// Package attn reruns one layer's attention from its extracted projections on
// sample inputs, the way PyTorch does it in float32, and measures what each
// head does with the resulting attention pattern.
//
// The computation, for an input x of shape [T, d_model], follows the Hugging
// Face implementations with eager attention (see Run): optional pre-norm
// with the layer's own weights, q/k/v projections with biases (for latent
// attention, exactly from the stored factors), Q/K norms, RoPE (rotate_half
// or interleaved pairs, partial where the geometry says so, with each
// layer's base and any of transformers' rope scalings, see RopeFreqs), ALiBi
// (BLOOM), grouped-query attention, the score scale and logit softcap, a
// causal or sliding-window mask, softmax with learned sinks where the model
// has them, and the output projection. Every setting comes from
// formats.Geometry and formats.Layer; one that Run does not implement is
// refused with an *UnsupportedError (see CheckSupported), never ignored.
//
// Inputs come from RandomInput (Go's math/rand/v2 PCG, not torch's
// generator), from the caller, or from token embeddings via BuildInput.
//
// Per-head metrics (see HeadMetrics) summarise each pattern; Settings states
// every choice made; Document and WriteJSON give the "qkv.attn/v1" JSON form
// and render.go draws the patterns as heatmaps for a terminal.
package attn
