package check

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
)

// gateMatrices are matrices whose spectra are hard for a short Krylov
// space, and easy ones: Gaussian noise (a flat top of the spectrum), a
// repeated top singular value, a decaying spectrum as trained weights
// have, and one rank-one spike over noise.
func gateMatrices() map[string]formats.Matrix {
	r := rand.New(rand.NewPCG(15, 17))
	gauss := func(m, n int) formats.Matrix {
		w := formats.NewMatrix(m, n)
		for i := range w.Data {
			w.Data[i] = float32(0.02 * r.NormFloat64())
		}
		return w
	}
	out := map[string]formats.Matrix{"gaussian 512×768": gauss(512, 768), "gaussian 1024×256": gauss(1024, 256)}
	// Decaying: columns scaled by 1/(1+j/8).
	dec := gauss(600, 400)
	for i := 0; i < dec.Rows; i++ {
		for j := range dec.Row(i) {
			dec.Row(i)[j] *= float32(1 / (1 + float64(j)/8))
		}
	}
	out["decaying 600×400"] = dec
	// Repeated top value: two orthogonal rank-one spikes of equal size.
	rep := gauss(400, 400)
	for i := 0; i < 400; i++ {
		rep.Row(i)[i%7] += 0.5 * float32(math.Cos(float64(i)))
		rep.Row(i)[7+i%5] += 0.5 * float32(math.Sin(float64(i)))
	}
	out["repeated 400×400"] = rep
	spike := gauss(512, 512)
	for i := 0; i < 512; i++ {
		for j := 0; j < 512; j++ {
			spike.Row(i)[j] += float32(0.01 * math.Sin(float64(i)) * math.Cos(float64(j)))
		}
	}
	out["spike 512×512"] = spike
	return out
}

// TestGateBoundsBracketExact: the spectral norm bounds of the gate's block
// Lanczos contain the exact spectral norm (the full SVD's, as qkv inspect
// computes it), and the Frobenius norm and max |w| are inspect's.
func TestGateBoundsBracketExact(t *testing.T) {
	a := &analyzer{th: inspect.DefaultThresholds}
	for name, w := range gateMatrices() {
		got := a.matrixStats(w, "q")
		want := inspect.MatrixStats(w, inspect.StatsOptions{})
		b := got.SpectralNormBounds
		if b == nil {
			t.Fatalf("%s: no bounds (method %q)", name, got.Method)
		}
		s := float64(want.SpectralNorm)
		if !(float64(b[0]) <= s*(1+1e-12) && s <= float64(b[1])*(1+1e-12)) {
			t.Errorf("%s: exact spectral norm %.8g outside the bounds [%.8g, %.8g]", name, s, float64(b[0]), float64(b[1]))
		}
		if float64(got.SpectralNorm) != float64(b[0]) {
			t.Errorf("%s: spectral norm %g is not the lower bound %g", name, float64(got.SpectralNorm), float64(b[0]))
		}
		if rel := math.Abs(float64(got.Fro-want.Fro)) / float64(want.Fro); rel > 1e-12 || got.MaxAbs != want.MaxAbs {
			t.Errorf("%s: fro %v max %v, inspect's %v %v", name, got.Fro, got.MaxAbs, want.Fro, want.MaxAbs)
		}
		t.Logf("%s: %.6g in [%.6g, %.6g] (width %.2g%%)", name, s, float64(b[0]), float64(b[1]), 100*float64(b[1]-b[0])/s)
	}
}

// TestGateExactWhereBoundsRuleFalls: a bounds rule whose end falls between
// the Lanczos bounds gets the exact value; one clear of them does not.
func TestGateExactWhereBoundsRuleFalls(t *testing.T) {
	w := gateMatrices()["gaussian 512×768"]
	est := (&analyzer{}).matrixStats(w, "q")
	mid := float64(est.SpectralNormBounds[0]+est.SpectralNormBounds[1]) / 2
	far := 10 * float64(est.SpectralNormBounds[1])
	for _, c := range []struct {
		end   float64
		exact bool
	}{{mid, true}, {far, false}} {
		a := &analyzer{bounds: map[string]Bounds{"q": {SpectralNorm: &Range{nil, &c.end}}}}
		got := a.matrixStats(w, "q")
		if (got.SpectralNormBounds == nil) != c.exact {
			t.Errorf("bound %g: exact %v, want %v", c.end, got.SpectralNormBounds == nil, c.exact)
		}
	}
}
