package htmlreport

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"flag"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func render(t testing.TB, d *Data) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, d); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestGolden: the small fixture's page is the product; a change in it is a
// change of the report and must be looked at (then -update).
func TestGolden(t *testing.T) {
	got := render(t, smallData())
	path := filepath.Join("testdata", "small.golden.html")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		lo := max(0, i-80)
		t.Fatalf("output differs from %s at byte %d:\n got: %q\nwant: %q", path, i, got[lo:min(len(got), i+80)], want[lo:min(len(want), i+80)])
	}
}

func TestDeterministic(t *testing.T) {
	a, b := render(t, smallData()), render(t, smallData())
	if !bytes.Equal(a, b) {
		t.Fatal("two renders of the same data differ")
	}
}

// page is what checkStructure found in a page.
type page struct {
	svgs, figures, images int
	ids                   map[string]bool
	text                  strings.Builder // all character data outside <style>
	titles                []string
}

// checkStructure parses the page as XML (the renderer writes polyglot
// markup, so any unbalanced or unescaped markup is a parse error) and
// checks the rules of the report: no scripts or event handlers, no
// external references, every figure captioned, every SVG labelled with a
// title and a description it points to, ids unique, rasters valid PNGs.
func checkStructure(t *testing.T, html []byte) *page {
	t.Helper()
	p := &page{ids: map[string]bool{}}
	dec := xml.NewDecoder(bytes.NewReader(html))
	dec.Strict = true
	type frame struct {
		name       string
		attrs      map[string]string
		hasTitle   bool
		hasDesc    bool
		hasCaption bool
		descID     string
	}
	var stack []*frame
	inStyle := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			f := &frame{name: tk.Name.Local, attrs: map[string]string{}}
			for _, a := range tk.Attr {
				n := strings.ToLower(a.Name.Local)
				f.attrs[n] = a.Value
				if strings.HasPrefix(n, "on") {
					t.Errorf("<%s> has event handler %s=%q", f.name, n, a.Value)
				}
				if n == "style" {
					t.Errorf("<%s> has a style attribute (the CSP forbids it)", f.name)
				}
				if n == "href" || n == "src" {
					if !strings.HasPrefix(a.Value, "#") && !strings.HasPrefix(a.Value, "data:") {
						t.Errorf("<%s %s=%q>: only anchors and data: URIs are allowed", f.name, n, a.Value)
					}
				}
				if n == "id" {
					if p.ids[a.Value] {
						t.Errorf("duplicate id %q", a.Value)
					}
					p.ids[a.Value] = true
				}
			}
			switch f.name {
			case "script", "iframe", "object", "embed", "img", "foreignObject", "link":
				if !(f.name == "link" && f.attrs["href"] == "data:,") {
					t.Errorf("element <%s> in the page", f.name)
				}
			case "style":
				inStyle = true
			case "svg":
				p.svgs++
				if f.attrs["role"] != "img" || f.attrs["aria-label"] == "" || f.attrs["aria-describedby"] == "" {
					t.Errorf("svg without role=img, aria-label and aria-describedby: %v", f.attrs)
				}
				f.descID = f.attrs["aria-describedby"]
				vb := strings.Fields(f.attrs["viewbox"])
				if len(vb) != 4 {
					t.Errorf("svg viewBox %q", f.attrs["viewbox"])
				} else if w, _ := strconv.ParseFloat(vb[2], 64); !(w > 0) {
					t.Errorf("svg viewBox %q has no width", f.attrs["viewbox"])
				} else if h, _ := strconv.ParseFloat(vb[3], 64); !(h > 0) {
					t.Errorf("svg viewBox %q has no height", f.attrs["viewbox"])
				}
			case "figure":
				p.figures++
			case "image":
				p.images++
				checkPNG(t, f.attrs["href"])
			case "title", "desc":
				if len(stack) > 0 && stack[len(stack)-1].name == "svg" {
					s := stack[len(stack)-1]
					if f.name == "title" {
						s.hasTitle = true
					} else {
						s.hasDesc = true
						if f.attrs["id"] != s.descID {
							t.Errorf("svg desc id %q, aria-describedby %q", f.attrs["id"], s.descID)
						}
					}
				}
			case "figcaption":
				for i := len(stack) - 1; i >= 0; i-- {
					if stack[i].name == "figure" {
						stack[i].hasCaption = true
						break
					}
				}
			}
			stack = append(stack, f)
		case xml.EndElement:
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			switch f.name {
			case "svg":
				if !f.hasTitle || !f.hasDesc {
					t.Errorf("svg %q lacks a <title> or <desc>", f.attrs["aria-label"])
				}
			case "figure":
				if !f.hasCaption {
					t.Error("figure without a figcaption")
				}
			case "style":
				inStyle = false
			}
		case xml.CharData:
			if !inStyle {
				p.text.Write(tk)
				if len(stack) > 0 && stack[len(stack)-1].name == "title" && len(stack) > 1 && stack[len(stack)-2].name == "head" {
					p.titles = append(p.titles, string(tk))
				}
			}
		}
	}
	return p
}

func checkPNG(t *testing.T, uri string) {
	t.Helper()
	const pre = "data:image/png;base64,"
	if !strings.HasPrefix(uri, pre) {
		t.Errorf("image href %.40q is not a PNG data URI", uri)
		return
	}
	raw, err := base64.StdEncoding.DecodeString(uri[len(pre):])
	if err != nil {
		t.Errorf("image data: %v", err)
		return
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Errorf("image data: %v", err)
		return
	}
	if b := img.Bounds(); b.Dx() == 0 || b.Dy() == 0 {
		t.Errorf("empty image %v", b)
	}
}

func TestStructure(t *testing.T) {
	html := render(t, smallData())
	p := checkStructure(t, html)
	// 3 overview charts, 2 layers × (1 spectrum + ESDs: 4 in layer 0, 3 in
	// layer 1), 3 head maps, 3 composition maps, 1 legend, 1 attention figure
	if want := 3 + 2 + 4 + 3 + 3 + 3 + 1 + 1; p.figures != want {
		t.Errorf("%d figures, want %d", p.figures, want)
	}
	// every figure's SVGs, plus 4 attention panels inside one figure
	if want := 3 + 2 + 7 + 3 + 3 + 1 + 4; p.svgs != want {
		t.Errorf("%d svgs, want %d", p.svgs, want)
	}
	if len(p.titles) != 1 || p.titles[0] != "qkv report: testdata/<tiny>&model.safetensors" {
		t.Errorf("page title %q", p.titles)
	}
	text := p.text.String()
	for _, want := range []string{"Findings", "dead_head", "layer 1", "head 3", "Head composition", "Strongest head pairs",
		"Attention patterns", "Token key", "Layer 0 statistics", "power law, α = 2.5", "fit failed",
		"The power-law fit failed", "7 value(s) below", "1 eigenvalue(s) ≤ 1×10⁻⁵ (below WeightWatcher's cut and left out of its fit) not shown.", "under-trained", "spectrum_skipped"} {
		if !strings.Contains(text, want) {
			t.Errorf("page text lacks %q", want)
		}
	}
}

// TestHostileLabels: labels from a checkpoint arrive as text, never as
// markup, and their invisible characters are shown.
func TestHostileLabels(t *testing.T) {
	d := smallData()
	d.Title = hostile[0]
	d.Model.Arch = hostile[1]
	d.Model.Facts = append(d.Model.Facts, Fact{hostile[3], hostile[4]})
	d.Layers[0].Matrices[0].Name = hostile[2]
	d.Layers[0].Matrices[1].Flags = []string{hostile[6], hostile[7]}
	d.Heads[0].Group = hostile[9]
	d.Composition[0].Name = hostile[0]
	d.Attention.Tokens[1] = hostile[8]
	html := render(t, d)
	p := checkStructure(t, html) // no script element, no on* attribute, no external href
	text := p.text.String()
	for _, want := range []string{
		"</title><script>alert(1)</script>", // as text
		`"><img src=x onerror=alert(2)>`,
		`\u202egnp.exe\u202c`, // bidi overrides made visible
		`a\x00b\x1b[31mred\n`, // control characters made visible
		"\uFFFD",              // invalid UTF-8 replaced
		"␣the",                // a token's leading space shown
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page text lacks %q", want)
		}
	}
	for _, bad := range []string{"\u202e", "\x00", "\x1b", "<script", "<img", "<svg onload"} {
		if bytes.Contains(html, []byte(bad)) {
			t.Errorf("page holds %q", bad)
		}
	}
}

func FuzzRenderLabels(f *testing.F) {
	for _, h := range hostile {
		f.Add(h, h)
	}
	f.Fuzz(func(t *testing.T, token, message string) {
		d := smallData()
		d.Attention.Tokens[0] = token
		d.Findings[0].Message = message
		d.Source = token
		d.Layers[0].Matrices[2].Name = message
		var b bytes.Buffer
		if err := Render(&b, d); err != nil {
			t.Fatal(err)
		}
		checkStructure(t, b.Bytes())
	})
}

func TestValidate(t *testing.T) {
	for name, mut := range map[string]func(d *Data){
		"ragged composition": func(d *Data) { d.Composition[0].K[0][1] = d.Composition[0].K[0][1][:1] },
		"short composition":  func(d *Data) { d.Composition[0].V = d.Composition[0].V[:1] },
		"composition layers": func(d *Data) { d.Composition[0].Layers = []int{3} },
		"ragged attention":   func(d *Data) { d.Attention.Layers[0].Probs[2][3] = nil },
		"attention rows":     func(d *Data) { d.Attention.Layers[0].Probs[1] = d.Attention.Layers[0].Probs[1][:2] },
		"token count":        func(d *Data) { d.Attention.Tokens = d.Attention.Tokens[:3] },
		"head map rows":      func(d *Data) { d.Heads[0].Layers = []int{0} },
		"duplicate layer":    func(d *Data) { d.Layers[1].Index = 0 },
	} {
		d := smallData()
		mut(d)
		if err := Render(io.Discard, d); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := Render(io.Discard, nil); err == nil {
		t.Error("nil data: no error")
	}
}

// TestSparse: a report with nothing but a model summary, and one whose
// numbers are all NaN, render without error.
func TestSparse(t *testing.T) {
	checkStructure(t, render(t, &Data{Source: "empty"}))
	checkStructure(t, render(t, sparseData()))
}

var dataURI = regexp.MustCompile(`data:image/png;base64,[A-Za-z0-9+/=]*`)

// TestDegenerate: shapes at their edges render (no panic) as a valid page.
func TestDegenerate(t *testing.T) {
	inf := math.Inf(1)
	for name, mut := range map[string]func(d *Data){
		"no heads in composition": func(d *Data) {
			c := &d.Composition[0]
			c.Q, c.K, c.V = [][][][]float64{{}, {}}, [][][][]float64{{}, {}}, [][][][]float64{{}, {}}
		},
		"one layer composition": func(d *Data) {
			c := &d.Composition[0]
			c.Q, c.K, c.V = c.Q[:1], c.K[:1], c.V[:1]
			for _, v := range [][][][][]float64{c.Q, c.K, c.V} {
				for h := range v[0] {
					v[0][h] = v[0][h][:1]
				}
			}
		},
		"one position": func(d *Data) {
			d.Attention.Tokens = d.Attention.Tokens[:1]
			for h := range d.Attention.Layers[0].Probs {
				d.Attention.Layers[0].Probs[h] = [][]float32{{1}}
			}
		},
		"no attention heads":  func(d *Data) { d.Attention.Layers[0].Probs = nil },
		"empty head map rows": func(d *Data) { d.Heads[0].Values = [][]float64{{}, {}} },
		"no matrices":         func(d *Data) { d.Layers[0].Matrices = nil },
		"infinite values": func(d *Data) {
			m := &d.Layers[0].Matrices[0]
			m.SV[0], m.SpectralNorm, m.ESD.Alpha = inf, inf, inf
			d.Heads[0].Values[0][0] = -inf
			d.Composition[0].Q[0][0][1][0] = inf
			d.Composition[0].Baseline = math.NaN()
		},
		"one singular value": func(d *Data) {
			m := &d.Layers[0].Matrices[1]
			m.SV, m.Shape = m.SV[:1], [2]int{1, 16}
		},
		"bad fit": func(d *Data) {
			d.Layers[0].Matrices[0].ESD = &ESD{Status: "success", Alpha: 0.5, XMin: -1, XMax: math.NaN()}
		},
	} {
		d := smallData()
		mut(d)
		var b bytes.Buffer
		if err := Render(&b, d); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		checkStructure(t, b.Bytes())
		// (base64 rasters may spell anything: leave them out)
		page := dataURI.ReplaceAll(b.Bytes(), nil)
		if bytes.Contains(page, []byte("NaN")) || bytes.Contains(page, []byte("Inf")) {
			t.Errorf("%s: NaN or Inf written into the page", name)
		}
	}
}

func TestManyFindings(t *testing.T) {
	d := smallData()
	for len(d.Findings) < maxFindings+5 {
		d.Findings = append(d.Findings, Finding{Kind: "dead_head", Layer: 0, Matrix: "q", Head: 1, Message: "m"})
	}
	if !strings.Contains(checkStructure(t, render(t, d)).text.String(), "… and 5 more findings") {
		t.Error("findings beyond the limit are not counted")
	}
}

// TestPartialSpectrum: singular values short of min(rows, cols) (estimates)
// get a spectrum line but no ESD.
func TestPartialSpectrum(t *testing.T) {
	d := smallData()
	m := &d.Layers[0].Matrices[0]
	m.SV = m.SV[:5]
	text := checkStructure(t, render(t, d)).text.String()
	if !strings.Contains(text, "Layer 0 W_Q: 5 of 16 singular values known, so no ESD is drawn.") ||
		strings.Contains(text, "Layer 0 W_Q: eigenvalue spectrum") {
		t.Error("an ESD drawn from a partial spectrum")
	}
}

func BenchmarkRender32x32(b *testing.B) {
	d := bigData(32, 32, 8, 4096, 4, 128)
	var n int
	for b.Loop() {
		var buf bytes.Buffer
		if err := Render(&buf, d); err != nil {
			b.Fatal(err)
		}
		n = buf.Len()
	}
	b.ReportMetric(float64(n), "bytes/page")
}

type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) {
	if w.n += len(p); w.n > 1000 {
		return 0, io.ErrShortWrite
	}
	return len(p), nil
}

func TestWriteError(t *testing.T) {
	if err := Render(&errWriter{}, smallData()); err == nil {
		t.Fatal("a failing writer gave no error")
	}
}

// TestSizeBounded: a 32-layer, 32-head, 4096-wide model with full spectra,
// every head map, both composition variants and 32 heads' patterns in 4
// layers over 128 positions stays a few megabytes.
func TestSizeBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	html := render(t, bigData(32, 32, 8, 4096, 4, 128))
	const limit = 6 << 20
	t.Logf("32×32 report: %d bytes", len(html))
	if len(html) > limit {
		t.Errorf("32×32 report is %d bytes, above %d", len(html), limit)
	}
	p := checkStructure(t, html)
	if !strings.Contains(p.text.String(), "Downsampled to at most 200 points per line") ||
		!strings.Contains(p.text.String(), "pooled from 128×128 to 64×64") ||
		!strings.Contains(p.text.String(), "the largest score over the 32×32 head pairs") {
		t.Error("the page does not say what was downsampled")
	}
}
