package cmd_test

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// heavyRef is one matrix of reference/analysis/<arch>/heavytail.json.
type heavyRef struct {
	Status      string   `json:"status"`
	Alpha       *float64 `json:"alpha"`
	D           *float64 `json:"D"`
	XminIndex   *int     `json:"xmin_index"`
	NumPLSpikes *int     `json:"num_pl_spikes"`
	MatrixRank  int      `json:"matrix_rank"`
	Warning     *string  `json:"warning"`
}

// TestInspectESDReference runs qkv inspect --esd --json on every zoo
// model's Hugging Face folder and compares each matrix's fit with
// reference/analysis/<arch>/heavytail.json: the same status, xmin_index,
// num_pl_spikes, matrix_rank and warning; α within 1e-6 relative, D within
// 1e-6 absolute.
func TestInspectESDReference(t *testing.T) {
	shared := testref.SharedDir(t)
	refs, err := filepath.Glob(filepath.Join(shared, "reference", "analysis", "*", "heavytail.json"))
	if err != nil || len(refs) == 0 {
		t.Fatalf("no reference/analysis/*/heavytail.json in %s", shared)
	}
	for _, refPath := range refs {
		arch := filepath.Base(filepath.Dir(refPath))
		t.Run(arch, func(t *testing.T) {
			var ref struct {
				Matrices map[string]heavyRef `json:"matrices"`
			}
			if err := testref.ReadJSON(refPath, &ref); err != nil {
				t.Fatal(err)
			}
			code, out, errs := runQKV(80, "inspect", filepath.Join(shared, "reference", "zoo", arch, "hf"), "--esd", "--json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			var rep struct {
				Layers []map[string]json.RawMessage `json:"layers"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			worst, n := 0.0, 0
			for name, want := range ref.Matrices {
				var li int
				var p string
				if _, err := fmt.Sscanf(strings.Replace(name, ".", " ", -1), "layers %d %s", &li, &p); err != nil || li >= len(rep.Layers) {
					t.Fatalf("reference matrix %q", name)
				}
				var m struct {
					ESD *heavyRef `json:"esd"`
				}
				if err := json.Unmarshal(rep.Layers[li][p], &m); err != nil || m.ESD == nil {
					t.Fatalf("%s: no esd object (%v)", name, err)
				}
				got := m.ESD
				if got.Status != want.Status || got.MatrixRank != want.MatrixRank {
					t.Errorf("%s: status %s rank %d, reference %s %d", name, got.Status, got.MatrixRank, want.Status, want.MatrixRank)
					continue
				}
				if want.Status != "success" {
					if got.Alpha != nil {
						t.Errorf("%s: failed fit has α %v", name, *got.Alpha)
					}
					continue
				}
				if *got.XminIndex != *want.XminIndex || *got.NumPLSpikes != *want.NumPLSpikes || *got.Warning != *want.Warning {
					t.Errorf("%s: xmin_index %d, spikes %d, warning %q; reference %d, %d, %q", name, *got.XminIndex, *got.NumPLSpikes, *got.Warning,
						*want.XminIndex, *want.NumPLSpikes, *want.Warning)
					continue
				}
				e := math.Abs(*got.Alpha-*want.Alpha) / *want.Alpha
				if !(e <= 1e-6) || !(math.Abs(*got.D-*want.D) <= 1e-6) {
					t.Errorf("%s: α %v D %v, reference %v %v", name, *got.Alpha, *got.D, *want.Alpha, *want.D)
				}
				worst = max(worst, e)
				n++
			}
			t.Logf("%s: %d fits, worst α relative error %.2g", arch, n, worst)
		})
	}
}

// TestInspectJSONProvenance: the document names its checkpoint and qkv
// build, and every head object its KV head.
func TestInspectJSONProvenance(t *testing.T) {
	model := filepath.Join("..", "testdata", "tiny-llama")
	code, out, errs := runQKV(80, "inspect", model, "--json", "--heads", "--layers", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep struct {
		Source *struct {
			Input string `json:"input"`
			Files []struct {
				Name string `json:"name"`
			} `json:"files"`
		} `json:"source"`
		QKV *struct {
			Version string `json:"version"`
		} `json:"qkv"`
		Layers []map[string]json.RawMessage `json:"layers"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Source == nil || rep.Source.Input != model || len(rep.Source.Files) != 1 || rep.QKV == nil || rep.QKV.Version == "" {
		t.Fatalf("provenance: %+v %+v", rep.Source, rep.QKV)
	}
	for _, p := range []string{"q", "k", "v", "o"} {
		var m struct {
			Heads []struct {
				Head   int  `json:"head"`
				KVHead *int `json:"kv_head"`
			} `json:"heads"`
		}
		if err := json.Unmarshal(rep.Layers[0][p], &m); err != nil {
			t.Fatal(err)
		}
		heads := m.Heads
		if len(heads) == 0 {
			t.Fatalf("%s: no heads", p)
		}
		for _, h := range heads {
			want := h.Head // k, v: the block is a KV head
			if p == "q" || p == "o" {
				want = h.Head / 4 // 8 heads, 2 KV heads
			}
			if h.KVHead == nil || *h.KVHead != want {
				t.Errorf("%s head %d: kv_head %v, want %d", p, h.Head, h.KVHead, want)
			}
		}
	}
}
