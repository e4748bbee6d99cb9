package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// keywords are the JSON Schema keywords the validator knows. A schema file
// using any other keyword is refused when it is compiled, so that nothing in
// a file looks enforced without being enforced.
var keywords = map[string]bool{
	// annotations
	"$schema": true, "$id": true, "$comment": true, "title": true, "description": true, "examples": true, "$defs": true,
	// assertions and applicators
	"type": true, "properties": true, "required": true, "additionalProperties": true, "items": true,
	"enum": true, "const": true, "minimum": true, "maximum": true, "minItems": true, "maxItems": true,
	"oneOf": true, "anyOf": true, "$ref": true, "pattern": true,
}

var typeNames = map[string]bool{"null": true, "boolean": true, "object": true, "array": true, "number": true, "integer": true, "string": true}

// Error lists every place a document breaks its schema.
type Error struct {
	Schema string // the document's schema id
	Issues []Issue
}

// Issue is one violation: where in the document (a JSON pointer, "" for the
// root) and what.
type Issue struct {
	Path    string
	Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s)", e.Schema, len(e.Issues))
	for i, is := range e.Issues {
		if i == maxIssues {
			fmt.Fprintf(&b, "; …")
			break
		}
		p := is.Path
		if p == "" {
			p = "/"
		}
		fmt.Fprintf(&b, "; %s: %s", p, is.Message)
	}
	return b.String()
}

// maxIssues bounds how many issues an Error prints (all are kept).
const maxIssues = 20

// decode parses JSON keeping numbers exact (json.Number).
func decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// set is the loaded schema files, by file name.
type set struct {
	files map[string]any
}

// check verifies that every schema object in a file uses only known
// keywords with values of the right shape, and that every $ref resolves.
func (s *set) check(file string, node any, ptr string) error {
	m, ok := node.(map[string]any)
	if !ok {
		if _, isBool := node.(bool); isBool {
			return nil
		}
		return fmt.Errorf("%s#%s: a schema must be an object or a boolean", file, ptr)
	}
	for k, v := range m {
		if !keywords[k] {
			return fmt.Errorf("%s#%s: keyword %q is not supported by the validator", file, ptr, k)
		}
		at := ptr + "/" + escape(k)
		switch k {
		case "properties", "$defs":
			sub, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("%s#%s: must be an object", file, at)
			}
			for name, sc := range sub {
				if err := s.check(file, sc, at+"/"+escape(name)); err != nil {
					return err
				}
			}
		case "additionalProperties", "items":
			if err := s.check(file, v, at); err != nil {
				return err
			}
		case "oneOf", "anyOf":
			xs, ok := v.([]any)
			if !ok || len(xs) == 0 {
				return fmt.Errorf("%s#%s: must be a non-empty array", file, at)
			}
			for i, sc := range xs {
				if err := s.check(file, sc, at+"/"+strconv.Itoa(i)); err != nil {
					return err
				}
			}
		case "type":
			var names []any
			switch t := v.(type) {
			case string:
				names = []any{t}
			case []any:
				names = t
			}
			if len(names) == 0 {
				return fmt.Errorf("%s#%s: must be a type name or an array of them", file, at)
			}
			for _, n := range names {
				if str, _ := n.(string); !typeNames[str] {
					return fmt.Errorf("%s#%s: unknown type %v", file, at, n)
				}
			}
		case "required":
			xs, ok := v.([]any)
			if !ok {
				return fmt.Errorf("%s#%s: must be an array of names", file, at)
			}
			props, _ := m["properties"].(map[string]any)
			for _, x := range xs {
				name, ok := x.(string)
				if !ok {
					return fmt.Errorf("%s#%s: must be an array of names", file, at)
				}
				// A required property the schema does not describe is a
				// mistake in the file when additional ones are refused.
				if _, described := props[name]; !described && m["additionalProperties"] == false {
					return fmt.Errorf("%s#%s: %q is required but not among the properties", file, at, name)
				}
			}
		case "enum":
			if xs, ok := v.([]any); !ok || len(xs) == 0 {
				return fmt.Errorf("%s#%s: must be a non-empty array", file, at)
			}
		case "minimum", "maximum":
			if _, ok := v.(json.Number); !ok {
				return fmt.Errorf("%s#%s: must be a number", file, at)
			}
		case "minItems", "maxItems":
			if n, ok := v.(json.Number); !ok || !isNonNegInt(n) {
				return fmt.Errorf("%s#%s: must be a non-negative integer", file, at)
			}
		case "pattern":
			str, ok := v.(string)
			if !ok {
				return fmt.Errorf("%s#%s: must be a string", file, at)
			}
			if _, err := compilePattern(str); err != nil {
				return fmt.Errorf("%s#%s: %v", file, at, err)
			}
		case "$ref":
			ref, ok := v.(string)
			if !ok {
				return fmt.Errorf("%s#%s: must be a string", file, at)
			}
			if _, _, err := s.resolve(file, ref); err != nil {
				return fmt.Errorf("%s#%s: %v", file, at, err)
			}
		case "description", "title", "$comment", "$id", "$schema":
			if _, ok := v.(string); !ok {
				return fmt.Errorf("%s#%s: must be a string", file, at)
			}
		}
	}
	return nil
}

func isNonNegInt(n json.Number) bool {
	i, err := strconv.ParseInt(string(n), 10, 64)
	return err == nil && i >= 0
}

// escape escapes a JSON pointer token.
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func unescape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// resolve finds the schema a $ref names from within file: "#/$defs/x" in
// the same file, "other.schema.json#/$defs/x" in another of the set. It
// returns the file the target lives in (for the refs inside it).
func (s *set) resolve(file, ref string) (string, any, error) {
	target, frag, _ := strings.Cut(ref, "#")
	if target == "" {
		target = file
	}
	root, ok := s.files[target]
	if !ok {
		return "", nil, fmt.Errorf("$ref %q: no schema file %q", ref, target)
	}
	node := root
	if frag != "" {
		if !strings.HasPrefix(frag, "/") {
			return "", nil, fmt.Errorf("$ref %q: only JSON pointers are supported", ref)
		}
		for _, tok := range strings.Split(frag[1:], "/") {
			tok = unescape(tok)
			switch n := node.(type) {
			case map[string]any:
				var ok bool
				if node, ok = n[tok]; !ok {
					return "", nil, fmt.Errorf("$ref %q: %q not found", ref, tok)
				}
			case []any:
				i, err := strconv.Atoi(tok)
				if err != nil || i < 0 || i >= len(n) {
					return "", nil, fmt.Errorf("$ref %q: bad index %q", ref, tok)
				}
				node = n[i]
			default:
				return "", nil, fmt.Errorf("$ref %q: %q not found", ref, tok)
			}
		}
	}
	return target, node, nil
}

// validator walks one document against one schema, collecting issues.
type validator struct {
	set    *set
	issues []Issue
	depth  int
}

func (v *validator) fail(path, format string, args ...any) {
	v.issues = append(v.issues, Issue{Path: path, Message: fmt.Sprintf(format, args...)})
}

// maxDepth bounds $ref recursion (the files are acyclic, but a mistake in
// one must not hang a test).
const maxDepth = 200

// validate checks inst at path against schema sc of file, appending issues.
func (v *validator) validate(file string, sc any, inst any, path string) {
	switch s := sc.(type) {
	case bool:
		if !s {
			v.fail(path, "not allowed here")
		}
		return
	case map[string]any:
		v.depth++
		defer func() { v.depth-- }()
		if v.depth > maxDepth {
			v.fail(path, "schema nesting deeper than %d ($ref cycle?)", maxDepth)
			return
		}
		v.object(file, s, inst, path)
	}
}

func (v *validator) object(file string, s map[string]any, inst any, path string) {
	if ref, ok := s["$ref"].(string); ok {
		f, target, err := v.set.resolve(file, ref)
		if err != nil {
			v.fail(path, "%v", err)
			return
		}
		v.validate(f, target, inst, path)
	}
	if t, ok := s["type"]; ok && !hasType(t, inst) {
		v.fail(path, "is %s, want %s", kind(inst), typeText(t))
		return // the rest would only repeat it
	}
	if c, ok := s["const"]; ok && !equal(c, inst) {
		v.fail(path, "is %s, want %s", short(inst), short(c))
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range e {
			if equal(x, inst) {
				found = true
				break
			}
		}
		if !found {
			var opts []string
			for _, x := range e {
				opts = append(opts, short(x))
			}
			v.fail(path, "is %s, want one of %s", short(inst), strings.Join(opts, ", "))
		}
	}
	if n, ok := inst.(json.Number); ok {
		x, _ := new(big.Float).SetPrec(200).SetString(string(n))
		if m, ok := s["minimum"].(json.Number); ok && x != nil {
			if lim, _ := new(big.Float).SetPrec(200).SetString(string(m)); lim != nil && x.Cmp(lim) < 0 {
				v.fail(path, "%s is below the minimum %s", n, m)
			}
		}
		if m, ok := s["maximum"].(json.Number); ok && x != nil {
			if lim, _ := new(big.Float).SetPrec(200).SetString(string(m)); lim != nil && x.Cmp(lim) > 0 {
				v.fail(path, "%s is above the maximum %s", n, m)
			}
		}
	}
	if p, ok := s["pattern"].(string); ok {
		if str, ok := inst.(string); ok {
			re, _ := compilePattern(p)
			if re != nil && !re.MatchString(str) {
				v.fail(path, "%s does not match %s", short(inst), p)
			}
		}
	}
	if arr, ok := inst.([]any); ok {
		if m, ok := s["minItems"].(json.Number); ok {
			if n, _ := strconv.Atoi(string(m)); len(arr) < n {
				v.fail(path, "has %d items, want at least %d", len(arr), n)
			}
		}
		if m, ok := s["maxItems"].(json.Number); ok {
			if n, _ := strconv.Atoi(string(m)); len(arr) > n {
				v.fail(path, "has %d items, want at most %d", len(arr), n)
			}
		}
		if items, ok := s["items"]; ok {
			for i, x := range arr {
				v.validate(file, items, x, path+"/"+strconv.Itoa(i))
			}
		}
	}
	if obj, ok := inst.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if name, _ := r.(string); name != "" {
					if _, ok := obj[name]; !ok {
						v.fail(path, "missing required property %q", name)
					}
				}
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		add, hasAdd := s["additionalProperties"]
		for _, k := range keys {
			at := path + "/" + escape(k)
			if ps, ok := props[k]; ok {
				v.validate(file, ps, obj[k], at)
				continue
			}
			if hasAdd {
				if add == false {
					v.fail(at, "property %q is not in the schema", k)
					continue
				}
				v.validate(file, add, obj[k], at)
			}
		}
	}
	if xs, ok := s["anyOf"].([]any); ok {
		if v.matches(file, xs, inst, path) == 0 {
			v.fail(path, "matches none of anyOf: %s", v.firstReason(file, xs, inst, path))
		}
	}
	if xs, ok := s["oneOf"].([]any); ok {
		switch n := v.matches(file, xs, inst, path); {
		case n == 0:
			v.fail(path, "matches none of oneOf: %s", v.firstReason(file, xs, inst, path))
		case n > 1:
			v.fail(path, "matches %d of oneOf, want exactly 1", n)
		}
	}
}

// matches counts the alternatives inst is valid against.
func (v *validator) matches(file string, xs []any, inst any, path string) int {
	n := 0
	for _, sc := range xs {
		sub := &validator{set: v.set, depth: v.depth}
		sub.validate(file, sc, inst, path)
		if len(sub.issues) == 0 {
			n++
		}
	}
	return n
}

// firstReason explains why inst fails the alternatives: each one's first
// issue.
func (v *validator) firstReason(file string, xs []any, inst any, path string) string {
	var parts []string
	for _, sc := range xs {
		sub := &validator{set: v.set, depth: v.depth}
		sub.validate(file, sc, inst, path)
		if len(sub.issues) > 0 {
			is := sub.issues[0]
			parts = append(parts, strings.TrimPrefix(is.Path, path)+" "+is.Message)
		}
	}
	return strings.Join(parts, " | ")
}

func hasType(t any, inst any) bool {
	switch x := t.(type) {
	case string:
		return isType(x, inst)
	case []any:
		for _, n := range x {
			if s, _ := n.(string); isType(s, inst) {
				return true
			}
		}
	}
	return false
}

func isType(name string, inst any) bool {
	switch name {
	case "null":
		return inst == nil
	case "boolean":
		_, ok := inst.(bool)
		return ok
	case "object":
		_, ok := inst.(map[string]any)
		return ok
	case "array":
		_, ok := inst.([]any)
		return ok
	case "string":
		_, ok := inst.(string)
		return ok
	case "number":
		_, ok := inst.(json.Number)
		return ok
	case "integer":
		n, ok := inst.(json.Number)
		if !ok {
			return false
		}
		// 2020-12: any number with a zero fractional part ("1.0", "1e3").
		f, _ := new(big.Float).SetPrec(200).SetString(string(n))
		return f != nil && f.IsInt()
	}
	return false
}

func kind(inst any) string {
	switch x := inst.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		if isType("integer", x) {
			return "an integer (" + string(x) + ")"
		}
		return "a number (" + string(x) + ")"
	}
	return fmt.Sprintf("%T", inst)
}

func typeText(t any) string {
	switch x := t.(type) {
	case string:
		return x
	case []any:
		var s []string
		for _, n := range x {
			s = append(s, fmt.Sprint(n))
		}
		return strings.Join(s, " or ")
	}
	return fmt.Sprint(t)
}

// equal compares two decoded JSON values; numbers by value.
func equal(a, b any) bool {
	switch x := a.(type) {
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		fx, _ := new(big.Float).SetPrec(200).SetString(string(x))
		fy, _ := new(big.Float).SetPrec(200).SetString(string(y))
		return fx != nil && fy != nil && fx.Cmp(fy) == 0
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !equal(xv, yv) {
				return false
			}
		}
		return true
	}
	return a == b
}

// short renders a value for a message, clipped.
func short(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 60 {
		return string(b[:57]) + "…"
	}
	return string(b)
}
