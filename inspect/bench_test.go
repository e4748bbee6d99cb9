package inspect

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

// benchMatrix returns the m×n benchmark matrix: the one numpy_svd.py wrote
// to $QKV_BENCH_DIR (with numpy's float64 singular values), else a seeded
// standard normal one (and nil singular values).
func benchMatrix(tb testing.TB, m, n int) (formats.Matrix, []float64) {
	if dir := os.Getenv("QKV_BENCH_DIR"); dir != "" {
		a, errA := os.ReadFile(filepath.Join(dir, fmt.Sprintf("a_%dx%d.f32", m, n)))
		s, errS := os.ReadFile(filepath.Join(dir, fmt.Sprintf("sv_%dx%d.f64", m, n)))
		if errA == nil && errS == nil && len(a) == 4*m*n && len(s) == 8*min(m, n) {
			w := formats.NewMatrix(m, n)
			for i := range w.Data {
				w.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(a[4*i:]))
			}
			sv := make([]float64, min(m, n))
			for i := range sv {
				sv[i] = math.Float64frombits(binary.LittleEndian.Uint64(s[8*i:]))
			}
			return w, sv
		}
		tb.Logf("no numpy files for %dx%d in %s: using a Go-generated matrix", m, n, dir)
	}
	r := rand.New(rand.NewSource(20261128))
	w := formats.NewMatrix(m, n)
	for i := range w.Data {
		w.Data[i] = float32(r.NormFloat64())
	}
	return w, nil
}

func benchSpectrum(b *testing.B, m, n int, fast bool) {
	w, _ := benchMatrix(b, m, n)
	b.ResetTimer()
	var s Stats
	c0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		s = MatrixStats(w, StatsOptions{Fast: fast})
	}
	b.ReportMetric((cpuSeconds()-c0)/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(s.SpectralNorm), "sv0")
	b.Logf("%dx%d fast=%v: method %s, eff.rank %.6g", m, n, fast, s.Method, float64(s.EffectiveRank))
}

func BenchmarkSpectrum4096(b *testing.B)          { benchSpectrum(b, 4096, 4096, false) }
func BenchmarkSpectrum1024x4096(b *testing.B)     { benchSpectrum(b, 1024, 4096, false) }
func BenchmarkSpectrumFast4096(b *testing.B)      { benchSpectrum(b, 4096, 4096, true) }
func BenchmarkSpectrumFast1024x4096(b *testing.B) { benchSpectrum(b, 1024, 4096, true) }

// TestBenchAgreement compares the benchmark spectra with numpy's float64
// ones (only when $QKV_BENCH_DIR holds them: see testdata/bench/run.sh).
func TestBenchAgreement(t *testing.T) {
	if os.Getenv("QKV_BENCH_DIR") == "" {
		t.Skip("QKV_BENCH_DIR not set: see testdata/bench/run.sh")
	}
	for _, sh := range [][2]int{{1024, 4096}, {4096, 4096}} {
		w, want := benchMatrix(t, sh[0], sh[1])
		if want == nil {
			continue
		}
		t0 := time.Now()
		sv, method := SingularValues(w.Data, w.Rows, w.Cols)
		dt := time.Since(t0)
		worst, at := 0.0, 0
		for i := range want {
			if d := relDiff(sv[i], want[i]); d > worst {
				worst, at = d, i
			}
		}
		t.Logf("%dx%d: %s in %v, max rel diff vs numpy %.2g at sv[%d]", sh[0], sh[1], method, dt, worst, at)
		if worst > 1e-5 {
			t.Errorf("%dx%d: sv[%d] = %.17g, numpy %.17g", sh[0], sh[1], at, sv[at], want[at])
		}
	}
}

// loraBenchFactors returns the factors of the shared MLX adapter's largest
// update, layer 31's q_proj (ΔW [4096, 4096], rank 8), in PEFT's
// orientation.
func loraBenchFactors(b *testing.B) (a, bb formats.Matrix) {
	dir := filepath.Join(testref.SharedDir(b), "fixtures", "lora", "mlx-llama3-8b-discollama")
	tensors, err := testref.ReadSafetensors(filepath.Join(dir, "adapters.safetensors"))
	if err != nil {
		b.Fatal(err)
	}
	return loraFactors(b, tensors, "model.layers.31.self_attn.q_proj.lora_a", "model.layers.31.self_attn.q_proj.lora_b", true)
}

// The LoRA benchmarks run side by side (go test -bench LoRA ./inspect):
// the spectrum and the statistics of ΔW from its factors, against
// materialising ΔW and computing its statistics as a dense matrix.
func BenchmarkLoRASpectrumFactors(b *testing.B) {
	a, bb := loraBenchFactors(b)
	c0 := cpuSeconds()
	for b.Loop() {
		if _, err := LoRASingularValues(a, bb, 4); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuSeconds()-c0)/float64(b.N), "cpu-s/op")
}

// BenchmarkLoRASpectrumMaterialised is the spectrum alone of the formed
// ΔW, as MatrixStats computes it (the Gram route with its approximate
// tail); forming ΔW is not timed.
func BenchmarkLoRASpectrumMaterialised(b *testing.B) {
	a, bb := loraBenchFactors(b)
	dw, err := LoRADelta(a, bb, 4)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	c0 := cpuSeconds()
	for b.Loop() {
		singularValues(dw.Data, dw.Rows, dw.Cols, true, 0)
	}
	b.ReportMetric((cpuSeconds()-c0)/float64(b.N), "cpu-s/op")
}

func BenchmarkLoRAStatsFactors(b *testing.B) {
	a, bb := loraBenchFactors(b)
	c0 := cpuSeconds()
	for b.Loop() {
		if _, err := LoRAStats(a, bb, 4, StatsOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuSeconds()-c0)/float64(b.N), "cpu-s/op")
}

func BenchmarkLoRAStatsMaterialised(b *testing.B) {
	a, bb := loraBenchFactors(b)
	c0 := cpuSeconds()
	for b.Loop() {
		dw, err := LoRADelta(a, bb, 4)
		if err != nil {
			b.Fatal(err)
		}
		MatrixStats(dw, StatsOptions{})
	}
	b.ReportMetric((cpuSeconds()-c0)/float64(b.N), "cpu-s/op")
}
