// Package jsonmsg turns encoding/json's errors into one-line messages in the
// user's terms, for the JSON files named on the command line (rules files,
// baselines, manifests, merge parts): the key path and JSON types rather
// than Go struct and type names, and the byte offset of a syntax error.
package jsonmsg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Decode decodes the one JSON value b holds into v (a pointer), refusing
// unknown keys and data after the value, and returns Error's messages.
func Decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if err == io.EOF {
			return errors.New("the file is empty")
		}
		return Error(err, v)
	}
	if rest := bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return fmt.Errorf("data after the JSON value at byte %d", len(b)-len(rest))
	}
	return nil
}

// Error rewrites an error of json.Unmarshal or json.Decoder.Decode:
//
//	*json.UnmarshalTypeError   thresholds.dead_head must be a number, not a string
//	*json.SyntaxError          not valid JSON at byte 12: a value cannot start with 'g'
//	json: unknown field "x"    unknown key "x" (did you mean "y"?)
//	io.ErrUnexpectedEOF        the JSON ends early
//
// v is the value decoded into (nil: no did-you-mean); its JSON keys, at any
// depth, are what an unknown key is compared with. Other errors (those of
// a type's own UnmarshalJSON) are returned as they are.
func Error(err error, v any) error {
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		what := "the JSON"
		if te.Field != "" {
			what = te.Field
		}
		return fmt.Errorf("%s must be %s, not %s", what, wantOf(te.Type), gotOf(te.Value))
	case errors.As(err, &se):
		if se.Error() == "unexpected end of JSON input" {
			return errors.New("the JSON ends early")
		}
		at := se.Offset - 1 // Offset counts the bytes read, the bad one included
		if at < 0 {
			at = 0
		}
		return fmt.Errorf("not valid JSON at byte %d: %s", at, reason(se.Error()))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("the JSON ends early")
	}
	if key, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if k, qerr := strconv.Unquote(key); qerr == nil {
			msg := fmt.Sprintf("unknown key %q", k)
			if near := closest(k, Keys(v)); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", near)
			}
			return errors.New(msg)
		}
	}
	return err
}

// Kind names the JSON type of the value b holds ("a string", "an object",
// …), for a type's own UnmarshalJSON to say what it was given.
func Kind(b []byte) string {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// wantOf names the JSON type that decodes into t.
func wantOf(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "a non-negative integer"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a value of another type"
}

// gotOf names the JSON value UnmarshalTypeError.Value describes ("string",
// "bool", "number", "number 1.5", "array", "object").
func gotOf(v string) string {
	switch {
	case v == "string":
		return "a string"
	case v == "bool":
		return "a boolean"
	case v == "array":
		return "an array"
	case v == "object":
		return "an object"
	case v == "number":
		return "a number"
	case strings.HasPrefix(v, "number "):
		return strings.TrimPrefix(v, "number ")
	}
	return v
}

// reason shortens a SyntaxError's text ("invalid character 'g' looking for
// beginning of value").
func reason(msg string) string {
	c, context, ok := strings.Cut(strings.TrimPrefix(msg, "invalid character "), " ")
	if !ok || !strings.HasPrefix(msg, "invalid character ") {
		return msg
	}
	switch {
	case context == "looking for beginning of value":
		return "a value cannot start with " + c
	case context == "looking for beginning of object key string":
		return "expected a quoted key, found " + c
	case context == "after object key":
		return "expected ':' after a key, found " + c
	case context == "after object key:value pair":
		return "expected ',' or '}' after a value, found " + c
	case context == "after array element":
		return "expected ',' or ']' after a value, found " + c
	case context == "after top-level value":
		return "data after the JSON value, starting with " + c
	case context == "in string literal":
		return "a control character " + c + " inside a string"
	case context == "in string escape code":
		return "a bad escape \\" + strings.Trim(c, "'")
	case context == "in \\u hexadecimal character escape":
		return "a bad \\u escape"
	case strings.HasPrefix(context, "in literal "):
		return "expected true, false or null, found " + c
	case strings.HasPrefix(context, "in numeric literal"), strings.HasPrefix(context, "after decimal point"), strings.HasPrefix(context, "in exponent"):
		return "a malformed number at " + c
	}
	return "unexpected " + c + " " + context
}

// Keys lists the JSON keys of v's type at any depth (struct fields by their
// json tags), sorted.
func Keys(v any) []string {
	if v == nil {
		return nil
	}
	set := map[string]bool{}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			if f.Anonymous && name == "" {
				walk(f.Type) // embedded: its fields are this object's
				continue
			}
			if name == "" {
				name = f.Name
			}
			set[name] = true
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(v))
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// closest returns the key nearest to k when it is a likely typo: at most
// two edits, and fewer than half of k's letters (case is ignored).
func closest(k string, keys []string) string {
	best, bestD := "", 3
	lk := strings.ToLower(k)
	for _, c := range keys {
		d := distance(lk, strings.ToLower(c))
		if d < bestD && 2*d < len([]rune(lk)) {
			best, bestD = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b (in runes).
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
