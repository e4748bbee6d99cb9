package diff

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

func TestMatricesKnownValues(t *testing.T) {
	a := formats.Matrix{Rows: 2, Cols: 2, Data: []float32{3, 0, 0, 4}}
	cases := []struct {
		name                string
		b                   []float32
		relFro, snr, cosine float64
		identical           bool
	}{
		{"identical", []float32{3, 0, 0, 4}, 0, math.NaN(), 1, true},
		// ‖A‖ = 5, ‖A−B‖ = 0.5: rel 0.1, SNR 20 dB.
		{"one entry off", []float32{3, 0.5, 0, 4}, 0.1, 20, 25 / (5 * math.Sqrt(25.25)), false},
		{"negated", []float32{-3, 0, 0, -4}, 2, 10 * math.Log10(25.0/100), -1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Matrices(a, formats.Matrix{Rows: 2, Cols: 2, Data: c.b}, false)
			if d.Identical != c.identical {
				t.Errorf("identical = %v", d.Identical)
			}
			check := func(what string, got, want float64) {
				if math.IsNaN(want) != math.IsNaN(got) || (!math.IsNaN(want) && math.Abs(got-want) > 1e-12*math.Max(1, math.Abs(want))) {
					t.Errorf("%s = %v, want %v", what, got, want)
				}
			}
			check("rel_fro", float64(d.RelFro), c.relFro)
			check("snr_db", float64(d.SNRdB), c.snr)
			check("cosine", float64(d.Cosine), c.cosine)
		})
	}
}

func TestMatricesShapeMismatchAndNaN(t *testing.T) {
	a := formats.Matrix{Rows: 1, Cols: 2, Data: []float32{1, 2}}
	if d := Matrices(a, formats.Matrix{Rows: 2, Cols: 1, Data: []float32{1, 2}}, false); !strings.Contains(d.Error, "shapes differ") {
		t.Errorf("mismatched shapes: error %q", d.Error)
	}
	if d := Matrices(a, formats.Matrix{Rows: 1, Cols: 2, Data: []float32{1, float32(math.NaN())}}, false); !d.NonFinite || d.RelFro.Valid() {
		t.Errorf("NaN input: %+v", d)
	}
}

// A rank-2 update of a full-rank matrix shows as a low delta_effective_rank.
func TestLowRankUpdateShows(t *testing.T) {
	const n = 32
	a := formats.NewMatrix(n, n)
	b := formats.NewMatrix(n, n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			v := float32(math.Sin(float64(i*n+j)) * 0.1)
			a.Data[i*n+j] = v
			b.Data[i*n+j] = v + 0.01*float32(i+1)*float32(j%3) + 0.005*float32(n-i)*float32(j%2)
		}
	}
	d := Matrices(a, b, false)
	if !(d.DeltaEffectiveRank > 1 && d.DeltaEffectiveRank < 2.5) {
		t.Errorf("delta_effective_rank = %v, want about 2", d.DeltaEffectiveRank)
	}
}

// The zoo's GGUF conversions against the Hugging Face checkpoint: relative
// error and SNR match what the expected projection files give (computed here
// in float64 straight from the reference files), and an f32 GGUF is
// identical everywhere.
func TestZooAgainstReference(t *testing.T) {
	zoo := filepath.Join(testref.SharedDir(t), "reference", "zoo")
	archs, err := os.ReadDir(zoo)
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range archs {
		if !arch.IsDir() {
			continue
		}
		dir := filepath.Join(zoo, arch.Name())
		ggufs, _ := filepath.Glob(filepath.Join(dir, "gguf", "*.gguf"))
		for _, g := range ggufs {
			base := strings.TrimSuffix(filepath.Base(g), ".gguf")
			if strings.Contains(base, "-split-") && !strings.HasSuffix(base, "00001-of-00003") {
				continue
			}
			expName := base
			if i := strings.Index(base, "-split-"); i >= 0 {
				expName = base[:i] + "-split"
			}
			t.Run(arch.Name()+"/"+base, func(t *testing.T) {
				want, err := testref.ReadSafetensors(filepath.Join(dir, "expected", expName+".projections.safetensors"))
				if err != nil {
					t.Skipf("no expected projections: %v", err)
				}
				ref, err := testref.ReadSafetensors(filepath.Join(dir, "expected", "projections.safetensors"))
				if err != nil {
					t.Fatal(err)
				}
				ma, ca := open(t, filepath.Join(dir, "hf"))
				defer ca.Close()
				mb, cb := open(t, g)
				defer cb.Close()
				rep, err := Compare(context.Background(), ma, mb, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if len(rep.OnlyInA)+len(rep.OnlyInB) != 0 {
					t.Errorf("only in A %v, only in B %v", rep.OnlyInA, rep.OnlyInB)
				}
				for _, l := range rep.Layers {
					for _, p := range formats.Projections {
						d := l.Get(p)
						name := fmt.Sprintf("layers.%d.%s", l.Index, p)
						if d == nil {
							t.Errorf("%s: not compared", name)
							continue
						}
						av, bv := ref[name].F64, want[name].F64
						var aa, dd float64
						for i := range av {
							aa += av[i] * av[i]
							dd += (bv[i] - av[i]) * (bv[i] - av[i])
						}
						rel := math.Sqrt(dd) / math.Sqrt(aa)
						if dd == 0 {
							if !d.Identical || d.RelFro != 0 {
								t.Errorf("%s: want identical, got rel_fro %v", name, d.RelFro)
							}
							continue
						}
						snr := 10 * math.Log10(aa/dd)
						if math.Abs(float64(d.RelFro)-rel) > 1e-6*rel {
							t.Errorf("%s: rel_fro %v, reference %v", name, d.RelFro, rel)
						}
						if math.Abs(float64(d.SNRdB)-snr) > 1e-6*math.Abs(snr) {
							t.Errorf("%s: snr_db %v, reference %v", name, d.SNRdB, snr)
						}
					}
				}
				if strings.Contains(base, "f32") && rep.Summary.Identical != rep.Summary.Compared {
					t.Errorf("f32 GGUF: %d of %d projections identical", rep.Summary.Identical, rep.Summary.Compared)
				}
			})
		}
	}
}

func open(t *testing.T, path string) (*formats.Model, *formats.Checkpoint) {
	t.Helper()
	c, err := formats.Open(path, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := formats.FindModel(c, formats.FindOptions{})
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	return m, c
}

// Metrics from approximate spectra are named in Approximate: all three
// spectral ones in fast mode (a matrix above fast mode's size), none when
// the spectra are exact.
func TestApproximateMetricsNamed(t *testing.T) {
	const n = 200
	a, b := formats.NewMatrix(n, n), formats.NewMatrix(n, n)
	for i := range a.Data {
		a.Data[i] = float32(math.Sin(float64(i)))
		b.Data[i] = a.Data[i] + float32(0.01*math.Cos(float64(3*i)))
	}
	if d := Matrices(a, b, true); fmt.Sprint(d.Approximate) != "[spectral_norm_change effective_rank_change delta_effective_rank]" {
		t.Errorf("fast: approximate %v", d.Approximate)
	}
	if d := Matrices(a, b, false); d.Approximate != nil {
		t.Errorf("exact: approximate %v", d.Approximate)
	}
}
