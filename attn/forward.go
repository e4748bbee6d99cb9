package attn

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"sort"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/termui"
)

// The real forward pass: the model from its token embeddings through every
// block (attention by Run, then the norms, MLP or experts and residual adds
// its architecture has), so that layer L sees the residual stream layers
// 0..L−1 produce; then, when asked, the final norm and the LM head. Weights
// are decoded one block at a time (experts one at a time), so memory stays
// at one block plus the activations.

// Input modes (what each layer's attention reads).
const (
	// InputModeForward: the residual stream the blocks below produce.
	InputModeForward = "forward"
	// InputModeRaw: the same input (the embeddings) for every layer.
	InputModeRaw = "raw"
)

// ForwardOptions changes what Forward computes and keeps.
type ForwardOptions struct {
	// Layers lists the layers whose attention results (probabilities and
	// head metrics) Forward returns; the blocks below the largest run.
	Layers []int
	// Logits runs every block, the final norm and the LM head.
	Logits bool
	// AllBlocks runs every block (Last is then the last block's output,
	// hidden.N) even without Logits: the output of an encoder without an
	// LM head (BERT).
	AllBlocks bool
	// Causal overrides the mask of every layer's attention when non-nil.
	Causal *bool
	// Input is copied into each result's settings.
	Input InputInfo
	// Stream keeps nothing per layer: the results and hidden states reach
	// the caller only through OnBlock (ForwardResult.Results and Hidden
	// stay empty), and a record is valid only during its call (the next
	// block reuses its probabilities' memory), so that memory holds one
	// block and one layer's probabilities whatever the depth.
	Stream bool
	// OnBlock, when set, is called after each block (or, for the last
	// layer wanted without logits, after its attention) with the block's
	// record; an error stops the forward.
	OnBlock func(*BlockRecord) error
}

// BlockRecord is one block's part of a forward pass.
type BlockRecord struct {
	Index int
	// Hidden is the residual stream entering the block, [T, d_model].
	Hidden formats.Matrix
	// AttnIn is what the attention's Q/K/V read: the pre-attention norm of
	// Hidden, or Hidden itself where there is none (BERT, OLMo 2).
	AttnIn formats.Matrix
	// Attn is the attention rerun on Hidden (Attn.Out is the attention
	// output before any post-norm and the residual add).
	Attn *Result
	// MLPOut is the MLP's output (after its down projection and bias,
	// before any post-norm and the residual add); empty when the block was
	// not completed.
	MLPOut formats.Matrix
	// Routing lists, for MoE layers, each token's experts and weights.
	Routing [][]ExpertWeight
}

// ExpertWeight is one routed expert of a token and its weight.
type ExpertWeight struct {
	Expert int     `json:"expert"`
	Weight float64 `json:"weight"`
}

// ForwardResult is the outcome of Forward.
type ForwardResult struct {
	Spec   formats.ForwardSpec
	Tokens []int
	// Results are the attention results of the requested layers, in order.
	Results []*Result
	// Hidden[i] is the residual stream entering block i, for every block
	// that ran (and the layer whose attention ended the pass).
	Hidden []formats.Matrix
	// Last is the output of the last block that ran completely; with
	// Logits, the output of the last block (hidden.N).
	Last formats.Matrix
	// FinalNorm and Logits [T, vocab] are set with ForwardOptions.Logits
	// (FinalNorm empty for a model without a final norm).
	FinalNorm formats.Matrix
	Logits    formats.Matrix
}

// maxLogitCells bounds T·vocab of the logits (4 bytes each).
const maxLogitCells = 1 << 30

// EmbedTokens returns the input the first block receives for the token ids:
// the token embeddings (scaled where the model scales them), learned
// positions, token type 0 and embedding norm where the model has them.
func EmbedTokens(m *formats.Model, ids []int) (formats.Matrix, error) {
	e, err := m.Embeddings(ids)
	if err != nil {
		return formats.Matrix{}, err
	}
	return BuildInput(EmbeddingInput{TokenRows: e.TokenRows, TokenScale: e.TokenScale, Positions: e.Positions,
		TokenType: e.TokenType, NormWeight: e.NormWeight, NormBias: e.NormBias, NormEps: e.NormEps})
}

// ForwardSupported returns the model's forward spec, or an
// *UnsupportedError naming everything the forward pass (and the attention
// of its layers) does not model.
func ForwardSupported(m *formats.Model) (*formats.ForwardSpec, error) {
	spec, err := m.ForwardSpec()
	if err != nil {
		return nil, err
	}
	items := append([]formats.Unsupported(nil), spec.Unsupported...)
	if err := CheckSupported(m.Geometry()); err != nil {
		var ue *UnsupportedError
		if errors.As(err, &ue) {
			items = append(items, ue.Items...)
		}
	}
	if len(items) > 0 {
		return spec, &UnsupportedError{Items: items}
	}
	return spec, nil
}

// Forward runs the model on the token ids. See the package comment of this
// file; every block's computation follows its Hugging Face modeling code in
// float32 (sums of norms and softmax in float64):
//
//	pre-norm:        h += attn(norm1(h)); h += mlp(norm2(h))
//	parallel:        h += attn(norm1(h)) + mlp(norm2(h) or norm1(h))   (GPT-NeoX, Falcon)
//	sandwich:        h += norm2(attn(norm1(h))); h += norm4(mlp(norm3(h)))  (Gemma 2/3)
//	sub-post-norm:   h += norm1(attn(h)); h += norm2(mlp(h))           (OLMo 2)
//	post-norm:       a = norm1(h + attn(h)); h = norm2(a + mlp(a))     (BERT)
//
// then, with Logits, logits = final_norm(h)·W_headᵀ (capped where the
// model caps them). A model with anything the forward does not model is
// refused with an *UnsupportedError before any weight is decoded.
func Forward(m *formats.Model, tokens []int, opt ForwardOptions) (*ForwardResult, error) {
	spec, last, err := forwardPlan(m, tokens, opt)
	if err != nil {
		return nil, err
	}
	g := m.Geometry()
	want := map[int]bool{}
	for _, l := range opt.Layers {
		want[l] = true
	}
	x, err := EmbedTokens(m, tokens)
	if err != nil {
		return nil, err
	}
	res := &ForwardResult{Spec: *spec, Tokens: append([]int(nil), tokens...)}
	h := x
	var reuse []float32 // a streamed pass's probabilities, block after block
	for i := 0; i <= min(last, spec.Layers-1); i++ {
		onlyAttn := i == last
		var b *formats.Block
		if onlyAttn {
			// The last layer asked for: its attention is all that runs.
			l, err := m.LoadLayer(i)
			if err != nil {
				return nil, err
			}
			b = &formats.Block{Index: i, Attn: l}
		} else if b, err = m.LoadBlock(i); err != nil {
			return nil, err
		}
		rec, next, err := runBlock(g, spec, b, h, opt, onlyAttn, reuse)
		if err != nil {
			return nil, err
		}
		if !opt.Stream {
			res.Hidden = append(res.Hidden, h)
			if want[i] {
				res.Results = append(res.Results, rec.Attn)
			}
		}
		if opt.OnBlock != nil {
			if err := opt.OnBlock(rec); err != nil {
				return nil, err
			}
		}
		if opt.Stream {
			reuse = rec.Attn.ProbsBuffer()
		}
		if !onlyAttn {
			h = next
			res.Last = h
		}
		// Hand the block's weights back before the next block is decoded,
		// so memory stays at one block (the garbage collector would
		// otherwise let the heap grow to about two).
		if blockBytes(b) > 64<<20 {
			debug.FreeOSMemory()
		}
	}
	if !opt.Logits {
		return res, nil
	}
	return res, finishLogits(m, spec, res)
}

// ForwardCheck reports what Forward would refuse before running any block
// — a setting it does not model, no tokens, a layer out of range, logits
// from a model without an LM head — so that a caller refuses before it
// writes anything. Token ids are checked by EmbedTokens.
func ForwardCheck(m *formats.Model, tokens []int, opt ForwardOptions) error {
	_, _, err := forwardPlan(m, tokens, opt)
	return err
}

// forwardPlan checks a forward pass and returns its spec and the last block
// it runs (the number of blocks with logits: the final norm follows).
func forwardPlan(m *formats.Model, tokens []int, opt ForwardOptions) (*formats.ForwardSpec, int, error) {
	spec, err := ForwardSupported(m)
	if err != nil {
		return nil, 0, err
	}
	if len(tokens) == 0 {
		return nil, 0, errors.New("attn: the forward pass needs at least one token")
	}
	last := -1
	for _, l := range opt.Layers {
		if l < 0 || l >= spec.Layers {
			return nil, 0, fmt.Errorf("attn: layer %d is outside the forward's layers 0..%d", l, spec.Layers-1)
		}
		last = max(last, l)
	}
	if opt.Logits {
		last = spec.Layers
		if spec.LMHead == formats.LMHeadNone {
			return nil, 0, &UnsupportedError{Items: []formats.Unsupported{{Kind: "tensor", Name: "lm_head", Message: fmt.Sprintf("the %s model has no LM head, so there are no logits", spec.Arch)}}}
		}
	}
	if opt.AllBlocks {
		last = max(last, spec.Layers)
	}
	if last < 0 {
		return nil, 0, errors.New("attn: the forward pass needs a layer or the logits")
	}
	return spec, last, nil
}

// blockBytes is the size of a block's decoded weights (MoE experts are
// decoded and dropped one at a time and do not count).
func blockBytes(b *formats.Block) int {
	n := 0
	mats := []formats.Matrix{b.Attn.Q, b.Attn.K, b.Attn.V, b.Attn.O}
	if b.MLP != nil {
		mats = append(mats, b.MLP.Gate, b.MLP.Up, b.MLP.Down)
	}
	for _, m := range mats {
		n += 4 * len(m.Data)
	}
	return n
}

// finishLogits applies the final norm and the LM head to res.Last.
func finishLogits(m *formats.Model, spec *formats.ForwardSpec, res *ForwardResult) error {
	h := res.Last
	fn, err := m.FinalNorm()
	if err != nil {
		return err
	}
	if fn != nil {
		res.FinalNorm = applyNorm(spec, fn, h)
		h = res.FinalNorm
	}
	head, err := m.LMHead()
	if err != nil {
		return err
	}
	vocab := int(head.Shape[0])
	if uint64(h.Rows)*uint64(vocab) > maxLogitCells {
		return fmt.Errorf("attn: %d tokens × a vocabulary of %d is more logits than qkv keeps (%d)", h.Rows, vocab, maxLogitCells)
	}
	logits := formats.NewMatrix(h.Rows, vocab)
	// The head is often the largest matrix: decode it in row blocks.
	const block = 8192
	xp := packMatrixA(h.Data, h.Cols, h.Rows, h.Cols, true)
	buf := make([]float32, min(block, vocab)*h.Cols)
	tmp := make([]float32, h.Rows*min(block, vocab))
	for r0 := 0; r0 < vocab; r0 += block {
		r1 := min(vocab, r0+block)
		w := buf[:(r1-r0)*h.Cols]
		if err := m.Checkpoint.DecodeRows(head, int64(r0), int64(r1), w); err != nil {
			return err
		}
		n := r1 - r0
		gemmPacked(xp, true, n, w, h.Cols, tmp, n, true)
		for t := 0; t < h.Rows; t++ {
			copy(logits.Data[t*vocab+r0:t*vocab+r1], tmp[t*n:(t+1)*n])
		}
	}
	if spec.LMHeadBias {
		bias, err := m.LMHeadBias()
		if err != nil {
			return err
		}
		for t := 0; t < logits.Rows; t++ {
			row := logits.Row(t)
			for j := range row {
				row[j] += bias[j]
			}
		}
	}
	if c := spec.FinalLogitSoftcap; c > 0 {
		for i, v := range logits.Data {
			logits.Data[i] = float32(math.Tanh(float64(v)/c) * c)
		}
	}
	res.Logits = logits
	return nil
}

// runBlock computes one block on h. It returns the block's record and the
// residual stream leaving it (unset when onlyAttn).
func runBlock(g formats.Geometry, spec *formats.ForwardSpec, b *formats.Block, h formats.Matrix, opt ForwardOptions, onlyAttn bool, probs []float32) (*BlockRecord, formats.Matrix, error) {
	rec := &BlockRecord{Index: b.Index, Hidden: h, AttnIn: h}
	l := b.Attn
	preNorm := g.PreNorm && g.Norm != formats.NormNone && g.Norm != ""
	if preNorm {
		rec.AttnIn = applyNorm(spec, &formats.Norm{Weight: l.NormWeight, Bias: l.NormBias}, h)
	}
	r, err := Run(g, l, h, Options{Causal: opt.Causal, Input: opt.Input, Probs: probs})
	if err != nil {
		return nil, formats.Matrix{}, fmt.Errorf("layer %d: %w", b.Index, err)
	}
	rec.Attn = r
	if onlyAttn {
		return rec, formats.Matrix{}, nil
	}
	attnOut := r.Out
	var next formats.Matrix
	mlp := func(in formats.Matrix) (formats.Matrix, error) {
		out, routing, err := mlpForward(spec, b, in)
		rec.MLPOut, rec.Routing = out, routing
		return out, err
	}
	switch spec.Placement {
	case formats.PlacementPre:
		if spec.ParallelResidual {
			in := rec.AttnIn
			if !spec.SharedNorm {
				in = applyNorm(spec, b.FFNNorm, h)
			}
			out, err := mlp(in)
			if err != nil {
				return nil, next, err
			}
			next = add(h, add(attnOut, out))
		} else {
			h1 := add(h, attnOut)
			out, err := mlp(applyNorm(spec, b.FFNNorm, h1))
			if err != nil {
				return nil, next, err
			}
			next = add(h1, out)
		}
	case formats.PlacementSandwich:
		h1 := add(h, applyNorm(spec, b.PostAttnNorm, attnOut))
		out, err := mlp(applyNorm(spec, b.FFNNorm, h1))
		if err != nil {
			return nil, next, err
		}
		next = add(h1, applyNorm(spec, b.PostFFNNorm, out))
	case formats.PlacementSubPost:
		h1 := add(h, applyNorm(spec, b.PostAttnNorm, attnOut))
		out, err := mlp(h1)
		if err != nil {
			return nil, next, err
		}
		next = add(h1, applyNorm(spec, b.PostFFNNorm, out))
	case formats.PlacementPost:
		a := applyNorm(spec, b.PostAttnNorm, add(h, attnOut))
		out, err := mlp(a)
		if err != nil {
			return nil, next, err
		}
		next = applyNorm(spec, b.PostFFNNorm, add(a, out))
	default:
		return nil, next, &UnsupportedError{Items: []formats.Unsupported{{Kind: "setting", Name: "placement", Message: fmt.Sprintf("block placement %q is not implemented", spec.Placement)}}}
	}
	return rec, next, nil
}

// add returns a + b.
func add(a, b formats.Matrix) formats.Matrix {
	out := formats.NewMatrix(a.Rows, a.Cols)
	for i, v := range a.Data {
		out.Data[i] = v + b.Data[i]
	}
	return out
}

// applyNorm returns the spec's norm of x with n's weights.
func applyNorm(spec *formats.ForwardSpec, n *formats.Norm, x formats.Matrix) formats.Matrix {
	out := formats.NewMatrix(x.Rows, x.Cols)
	if spec.Norm == formats.NormLayerNorm {
		layerNorm(out.Data, x.Data, n.Weight, n.Bias, x.Cols, spec.NormEps)
	} else {
		rmsNorm(out.Data, x.Data, n.Weight, x.Cols, spec.NormEps)
	}
	return out
}

// mlpForward computes the block's MLP, dense or routed.
func mlpForward(spec *formats.ForwardSpec, b *formats.Block, x formats.Matrix) (formats.Matrix, [][]ExpertWeight, error) {
	if b.MLP != nil {
		return denseMLP(spec, b.MLP, x), nil, nil
	}
	if b.MoE == nil || spec.MoE == nil {
		return formats.Matrix{}, nil, fmt.Errorf("attn: block %d has no MLP", b.Index)
	}
	return moeForward(spec, b.MoE, x)
}

// denseMLP returns down(act(gate(x))·up(x)) or down(act(up(x))), with biases.
func denseMLP(spec *formats.ForwardSpec, w *formats.MLP, x formats.Matrix) formats.Matrix {
	xp := packMatrixA(x.Data, x.Cols, x.Rows, x.Cols, true)
	up := linearPacked(xp, w.Up, w.UpBias)
	if w.Gate.Empty() {
		activate(spec.Activation, up.Data)
	} else {
		gate := linearPacked(xp, w.Gate, w.GateBias)
		if spec.Activation == formats.ActSwiGLUOAI {
			swigluOAI(gate.Data, up.Data, spec.MoE.SwiGLULimit, spec.MoE.SwiGLUAlpha)
		} else {
			activate(spec.Activation, gate.Data)
			for i, g := range gate.Data {
				up.Data[i] *= g
			}
		}
	}
	return linear(up, w.Down, w.DownBias)
}

// activate applies the activation in place, each value computed in float64
// and rounded once.
func activate(act string, v []float32) {
	switch act {
	case formats.ActSiLU:
		for i, x := range v {
			v[i] = float32(float64(x) / (1 + math.Exp(-float64(x))))
		}
	case formats.ActGELU:
		for i, x := range v {
			f := float64(x)
			v[i] = float32(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
		}
	case formats.ActGELUTanh:
		const c = 0.7978845608028654 // sqrt(2/π)
		for i, x := range v {
			f := float64(x)
			v[i] = float32(0.5 * f * (1 + math.Tanh(c*(f+0.044715*f*f*f))))
		}
	case formats.ActBloomGELU:
		for i, x := range v {
			f := float64(x)
			v[i] = float32(f * 0.5 * (1 + math.Tanh(0.79788456*f*(1+0.044715*f*f))))
		}
	case formats.ActReLU:
		for i, x := range v {
			if !(x > 0) && x == x {
				v[i] = 0
			}
		}
	case formats.ActQuickGELU:
		for i, x := range v {
			f := float64(x)
			v[i] = float32(f / (1 + math.Exp(-1.702*f)))
		}
	default:
		// ForwardSpec refuses unknown activations before any compute.
		panic("attn: activation " + act + " reached the MLP")
	}
}

// swigluOAI writes GPT-OSS's clamped SwiGLU into up: gate = min(gate,
// limit), up = clamp(up, −limit, limit), (up + 1)·gate·sigmoid(alpha·gate).
func swigluOAI(gate, up []float32, limit, alpha float64) {
	for i := range up {
		g := math.Min(float64(gate[i]), limit)
		u := math.Max(-limit, math.Min(float64(up[i]), limit))
		up[i] = float32((u + 1) * g / (1 + math.Exp(-alpha*g)))
	}
}

// route returns one token's experts and weights from its router logits
// (a row of [experts]) by the spec's rule; corr is the score-correction
// bias or nil.
func route(ms *formats.MoESpec, logits []float64, corr []float32) []ExpertWeight {
	n, k := len(logits), ms.TopK
	scores := make([]float64, n)
	if ms.SoftmaxAfterTopK {
		idx := topK(logits, k)
		out := make([]ExpertWeight, k)
		m := logits[idx[0]]
		var sum float64
		for i, e := range idx {
			w := math.Exp(logits[e] - m)
			out[i] = ExpertWeight{e, w}
			sum += w
		}
		for i := range out {
			out[i].Weight *= ms.Scale / sum
		}
		return out
	}
	if ms.Scoring == "sigmoid" {
		for i, v := range logits {
			scores[i] = 1 / (1 + math.Exp(-v))
		}
	} else {
		m := math.Inf(-1)
		for _, v := range logits {
			m = math.Max(m, v)
		}
		var sum float64
		for i, v := range logits {
			scores[i] = math.Exp(v - m)
			sum += scores[i]
		}
		for i := range scores {
			scores[i] /= sum
		}
	}
	sel := scores
	if ms.ScoreCorrection && corr != nil {
		sel = make([]float64, n)
		for i := range sel {
			sel[i] = scores[i] + float64(corr[i])
		}
	}
	if ms.Groups > 1 {
		per := n / ms.Groups
		gs := make([]float64, ms.Groups)
		for gi := range gs {
			grp := sel[gi*per : (gi+1)*per]
			if ms.GroupScore == "top2_sum" {
				t := topK(grp, 2)
				gs[gi] = grp[t[0]] + grp[t[1]]
			} else {
				gs[gi] = grp[topK(grp, 1)[0]]
			}
		}
		keep := map[int]bool{}
		for _, gi := range topK(gs, ms.TopKGroups) {
			keep[gi] = true
		}
		masked := make([]float64, n)
		for i := range masked {
			if keep[i/per] {
				masked[i] = sel[i]
			}
		}
		sel = masked
	}
	idx := topK(sel, k)
	out := make([]ExpertWeight, k)
	var sum float64
	for i, e := range idx {
		out[i] = ExpertWeight{e, scores[e]}
		sum += scores[e]
	}
	for i := range out {
		if ms.NormTopK {
			out[i].Weight /= sum + ms.NormDenomEps
		}
		out[i].Weight *= ms.Scale
	}
	return out
}

// topK returns the indices of the k largest values, largest first; ties go
// to the lower index (torch.topk on CPU).
func topK(v []float64, k int) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return v[idx[a]] > v[idx[b]] })
	return idx[:k]
}

// moeForward routes each token of x to its experts and sums their outputs
// by weight, plus the shared MLP; experts are decoded one at a time.
func moeForward(spec *formats.ForwardSpec, w *formats.MoE, x formats.Matrix) (formats.Matrix, [][]ExpertWeight, error) {
	ms := spec.MoE
	T, d := x.Rows, x.Cols
	n := w.Experts()
	routing := make([][]ExpertWeight, T)
	byExpert := make([][]int, n) // token positions per expert
	weightOf := make([][]float64, n)
	for t := 0; t < T; t++ {
		row := x.Row(t)
		logits := make([]float64, n)
		for e := 0; e < n; e++ {
			var s float64
			for j, v := range w.Router.Row(e) {
				s += float64(v) * float64(row[j])
			}
			if w.RouterBias != nil {
				s += float64(w.RouterBias[e])
			}
			logits[e] = float64(float32(s))
		}
		routing[t] = route(ms, logits, w.ScoreCorrection)
		for _, ew := range routing[t] {
			byExpert[ew.Expert] = append(byExpert[ew.Expert], t)
			weightOf[ew.Expert] = append(weightOf[ew.Expert], ew.Weight)
		}
	}
	out := formats.NewMatrix(T, d)
	for e := 0; e < n; e++ {
		toks := byExpert[e]
		if len(toks) == 0 {
			continue
		}
		ex, err := w.Expert(e)
		if err != nil {
			return formats.Matrix{}, nil, err
		}
		in := formats.NewMatrix(len(toks), d)
		for i, t := range toks {
			copy(in.Row(i), x.Row(t))
		}
		y := denseMLP(spec, ex, in)
		for i, t := range toks {
			wt := float32(weightOf[e][i])
			dst := out.Row(t)
			for j, v := range y.Row(i) {
				dst[j] += v * wt
			}
		}
	}
	if w.Shared != nil {
		sh := denseMLP(spec, w.Shared, x)
		for i, v := range sh.Data {
			out.Data[i] += v
		}
	}
	return out, routing, nil
}

// ---- induction ----

// InductionDefinition says what HeadMetrics.Induction measures.
const InductionDefinition = "on a random token sequence of length n repeated twice (first copy at positions s..s+n−1, second at s+n..s+2n−1): the mean over the n tokens of the second copy of the attention from each to the token after its earlier occurrence, p[s+n+j][s+j+1] (TransformerLens's induction score)"

// RandomRepeatTokens returns a random token sequence of length n repeated
// twice, after the BOS token when bos ≥ 0, drawn uniformly from ids
// [lo, vocab) with Go's PCG seeded with (seed, 0); and the position of the
// first copy's first token.
func RandomRepeatTokens(n, vocab, lo int, seed uint64, bos int) ([]int, int, error) {
	if n < 1 || vocab-lo < 2 || lo < 0 {
		return nil, 0, fmt.Errorf("attn: a random repeated sequence needs n ≥ 1 and at least 2 token ids to draw from (n %d, ids %d..%d)", n, lo, vocab-1)
	}
	r := rand.New(rand.NewPCG(seed, 0))
	var out []int
	start := 0
	if bos >= 0 {
		out, start = append(out, bos), 1
	}
	first := make([]int, n)
	for i := range first {
		first[i] = lo + int(r.IntN(vocab-lo))
	}
	out = append(out, first...)
	return append(out, first...), start, nil
}

// InductionScores returns each head's induction score (InductionDefinition)
// for a result whose input is a sequence of length n repeated twice from
// position start, and stores it in the result's head metrics.
func InductionScores(r *Result, start, n int) ([]float64, error) {
	if len(r.Probs) == 0 {
		return nil, errors.New("attn: no probabilities")
	}
	T := len(r.Probs[0])
	if n < 1 || start < 0 || start+2*n > T {
		return nil, fmt.Errorf("attn: a repeated sequence of 2×%d tokens from position %d does not fit in %d positions", n, start, T)
	}
	out := make([]float64, len(r.Probs))
	for h, p := range r.Probs {
		var s float64
		for j := 0; j < n; j++ {
			s += float64(p[start+n+j][start+j+1])
		}
		out[h] = s / float64(n)
		if h < len(r.Heads) {
			v := out[h]
			r.Heads[h].Induction = &v
		}
	}
	return out, nil
}

// ---- predictions ----

// Prediction is one candidate next token.
type Prediction struct {
	ID int `json:"id"`
	// Piece is the token's vocabulary entry, filled by callers that have
	// the tokenizer.
	Piece string  `json:"piece,omitempty"`
	Logit float64 `json:"logit"`
	Prob  float64 `json:"prob"`
}

// minProbF32 is float32's smallest normal number: a probability below it is
// beyond what the model's float32 softmax resolves (it would flush to zero
// or lose its digits), so the document writes null and says so.
const minProbF32 = 0x1p-126

// MarshalJSON writes the probability as null, with "prob_beyond_float32",
// when it is below float32's smallest normal number (the model's float32
// softmax does not resolve it), and non-finite values as null with
// "non_finite".
func (p Prediction) MarshalJSON() ([]byte, error) {
	type F = termui.Float
	out := struct {
		ID        int    `json:"id"`
		Piece     string `json:"piece,omitempty"`
		Logit     F      `json:"logit"`
		Prob      F      `json:"prob"`
		Beyond    bool   `json:"prob_beyond_float32,omitempty"`
		NonFinite bool   `json:"non_finite,omitempty"`
	}{ID: p.ID, Piece: p.Piece, Logit: F(p.Logit), Prob: F(p.Prob)}
	out.NonFinite = !out.Logit.Valid() || !out.Prob.Valid()
	if out.Prob.Valid() && p.Prob > 0 && p.Prob < minProbF32 {
		out.Prob, out.Beyond = F(math.NaN()), true
	}
	return json.Marshal(out)
}

// TopPredictions returns the k most likely next tokens after position t,
// with softmax probabilities over the whole vocabulary (computed in
// float64).
func TopPredictions(logits formats.Matrix, t, k int) []Prediction {
	if t < 0 || t >= logits.Rows || k < 1 {
		return nil
	}
	row := logits.Row(t)
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, float64(v))
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - m)
	}
	vals := make([]float64, len(row))
	for i, v := range row {
		vals[i] = float64(v)
	}
	idx := topK(vals, min(k, len(row)))
	out := make([]Prediction, len(idx))
	for i, id := range idx {
		out[i] = Prediction{ID: id, Logit: vals[id], Prob: math.Exp(vals[id]-m) / sum}
	}
	return out
}

// Predictions returns the k most likely next tokens after the last
// position, with pieces from piece (nil: none); nil without logits.
func (r *ForwardResult) Predictions(k int, piece func(id int) string) []Prediction {
	if r.Logits.Empty() {
		return nil
	}
	preds := TopPredictions(r.Logits, r.Logits.Rows-1, k)
	if piece != nil {
		for i := range preds {
			preds[i].Piece = piece(preds[i].ID)
		}
	}
	return preds
}
