package jsonmsg

import (
	"encoding/json"
	"errors"
	"io"
	"testing"
)

type thresholds struct {
	DeadHead  float64 `json:"dead_head,omitempty"`
	Duplicate float64 `json:"duplicate"`
}

type file struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	N    uint   `json:"n"`
	OK   bool   `json:"ok"`
}

type doc struct {
	Schema     string                 `json:"schema"`
	Thresholds thresholds             `json:"thresholds"`
	Files      []file                 `json:"files"`
	Tags       []string               `json:"tags"`
	Bounds     map[string]*thresholds `json:"bounds"`
	Hidden     int                    `json:"-"`
}

func TestDecode(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"thresholds": {"dead_head": "x"}}`, `thresholds.dead_head must be a number, not a string`},
		{`{"files": [{"size": "12"}]}`, `files.size must be an integer, not a string`},
		{`{"files": [{"size": 1.5}]}`, `files.size must be an integer, not 1.5`},
		{`{"files": [{"n": -1}]}`, `files.n must be a non-negative integer, not -1`},
		{`{"files": [{"ok": 1}]}`, `files.ok must be a boolean, not a number`},
		{`{"files": [{"path": true}]}`, `files.path must be a string, not a boolean`},
		{`{"files": {}}`, `files must be an array, not an object`},
		{`{"thresholds": []}`, `thresholds must be an object, not an array`},
		{`{"tags": [1]}`, `tags must be a string, not a number`},
		// encoding/json's path leaves out map keys and array indices.
		{`{"bounds": {"q": {"duplicate": "a"}}}`, `bounds.duplicate must be a number, not a string`},
		{`[1, 2]`, `the JSON must be an object, not an array`},
		{`"x"`, `the JSON must be an object, not a string`},
		{`garbage`, `not valid JSON at byte 0: a value cannot start with 'g'`},
		{"  \n{\"schema\" 1}", `not valid JSON at byte 13: expected ':' after a key, found '1'`},
		{`{"schema": "a" "b"}`, `not valid JSON at byte 15: expected ',' or '}' after a value, found '"'`},
		{`{"tags": ["a" "b"]}`, `not valid JSON at byte 14: expected ',' or ']' after a value, found '"'`},
		{`{1: 2}`, `not valid JSON at byte 1: expected a quoted key, found '1'`},
		{`{"ok": tru}`, `not valid JSON at byte 10: expected true, false or null, found '}'`},
		{`{"schema": "a`, `the JSON ends early`},
		{`{"tags": [`, `the JSON ends early`},
		{``, `the file is empty`},
		{`{} {}`, `data after the JSON value at byte 3`},
		{`{"shema": "x"}`, `unknown key "shema" (did you mean "schema"?)`},
		{`{"thresholds": {"dead_hed": 1}}`, `unknown key "dead_hed" (did you mean "dead_head"?)`},
		{`{"files": [{"sizes": 1}]}`, `unknown key "sizes" (did you mean "size"?)`},
		{`{"zzz": 1}`, `unknown key "zzz"`},
		{`{"Hidden": 1}`, `unknown key "Hidden"`},
		{`{"ab": 1}`, `unknown key "ab"`}, // too short for a guess to mean anything
	} {
		var d doc
		err := Decode([]byte(c.in), &d)
		if err == nil || err.Error() != c.want {
			t.Errorf("Decode(%s):\n got %v\nwant %s", c.in, err, c.want)
		}
	}
	var d doc
	if err := Decode([]byte(`{"schema": "s", "files": [{"path": "a", "size": 3}]}`), &d); err != nil || d.Files[0].Size != 3 {
		t.Errorf("a good document: %v, %+v", err, d)
	}
}

// Error also takes json.Unmarshal's errors, and leaves others alone.
func TestError(t *testing.T) {
	var d doc
	for _, c := range []struct {
		in, want string
	}{
		{`{"schema": `, `the JSON ends early`},
		{`{"schema": 1}`, `schema must be a string, not a number`},
		{`nope`, `not valid JSON at byte 1: expected true, false or null, found 'o'`},
	} {
		err := Error(json.Unmarshal([]byte(c.in), &d), &d)
		if err == nil || err.Error() != c.want {
			t.Errorf("Error(Unmarshal(%s)):\n got %v\nwant %s", c.in, err, c.want)
		}
	}
	other := errors.New("a bound is [min, max]")
	if got := Error(other, &d); got != other {
		t.Errorf("another error changed: %v", got)
	}
	if got := Error(io.ErrUnexpectedEOF, nil); got.Error() != "the JSON ends early" {
		t.Errorf("io.ErrUnexpectedEOF: %v", got)
	}
	if Error(nil, nil) != nil {
		t.Error("nil is not nil")
	}
}

func TestKeys(t *testing.T) {
	got := Keys(&doc{})
	want := []string{"bounds", "dead_head", "duplicate", "files", "n", "ok", "path", "schema", "size", "tags", "thresholds"}
	if len(got) != len(want) {
		t.Fatalf("Keys = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Keys = %v, want %v", got, want)
		}
	}
}
