package inspect

import (
	"math"
	"math/rand"
	"testing"
)

func TestGemmNT(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, c := range []struct{ m, n, k, tri int }{
		{1, 1, 1, triFull}, {7, 9, 5, triFull}, {13, 17, 300, triFull}, {100, 37, 513, triFull},
		{50, 50, 40, triLower}, {97, 97, 260, triLower}, {50, 50, 40, triUpper}, {103, 103, 7, triUpper},
	} {
		a := make([]float64, c.m*c.k)
		b := make([]float64, c.n*c.k)
		for i := range a {
			a[i] = r.NormFloat64()
		}
		for i := range b {
			b[i] = r.NormFloat64()
		}
		cm := make([]float64, c.m*c.n)
		for i := range cm {
			cm[i] = r.NormFloat64()
		}
		want := append([]float64(nil), cm...)
		for i := 0; i < c.m; i++ {
			for j := 0; j < c.n; j++ {
				var s float64
				for p := 0; p < c.k; p++ {
					s += a[i*c.k+p] * b[j*c.k+p]
				}
				want[i*c.n+j] += -0.5 * s
			}
		}
		gemmNT(c.m, c.n, c.k, -0.5, view[float64]{a, c.k, 1}, view[float64]{b, c.k, 1}, cm, c.n, c.tri)
		for i := 0; i < c.m; i++ {
			for j := 0; j < c.n; j++ {
				if c.tri == triLower && j > i || c.tri == triUpper && j < i {
					continue
				}
				if d := math.Abs(cm[i*c.n+j] - want[i*c.n+j]); d > 1e-12*float64(c.k) {
					t.Fatalf("%+v: C[%d,%d] = %g, want %g", c, i, j, cm[i*c.n+j], want[i*c.n+j])
				}
			}
		}
	}
}

func TestGramOf(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for _, sh := range [][2]int{{5, 9}, {9, 5}, {70, 33}, {33, 70}} {
		m, n := sh[0], sh[1]
		a := make([]float32, m*n)
		for i := range a {
			a[i] = float32(r.NormFloat64())
		}
		g, k := gramOf(a, m, n)
		for i := 0; i < k; i++ {
			for j := 0; j < k; j++ {
				var s float64
				if m <= n {
					for p := 0; p < n; p++ {
						s += float64(a[i*n+p]) * float64(a[j*n+p])
					}
				} else {
					for p := 0; p < m; p++ {
						s += float64(a[p*n+i]) * float64(a[p*n+j])
					}
				}
				if math.Abs(g[i*k+j]-s) > 1e-12*float64(max(m, n)) {
					t.Fatalf("%v: G[%d,%d] = %g, want %g", sh, i, j, g[i*k+j], s)
				}
			}
		}
	}
}

func TestDotAxpy(t *testing.T) {
	for _, n := range []int{0, 1, 3, 16, 17, 35, 100} {
		a, x, y := make([]float64, n), make([]float64, n), make([]float64, n)
		for i := range a {
			a[i], x[i], y[i] = float64(i+1), float64(2*i-3), float64(i%5)
		}
		var want float64
		for i := range a {
			want += a[i] * x[i]
		}
		got := dotAxpyF(a, x, y, 0.5)
		if got != want {
			t.Errorf("n %d: dot %g, want %g", n, got, want)
		}
		for i := range y {
			if y[i] != float64(i%5)+0.5*float64(i+1) {
				t.Errorf("n %d: y[%d] = %g", n, i, y[i])
			}
		}
	}
}

// The pure-Go kernels agree with the assembly ones.
func TestKernelsWithoutFMA(t *testing.T) {
	if !haveFMA {
		t.Skip("no FMA kernels on this CPU: the Go kernels are already the ones tested")
	}
	haveFMA = false
	defer func() { haveFMA = true }()
	TestGemmNT(t)
	TestGramOf(t)
	TestDotAxpy(t)
	TestSymEigenvaluesFast(t)
}

// Odd shapes on both sides of every route threshold agree with the direct
// SVD.
func TestShapesAgainstDirect(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	for _, sh := range [][2]int{{1, 1}, {1, 100}, {100, 1}, {2, 3}, {47, 48}, {48, 47}, {48, 48}, {49, 200}, {200, 49}, {130, 131}} {
		m, n := sh[0], sh[1]
		a := make([]float32, m*n)
		for i := range a {
			a[i] = float32(r.NormFloat64())
		}
		got, method := SingularValues(a, m, n)
		want := directSingularValues(a, m, n)
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-9*want[0] {
				t.Errorf("%v (%s): sv[%d] = %.17g, want %.17g", sh, method, i, got[i], want[i])
				break
			}
		}
	}
}
