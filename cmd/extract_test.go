package cmd_test

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/formats/safetensors"
	"github.com/qkvdev/qkv/internal/testref"
)

// sameTensors asserts two reference reads hold the same names, shapes and
// values (bit for bit, NaN equal to NaN).
func sameTensors(t *testing.T, got, want map[string]testref.Tensor) {
	t.Helper()
	closeTensors(t, got, want, func(string) float64 { return 0 })
}

// closeTensors asserts two reference reads hold the same names and shapes,
// and values within tol(name) absolute (0: bit for bit, NaN equal to NaN).
func closeTensors(t *testing.T, got, want map[string]testref.Tensor, tol func(name string) float64) {
	t.Helper()
	if g, w := strings.Join(testref.Names(got), " "), strings.Join(testref.Names(want), " "); g != w {
		t.Fatalf("tensors\n got %s\nwant %s", g, w)
	}
	for name, w := range want {
		g := got[name]
		if len(g.Shape) != len(w.Shape) {
			t.Errorf("%s: shape %v, want %v", name, g.Shape, w.Shape)
			continue
		}
		for i := range w.Shape {
			if g.Shape[i] != w.Shape[i] {
				t.Errorf("%s: shape %v, want %v", name, g.Shape, w.Shape)
			}
		}
		bad, worst, tl := 0, 0.0, tol(name)
		for i := range w.F64 {
			a, b := g.F64[i], w.F64[i]
			if tl > 0 {
				if d := math.Abs(a - b); !(d <= tl) {
					bad++
					worst = max(worst, d)
				}
				continue
			}
			if a != b && !(math.IsNaN(a) && math.IsNaN(b)) || math.Signbit(a) != math.Signbit(b) {
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d values differ (tolerance %g, worst %g)", name, bad, len(w.F64), tl, worst)
		}
	}
}

// extractJobs lists a reference folder's checkpoints and the projections
// each must extract to: hf/ (and hf-sharded/) to expected/projections,
// every GGUF to expected/<name>.projections.
func extractJobs(dir string) [][2]string {
	want := filepath.Join(dir, "expected", "projections.safetensors")
	if _, err := os.Stat(want); err != nil {
		return nil // an attention-only reference (llama-rope-scaling)
	}
	jobs := [][2]string{{filepath.Join(dir, "hf"), want}}
	if _, err := os.Stat(filepath.Join(dir, "hf-sharded")); err == nil {
		jobs = append(jobs, [2]string{filepath.Join(dir, "hf-sharded"), want})
	}
	ggufs, _ := filepath.Glob(filepath.Join(dir, "gguf", "*.gguf"))
	sort.Strings(ggufs)
	for _, g := range ggufs {
		base := strings.TrimSuffix(filepath.Base(g), ".gguf")
		if i := strings.Index(base, "-split-"); i >= 0 {
			base = base[:i] + "-split" // every part opens the whole set
		}
		jobs = append(jobs, [2]string{g, filepath.Join(dir, "expected", base+".projections.safetensors")})
	}
	return jobs
}

// TestExtractZoo: `qkv extract` of every zoo and zoo-modern model's hf/
// (and llama's hf-sharded/) equals expected/projections.safetensors, and of
// every GGUF equals expected/<name>.projections.safetensors, key for key:
// exactly, except the effective matrices of latent attention (q, k, k_nope,
// v where the file holds MLA factors), float32 products within 1e-6 of the
// float64 reference (deepseek_v3/README.md). The modern files add Q/K norm
// multipliers, sinks, biases and the MLA factors.
func TestExtractZoo(t *testing.T) {
	shared := testref.SharedDir(t)
	for _, set := range []string{"zoo", "zoo-modern"} {
		root := filepath.Join(shared, "reference", set)
		archs, _ := os.ReadDir(root)
		for _, a := range archs {
			if !a.IsDir() {
				continue
			}
			for _, j := range extractJobs(filepath.Join(root, a.Name())) {
				t.Run(set+"/"+a.Name()+"/"+filepath.Base(j[0]), func(t *testing.T) {
					out := filepath.Join(t.TempDir(), "p.safetensors")
					if code, _, errs := run("extract", j[0], "-o", out); code != cmd.ExitOK {
						t.Fatalf("exit %d: %s", code, errs)
					}
					got, err := testref.ReadSafetensors(out)
					if err != nil {
						t.Fatal(err)
					}
					want, err := testref.ReadSafetensors(j[1])
					if err != nil {
						t.Fatal(err)
					}
					mla := false
					for name := range want {
						mla = mla || strings.HasSuffix(name, ".kv_a")
					}
					closeTensors(t, got, want, func(name string) float64 {
						i := strings.LastIndexByte(name, '.')
						switch name[i+1:] {
						case "q", "k", "k_nope", "v":
							if mla {
								return 1e-6
							}
						}
						return 0
					})
				})
			}
		}
	}
}

func TestExtractSelection(t *testing.T) {
	out := filepath.Join(t.TempDir(), "p.safetensors")
	if code, _, errs := run("extract", "../testdata/tiny-llama", "-o", out, "--layers", "1-2", "--matrices", "q,o"); code != cmd.ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	got, err := testref.ReadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	if names := strings.Join(testref.Names(got), " "); names != "layers.1.o layers.1.q layers.2.o layers.2.q" {
		t.Errorf("extracted %s", names)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--layers", "7"}, cmd.ExitUsage, "the model has no layer 7"},
		{[]string{"--layers", "2-1"}, cmd.ExitUsage, "not a layer number or range"},
		{[]string{"--matrices", "q,x"}, cmd.ExitUsage, `"x" is not one of q, k, v, o`},
	} {
		code, _, errs := run(append([]string{"extract", "../testdata/tiny-llama", "-o", out}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, errs, c.code, c.msg)
		}
	}
}

// An architecture qkv does not know exits 3 with the tensor-name patterns and
// how to map them; with --map and --n-heads it extracts.
func TestExtractUnknownArchitectureWithMap(t *testing.T) {
	dir := t.TempDir()
	const d, layers = 8, 2
	var ts []safetensors.WriteTensor
	want := map[string][]float32{}
	for l := 0; l < layers; l++ {
		for k, p := range []string{"wq", "wk", "wv", "wo"} {
			vals := make([]float32, d*d)
			for i := range vals {
				vals[i] = float32(l*1000 + k*100 + i)
			}
			name := "blocks." + string(rune('0'+l)) + ".attn." + p + ".weight"
			ts = append(ts, safetensors.F32Tensor(name, []int64{d, d}, vals))
			want["layers."+string(rune('0'+l))+"."+string("qkvo"[k])] = vals
		}
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := safetensors.Write(f, ts, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	code, stdout, errs := run("layers", dir)
	if code != cmd.ExitInput || stdout != "" {
		t.Fatalf("unknown architecture: exit %d, stdout %q", code, stdout)
	}
	for _, s := range []string{"blocks.N.attn.wq.weight", "--map q=REGEX,k=REGEX,v=REGEX,o=REGEX", "--n-heads"} {
		if !strings.Contains(errs, s) {
			t.Errorf("guidance lacks %q: %s", s, errs)
		}
	}
	out := filepath.Join(t.TempDir(), "p.safetensors")
	code, _, errs = run("extract", dir, "-o", out, "--n-heads", "2",
		"--map", `q=blocks\.(\d+)\.attn\.wq\.weight,k=blocks\.(\d+)\.attn\.wk\.weight,v=blocks\.(\d+)\.attn\.wv\.weight,o=blocks\.(\d+)\.attn\.wo\.weight`)
	if code != cmd.ExitOK {
		t.Fatalf("with --map: exit %d: %s", code, errs)
	}
	got, err := testref.ReadSafetensors(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("extracted %v", testref.Names(got))
	}
	for name, w := range want {
		for i, v := range w {
			if float32(got[name].F64[i]) != v {
				t.Fatalf("%s[%d] = %v, want %v", name, i, got[name].F64[i], v)
			}
		}
	}
}
