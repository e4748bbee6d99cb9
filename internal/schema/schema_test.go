package schema

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	if err := Load(); err != nil {
		t.Fatal(err)
	}
	ids := IDs()
	for _, want := range []string{"qkv.ls/v1", "qkv.meta/v1", "qkv.layers/v1", "qkv.diff/v1", "qkv.tokenize/v1", "qkv.verify/v1",
		"qkv.inspect/v1", "qkv.inspect.partial/v1", "qkv.attn/v1", "qkv.check/v1", "qkv.cat/v1", "qkv.manifest/v1", "qkv.version/v1", "qkv.circuits/v1"} {
		if _, err := Source(want); err != nil {
			t.Errorf("%s: %v (have %v)", want, err, ids)
		}
	}
}

// TestFilesDescribeEveryProperty: the files are documentation, so every
// property of every object has a description (or a $ref to a definition
// that has one).
func TestFilesDescribeEveryProperty(t *testing.T) {
	entries, err := fs.ReadDir(files, "files")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, _ := files.ReadFile(path.Join("files", e.Name()))
		var root any
		if err := json.Unmarshal(b, &root); err != nil {
			t.Fatal(err)
		}
		var walk func(node any, at string)
		walk = func(node any, at string) {
			switch n := node.(type) {
			case map[string]any:
				if props, ok := n["properties"].(map[string]any); ok {
					for name, p := range props {
						pm, _ := p.(map[string]any)
						_, d := pm["description"]
						_, r := pm["$ref"]
						// Sibling blocks (head and factor statistics) may
						// leave repeated descriptions to the matrix's.
						if !d && !r && !strings.Contains(at, "$defs/head") && !strings.Contains(at, "$defs/factor") {
							t.Errorf("%s#%s/properties/%s has no description", e.Name(), at, name)
						}
					}
				}
				for k, v := range n {
					walk(v, at+"/"+k)
				}
			case []any:
				for _, v := range n {
					walk(v, at)
				}
			}
		}
		walk(root, "")
	}
}

// testSet builds a set from in-memory schema files.
func testSet(t *testing.T, files map[string]string) (*set, map[string]string) {
	t.Helper()
	raw := map[string][]byte{}
	for k, v := range files {
		raw[k] = []byte(v)
	}
	s, ids, err := newSet(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s, ids
}

func TestValidate(t *testing.T) {
	s, ids := testSet(t, map[string]string{
		Common: `{"$defs": {"n": {"type": ["number", "null"]}, "pos": {"type": "integer", "minimum": 1}}}`,
		"t.v1.schema.json": `{
		  "type": "object",
		  "$defs": {"kv": {"type": "object", "properties": {"k": {"type": "string"}}, "required": ["k"], "additionalProperties": false}},
		  "properties": {
		    "schema": {"const": "qkv.t/v1"},
		    "n": {"$ref": "common.v1.schema.json#/$defs/n"},
		    "pos": {"$ref": "common.v1.schema.json#/$defs/pos"},
		    "kind": {"enum": ["a", "b"]},
		    "pair": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
		    "kv": {"$ref": "#/$defs/kv"},
		    "open": {"type": "object", "additionalProperties": {"type": "integer"}},
		    "hex": {"type": "string", "pattern": "^[0-9a-f]+$"},
		    "one": {"oneOf": [{"type": "integer"}, {"type": "number", "maximum": 1}]},
		    "any": {"anyOf": [{"type": "string"}, {"type": "array"}]},
		    "max": {"type": "number", "maximum": 2.5}
		  },
		  "required": ["schema"],
		  "additionalProperties": false
		}`,
	})
	cases := []struct {
		doc  string
		want string // "" valid, else a part of the error
	}{
		{`{"schema": "qkv.t/v1"}`, ""},
		{`{"schema": "qkv.t/v2"}`, `/schema: is "qkv.t/v2", want "qkv.t/v1"`},
		{`{}`, `missing required property "schema"`},
		{`{"schema": "qkv.t/v1", "extra": 1}`, `/extra: property "extra" is not in the schema`},
		{`{"schema": "qkv.t/v1", "n": null}`, ""},
		{`{"schema": "qkv.t/v1", "n": 1e300}`, ""},
		{`{"schema": "qkv.t/v1", "n": "NaN"}`, `/n: is a string, want number or null`},
		{`{"schema": "qkv.t/v1", "pos": 1}`, ""},
		{`{"schema": "qkv.t/v1", "pos": 1.0}`, ""}, // 2020-12: an integer is a number with no fraction
		{`{"schema": "qkv.t/v1", "pos": 1.5}`, `/pos: is a number (1.5), want integer`},
		{`{"schema": "qkv.t/v1", "pos": 0}`, `/pos: 0 is below the minimum 1`},
		{`{"schema": "qkv.t/v1", "kind": "c"}`, `/kind: is "c", want one of "a", "b"`},
		{`{"schema": "qkv.t/v1", "pair": [1, 2]}`, ""},
		{`{"schema": "qkv.t/v1", "pair": [1]}`, `/pair: has 1 items, want at least 2`},
		{`{"schema": "qkv.t/v1", "pair": [1, 2, 3]}`, `/pair: has 3 items, want at most 2`},
		{`{"schema": "qkv.t/v1", "pair": [1, "x"]}`, `/pair/1: is a string, want integer`},
		{`{"schema": "qkv.t/v1", "kv": {"k": "v"}}`, ""},
		{`{"schema": "qkv.t/v1", "kv": {}}`, `/kv: missing required property "k"`},
		{`{"schema": "qkv.t/v1", "kv": {"k": "v", "x/y": 1}}`, `/kv/x~1y: property "x/y" is not in the schema`},
		{`{"schema": "qkv.t/v1", "open": {"a": 1, "b": 2}}`, ""},
		{`{"schema": "qkv.t/v1", "open": {"a": true}}`, `/open/a: is a boolean, want integer`},
		{`{"schema": "qkv.t/v1", "hex": "00ff"}`, ""},
		{`{"schema": "qkv.t/v1", "hex": "00FF"}`, `does not match`},
		{`{"schema": "qkv.t/v1", "one": 7}`, ""},
		{`{"schema": "qkv.t/v1", "one": 0.5}`, ""},
		{`{"schema": "qkv.t/v1", "one": 1}`, `matches 2 of oneOf`},
		{`{"schema": "qkv.t/v1", "one": 2.5}`, `matches none of oneOf`},
		{`{"schema": "qkv.t/v1", "any": []}`, ""},
		{`{"schema": "qkv.t/v1", "any": 3}`, `matches none of anyOf`},
		{`{"schema": "qkv.t/v1", "max": 2.5}`, ""},
		{`{"schema": "qkv.t/v1", "max": 2.5000000000000000001}`, `above the maximum`},
	}
	for _, c := range cases {
		v, err := decode([]byte(c.doc))
		if err != nil {
			t.Fatal(err)
		}
		err = s.validateID(ids, "qkv.t/v1", v)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.doc, err)
		case c.want != "" && err == nil:
			t.Errorf("%s: valid, want an error with %q", c.doc, c.want)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("%s: %v, want %q", c.doc, err, c.want)
		}
		var se *Error
		if err != nil && !errors.As(err, &se) {
			t.Errorf("%s: %T, want *Error", c.doc, err)
		}
	}
}

// TestBadSchemaFiles: a schema using what the validator does not know, or a
// $ref to nothing, is refused when the set is loaded.
func TestBadSchemaFiles(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{`{"properties": {"schema": {"const": "qkv.t/v1"}, "x": {"format": "date"}}}`, `keyword "format" is not supported`},
		{`{"properties": {"schema": {"const": "qkv.t/v1"}, "x": {"$ref": "#/$defs/none"}}}`, `"$defs" not found`},
		{`{"properties": {"schema": {"const": "qkv.t/v1"}, "x": {"$ref": "other.json#/$defs/a"}}}`, `no schema file "other.json"`},
		{`{"properties": {"schema": {"const": "qkv.t/v1"}, "x": {"type": "float"}}}`, `unknown type`},
		{`{"properties": {"schema": {"const": "qkv.t/v1"}}, "required": ["y"], "additionalProperties": false}`, `"y" is required but not among the properties`},
		{`{"properties": {"schema": {"const": "qkv.other/v1"}}}`, `whose file is other.v1.schema.json`},
		{`{"properties": {"schema": {"const": "qkv.t/v1"}, "x": {"pattern": "("}}}`, `missing closing )`},
		{`{"properties": {"schema": {"const": "qkv.t/v1"}}} {}`, `more than one JSON value`},
	} {
		_, _, err := newSet(map[string][]byte{"t.v1.schema.json": []byte(c.file)})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.file, err, c.want)
		}
	}
}

func TestValidateEntry(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`{"schema": "qkv.version/v1", "version": "dev", "qkv": {"version": "dev", "go": "go1.26"}}`, ""},
		{`{"schema": "qkv.version/v1", "qkv": {"version": "dev", "go": "go1.26"}}`, `missing required property "version"`},
		{`{"schema": "qkv.version/v1", "version": "dev", "qkv": {"version": "dev"}}`, `/qkv: missing required property "go"`},
		{`{"schema": "qkv.nothing/v1"}`, `no JSON Schema for "qkv.nothing/v1"`},
		{`{"version": "dev"}`, `no "schema" field`},
		{`{"schema": "qkv.version/v1", "version": "dev"`, `not a JSON document`},
		{`[1]`, `no "schema" field`},
	} {
		err := Validate([]byte(c.doc))
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.doc, err, c.want)
		}
	}
	if err := ValidateAs("qkv.version/v1", []byte(`{"schema": "x", "version": "1", "qkv": {"version": "1", "go": "go1.26"}}`)); err == nil || !strings.Contains(err.Error(), `want "qkv.version/v1"`) {
		t.Errorf("ValidateAs: %v", err)
	}
}

func TestFileName(t *testing.T) {
	for id, want := range map[string]string{
		"qkv.ls/v1":              "ls.v1.schema.json",
		"qkv.inspect.partial/v1": "inspect.partial.v1.schema.json",
	} {
		if got := FileName(id); got != want {
			t.Errorf("FileName(%q) = %q, want %q", id, got, want)
		}
	}
}
