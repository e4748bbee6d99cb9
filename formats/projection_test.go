package formats

import (
	"encoding/json"
	"testing"
)

func TestProjEnum(t *testing.T) {
	for i, p := range AllProjs {
		if p.Name() != Projections[i] {
			t.Errorf("%d: %s vs %s", i, p.Name(), Projections[i])
		}
		if x, ok := Projections[i].Index(); !ok || x != p {
			t.Errorf("%s.Index() = %v, %v", Projections[i], x, ok)
		}
	}
	if _, err := ParseProj("x"); err == nil {
		t.Error("ParseProj accepted x")
	}
	a := PerProj[*int]{nil, new(int), nil, nil}
	*a[K] = 3
	b, err := json.Marshal(a)
	if err != nil || string(b) != `{"q":null,"k":3,"v":null,"o":null}` {
		t.Fatalf("%s %v", b, err)
	}
	var back PerProj[*int]
	if err := json.Unmarshal(b, &back); err != nil || back[K] == nil || *back[K] != 3 || back[Q] != nil {
		t.Errorf("round trip %v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"x":1}`), &back); err == nil {
		t.Error("unknown key accepted")
	}
	m := map[Proj]int{V: 1}
	if b, _ := json.Marshal(m); string(b) != `{"v":1}` {
		t.Errorf("map key %s", b)
	}
	l := &Layer{Q: NewMatrix(1, 2)}
	if w := l.Weights(); w[Q].Cols != 2 || !w[O].Empty() {
		t.Errorf("weights %+v", w)
	}
}
