package cmd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportPage: qkv report writes one self-contained page with every
// section asked for, prints the verdict and what it wrote, and --json
// says the same for scripts.
func TestReportPage(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.html")
	model := filepath.Join("..", "testdata", "gguf", "tiny-llama-v3-f32.gguf")
	code, stdout, errs := runQKV(80, "report", model, "-o", out, "--tokens", "1,5,9,12,7", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{`<section id="summary">`, `<section id="findings">`, `id="composition"`, `<section id="attention">`,
		"Q-composition (ln_folded)", "Layer 3 attention patterns, 8 heads.", "Power-law exponent α by layer", "Written by qkv "} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", `src="http`, `href="http`, "@import", "url("} {
		if strings.Contains(strings.ToLower(html), bad) {
			t.Errorf("page holds %q: not self-contained", bad)
		}
	}
	var doc struct {
		Schema   string `json:"schema"`
		Out      string `json:"out"`
		Bytes    int64  `json:"bytes"`
		Sections struct {
			Layers      int      `json:"layers"`
			Spectra     int      `json:"spectra"`
			ESDFits     int      `json:"esd_fits"`
			HeadMaps    int      `json:"head_maps"`
			Composition []string `json:"composition"`
			Attention   []int    `json:"attention_layers"`
		} `json:"sections"`
		Findings []struct {
			Kind string `json:"kind"`
		} `json:"findings"`
		Source struct {
			Input string `json:"input"`
		} `json:"source"`
		QKV struct {
			Version string `json:"version"`
		} `json:"qkv"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	s := doc.Sections
	if doc.Schema != "qkv.report/v1" || doc.Out != out || doc.Bytes != int64(len(page)) || s.Layers != 4 || s.Spectra != 16 || s.ESDFits != 16 ||
		s.HeadMaps == 0 || strings.Join(s.Composition, ",") != "raw,ln_folded" || len(s.Attention) != 4 || len(doc.Findings) != 4 ||
		doc.Source.Input != model || doc.QKV.Version == "" {
		t.Errorf("--json: %+v", doc)
	}

	// -o -: the page on stdout, the summary on stderr.
	code, stdout, errs = runQKV(80, "report", filepath.Join("..", "testdata", "tiny-llama"), "-o", "-", "--circuits", "off")
	if code != 0 || !strings.HasPrefix(stdout, "<!DOCTYPE html>") || !strings.Contains(errs, "Wrote standard output (") ||
		!strings.Contains(errs, "Note: Composition scores not computed (--circuits off).") {
		t.Errorf("-o -: exit %d, stdout %.60q, stderr %s", code, stdout, errs)
	}
	if strings.Contains(stdout, `id="composition"`) {
		t.Error("--circuits off: the page has a composition section")
	}
}

// TestReportUsage: flags are checked before any work (exit 2); a --text
// the checkpoint cannot tokenize is an input error (exit 3).
func TestReportUsage(t *testing.T) {
	model := filepath.Join("..", "testdata", "tiny-llama")
	out := filepath.Join(t.TempDir(), "r.html")
	// Refusals to write the input's files are tried on a copy: a failure
	// must not harm the project's testdata.
	scratch := copyModel(t, model)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"report", model}, 2, "-o FILE"},
		{[]string{"report", model, "-o", out, "--circuits", "maybe"}, 2, "--circuits"},
		{[]string{"report", model, "-o", out, "--text", "hi", "--tokens", "1,2"}, 2, "one input"},
		{[]string{"report", model, "-o", out, "--attn-layers", "0"}, 2, "--attn-layers"},
		{[]string{"report", model, "-o", out, "--tokens", "1,x"}, 2, "--tokens"},
		{[]string{"report", model, "-o", out, "--tokens", "1,2", "--attn-layers", "7"}, 2, "no layer 7"},
		{[]string{"report", model, "-o", t.TempDir()}, 2, "is a folder"},
		{[]string{"report", scratch, "-o", filepath.Join(scratch, "config.json")}, 2, "input's files"},
		{[]string{"report", scratch, "-o", filepath.Join(scratch, "model.safetensors")}, 2, "input's files"},
		{[]string{"report", model, "-o", out, "--text", "hello"}, 3, "tokenizer"},
	} {
		code, _, errs := runQKV(80, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("qkv %s: exit %d (want %d), stderr %q (want %q)", strings.Join(c.args, " "), code, c.code, errs, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was written by a refused run", out)
	}
}

// copyModel copies a model folder's files into a temporary folder.
func copyModel(t *testing.T, dir string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}
