package linalg

import (
	"math"
	"math/rand/v2"
	"testing"
)

// ThinR's factor reproduces XᵀX = RᵀR and is upper triangular.
func TestThinR(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, sh := range [][2]int{{20, 5}, {5, 20}, {8, 8}, {1, 3}} {
		rows, c := sh[0], sh[1]
		x := randSlice[float64](r, rows*c)
		rf := ThinR(append([]float64(nil), x...), rows, c)
		k := min(rows, c)
		if len(rf) != k*c {
			t.Fatalf("%v: %d values", sh, len(rf))
		}
		for i := 0; i < k; i++ {
			for j := 0; j < i; j++ {
				if rf[i*c+j] != 0 {
					t.Fatalf("%v: R[%d,%d] = %g below the diagonal", sh, i, j, rf[i*c+j])
				}
			}
		}
		for i := 0; i < c; i++ {
			for j := 0; j < c; j++ {
				var xx, rr float64
				for p := 0; p < rows; p++ {
					xx += x[p*c+i] * x[p*c+j]
				}
				for p := 0; p < k; p++ {
					rr += rf[p*c+i] * rf[p*c+j]
				}
				if math.Abs(xx-rr) > 1e-12*float64(rows) {
					t.Fatalf("%v: (XᵀX)[%d,%d] = %g, (RᵀR) %g", sh, i, j, xx, rr)
				}
			}
		}
	}
	if ThinR(make([]float64, 5), 2, 3) != nil {
		t.Errorf("short x accepted")
	}
}

// LowRankSingularValues equals the SVD of the formed product, for ranks
// below, at and above the smaller side, and of views in either orientation.
func TestLowRankSingularValues(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for _, sh := range [][3]int{{40, 4, 60}, {60, 4, 40}, {10, 12, 30}, {30, 12, 10}, {7, 1, 9}, {16, 16, 16}} {
		out, rank, in := sh[0], sh[1], sh[2]
		b := RowMajor(randSlice[float32](r, out*rank), out, rank, rank)
		at := RowMajor(randSlice[float32](r, in*rank), in, rank, rank) // Aᵀ as stored by MLX
		a := at.T()
		got, err := LowRankSingularValues(b, a, -3)
		if err != nil {
			t.Fatal(err)
		}
		prod := make([]float64, out*in)
		must(Mul(prod, in, -3, b, a, 0, MulOptions{}))
		want := SingularValues(prod, out, in)
		if len(got) != min(out, in, rank) {
			t.Fatalf("%v: %d values", sh, len(got))
		}
		for i := range want {
			var g float64
			if i < len(got) {
				g = got[i]
			}
			if math.Abs(g-want[i]) > 1e-12*want[0]*float64(out+in) {
				t.Errorf("%v: sv[%d] = %.17g, formed %.17g", sh, i, g, want[i])
			}
		}
	}
	if sv, err := LowRankSingularValues(RowMajor[float32](nil, 0, 3, 3), RowMajor(make([]float32, 6), 3, 2, 2), 1); err != nil || sv != nil {
		t.Errorf("empty B: %v %v", sv, err)
	}
	if _, err := LowRankSingularValues(RowMajor(make([]float32, 6), 2, 3, 3), RowMajor(make([]float32, 6), 3, 2, 2), math.NaN()); err == nil {
		t.Errorf("NaN scale accepted")
	}
}

// Block Lanczos brackets every leading singular value of a matrix with a
// known spectrum, and finds all of them when the space is the whole of it.
func TestBlockLanczos(t *testing.T) {
	const m, n = 120, 90
	r := rand.New(rand.NewPCG(9, 9))
	// A = U diag(s) Vᵀ with random orthonormal U, V from thin QR of Gaussians.
	s := make([]float64, n)
	for i := range s {
		s[i] = math.Pow(0.9, float64(i)) * 10
	}
	u := orthonormalColumns(r, m, n)
	v := orthonormalColumns(r, n, n)
	a := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var x float64
			for k := 0; k < n; k++ {
				x += u[i*n+k] * s[k] * v[j*n+k]
			}
			a[i*n+j] = x
		}
	}
	theta, hi, err := BlockLanczos(RowMajor(a, m, n, n), 8, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(theta) != 24 || len(hi) != 10 {
		t.Fatalf("%d Ritz values, %d bounds", len(theta), len(hi))
	}
	for i := range hi {
		if theta[i] > s[i]*(1+1e-12) || hi[i] < s[i]*(1-1e-12) {
			t.Errorf("σ_%d = %g outside [%g, %g]", i, s[i], theta[i], hi[i])
		}
	}
	// A Krylov space as large as the matrix: every value exact.
	theta, _, err = BlockLanczos(RowMajor(a, m, n, n), 30, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if math.Abs(theta[i]-s[i]) > 1e-9*s[0] {
			t.Fatalf("θ_%d = %.17g, σ = %g", i, theta[i], s[i])
		}
	}
	if _, _, err := BlockLanczos(RowMajor(a, m, n, n), 0, 3, 1); err == nil {
		t.Errorf("block size 0 accepted")
	}
}

// orthonormalColumns returns a rows×c matrix with orthonormal columns.
func orthonormalColumns(r *rand.Rand, rows, c int) []float64 {
	x := randSlice[float64](r, rows*c)
	for j := 0; j < c; j++ {
		for pass := 0; pass < 2; pass++ {
			for k := 0; k < j; k++ {
				var d float64
				for i := 0; i < rows; i++ {
					d += x[i*c+j] * x[i*c+k]
				}
				for i := 0; i < rows; i++ {
					x[i*c+j] -= d * x[i*c+k]
				}
			}
		}
		var nn float64
		for i := 0; i < rows; i++ {
			nn += x[i*c+j] * x[i*c+j]
		}
		nn = math.Sqrt(nn)
		for i := 0; i < rows; i++ {
			x[i*c+j] /= nn
		}
	}
	return x
}
