package esd_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/inspect/esd"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestInspectSpectrum: the singular values `qkv inspect` computes
// (inspect.SingularValues: the Gram route where it is accurate enough) give
// the reference's fit on every matrix — same xmin index, α to 1e-6.
func TestInspectSpectrum(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference")
	type fit struct {
		XminIndex *int     `json:"xmin_index"`
		Alpha     *float64 `json:"alpha"`
		Status    string   `json:"status"`
	}
	check := func(name string, w testref.Tensor, want fit) {
		sv, method := inspect.SingularValues(w.F32(), w.Shape[0], w.Shape[1])
		r, err := esd.Analyze(sv, w.Shape[0], w.Shape[1], esd.Options{})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if r.Status != want.Status {
			t.Errorf("%s (%s): status %s, want %s", name, method, r.Status, want.Status)
			return
		}
		if r.Status != esd.StatusSuccess {
			return
		}
		if *r.XminIndex != *want.XminIndex || math.Abs(*r.Alpha-*want.Alpha) > 1e-6*math.Abs(*want.Alpha) {
			t.Errorf("%s (%s): xmin_index %d α %.10g, want %d α %.10g", name, method, *r.XminIndex, *r.Alpha, *want.XminIndex, *want.Alpha)
		}
	}
	archs, _ := filepath.Glob(filepath.Join(dir, "analysis", "*", "heavytail.json"))
	for _, p := range archs {
		var doc struct {
			Source   string         `json:"source"`
			Matrices map[string]fit `json:"matrices"`
		}
		if err := testref.ReadJSON(p, &doc); err != nil {
			t.Fatal(err)
		}
		ts, err := testref.ReadSafetensors(filepath.Join(dir, strings.TrimPrefix(doc.Source, "reference/")))
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range doc.Matrices {
			check(p+" "+name, ts[name], want)
		}
	}
	mats, _ := filepath.Glob(filepath.Join(dir, "analysis", "matrices", "*.heavytail.json"))
	for _, p := range mats {
		var want fit
		if err := testref.ReadJSON(p, &want); err != nil {
			t.Fatal(err)
		}
		ts, err := testref.ReadSafetensors(strings.TrimSuffix(p, ".heavytail.json") + ".safetensors")
		if err != nil {
			t.Fatal(err)
		}
		check(p, ts["weight"], want)
	}
	if len(archs) == 0 || len(mats) == 0 {
		t.Fatalf("no reference files under %s", dir)
	}
}
