package attn

import (
	"fmt"
	"math/rand/v2"

	"github.com/qkvdev/qkv/formats"
)

// RandomGenerator names the generator RandomInput uses, for reports. It is
// not torch's generator: the same seed gives different numbers than
// torch.randn.
const RandomGenerator = "Go math/rand/v2 PCG(seed, 0), NormFloat64"

// RandomInput returns a [T, d] input of standard normal draws times scale,
// from Go's math/rand/v2 PCG seeded with (seed, 0), drawn row by row and
// rounded to float32, and the InputInfo describing it.
func RandomInput(T, d int, seed uint64, scale float64) (formats.Matrix, InputInfo, error) {
	info := InputInfo{Kind: "random", Generator: RandomGenerator, Seed: &seed, Scale: scale}
	if T <= 0 || d <= 0 || uint64(T)*uint64(d) > maxCells {
		return formats.Matrix{}, info, fmt.Errorf("attn: random input of [%d, %d] is not a valid size", T, d)
	}
	r := rand.New(rand.NewPCG(seed, 0))
	x := formats.NewMatrix(T, d)
	for i := range x.Data {
		x.Data[i] = float32(r.NormFloat64() * scale)
	}
	return x, info, nil
}

// EmbeddingInput holds the rows an architecture's input embedding combines
// for a token sequence; the formats code fills it from a checkpoint.
type EmbeddingInput struct {
	// TokenRows are the token-embedding rows for the ids, decoded: [T, d].
	TokenRows formats.Matrix
	// TokenScale multiplies the token rows (sqrt(d_model) for models that
	// scale their embeddings, such as BART with scale_embedding); 0 means 1.
	TokenScale float32
	// Positions are the learned absolute position embeddings for positions
	// 0..T−1 (GPT-2, BERT), [T, d], or empty.
	Positions formats.Matrix
	// TokenType is BERT's token-type embedding row (type 0), or nil.
	TokenType []float32
	// NormWeight and NormBias are an embedding LayerNorm applied after the
	// sum (BERT's embeddings.LayerNorm, BLOOM's word_embeddings_layernorm),
	// nil when there is none; NormEps is its epsilon. NormBias may be nil.
	NormWeight, NormBias []float32
	NormEps              float64
}

// BuildInput returns the input the first layer receives, as Hugging Face
// computes it in float32: e = TokenRows·TokenScale (+ TokenType) (+ Positions), summed in
// that order, then LayerNorm(e; NormWeight, NormBias, NormEps) when
// NormWeight is set.
func BuildInput(e EmbeddingInput) (formats.Matrix, error) {
	T, d := e.TokenRows.Rows, e.TokenRows.Cols
	if T <= 0 || d <= 0 || len(e.TokenRows.Data) != T*d {
		return formats.Matrix{}, fmt.Errorf("attn: token rows are [%d, %d] with %d values", T, d, len(e.TokenRows.Data))
	}
	if !e.Positions.Empty() && (e.Positions.Rows != T || e.Positions.Cols != d || len(e.Positions.Data) != T*d) {
		return formats.Matrix{}, fmt.Errorf("attn: position embeddings are [%d, %d], want [%d, %d]", e.Positions.Rows, e.Positions.Cols, T, d)
	}
	if e.TokenType != nil && len(e.TokenType) != d {
		return formats.Matrix{}, fmt.Errorf("attn: token-type row has %d values, want %d", len(e.TokenType), d)
	}
	if e.NormWeight != nil && len(e.NormWeight) != d {
		return formats.Matrix{}, fmt.Errorf("attn: embedding norm weight has %d values, want %d", len(e.NormWeight), d)
	}
	if e.NormBias != nil && len(e.NormBias) != d {
		return formats.Matrix{}, fmt.Errorf("attn: embedding norm bias has %d values, want %d", len(e.NormBias), d)
	}
	x := formats.NewMatrix(T, d)
	copy(x.Data, e.TokenRows.Data)
	if e.TokenScale != 0 && e.TokenScale != 1 {
		for i := range x.Data {
			x.Data[i] *= e.TokenScale
		}
	}
	for i := 0; i < T; i++ {
		row := x.Row(i)
		if e.TokenType != nil {
			for j := range row {
				row[j] += e.TokenType[j]
			}
		}
		if !e.Positions.Empty() {
			for j, p := range e.Positions.Row(i) {
				row[j] += p
			}
		}
	}
	if e.NormWeight != nil {
		layerNorm(x.Data, x.Data, e.NormWeight, e.NormBias, d, e.NormEps)
	}
	return x, nil
}
