package inspect

import (
	"reflect"
	"strings"
	"sync"
)

// statFields maps the JSON name of every scalar statistic of Stats (a
// Float field: fro, spectral_norm, …) to its field index, so that a
// statistic added to Stats is at once a name rules and baselines can use.
var statFields = sync.OnceValue(func() map[string]int {
	m := map[string]int{}
	t := reflect.TypeFor[Stats]()
	ft := reflect.TypeFor[Float]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && f.Type == ft && name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
})

// Value is the scalar statistic named as in the JSON report (fro,
// max_abs, mean, std, spectral_norm, effective_rank, stable_rank,
// condition, …); ok is false for a name that is none.
func (s Stats) Value(name string) (v float64, ok bool) {
	i, ok := statFields()[name]
	if !ok {
		return 0, false
	}
	return reflect.ValueOf(s).Field(i).Float(), true
}

// StatNames are the names Value knows, in the order of Stats' fields.
func StatNames() []string {
	fields := statFields()
	names := make([]string, 0, len(fields))
	t := reflect.TypeFor[Stats]()
	for i := range t.NumField() {
		for n, j := range fields {
			if j == i {
				names = append(names, n)
			}
		}
	}
	return names
}
