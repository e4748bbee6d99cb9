package cmd

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportCircuitsAuto: with --circuits auto, composition scores whose
// estimate exceeds the limit are left out, said on stderr and in the page;
// --circuits on computes them whatever the estimate.
func TestReportCircuitsAuto(t *testing.T) {
	saved := reportCircuitsAuto
	reportCircuitsAuto = -1 // every estimate is over
	defer func() { reportCircuitsAuto = saved }()
	model := filepath.Join("..", "testdata", "tiny-llama")
	for _, mode := range []string{"auto", "on"} {
		out := filepath.Join(t.TempDir(), "r.html")
		var o, e bytes.Buffer
		code := Run(context.Background(), []string{"report", model, "-o", out, "--circuits", mode}, &Streams{In: strings.NewReader(""), Out: &o, Err: &e, Width: 80})
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", mode, code, e.String())
		}
		page, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		skipped := strings.Contains(e.String(), "composition scores left out") && strings.Contains(string(page), "composition scores left out")
		has := strings.Contains(string(page), `id="composition"`)
		if mode == "auto" && (!skipped || has) || mode == "on" && (skipped || !has) {
			t.Errorf("--circuits %s: skipped %v, composition in the page %v; stderr %s", mode, skipped, has, e.String())
		}
	}
}
