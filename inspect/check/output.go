package check

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/qkvdev/qkv/internal/termui"
)

// WriteJSON writes the qkv.check/v1 document.
func (r *Result) WriteJSON(w io.Writer) error { return termui.WriteJSON(w, r) }

var _ termui.Renderer = (*Result)(nil)

// Render writes a human summary: each failure and warning on a line, then
// PASS or FAIL.
func (r *Result) Render(w io.Writer, st termui.Style) error {
	var b strings.Builder
	th := termui.NewTheme(w, st)
	// Tensor names and messages come from the file: escapes and line
	// breaks in them are shown, never acted on.
	line := func(tag string, p Problem) {
		where := termui.Clean(r.Path)
		if p.Tensor != "" {
			where = termui.Name(p.Tensor)
		}
		fmt.Fprintf(&b, "%s %-16s %s: %s\n", tag, p.Check, where, termui.Clean(p.Message))
	}
	for _, p := range r.Failures {
		line(th.Bad("FAIL"), p)
	}
	for _, p := range r.Warnings {
		line(th.Warn("warn"), p)
	}
	verdict := th.Good("PASS")
	if !r.Passed {
		verdict = th.Bad("FAIL")
	}
	fmt.Fprintf(&b, "%s %s: %d tensors, %d attention layers; %d failures, %d warnings (checks: %s)\n",
		verdict, termui.Clean(r.Path), r.Tensors, r.Layers, len(r.Failures), len(r.Warnings), strings.Join(r.Checks, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

// escapeData and escapeProperty follow GitHub's workflow-command encoding,
// after the text is sanitised (the log shows terminal escapes as colours
// and cursor moves).
func escapeData(s string) string {
	s = strings.ReplaceAll(s, "%", "%25")
	s = strings.ReplaceAll(s, "\r", "%0D")
	return termui.Clean(strings.ReplaceAll(s, "\n", "%0A"))
}

func escapeProperty(s string) string {
	s = escapeData(s)
	s = strings.ReplaceAll(s, ":", "%3A")
	return strings.ReplaceAll(s, ",", "%2C")
}

// WriteGitHub writes GitHub Actions workflow commands: one ::error or
// ::warning annotation per problem, titled with the check and tensor, then a
// ::notice with the verdict.
func (r *Result) WriteGitHub(w io.Writer) error {
	var b strings.Builder
	ann := func(kind string, p Problem) {
		title := "qkv " + p.Check
		if p.Tensor != "" {
			title += " " + p.Tensor
		}
		fmt.Fprintf(&b, "::%s title=%s::%s\n", kind, escapeProperty(title), escapeData(p.Message))
	}
	for _, p := range r.Failures {
		ann("error", p)
	}
	for _, p := range r.Warnings {
		ann("warning", p)
	}
	verdict := "passed"
	if !r.Passed {
		verdict = "failed"
	}
	fmt.Fprintf(&b, "::notice title=%s::%s\n", escapeProperty("qkv check "+verdict),
		escapeData(fmt.Sprintf("%s: %d failures, %d warnings", r.Path, len(r.Failures), len(r.Warnings))))
	_, err := io.WriteString(w, b.String())
	return err
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes a JUnit XML report: one test suite, one test case per
// check and tensor group (a tensor, or the whole checkpoint); failures carry
// their messages, warnings go to system-out of a passing case, and each
// check that found nothing is one passing case.
func (r *Result) WriteJUnit(w io.Writer) error {
	type key struct{ check, group string }
	cases := map[key]*junitCase{}
	var order []key
	get := func(p Problem) *junitCase {
		g := p.Tensor
		if g == "" {
			g = r.Path
		}
		k := key{p.Check, g}
		if c, ok := cases[k]; ok {
			return c
		}
		c := &junitCase{Name: g, Classname: "qkv.check." + p.Check}
		cases[k] = c
		order = append(order, k)
		return c
	}
	for _, p := range r.Failures {
		c := get(p)
		if c.Failure == nil {
			c.Failure = &junitFailure{Message: p.Message, Type: p.Check}
		}
		c.Failure.Text += p.Message + "\n"
	}
	for _, p := range r.Warnings {
		c := get(p)
		c.SystemOut += "warning: " + p.Message + "\n"
	}
	seen := map[string]bool{}
	for k := range cases {
		seen[k.check] = true
	}
	for _, id := range r.Checks {
		if !seen[id] {
			k := key{id, r.Path}
			cases[k] = &junitCase{Name: r.Path, Classname: "qkv.check." + id}
			order = append(order, k)
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].check < order[j].check })
	suite := junitSuite{Name: "qkv check " + r.Path}
	for _, k := range order {
		c := cases[k]
		suite.Cases = append(suite.Cases, *c)
		suite.Tests++
		if c.Failure != nil {
			suite.Failures++
		}
	}
	doc := junitSuites{Name: "qkv check", Tests: suite.Tests, Failures: suite.Failures, Suites: []junitSuite{suite}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
