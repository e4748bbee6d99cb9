package esd_test

import (
	"math"
	"math/rand"
	"testing"
	"time"

	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/inspect/esd"
)

// benchMatrix is a seeded n×n matrix: standard normal entries (a
// Marchenko–Pastur bulk) or Student-t with 3 degrees of freedom (a heavy
// tail, the case WeightWatcher is for).
func benchMatrix(n int, heavy bool) []float32 {
	r := rand.New(rand.NewSource(20261206))
	a := make([]float32, n*n)
	for i := range a {
		v := r.NormFloat64()
		if heavy {
			var c float64
			for range 3 {
				z := r.NormFloat64()
				c += z * z
			}
			v /= math.Sqrt(c / 3)
		}
		a[i] = float32(v)
	}
	return a
}

// benchESD measures, side by side in each iteration, the spectrum of a
// 4096×4096 matrix (inspect.SingularValues, the route `qkv inspect` takes)
// and the heavy-tail metrics computed from it, and reports the ratio.
func benchESD(b *testing.B, heavy bool) {
	const n = 4096
	a := benchMatrix(n, heavy)
	var spec, fit time.Duration
	var r *esd.Result
	for b.Loop() {
		t0 := time.Now()
		sv, _ := inspect.SingularValues(a, n, n)
		t1 := time.Now()
		var err error
		r, err = esd.Analyze(sv, n, n, esd.Options{})
		t2 := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		spec += t1.Sub(t0)
		fit += t2.Sub(t1)
	}
	b.ReportMetric(spec.Seconds()/float64(b.N), "spectrum-s/op")
	b.ReportMetric(fit.Seconds()*1e3/float64(b.N), "esd-ms/op")
	b.ReportMetric(100*fit.Seconds()/spec.Seconds(), "esd-%-of-spectrum")
	if r.Status == esd.StatusSuccess {
		b.Logf("α %.4g, D %.3g, xmin_index %d of %d fitted", *r.Alpha, *r.D, *r.XminIndex, r.NumEvalsFitted)
	}
}

func BenchmarkESD4096Gaussian(b *testing.B) { benchESD(b, false) }
func BenchmarkESD4096StudentT(b *testing.B) { benchESD(b, true) }

// BenchmarkFitOnly times the metrics alone on a Pareto spectrum of 4096
// eigenvalues (no matrix), the fit's own worst case among common shapes.
func BenchmarkFitOnly4096(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	sv := make([]float64, 4096)
	for i := range sv {
		sv[i] = math.Sqrt(0.05 * math.Pow(1-r.Float64(), -1/1.5))
	}
	for b.Loop() {
		if _, err := esd.Analyze(sv, 4096, 4096, esd.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
