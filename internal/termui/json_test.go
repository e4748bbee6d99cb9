package termui

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
)

// TestJSONNonFinite: NaN and ±Inf are null wherever qkv writes JSON — a
// Float field, a nested array of float32 or float64 — the rest is the
// shortest exact decimal (float32 values at float32 precision), and null
// reads back as NaN.
func TestJSONNonFinite(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	var buf bytes.Buffer
	doc := struct {
		A Float   `json:"a"`
		B Float   `json:"b"`
		C []Float `json:"c"`
		D string  `json:"d"`
	}{Float(0.1), Float(nan), []Float{Float(inf), Float(-inf), 1e-7}, "<s>&"}
	if err := WriteJSON(&buf, doc); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"a\": 0.1,\n  \"b\": null,\n  \"c\": [\n    null,\n    null,\n    1e-07\n  ],\n  \"d\": \"<s>&\"\n}\n"
	if buf.String() != want {
		t.Errorf("got %q\nwant %q", buf.String(), want)
	}
	var back struct{ A, B Float }
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.A != 0.1 || back.B.Valid() {
		t.Errorf("read back %v %v (%v)", back.A, back.B, err)
	}
	for _, c := range []struct {
		v    any
		want string
	}{
		{[]float32{0.1, float32(nan), 2}, "[0.1,null,2]"},
		{[][]float64{{0.1, inf}, nil, {}}, "[[0.1,null],null,[]]"},
		{[][][]float32{{{1}, {float32(math.Inf(-1))}}}, "[[[1],[null]]]"},
		{[][][][]float64{{{{nan, 3}}}}, "[[[[null,3]]]]"},
		{[]float64(nil), "null"},
		{"x", "null"},
	} {
		got := string(AppendJSONArrays(nil, c.v))
		if got != c.want || !json.Valid([]byte(got)) {
			t.Errorf("AppendJSONArrays(%v) = %s, want %s", c.v, got, c.want)
		}
	}
	if v, bad := JSONValue(nan); v != nil || !bad {
		t.Errorf("JSONValue(NaN) = %v, %v", v, bad)
	}
	if v, bad := JSONValue(2.5); v != 2.5 || bad {
		t.Errorf("JSONValue(2.5) = %v, %v", v, bad)
	}
}
