// Package schema holds the JSON Schema (draft 2020-12) of every document
// qkv writes — one file per "qkv.*/v1" schema id, embedded in the binary —
// and a small validator for the part of JSON Schema those files use.
//
// The files are documentation as much as contracts: every field has a
// description. A document is closed (additionalProperties false) wherever
// qkv writes a fixed set of keys, so that a field added to a document
// without its schema fails the tests in cmd (cmd/schema_test.go runs every
// command's --json on every zoo model through Validate).
//
// The validator knows type, properties, required, additionalProperties,
// items, enum, const, minimum, maximum, minItems, maxItems, pattern, oneOf,
// anyOf, $defs and $ref (to "#/$defs/…" in the same file or to
// "common.v1.schema.json#/$defs/…"); annotations (description, title,
// $comment, examples) are ignored. A file using any other keyword is
// refused when the set is loaded, so nothing in a file looks enforced
// without being enforced.
package schema

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"sync"
)

//go:embed files/*.schema.json
var files embed.FS

// Dir is where the schema files live in the repository, relative to its
// root.
const Dir = "internal/schema/files"

// Common is the file of definitions every document shares (source, qkv,
// io, numbers that may be null).
const Common = "common.v1.schema.json"

var (
	loadOnce sync.Once
	loaded   *set
	byID     map[string]string // schema id -> file name
	loadErr  error
)

func load() (*set, error) {
	loadOnce.Do(func() {
		entries, err := fs.ReadDir(files, "files")
		if err != nil {
			loadErr = err
			return
		}
		raw := map[string][]byte{}
		for _, e := range entries {
			b, err := files.ReadFile(path.Join("files", e.Name()))
			if err != nil {
				loadErr = err
				return
			}
			raw[e.Name()] = b
		}
		loaded, byID, loadErr = newSet(raw)
	})
	return loaded, loadErr
}

// newSet parses and checks schema files (name -> bytes) and maps each
// document's schema id to its file.
func newSet(raw map[string][]byte) (*set, map[string]string, error) {
	s := &set{files: map[string]any{}}
	ids := map[string]string{}
	for name, b := range raw {
		v, err := decode(b)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", name, err)
		}
		s.files[name] = v
	}
	names := make([]string, 0, len(s.files))
	for name := range s.files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		root := s.files[name]
		if err := s.check(name, root, ""); err != nil {
			return nil, nil, err
		}
		if name == Common {
			continue
		}
		id, err := documentID(name, root)
		if err != nil {
			return nil, nil, err
		}
		ids[id] = name
	}
	return s, ids, nil
}

// documentID is the schema id a file describes: the const of its "schema"
// property, which must match the file's name ("qkv.ls/v1" in
// ls.v1.schema.json).
func documentID(name string, root any) (string, error) {
	m, _ := root.(map[string]any)
	props, _ := m["properties"].(map[string]any)
	sp, _ := props["schema"].(map[string]any)
	id, _ := sp["const"].(string)
	if id == "" {
		return "", fmt.Errorf("%s: properties.schema.const names no schema id", name)
	}
	if want := FileName(id); want != name {
		return "", fmt.Errorf("%s describes %s, whose file is %s", name, id, want)
	}
	return id, nil
}

// FileName is the file that holds schema id's JSON Schema: "qkv.ls/v1" ->
// "ls.v1.schema.json", "qkv.inspect.partial/v1" ->
// "inspect.partial.v1.schema.json".
func FileName(id string) string {
	name, ver, _ := strings.Cut(strings.TrimPrefix(id, "qkv."), "/")
	return name + "." + ver + ".schema.json"
}

// IDs lists the schema ids that have a schema file, sorted.
func IDs() []string {
	if _, err := load(); err != nil {
		return nil
	}
	out := make([]string, 0, len(byID))
	for id := range byID {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Load checks every embedded schema file (known keywords only, every $ref
// resolves, one file per schema id named after it) and returns the first
// problem.
func Load() error {
	_, err := load()
	return err
}

// Source returns the JSON Schema file of schema id, as it is in the
// repository.
func Source(id string) ([]byte, error) {
	if _, err := load(); err != nil {
		return nil, err
	}
	name, ok := byID[id]
	if !ok {
		return nil, fmt.Errorf("no JSON Schema for %q", id)
	}
	return files.ReadFile(path.Join("files", name))
}

// Validate checks a JSON document against the schema its top-level
// "schema" field names. The error is an *Error listing every violation,
// or says why the document could not be checked at all.
func Validate(doc []byte) error {
	v, err := decode(doc)
	if err != nil {
		return fmt.Errorf("not a JSON document: %v", err)
	}
	m, _ := v.(map[string]any)
	id, _ := m["schema"].(string)
	if id == "" {
		return fmt.Errorf("the document has no \"schema\" field")
	}
	return validateValue(id, v)
}

// ValidateAs checks a JSON document against schema id, whatever its
// "schema" field says.
func ValidateAs(id string, doc []byte) error {
	v, err := decode(doc)
	if err != nil {
		return fmt.Errorf("not a JSON document: %v", err)
	}
	return validateValue(id, v)
}

func validateValue(id string, v any) error {
	s, err := load()
	if err != nil {
		return err
	}
	return s.validateID(byID, id, v)
}

// validateID checks the decoded document v against schema id of s.
func (s *set) validateID(ids map[string]string, id string, v any) error {
	name, ok := ids[id]
	if !ok {
		return fmt.Errorf("no JSON Schema for %q", id)
	}
	val := &validator{set: s}
	val.validate(name, s.files[name], v, "")
	if len(val.issues) > 0 {
		return &Error{Schema: id, Issues: val.issues}
	}
	return nil
}

// Patterns are compiled once (RE2 syntax, which the files keep to the part
// it shares with ECMA 262); like JSON Schema's pattern, unanchored.
var patterns sync.Map

func compilePattern(p string) (*regexp.Regexp, error) {
	if re, ok := patterns.Load(p); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, err
	}
	patterns.Store(p, re)
	return re, nil
}
