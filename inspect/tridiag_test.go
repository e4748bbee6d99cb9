package inspect

import (
	"math"
	"math/rand"
	"testing"

	"gonum.org/v1/gonum/blas/blas64"
)

func TestSymEigenvaluesFast(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, n := range []int{1, 2, 3, 31, 32, 33, 65, 100, 300} {
		a := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := 0; j <= i; j++ {
				v := r.NormFloat64()
				a[i*n+j], a[j*n+i] = v, v
			}
		}
		want := symEigenvalues(append([]float64(nil), a...), n)
		got, ok := symEigenvaluesFast(a, n)
		if !ok {
			t.Fatalf("n %d: Dsterf failed", n)
		}
		scale := math.Max(math.Abs(want[0]), math.Abs(want[n-1]))
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-12*scale*float64(n) {
				t.Fatalf("n %d: λ[%d] = %.17g, want %.17g", n, i, got[i], want[i])
			}
		}
	}
	_ = blas64.General{}
}
