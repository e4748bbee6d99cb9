package cmd_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type inspectFindingsJSON struct {
	Layers []struct {
		Index int `json:"index"`
	} `json:"layers"`
	Findings []struct {
		Kind    string `json:"kind"`
		Layer   int    `json:"layer"`
		Matrix  string `json:"matrix"`
		Message string `json:"message"`
	} `json:"findings"`
}

// TestInspectLayersContext: inspect --layers L reports, for every layer L,
// exactly the findings the whole run reports for L (the cross-layer ones
// included: tiny-llama's layer 3 W_O is an outlier only against the other
// layers), says which layers it shows, and how the others were used.
func TestInspectLayersContext(t *testing.T) {
	model := filepath.Join("..", "testdata", "tiny-llama")
	run := func(args ...string) inspectFindingsJSON {
		t.Helper()
		code, out, errs := runQKV(80, append([]string{"inspect", model, "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
		var r inspectFindingsJSON
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	key := func(kind string, layer int, matrix, msg string) string {
		return fmt.Sprintf("%s %d %s: %s", kind, layer, matrix, msg)
	}
	full := run()
	for layer := range 4 {
		var want, got []string
		for _, f := range full.Findings {
			if f.Layer == layer {
				want = append(want, key(f.Kind, f.Layer, f.Matrix, f.Message))
			}
		}
		sub := run("--layers", fmt.Sprint(layer))
		for _, f := range sub.Findings {
			got = append(got, key(f.Kind, f.Layer, f.Matrix, f.Message))
		}
		if !slices.Equal(got, want) {
			t.Errorf("--layers %d: findings %q, the whole run's for that layer %q", layer, got, want)
		}
		if len(sub.Layers) != 1 || sub.Layers[0].Index != layer {
			t.Errorf("--layers %d: layers %+v", layer, sub.Layers)
		}
	}
	code, out, errs := runQKV(80, "inspect", model, "--layers", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	first := strings.SplitN(out, "\n", 2)[0]
	if !strings.Contains(first, "layer 3 of 4 shown") || !strings.Contains(out, "outlier_norm") || strings.Contains(out, "No findings") {
		t.Errorf("--layers 3:\n%s", out)
	}
	if !strings.Contains(out, "compare with all 4 layers") {
		t.Errorf("--layers 3 does not say the other layers were used:\n%s", out)
	}
}

// TestInspectVerdictFirst: the text opens with the one-line verdict, then
// the findings, then the tables.
func TestInspectVerdictFirst(t *testing.T) {
	code, out, errs := runQKV(80, "inspect", filepath.Join("..", "testdata", "tiny-llama"), "--heads")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	verdict := strings.Join(strings.Fields(strings.SplitN(out, "\n\n", 2)[0]), " ")
	if verdict != "llama — 4 layers, d_model 64, 8 heads (2 KV) × 8, full mode: 3 findings, worst: dead_head at layer 1 q head 3" {
		t.Errorf("verdict:\n%.300s", out)
	}
	fi, ti := strings.Index(out, "Findings (3)"), strings.Index(out, "W_Q")
	if fi < 0 || ti < 0 || fi > ti {
		t.Errorf("findings at %d, first table at %d", fi, ti)
	}
}

// TestInspectFormat: --format json is --json; markdown escapes markup
// from the checkpoint; nonsense is a usage error.
func TestInspectFormat(t *testing.T) {
	model := filepath.Join("..", "testdata", "tiny-llama")
	_, a, _ := runQKV(80, "inspect", model, "--json")
	_, b, _ := runQKV(80, "inspect", model, "--format", "json")
	if a != b || !strings.HasPrefix(a, "{") {
		t.Error("--format json differs from --json")
	}
	for _, args := range [][]string{{"--format", "html"}, {"--format", "markdown", "--json"}} {
		code, _, errs := runQKV(80, append([]string{"inspect", model}, args...)...)
		if code != 2 || !strings.Contains(errs, "--") {
			t.Errorf("%v: exit %d, %s", args, code, errs)
		}
	}
	code, md, errs := runQKV(80, "inspect", model, "--format", "markdown")
	if code != 0 || !strings.HasPrefix(md, "### qkv inspect: llama — 4 layers") || !strings.Contains(md, "| dead\\_head | layer 1 q head 3 |") {
		t.Errorf("markdown: exit %d %s\n%.600s", code, errs, md)
	}
}
