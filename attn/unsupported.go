package attn

import (
	"fmt"
	"strings"

	"github.com/qkvdev/qkv/formats"
)

// UnsupportedError is Run's refusal: the model has settings that change its
// attention and that qkv does not implement, so any result would be wrong.
// Commands map it to exit status 3 with its message.
type UnsupportedError struct {
	Items []formats.Unsupported
}

func (e *UnsupportedError) Error() string {
	msgs := make([]string, 0, len(e.Items))
	for _, it := range e.Items {
		m := it.Message
		if m == "" {
			m = fmt.Sprintf("model uses %s %q, which qkv does not implement", strings.ReplaceAll(it.Kind, "_", " "), it.Name)
		} else if it.Name != "" && !strings.Contains(m, it.Name) {
			kind := strings.ReplaceAll(it.Kind, "_", " ")
			if kind == "setting" || kind == "" {
				m += " (" + it.Name + ")"
			} else {
				m += " (" + kind + " " + it.Name + ")"
			}
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 1 {
		return msgs[0]
	}
	return fmt.Sprintf("%d settings qkv does not implement: %s", len(msgs), strings.Join(msgs, "; "))
}

// knownQKNorms and knownRopeScalings are what Run implements.
var (
	knownQKNorms      = map[formats.QKNorm]bool{formats.QKNormNone: true, formats.QKNormPerHead: true, formats.QKNormWhole: true, formats.QKNormL2: true}
	knownRopeScalings = map[string]bool{"": true, "default": true, formats.RopeScalingLinear: true, formats.RopeScalingDynamic: true,
		formats.RopeScalingYaRN: true, formats.RopeScalingLongRoPE: true, formats.RopeScalingLlama3: true}
)

// CheckSupported returns an *UnsupportedError naming every setting of g that
// Run cannot compute: the geometry's own Unsupported list, and any value of a
// field that Run does not know (a Q/K norm kind, a RoPE style, a rope scaling
// type or a layer type), so that a new value added to the registry is
// refused rather than silently ignored. nil means Run models every setting.
func CheckSupported(g formats.Geometry) error {
	items := append([]formats.Unsupported(nil), g.Unsupported...)
	add := func(name, msg string) {
		items = append(items, formats.Unsupported{Kind: "setting", Name: name, Message: msg})
	}
	if !knownQKNorms[g.QKNorm] {
		add("qk_norm", fmt.Sprintf("model uses Q/K norm %q, which qkv does not implement", g.QKNorm))
	}
	if g.RopeStyle != "" && g.RopeStyle != formats.RopeHalfSplit && g.RopeStyle != formats.RopeInterleavedPairs {
		add("rope_style", fmt.Sprintf("model uses RoPE style %q, which qkv does not implement", g.RopeStyle))
	}
	for _, sc := range []struct {
		name string
		s    *formats.RopeScaling
	}{{"rope_scaling", g.RopeScaling}, {"local_rope_scaling", g.LocalRopeScaling}} {
		if sc.s != nil && !knownRopeScalings[sc.s.Type] {
			add(sc.name+".rope_type", fmt.Sprintf("model uses rope_scaling type %q, which qkv does not implement", sc.s.Type))
		}
	}
	seen := map[string]bool{}
	for _, t := range g.LayerTypes {
		if t != formats.LayerFullAttention && t != formats.LayerSlidingAttention && !seen[t] {
			seen[t] = true
			add("layer_types", fmt.Sprintf("model uses layer type %q, which qkv does not implement", t))
		}
	}
	if len(items) == 0 {
		return nil
	}
	return &UnsupportedError{Items: items}
}
