package inspect

import (
	"reflect"
	"slices"
	"sync"

	"github.com/qkvdev/qkv/formats"
)

// adapterInfo finds the description of the LoRA adapter src reads, nil for
// a model. The source is a *formats.Model, or a wrapper that embeds its
// LayerSource (FromFactors, a command's layer subset, check's scanning
// source), which is looked through; a source that is neither says nothing,
// and Run then tells an adapter by its layers' LoRA factors alone.
func adapterInfo(src LayerSource) *formats.AdapterInfo {
	var cur any = src
	for range 16 { // wrappers of wrappers, never a cycle
		switch s := cur.(type) {
		case nil:
			return nil
		case *formats.Model:
			if s == nil {
				return nil
			}
			return s.Adapter
		case factorLoads:
			cur = s.FactorSource
			continue
		}
		v := reflect.ValueOf(cur)
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return nil
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return nil
		}
		var next any
		for i := range v.NumField() {
			f := v.Field(i)
			if !v.Type().Field(i).Anonymous || !f.CanInterface() {
				continue
			}
			if ls, ok := f.Interface().(LayerSource); ok {
				next = ls
				break
			}
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return nil
}

// loraSeen collects the ranks and scales of the LoRA updates Run loads
// (from its workers, concurrently).
type loraSeen struct {
	mu     sync.Mutex
	ranks  map[int]bool
	scales map[float64]bool
}

func (s *loraSeen) add(l *formats.Layer) {
	if len(l.LoRA) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ranks == nil {
		s.ranks, s.scales = map[int]bool{}, map[float64]bool{}
	}
	for _, f := range l.LoRA {
		if f != nil {
			s.ranks[f.A.Rows] = true
			s.scales[f.Scale] = true
		}
	}
}

// adapterOf is the report's Adapter: info with the ranks and scales seen
// when they are not all info's. With no info but LoRA factors seen (a
// source that does not say what it reads), the adapter is still named, of
// kind "unknown", with the smallest rank and scale seen.
func adapterOf(info *formats.AdapterInfo, seen *loraSeen) *Adapter {
	if info == nil && len(seen.ranks) == 0 {
		return nil
	}
	ranks, scales := sortedKeys(seen.ranks), sortedKeys(seen.scales)
	a := &Adapter{}
	if info != nil {
		a.AdapterInfo = *info
	} else {
		a.AdapterInfo = formats.AdapterInfo{Kind: AdapterKindUnknown, Rank: ranks[0], Scale: scales[0],
			ScaleRule: "the layer source did not describe the adapter: rank and scale are its factors'"}
	}
	a.setSeen(ranks, scales)
	return a
}

// AdapterKindUnknown is Adapter.Kind when Run was given LoRA factors by a
// source that does not describe its adapter (formats.Model does).
const AdapterKindUnknown = "unknown"

// setSeen keeps ranks and scales (ascending, distinct) unless they are
// just the adapter's Rank and Scale.
func (a *Adapter) setSeen(ranks []int, scales []float64) {
	a.Ranks, a.Scales = nil, nil
	if len(ranks) > 1 || len(ranks) == 1 && ranks[0] != a.Rank {
		a.Ranks = ranks
	}
	if len(scales) > 1 || len(scales) == 1 && scales[0] != a.Scale {
		a.Scales = scales
	}
}

// seenRanks and seenScales are the ranks and scales of a's updates
// (Ranks, or Rank when they are all that).
func (a *Adapter) seenRanks() []int {
	if a.Ranks != nil {
		return a.Ranks
	}
	return []int{a.Rank}
}

func (a *Adapter) seenScales() []float64 {
	if a.Scales != nil {
		return a.Scales
	}
	return []float64{a.Scale}
}

func sortedKeys[K int | float64](m map[K]bool) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
