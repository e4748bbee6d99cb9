package check

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"regexp"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/termui"
)

// sample is a result with every kind of entry: failures with and without a
// tensor and layer, two failures of one check and tensor, a warning, a
// message with a newline and a percent sign, and property text with ':'
// and ','.
func sample() *Result {
	l1 := 1
	return &Result{
		Schema: Schema, Path: "models/m.gguf", Passed: false,
		Failures: []Problem{
			{Check: CheckNaN, Tensor: "blk.0.attn_q.weight", Message: "3 NaN values of 4096"},
			{Check: CheckDeadHead, Tensor: "blk.1.attn_q.weight", Layer: &l1, Message: "layers.1.q: head 3 has Frobenius norm 0"},
			{Check: CheckDeadHead, Tensor: "blk.1.attn_q.weight", Layer: &l1, Message: "layers.1.q: head 5 has Frobenius norm 0"},
			{Check: CheckGeometry, Message: "heads is 8, the rules expect 16"},
			{Check: CheckStructure, Tensor: "odd:name,with=chars", Message: "line one\nline two: 100% broken\r"},
		},
		Warnings: []Problem{
			{Check: CheckZeroRows, Tensor: "blk.1.attn_q.weight", Message: "8 of 64 rows are all zero (first: row 24)"},
			{Check: CheckDuplicateHeads, Tensor: "blk.0.attn_k.weight", Layer: new(int), Message: "heads 0 and 3 are near-duplicates (cosine 0.99189)"},
		},
		Checks:  []string{CheckStructure, CheckDType, CheckNaN, CheckInf, CheckZeroRows, CheckGeometry, CheckDeadHead, CheckDuplicateHeads},
		Tensors: 21, Layers: 2,
	}
}

func passing() *Result {
	return &Result{Schema: Schema, Path: "ok.safetensors", Passed: true, Failures: []Problem{}, Warnings: []Problem{},
		Checks: []string{CheckStructure, CheckNaN}, Tensors: 3}
}

func TestWriteJSON(t *testing.T) {
	for _, r := range []*Result{sample(), passing()} {
		var buf bytes.Buffer
		if err := r.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
			t.Fatalf("%v\n%s", err, buf.String())
		}
		if doc["schema"] != "qkv.check/v1" || doc["passed"] != r.Passed || doc["path"] != r.Path {
			t.Errorf("schema %v passed %v path %v", doc["schema"], doc["passed"], doc["path"])
		}
		for key, want := range map[string][]Problem{"failures": r.Failures, "warnings": r.Warnings} {
			list, ok := doc[key].([]any)
			if !ok || len(list) != len(want) {
				t.Fatalf("%s: %v (want %d entries; an empty list must be [], not null)", key, doc[key], len(want))
			}
			for i, e := range list {
				m := e.(map[string]any)
				if len(m) != 7 {
					t.Errorf("%s[%d] has keys %v, want check, tensor, layer, stat, value, threshold, message", key, i, m)
				}
				p := want[i]
				if m["check"] != p.Check || m["tensor"] != p.Tensor || m["message"] != p.Message {
					t.Errorf("%s[%d] = %v, want %+v", key, i, m, p)
				}
				if p.Layer == nil && m["layer"] != nil || p.Layer != nil && m["layer"] != float64(*p.Layer) {
					t.Errorf("%s[%d] layer %v, want %v", key, i, m["layer"], p.Layer)
				}
			}
		}
		if checks, ok := doc["checks"].([]any); !ok || len(checks) != len(r.Checks) {
			t.Errorf("checks %v", doc["checks"])
		}
		if doc["tensors_checked"] != float64(r.Tensors) || doc["layers_checked"] != float64(r.Layers) {
			t.Errorf("tensors_checked %v layers_checked %v", doc["tensors_checked"], doc["layers_checked"])
		}
	}
}

// junit* mirror the JUnit XML schema as CI systems read it, independently
// of the writer's types.
type junitDoc struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Cases    []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Failures  []struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestWriteJUnit(t *testing.T) {
	tests := []struct {
		name             string
		r                *Result
		cases, failCases int
	}{
		// Failing groups: nan/blk.0, dead_head/blk.1 (two problems),
		// geometry/path, structure/odd. Warning groups: zero_rows/blk.1,
		// duplicate_heads/blk.0. Checks with nothing: dtype, inf.
		{"sample", sample(), 8, 4},
		{"passing", passing(), 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.r.WriteJUnit(&buf); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(buf.String(), "<?xml") {
				t.Errorf("no XML declaration: %.40q", buf.String())
			}
			var doc junitDoc
			if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
				t.Fatalf("%v\n%s", err, buf.String())
			}
			if len(doc.Suites) != 1 {
				t.Fatalf("%d test suites", len(doc.Suites))
			}
			s := doc.Suites[0]
			failed := 0
			for _, c := range s.Cases {
				if len(c.Failures) > 1 {
					t.Errorf("case %s %s has %d failure elements", c.Classname, c.Name, len(c.Failures))
				}
				if len(c.Failures) > 0 {
					failed++
					if c.Failures[0].Message == "" || c.Failures[0].Type == "" {
						t.Errorf("case %s: failure without message or type", c.Name)
					}
				}
				if !strings.HasPrefix(c.Classname, "qkv.check.") || c.Name == "" {
					t.Errorf("case %q %q", c.Classname, c.Name)
				}
			}
			if len(s.Cases) != tc.cases || failed != tc.failCases {
				t.Errorf("%d cases, %d failing; want %d and %d\n%s", len(s.Cases), failed, tc.cases, tc.failCases, buf.String())
			}
			if s.Tests != len(s.Cases) || s.Failures != failed || doc.Tests != s.Tests || doc.Failures != s.Failures {
				t.Errorf("attributes: testsuites tests=%d failures=%d, testsuite tests=%d failures=%d; cases %d failing %d",
					doc.Tests, doc.Failures, s.Tests, s.Failures, len(s.Cases), failed)
			}
			// Every problem's message is in the document.
			for _, p := range append(append([]Problem(nil), tc.r.Failures...), tc.r.Warnings...) {
				found := false
				for _, c := range s.Cases {
					text := c.SystemOut
					for _, f := range c.Failures {
						text += f.Text
					}
					if c.Classname == "qkv.check."+p.Check && strings.Contains(text, p.Message) {
						found = true
					}
				}
				if !found {
					t.Errorf("message %q of %s not in any case", p.Message, p.Check)
				}
			}
		})
	}
}

// A workflow command: ::name key=value,key=value::message, on one line.
var workflowLine = regexp.MustCompile(`^::(error|warning|notice)( [a-z]+=[^,:]*(,[a-z]+=[^,:]*)*)?::.*$`)

func unescapeData(s string) string {
	return strings.NewReplacer("%0D", "\r", "%0A", "\n", "%3A", ":", "%2C", ",", "%25", "%").Replace(s)
}

func TestWriteGitHub(t *testing.T) {
	for _, r := range []*Result{sample(), passing()} {
		var buf bytes.Buffer
		if err := r.WriteGitHub(&buf); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if want := len(r.Failures) + len(r.Warnings) + 1; len(lines) != want {
			t.Fatalf("%d lines, want %d:\n%s", len(lines), want, buf.String())
		}
		for i, line := range lines {
			if !workflowLine.MatchString(line) {
				t.Errorf("line %d is not a workflow command: %q", i, line)
			}
		}
		for i, p := range append(append([]Problem(nil), r.Failures...), r.Warnings...) {
			kind := "::error "
			if i >= len(r.Failures) {
				kind = "::warning "
			}
			line := lines[i]
			if !strings.HasPrefix(line, kind) {
				t.Errorf("line %d: %q does not start with %q", i, line, kind)
			}
			props, msg, _ := strings.Cut(strings.TrimPrefix(line, kind), "::")
			if got := unescapeData(msg); got != p.Message {
				t.Errorf("line %d: message %q unescapes to %q, want %q", i, msg, got, p.Message)
			}
			title := unescapeData(strings.TrimPrefix(props, "title="))
			if !strings.Contains(title, p.Check) || !strings.Contains(title, p.Tensor) {
				t.Errorf("line %d: title %q does not name %s and %s", i, title, p.Check, p.Tensor)
			}
		}
		last := lines[len(lines)-1]
		verdict := "passed"
		if !r.Passed {
			verdict = "failed"
		}
		if !strings.HasPrefix(last, "::notice title=qkv check "+verdict+"::") {
			t.Errorf("last line %q", last)
		}
	}
	// The exact escapes.
	var buf bytes.Buffer
	r := &Result{Path: "p", Failures: []Problem{{Check: "nan", Tensor: "a:b,c", Message: "50% of\r\nrows"}}}
	if err := r.WriteGitHub(&buf); err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(buf.String(), "\n"); first != "::error title=qkv nan a%3Ab%2Cc::50%25 of%0D%0Arows" {
		t.Errorf("got %q", first)
	}
}

func TestRenderText(t *testing.T) {
	for _, r := range []*Result{sample(), passing()} {
		for _, width := range []int{80, 160} {
			var buf bytes.Buffer
			if err := r.Render(&buf, termui.Style{Width: width}); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			if strings.Contains(out, "\x1b[") {
				t.Errorf("unstyled text has escape sequences")
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			// The verdict first.
			if first := lines[0]; r.Passed != strings.HasPrefix(first, "PASS ") || !r.Passed != strings.HasPrefix(first, "FAIL ") || !strings.Contains(first, r.Path) {
				t.Errorf("verdict line %q for passed=%v", first, r.Passed)
			}
			// Two lines per problem (its check and tensor, its message),
			// even for a message with a newline, none wider than the
			// terminal.
			n := 0
			for i, l := range lines {
				if termui.Width(l) > width {
					t.Errorf("%d columns: line of %d: %q", width, termui.Width(l), l)
				}
				if i > 0 && (strings.HasPrefix(l, "FAIL ") || strings.HasPrefix(l, "warn ")) {
					n++
				}
			}
			if want := len(r.Failures) + len(r.Warnings); n != want {
				t.Errorf("%d problem lines, want %d:\n%s", n, want, out)
			}
			for _, p := range r.Failures {
				if !strings.Contains(out, "FAIL "+p.Check) {
					t.Errorf("no FAIL line for %s", p.Check)
				}
			}
		}
	}
}
