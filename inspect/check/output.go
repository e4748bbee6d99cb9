package check

import (
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/termui"
)

// WriteJSON writes the qkv.check/v1 document.
func (r *Result) WriteJSON(w io.Writer) error { return termui.WriteJSON(w, r) }

var _ termui.Renderer = (*Result)(nil)

// Summary is the verdict in one line: PASS or FAIL, the checkpoint, what
// was checked, the problems' counts and the worst problem (the first
// failure, else the first warning).
func (r *Result) Summary() string {
	verdict := "PASS"
	if !r.Passed {
		verdict = "FAIL"
	}
	s := fmt.Sprintf("%s %s: %s, %s; %s, %s", verdict, r.Path, termui.Plural(int64(len(r.Failures)), "failure"), termui.Plural(int64(len(r.Warnings)), "warning"),
		termui.Plural(int64(r.Tensors), "tensor"), termui.Plural(int64(r.Layers), "attention layer"))
	if w := r.worst(); w != nil {
		s += "; worst: " + w.Check
		if w.Tensor != "" {
			s += " in " + w.Tensor
		}
	}
	return s
}

// summaryLine is Summary fitted to cols columns: the worst problem's
// tensor gives way first (cut in the middle), then "attention" of
// "attention layers", then the worst problem, then the path (cut in the
// middle).
func (r *Result) summaryLine(cols int, ascii bool) string {
	verdict := "PASS "
	if !r.Passed {
		verdict = "FAIL "
	}
	path := termui.Clean(r.Path)
	counts := "; " + termui.Plural(int64(len(r.Failures)), "failure") + ", " + termui.Plural(int64(len(r.Warnings)), "warning")
	what := "; " + termui.Plural(int64(r.Tensors), "tensor") + ", " + termui.Plural(int64(r.Layers), "attention layer")
	var worst, tensor string
	if p := r.worst(); p != nil {
		worst = "; worst: " + p.Check
		if p.Tensor != "" {
			tensor = " in " + termui.Name(p.Tensor)
		}
	}
	width := func() int {
		return termui.Width(verdict+path+":") + termui.Width(counts[1:]) + termui.Width(what) + termui.Width(worst) + termui.Width(tensor)
	}
	if over := width() - cols; over > 0 && tensor != "" {
		if keep := termui.Width(tensor) - len(" in ") - over; keep >= 12 {
			tensor = " in " + termui.TruncateMiddle(tensor[len(" in "):], keep, ascii)
		} else {
			tensor = ""
		}
	}
	if width() > cols {
		what = "; " + termui.Plural(int64(r.Tensors), "tensor") + ", " + termui.Plural(int64(r.Layers), "layer")
	}
	if width() > cols {
		worst = ""
	}
	if over := width() - cols; over > 0 {
		path = termui.TruncateMiddle(path, max(termui.Width(path)-over, 12), ascii)
	}
	return verdict + path + ":" + counts[1:] + what + worst + tensor
}

func (r *Result) worst() *Problem {
	switch {
	case len(r.Failures) > 0:
		return &r.Failures[0]
	case len(r.Warnings) > 0:
		return &r.Warnings[0]
	}
	return nil
}

// Render writes the verdict first — one line: PASS or FAIL, the
// checkpoint, what was checked, the counts and the worst problem — then
// each failure and warning (the check and tensor on one line, the message
// wrapped below it), then the checks that ran; every line fits st's width.
func (r *Result) Render(w io.Writer, st termui.Style) error {
	var b strings.Builder
	th := termui.NewTheme(w, st)
	cols := st.Cols()
	ell := st.ASCII
	// Tensor names and messages come from the file: escapes and line
	// breaks in them are shown, never acted on.
	tag := func(fail bool) string {
		if fail {
			return th.Bad("FAIL")
		}
		return th.Warn("warn")
	}
	verdict := th.Good("PASS")
	if !r.Passed {
		verdict = th.Bad("FAIL")
	}
	b.WriteString(verdict + " " + r.summaryLine(cols, ell)[len("PASS "):] + "\n")
	if r.Spectra == "bounds" && r.Layers > 0 {
		b.WriteString(th.Muted(termui.Wrap("spectral norms: Lanczos bounds (exact where a rule needs it; --exact for all)", cols, "")) + "\n")
	}
	line := func(fail bool, p Problem) {
		// The check and what it concerns (the tensor; else the layer; else
		// the checkpoint), then the message below, wrapped.
		where := termui.Clean(r.Path)
		switch {
		case p.Tensor != "":
			where = termui.Name(p.Tensor)
		case p.Layer != nil:
			where = fmt.Sprintf("layer %d", *p.Layer)
		}
		head := fmt.Sprintf("%s %-15s ", tag(fail), p.Check)
		hw := len("FAIL ") + max(len(p.Check), 15) + 1
		switch {
		case hw+termui.Width(where)+1 <= cols:
			b.WriteString(head + where + ":\n")
		case 5+termui.Width(where)+1 <= cols:
			// A long name gets a line of its own rather than being cut.
			b.WriteString(strings.TrimRight(head, " ") + "\n     " + where + ":\n")
		default:
			b.WriteString(strings.TrimRight(head, " ") + "\n     " + termui.TruncateMiddle(where, cols-6, ell) + ":\n")
		}
		msg := termui.Clean(p.Message)
		if st.ASCII {
			msg = asciiSymbols.Replace(msg)
		}
		b.WriteString("     " + termui.Wrap(msg, cols-5, "     ") + "\n")
	}
	if len(r.Failures)+len(r.Warnings) > 0 {
		b.WriteString("\n")
	}
	for _, p := range r.Failures {
		line(true, p)
	}
	for _, p := range r.Warnings {
		line(false, p)
	}
	b.WriteString("\n" + th.Muted(termui.Wrap("checks: "+strings.Join(r.Checks, ", "), cols, "  ")) + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteMarkdown writes the result for a pull-request comment or a GitHub
// job summary: the verdict as a heading line, then a table of the
// problems (at most maxMarkdownRows; the rest counted).
func (r *Result) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	icon := "✅ **PASS**"
	if !r.Passed {
		icon = "❌ **FAIL**"
	}
	fmt.Fprintf(&b, "### qkv check: %s\n\n", icon)
	fmt.Fprintf(&b, "`%s`: %s, %s; %s, %s", mdCode(r.Path), termui.Plural(int64(len(r.Failures)), "failure"), termui.Plural(int64(len(r.Warnings)), "warning"),
		termui.Plural(int64(r.Tensors), "tensor"), termui.Plural(int64(r.Layers), "attention layer"))
	if r.Spectra == "bounds" && r.Layers > 0 {
		b.WriteString(" (spectral norms from block Lanczos bounds)")
	}
	b.WriteString(".\n")
	if n := len(r.Failures) + len(r.Warnings); n > 0 {
		b.WriteString("\n| | check | tensor | layer | value | threshold | message |\n|---|---|---|---|---|---|---|\n")
		rows := 0
		row := func(sev string, p Problem) {
			if rows == maxMarkdownRows {
				return
			}
			rows++
			layer := ""
			if p.Layer != nil {
				layer = fmt.Sprint(*p.Layer)
			}
			fmt.Fprintf(&b, "| %s | %s | `%s` | %s | %s | %s | %s |\n", sev, p.Check, mdCode(p.Tensor), layer, mdValue(p), mdNum(p.Threshold), mdCell(p.Message))
		}
		for _, p := range r.Failures {
			row("❌", p)
		}
		for _, p := range r.Warnings {
			row("⚠️", p)
		}
		if n > rows {
			fmt.Fprintf(&b, "\n… and %d more (qkv check --format json lists them all).\n", n-rows)
		}
	}
	fmt.Fprintf(&b, "\nChecks: %s.\n", strings.Join(r.Checks, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

// asciiSymbols spells the symbols of problem messages in ASCII (TERM=dumb).
var asciiSymbols = strings.NewReplacer("×", "x", "→", "->", "…", "...", "−", "-", "≤", "<=", "≥", ">=", "‖", "|")

// maxMarkdownRows bounds the problems a markdown summary lists (GitHub
// caps a job summary at 1 MiB).
const maxMarkdownRows = 200

// mdValue is a problem's value as mdNum writes it, but a cosine (a
// duplicate_heads value) keeps the digits that tell it from 1.
func mdValue(p Problem) string {
	if p.Stat != nil && *p.Stat == "cosine" && p.Value != nil && p.Value.Valid() {
		return inspect.FormatCosine(float64(*p.Value), -6)
	}
	return mdNum(p.Value)
}

func mdNum(f *termui.Float) string {
	if f == nil || !f.Valid() {
		return ""
	}
	return strconv.FormatFloat(float64(*f), 'g', 6, 64)
}

// mdCell makes file text safe in a table cell: no line breaks, pipes or
// HTML, terminal escapes shown.
func mdCell(s string) string {
	s = termui.Clean(oneLine.Replace(s))
	return strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;", "`", "\\`").Replace(s)
}

func mdCode(s string) string {
	return strings.ReplaceAll(termui.Clean(oneLine.Replace(s)), "`", "'")
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
	return writeJUnit(w, junitSuites{Name: "qkv check", Tests: suite.Tests, Failures: suite.Failures, Suites: []junitSuite{suite}})
}

// writeJUnit writes a JUnit document: the XML header, the indented suites
// and a final newline.
func writeJUnit(w io.Writer, doc junitSuites) error {
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

// WriteJUnitUnreadable writes the JUnit report of a check that could not
// read its input at all: one test case, failing with the reason, so that a
// CI system that reads the report sees the failure rather than an empty or
// missing file.
func WriteJUnitUnreadable(w io.Writer, path, reason string) error {
	c := junitCase{Name: path, Classname: "qkv.check." + CheckStructure, Failure: &junitFailure{Message: reason, Type: "unreadable", Text: reason + "\n"}}
	suite := junitSuite{Name: "qkv check " + path, Tests: 1, Failures: 1, Cases: []junitCase{c}}
	return writeJUnit(w, junitSuites{Name: "qkv check", Tests: 1, Failures: 1, Suites: []junitSuite{suite}})
}
