package inspect

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

// mlaRef is zoo-modern/deepseek_v3/expected/stats.json: like a zoo stats
// file, with a head size per key.
type mlaRef struct {
	NLayers  int                 `json:"n_layers"`
	Matrices map[string]refStats `json:"matrices"`
}

// compareEffective checks an effective latent-attention matrix (a float32
// product of factors) against numpy's float64 product rounded once:
// deepseek_v3/README.md's tolerances — rank and counts exact; fro,
// spectral norm, effective and stable rank and the singular values above
// the rank threshold to 1e-5 relative; the condition number only when the
// rank is full (otherwise it is the product's rounding noise).
func compareEffective(name string, got Stats, want refStats) []string {
	var bad []string
	if got.Shape != want.Shape {
		return []string{fmt.Sprintf("%s shape %v, want %v", name, got.Shape, want.Shape)}
	}
	if got.NaNCount != want.NaNCount || got.InfCount != want.InfCount || got.Rank == nil || *got.Rank != want.Rank {
		bad = append(bad, fmt.Sprintf("%s counts %d/%d rank %v, want %d/%d rank %d", name, got.NaNCount, got.InfCount, got.Rank,
			want.NaNCount, want.InfCount, want.Rank))
	}
	for _, x := range []struct {
		what string
		g    Float
		w    float64
	}{{"fro", got.Fro, want.Fro}, {"spectral_norm", got.SpectralNorm, want.SpectralNorm},
		{"effective_rank", got.EffectiveRank, want.EffectiveRank}, {"stable_rank", got.StableRank, want.StableRank}} {
		if !x.g.Valid() || relDiff(float64(x.g), x.w) > 1e-5 {
			bad = append(bad, fmt.Sprintf("%s %s = %v, want %v", name, x.what, float64(x.g), x.w))
		}
	}
	for i := 0; i < want.Rank && i < len(got.SV) && i < len(want.SV); i++ {
		if relDiff(got.SV[i], want.SV[i]) > 1e-5 {
			bad = append(bad, fmt.Sprintf("%s sv[%d] = %v, want %v", name, i, got.SV[i], want.SV[i]))
		}
	}
	if want.Rank == min(want.Shape[0], want.Shape[1]) && want.Condition != nil && (!got.Condition.Valid() || relDiff(float64(got.Condition), *want.Condition) > 1e-5) {
		bad = append(bad, fmt.Sprintf("%s condition %v, want %v", name, float64(got.Condition), *want.Condition))
	}
	return bad
}

// TestLatentAttentionStats: inspect analyses a latent-attention model from
// its checkpoint — the effective q, k, v with their rank bound, per head
// (value heads of v_head_dim), o, and the stored factors q_a, q_b, kv_a,
// kv_b — and every number agrees with numpy's (stats.json).
func TestLatentAttentionStats(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "zoo-modern", "deepseek_v3")
	var ref mlaRef
	if err := testref.ReadJSON(filepath.Join(dir, "expected", "stats.json"), &ref); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"hf", "gguf/deepseek_v3-f32.gguf"} {
		t.Run(src, func(t *testing.T) {
			ck, err := formats.Open(filepath.Join(dir, filepath.FromSlash(src)), formats.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			m, err := formats.FindModel(ck, formats.FindOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Run(context.Background(), m, Options{Heads: true, Spectrum: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Layers) != ref.NLayers {
				t.Fatalf("%d layers, want %d", len(rep.Layers), ref.NLayers)
			}
			bounds := map[formats.Projection]int{formats.ProjQ: 32, formats.ProjK: 40, formats.ProjV: 32}
			for _, l := range rep.Layers {
				var bad []string
				for _, p := range formats.Projections {
					key := fmt.Sprintf("layers.%d.%s", l.Index, p)
					want, got := ref.Matrices[key], l.Matrix(p)
					cmp := compareEffective
					if p == formats.ProjO {
						cmp = compareStats
					}
					bad = append(bad, cmp(key, got.Stats, want)...)
					if got.RankBound != bounds[p] || (got.Rank != nil && p != formats.ProjO && *got.Rank > got.RankBound) {
						bad = append(bad, fmt.Sprintf("%s rank bound %d (rank %v), want %d", key, got.RankBound, got.Rank, bounds[p]))
					}
					if len(got.Heads) != len(want.Heads) {
						bad = append(bad, fmt.Sprintf("%s: %d heads, want %d", key, len(got.Heads), len(want.Heads)))
						continue
					}
					for h, wh := range want.Heads {
						bad = append(bad, cmp(fmt.Sprintf("%s head %d", key, h), got.Heads[h].Stats, wh)...)
					}
				}
				names := ""
				for _, f := range l.Factors {
					names += f.Name + " "
					bad = append(bad, compareStats(fmt.Sprintf("layers.%d.%s", l.Index, f.Name), f.Stats, ref.Matrices[fmt.Sprintf("layers.%d.%s", l.Index, f.Name)])...)
				}
				if names != "q_a q_b kv_a kv_b " {
					bad = append(bad, fmt.Sprintf("layer %d factors %q", l.Index, names))
				}
				if len(l.Circuits) != 4 || !l.Circuits[0].OV.SpectralNorm.Valid() || !l.Circuits[0].QK.SpectralNorm.Valid() || math.IsNaN(float64(l.Circuits[3].OV.EffectiveRank)) {
					bad = append(bad, fmt.Sprintf("layer %d circuits %+v", l.Index, l.Circuits))
				}
				for _, b := range bad {
					t.Error(b)
				}
			}
		})
	}
}
