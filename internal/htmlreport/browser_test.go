//go:build browser

package htmlreport

// The browser test: every report below is written to a file, loaded in
// headless Chromium over the DevTools protocol (cdp_test.go) at desktop
// width, at phone width and in print media, and fails on any console
// error, uncaught exception, blocked or external request, figure or SVG of
// zero size, raster that does not decode, or horizontal overflow on a
// phone. It saves a desktop and a phone screenshot and a PDF of each.
//
//	go test -tags browser -run TestBrowser ./internal/htmlreport/
//
// Environment: QKV_CHROMIUM (the browser; default chromium on PATH),
// QKV_BROWSER_OUT (where pages and screenshots go; default
// $TMPDIR/qkv-browser), QKV_BROWSER_REPORTS (extra HTML files to check,
// separated by the OS list separator, e.g. the output of `qkv report`).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qkvdev/qkv/internal/testref"
)

func chromiumPath() string {
	if p := os.Getenv("QKV_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// report is one page to check: built from data, or an existing file.
type report struct {
	name string
	data *Data
	file string
	// bare: a page with no figures at all (a report of nothing) is right
	bare bool
}

func TestBrowser(t *testing.T) {
	exe := chromiumPath()
	if exe == "" {
		t.Skip("no Chromium found (set QKV_CHROMIUM or install chromium): skipping the browser test")
	}
	out := os.Getenv("QKV_BROWSER_OUT")
	if out == "" {
		out = filepath.Join(os.TempDir(), "qkv-browser")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	reports := []report{
		{name: "fixture-small-hostile", data: smallData()},
		{name: "synthetic-32x32", data: bigData(32, 32, 8, 4096, 4, 128)},
		{name: "fixture-sparse", data: sparseData()},
		{name: "empty", data: &Data{Source: "empty"}, bare: true},
	}
	root := testref.RepoRoot()
	if d, err := pipelineReport(filepath.Join(root, "testdata", "tiny-llama"), "testdata/tiny-llama"); err != nil {
		t.Errorf("testdata/tiny-llama: %v", err)
	} else {
		reports = append(reports, report{name: "tiny-llama", data: d})
	}
	reports = append(reports, sharedReports(t)...)
	for _, f := range filepath.SplitList(os.Getenv("QKV_BROWSER_REPORTS")) {
		if f != "" {
			reports = append(reports, report{name: strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)), file: f})
		}
	}

	b, err := startBrowser(exe)
	if err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	defer b.close()
	for _, r := range reports {
		t.Run(r.name, func(t *testing.T) {
			path := r.file
			if r.data != nil {
				path = filepath.Join(out, r.name+".html")
				f, err := os.Create(path)
				if err != nil {
					t.Fatal(err)
				}
				err = Render(f, r.data)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			abs, err := filepath.Abs(path)
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(abs)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range checkInBrowser(t, b, abs, filepath.Join(out, r.name), !r.bare) {
				t.Error(p)
			}
			t.Logf("%s: %d bytes; screenshots %s-desktop.png, %s-phone.png, print %s.pdf", path, st.Size(), filepath.Join(out, r.name), filepath.Join(out, r.name), filepath.Join(out, r.name))
		})
	}
}

// pageCheck is what the in-page check returns.
type pageCheck struct {
	Figures, SVGs, Images int
	Bad                   []string
	ScrollWidth           float64
	InnerWidth            float64
	Height                float64
	Title                 string
}

// checkJS measures every figure and SVG and decodes every raster.
const checkJS = `(async () => {
  const bad = [];
  for (const e of document.querySelectorAll('figure, svg')) {
    const r = e.getBoundingClientRect();
    if (!(r.width > 0 && r.height > 0)) {
      const name = e.getAttribute('aria-label') || ((e.querySelector('figcaption') || {}).textContent || '');
      bad.push(e.tagName + ' "' + name.slice(0, 80) + '" is ' + r.width + '×' + r.height);
    }
  }
  const imgs = [...document.querySelectorAll('svg image')];
  for (const h of new Set(imgs.map(i => i.getAttribute('href')))) {
    const im = new Image();
    im.src = h;
    try { await im.decode(); if (!im.naturalWidth) bad.push('raster without width'); }
    catch (e) { bad.push('raster does not decode: ' + h.slice(0, 48)); }
  }
  return JSON.stringify({Figures: document.querySelectorAll('figure').length, SVGs: document.querySelectorAll('svg').length,
    Images: imgs.length, Bad: bad, ScrollWidth: document.documentElement.scrollWidth, InnerWidth: window.innerWidth,
    Height: document.documentElement.scrollHeight, Title: document.title});
})()`

func evalCheck(ctx context.Context, b *browser, session string) (pageCheck, error) {
	var res struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
		ExceptionDetails json.RawMessage `json:"exceptionDetails"`
	}
	if err := b.call(ctx, session, "Runtime.evaluate", map[string]any{"expression": checkJS, "awaitPromise": true, "returnByValue": true}, &res); err != nil {
		return pageCheck{}, err
	}
	if len(res.ExceptionDetails) > 0 {
		return pageCheck{}, fmt.Errorf("check script: %s", res.ExceptionDetails)
	}
	var pc pageCheck
	err := json.Unmarshal([]byte(res.Result.Value), &pc)
	return pc, err
}

// checkInBrowser loads the page at desktop width, phone width and in print
// media and returns its problems; failures of the harness itself stop t.
func checkInBrowser(t *testing.T, b *browser, abs, outBase string, wantFigures bool) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		t.Fatal(err)
	}
	defer b.call(context.Background(), "", "Target.closeTarget", map[string]any{"targetId": target.TargetID}, nil)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	s := att.SessionID
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"} {
		if err := b.call(ctx, s, m, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	url := "file://" + filepath.ToSlash(abs)
	var problems []string
	onEvent := func(m cdpMsg) {
		if m.SessionID != s {
			return
		}
		switch m.Method {
		case "Runtime.exceptionThrown":
			problems = append(problems, "exception: "+string(m.Params))
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string `json:"type"`
				Args []struct {
					Value any `json:"value"`
				} `json:"args"`
			}
			json.Unmarshal(m.Params, &p)
			if p.Type == "error" || p.Type == "assert" || p.Type == "warning" {
				problems = append(problems, fmt.Sprintf("console.%s: %v", p.Type, p.Args))
			}
		case "Log.entryAdded":
			var p struct {
				Entry struct {
					Level, Source, Text, URL string
				} `json:"entry"`
			}
			json.Unmarshal(m.Params, &p)
			if p.Entry.Level == "error" || p.Entry.Level == "warning" {
				problems = append(problems, fmt.Sprintf("console %s (%s): %s %s", p.Entry.Level, p.Entry.Source, p.Entry.Text, p.Entry.URL))
			}
		case "Network.requestWillBeSent":
			var p struct {
				Request struct{ URL string } `json:"request"`
			}
			json.Unmarshal(m.Params, &p)
			if u := p.Request.URL; u != url && !strings.HasPrefix(u, "data:") {
				problems = append(problems, "request to "+u)
			}
		case "Network.loadingFailed":
			problems = append(problems, "loading failed: "+string(m.Params))
		}
	}
	metrics := func(w, h int, mobile bool, scale float64) {
		if err := b.call(ctx, s, "Emulation.setDeviceMetricsOverride", map[string]any{"width": w, "height": h, "deviceScaleFactor": scale, "mobile": mobile}, nil); err != nil {
			t.Fatal(err)
		}
	}
	metrics(1280, 900, false, 1)
	if err := b.call(ctx, s, "Page.navigate", map[string]any{"url": url}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.waitEvent(ctx, s, "Page.loadEventFired", onEvent); err != nil {
		t.Fatal(err)
	}
	check := func(mode string) pageCheck {
		pc, err := evalCheck(ctx, b, s)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if wantFigures && (pc.Figures == 0 || pc.SVGs == 0) {
			problems = append(problems, fmt.Sprintf("%s: %d figures, %d svgs", mode, pc.Figures, pc.SVGs))
		}
		for _, x := range pc.Bad {
			problems = append(problems, mode+": "+x)
		}
		return pc
	}
	desk := check("desktop")
	if desk.Title == "" {
		problems = append(problems, "page has no title")
	}
	shot := func(name string, w, h float64) {
		var res struct {
			Data string `json:"data"`
		}
		if err := b.call(ctx, s, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
			"clip": map[string]any{"x": 0, "y": 0, "width": w, "height": h, "scale": 1}}, &res); err != nil {
			t.Fatal(err)
		}
		png, err := base64.StdEncoding.DecodeString(res.Data)
		if err != nil || len(png) == 0 {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(name, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shot(outBase+"-desktop.png", 1280, math.Min(desk.Height, 2400))

	metrics(390, 844, true, 2)
	phone := check("phone")
	if phone.ScrollWidth > phone.InnerWidth+1 {
		problems = append(problems, fmt.Sprintf("phone: the page is %g px wide in a %g px viewport (horizontal scrolling)", phone.ScrollWidth, phone.InnerWidth))
	}
	shot(outBase+"-phone.png", 390, math.Min(phone.Height, 2400))

	if err := b.call(ctx, s, "Emulation.setEmulatedMedia", map[string]any{"media": "print"}, nil); err != nil {
		t.Fatal(err)
	}
	metrics(794, 1123, false, 1) // A4 at 96 dpi
	check("print")
	var pdf struct {
		Data string `json:"data"`
	}
	if err := b.call(ctx, s, "Page.printToPDF", map[string]any{"printBackground": true, "preferCSSPageSize": true}, &pdf); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(pdf.Data)
	if err != nil || len(raw) < 1000 {
		problems = append(problems, fmt.Sprintf("print to PDF gave %d bytes (%v)", len(raw), err))
	} else if err := os.WriteFile(outBase+".pdf", raw, 0o644); err != nil {
		t.Fatal(err)
	}
	b.drain(300*time.Millisecond, onEvent)
	t.Logf("%d figures, %d svgs, %d rasters, page %g px tall at desktop width", desk.Figures, desk.SVGs, desk.Images, desk.Height)
	return problems
}

// sharedReports: a report of every zoo model and every fixture model of
// ../shared, made by the whole pipeline.
func sharedReports(t *testing.T) []report {
	var out []report
	t.Run("shared", func(t *testing.T) {
		shared := testref.SharedDir(t)
		dirs, _ := filepath.Glob(filepath.Join(shared, "reference", "zoo", "*", "hf"))
		for _, kind := range []string{"gguf", "safetensors", "lora"} {
			f, _ := filepath.Glob(filepath.Join(shared, "fixtures", kind, "*"))
			dirs = append(dirs, f...)
		}
		for _, dir := range dirs {
			rel, _ := filepath.Rel(shared, dir)
			d, err := pipelineReport(dir, rel)
			if err != nil {
				// not a model (a folder of vocabularies): nothing to report
				t.Logf("%s: no report: %v", rel, err)
				continue
			}
			name := "fixture-" + filepath.Base(dir)
			if filepath.Base(dir) == "hf" {
				name = "zoo-" + filepath.Base(filepath.Dir(dir))
			}
			out = append(out, report{name: name, data: d})
		}
	})
	return out
}

// badPages are pages that break every rule the check enforces; the test
// that loads them shows the check can fail.
var badPages = map[string]string{
	// with the report's kind of CSP: a blocked script, a blocked image, an
	// inline style the CSP refuses, an empty SVG, a raster that does not
	// decode and a word too wide for a phone
	"csp": `<!DOCTYPE html><html><head><meta charset="utf-8"/>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:"/><title>bad</title></head><body>
<script>console.log("script ran")</script>
<img src="http://192.0.2.1/x.png" alt=""/>
<p style="color:red">styled</p>
<figure><svg width="0" height="0" role="img" aria-label="empty"></svg><figcaption>empty figure</figcaption></figure>
<figure><svg width="10" height="10"><image href="data:image/png;base64,AAAA" width="10" height="10"/></svg><figcaption>bad raster</figcaption></figure>
<p>` + strings.Repeat("w", 300) + `</p></body></html>`,
	// without a CSP: a script that logs an error and throws, and a request
	// to the network
	"nocsp": `<!DOCTYPE html><html><head><meta charset="utf-8"/><title>bad</title></head><body>
<figure><svg width="10" height="10"></svg><figcaption>x</figcaption></figure>
<img src="http://192.0.2.1/x.png" alt=""/>
<script>console.error("an error"); throw new Error("thrown");</script></body></html>`,
}

func TestBrowserCatchesProblems(t *testing.T) {
	exe := chromiumPath()
	if exe == "" {
		t.Skip("no Chromium found: skipping")
	}
	dir := t.TempDir()
	b, err := startBrowser(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	want := map[string][]string{
		"csp":   {"Executing inline script violates", "Loading the image", "Applying inline style violates", "is 0×0", "raster does not decode", "horizontal scrolling"},
		"nocsp": {"console.error", "exception", "request to http://192.0.2.1/x.png"},
	}
	for name, html := range badPages {
		path := filepath.Join(dir, name+".html")
		if err := os.WriteFile(path, []byte(html), 0o644); err != nil {
			t.Fatal(err)
		}
		probs := strings.Join(checkInBrowser(t, b, path, filepath.Join(dir, name), true), "\n")
		for _, w := range want[name] {
			if !strings.Contains(probs, w) {
				t.Errorf("%s: the check did not report %q; it reported:\n%s", name, w, probs)
			}
		}
	}
}
