package circuits

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/qkvdev/qkv/internal/linalg"
)

// BaselineMethod describes how RandomBaseline draws its samples.
const BaselineMethod = "ARENA generate_single_random_comp_score: W_A = A_l·A_rᵀ, W_B = B_l·B_rᵀ, " +
	"A_l, A_r, B_l, B_r d_model×d_head i.i.d. U(−1, 1) (the score does not depend on the scale), " +
	"score ‖W_A·W_B‖/(‖W_A‖·‖W_B‖); math/rand/v2 PCG(seed, seed)"

// baselines remembers every baseline computed in this process: it depends
// only on its arguments, and a run that scores several variants or models
// of one shape (report, the tests) would otherwise draw it again each time.
var baselines sync.Map // baselineKey → Baseline

type baselineKey struct {
	dModel, dHead, n int
	seed             uint64
}

// RandomBaseline returns the mean, standard deviation and standard error of
// the composition score of n random pairs of rank-dHead d_model × d_model
// matrices, computed through their factors like the scores themselves.
func RandomBaseline(ctx context.Context, dModel, dHead, n int, seed uint64) (*Baseline, error) {
	if dModel <= 0 || dHead <= 0 || n <= 0 {
		return nil, fmt.Errorf("circuits: baseline of %d samples with d_model %d, d_head %d", n, dModel, dHead)
	}
	key := baselineKey{dModel, dHead, n, seed}
	if b, ok := baselines.Load(key); ok {
		bl := b.(Baseline)
		return &bl, nil
	}
	bl, err := randomBaseline(ctx, dModel, dHead, n, seed)
	if err == nil {
		baselines.Store(key, *bl)
	}
	return bl, err
}

func randomBaseline(ctx context.Context, dModel, dHead, n int, seed uint64) (*Baseline, error) {
	rng := rand.New(rand.NewPCG(seed, seed))
	draw := func() linalg.View[float64] {
		m := make([]float64, dModel*dHead)
		for i := range m {
			m[i] = 2*rng.Float64() - 1
		}
		return linalg.RowMajor(m, dModel, dHead, dHead)
	}
	// fac returns F with FᵀF = XᵀX for a d_model × d_head X.
	fac := func(x linalg.View[float64]) ([]float64, error) {
		g, err := gram(x.T(), nil)
		if err != nil {
			return nil, err
		}
		return factor(g, dHead), nil
	}
	scores := make([]float64, n)
	m := make([]float64, dHead*dHead)
	t := make([]float64, dHead*dHead)
	for s := range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		al, ar, bl, br := draw(), draw(), draw(), draw()
		var f [4][]float64
		for i, x := range []linalg.View[float64]{al, ar, bl, br} {
			var err error
			if f[i], err = fac(x); err != nil {
				return nil, err
			}
		}
		// ‖A_l·(A_rᵀB_l)·B_rᵀ‖ = ‖F(A_l)·(A_rᵀB_l)·F(B_r)ᵀ‖.
		if err := mul(m, dHead, ar.T(), bl); err != nil {
			return nil, err
		}
		sq := linalg.RowMajor(f[0], dHead, dHead, dHead)
		if err := mul(t, dHead, sq, linalg.RowMajor(m, dHead, dHead, dHead)); err != nil {
			return nil, err
		}
		num := crossNorm(t, f[3], dHead)
		scores[s] = num / (crossNorm(f[0], f[1], dHead) * crossNorm(f[2], f[3], dHead))
	}
	var mean float64
	for _, v := range scores {
		mean += v
	}
	mean /= float64(n)
	var ss float64
	for _, v := range scores {
		ss += (v - mean) * (v - mean)
	}
	std := math.Sqrt(ss / float64(n))
	return &Baseline{Mean: mean, Std: std, Stderr: std / math.Sqrt(float64(n)), NSamples: n,
		DModel: dModel, DHead: dHead, Seed: seed, Method: BaselineMethod}, nil
}
