package linalg

import (
	"math"
	"math/rand"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"
)

func TestSymEigenvalues(t *testing.T) {
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
		got, ok := SymEigenvalues(a, n)
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
}

// symEigenvalues returns the eigenvalues of the symmetric k×k matrix g in
// ascending order (g is overwritten), with gonum's Dsyev: the reference the
// faster SymEigenvalues is tested against.
func symEigenvalues(g []float64, k int) []float64 {
	s := blas64.Symmetric{N: k, Stride: k, Data: g, Uplo: blas.Lower}
	w := make([]float64, k)
	work := make([]float64, 1)
	lapack64.Syev(lapack.EVNone, s, w, work, -1)
	work = make([]float64, int(work[0]))
	lapack64.Syev(lapack.EVNone, s, w, work, len(work))
	return w
}

// TestSymEigenvaluesIndependentOfCPUs: the eigenvalues are bit for bit the
// same whatever GOMAXPROCS is, for sizes on both sides of the split of the
// symmetric products (256) and sizes whose parts are uneven.
func TestSymEigenvaluesIndependentOfCPUs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	r := rand.New(rand.NewSource(9))
	for _, n := range []int{255, 256, 300, 517} {
		a := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := 0; j <= i; j++ {
				v := r.NormFloat64()
				a[i*n+j], a[j*n+i] = v, v
			}
		}
		var first []float64
		for _, procs := range []int{1, 2, 3, 8} {
			runtime.GOMAXPROCS(procs)
			got, ok := SymEigenvalues(append([]float64(nil), a...), n)
			if !ok {
				t.Fatalf("n %d: Dsterf failed", n)
			}
			if first == nil {
				first = got
				continue
			}
			for i := range got {
				if math.Float64bits(got[i]) != math.Float64bits(first[i]) {
					t.Fatalf("n %d, GOMAXPROCS %d: λ[%d] = %.17g, with GOMAXPROCS 1 %.17g", n, procs, i, got[i], first[i])
				}
			}
		}
	}
}
