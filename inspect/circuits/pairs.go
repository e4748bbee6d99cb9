package circuits

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/qkvdev/qkv/formats"
)

// Pair is one score of one earlier head (Layer1, Head1) with one later head
// (Layer2, Head2); layers are model layer indices.
type Pair struct {
	Mode   string  `json:"mode"` // "Q", "K" or "V"
	Layer1 int     `json:"layer1"`
	Head1  int     `json:"head1"`
	Layer2 int     `json:"layer2"`
	Head2  int     `json:"head2"`
	Score  float64 `json:"score"`
}

// Top returns the n highest defined scores of s over the three modes,
// highest first (ties in the order Q, K, V, then by index). layers maps a
// position to a layer index (Result.Layers).
func (s *Scores) Top(layers []int, n int) []Pair {
	var all []Pair
	for _, m := range []struct {
		name string
		a    Array4
	}{{"Q", s.Q}, {"K", s.K}, {"V", s.V}} {
		for l1, x := range m.a {
			for h1, y := range x {
				for l2 := l1 + 1; l2 < len(y); l2++ {
					for h2, v := range y[l2] {
						if !math.IsNaN(v) {
							all = append(all, Pair{m.name, layers[l1], h1, layers[l2], h2, v})
						}
					}
				}
			}
		}
	}
	slices.SortStableFunc(all, func(a, b Pair) int { return cmp.Compare(b.Score, a.Score) })
	return all[:min(n, len(all))]
}

// Layers serves layers already decoded, in model order, as a LayerSource
// (Compute only reads them).
func Layers(g formats.Geometry, layers []*formats.Layer) LayerSource {
	return memSource{g, layers}
}

// memSource serves layers already decoded.
type memSource struct {
	g      formats.Geometry
	layers []*formats.Layer
}

func (m memSource) Geometry() formats.Geometry { return m.g }
func (m memSource) LayerIndices() []int {
	idx := make([]int, len(m.layers))
	for i, l := range m.layers {
		idx[i] = l.Index
	}
	return idx
}
func (m memSource) LoadLayer(i int) (*formats.Layer, error) {
	for _, l := range m.layers {
		if l.Index == i {
			return l, nil
		}
	}
	return nil, fmt.Errorf("circuits: no layer %d", i)
}
