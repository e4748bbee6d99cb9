package linalg

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func randSlice[T Float](r *rand.Rand, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = T(r.NormFloat64())
	}
	return out
}

// naive returns alpha·A·B + beta·C in float64 for views and a row-major C,
// and the magnitude Σ|a·b| of each entry's sum (for error bounds).
func naive[T, SA, SB Float](alpha float64, a View[SA], b View[SB], beta float64, c []T, ldc int) (want, mag []float64) {
	m, n, k := a.Rows, b.Cols, a.Cols
	want, mag = make([]float64, m*n), make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, g float64
			for p := 0; p < k; p++ {
				x := float64(a.Data[i*a.RowStride+p*a.ColStride]) * float64(b.Data[p*b.RowStride+j*b.ColStride])
				s += x
				g += math.Abs(x)
			}
			w, wm := alpha*s, math.Abs(alpha)*g
			if beta != 0 {
				w += beta * float64(c[i*ldc+j])
				wm += math.Abs(beta * float64(c[i*ldc+j]))
			}
			want[i*n+j], mag[i*n+j] = w, wm
		}
	}
	return want, mag
}

// shapes exercise edge tiles, several depth blocks, several tasks and the
// thin products of block Lanczos.
var shapes = []struct{ m, n, k int }{
	{1, 1, 1}, {5, 7, 3}, {6, 16, 4}, {7, 9, 5}, {13, 33, 257}, {97, 60, 300}, {12, 17, 1000},
	{100, 37, 513}, {300, 8, 70}, {8, 300, 70}, {1, 40, 3}, {50, 50, 40}, {97, 97, 260}, {270, 270, 20},
}

// checkMul runs Mul in precision T on random operands of source types SA,
// SB for every shape, transposition, triangle and stride, against naive.
func checkMul[T, SA, SB Float](t *testing.T, tol float64) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range shapes {
		for ti, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
			for oi, o := range []MulOptions{{}, {Serial: true}, {Tri: Lower}, {Tri: Upper}} {
				if o.Tri != Full && s.m != s.n {
					continue
				}
				// Each (α, β) meets every transposition across the options.
				{
					ab := [][2]float64{{1, 0}, {-0.5, 1}, {2, 0.25}}[(ti+oi)%3]
					alpha, beta := ab[0], ab[1]
					a := RowMajor(randSlice[SA](r, s.m*(s.k+3)), s.m, s.k, s.k+3)
					if tr[0] {
						a = RowMajor(randSlice[SA](r, s.k*(s.m+1)), s.k, s.m, s.m+1).T()
					}
					b := RowMajor(randSlice[SB](r, s.k*(s.n+2)), s.k, s.n, s.n+2)
					if tr[1] {
						b = RowMajor(randSlice[SB](r, s.n*(s.k+1)), s.n, s.k, s.k+1).T()
					}
					ldc := s.n + 5
					c := randSlice[T](r, s.m*ldc)
					if beta == 0 {
						for i := range c {
							c[i] = T(math.NaN()) // must not be read
						}
						for i := 0; i < s.m; i++ {
							for j := s.n; j < ldc; j++ {
								c[i*ldc+j] = 7
							}
						}
					}
					pad := append([]T(nil), c...)
					want, mag := naive(alpha, a, b, beta, c, ldc)
					if err := Mul(c, ldc, alpha, a, b, beta, o); err != nil {
						t.Fatal(err)
					}
					for i := 0; i < s.m; i++ {
						for j := 0; j < ldc; j++ {
							got := float64(c[i*ldc+j])
							if j >= s.n {
								if c[i*ldc+j] != pad[i*ldc+j] {
									t.Fatalf("%v %v: wrote past column n at [%d,%d]", s, tr, i, j)
								}
								continue
							}
							if o.Tri == Lower && j > i || o.Tri == Upper && j < i {
								continue
							}
							if e := math.Abs(got - want[i*s.n+j]); !(e <= tol*float64(s.k)*(mag[i*s.n+j]+1e-300)) {
								t.Fatalf("%v trans %v %+v α=%g β=%g: C[%d,%d] = %g, want %g", s, tr, o, alpha, beta, i, j, got, want[i*s.n+j])
							}
						}
					}
				}
			}
		}
	}
}

func TestMul(t *testing.T) {
	t.Run("f64", func(t *testing.T) { checkMul[float64, float64, float64](t, 1e-15) })
	t.Run("f64 from f32", func(t *testing.T) { checkMul[float64, float32, float32](t, 1e-15) })
	t.Run("f64 mixed", func(t *testing.T) { checkMul[float64, float32, float64](t, 1e-15) })
	t.Run("f32", func(t *testing.T) { checkMul[float32, float32, float32](t, 1e-7) })
}

// The packed entry points agree with naive products, including the
// prefixes MulPacked allows.
func TestPacked(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, s := range shapes {
		a := RowMajor(randSlice[float32](r, s.m*s.k), s.m, s.k, s.k)
		b := RowMajor(randSlice[float32](r, s.k*s.n), s.k, s.n, s.n)
		pa, err := PackA[float32](a, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, par := range []bool{false, true} {
			c := make([]float32, s.m*s.n)
			if err := MulPackedA(c, s.n, pa, b, par); err != nil {
				t.Fatal(err)
			}
			compare(t, s, c, a, b, s.n)
		}
		// A prefix: the first k' depths and n' columns of a larger packed B.
		big := RowMajor(randSlice[float32](r, (s.k+300)*(s.n+20)), s.k+300, s.n+20, s.n+20)
		pb, err := PackB[float32](big)
		if err != nil {
			t.Fatal(err)
		}
		c := make([]float32, s.m*(s.n+3))
		if err := MulPacked(c, s.n+3, pa, pb, s.n); err != nil {
			t.Fatal(err)
		}
		sub := View[float32]{Data: big.Data, Rows: s.k, Cols: s.n, RowStride: s.n + 20, ColStride: 1}
		compare(t, s, c, a, sub, s.n+3)
	}
}

func compare(t *testing.T, s struct{ m, n, k int }, c []float32, a, b View[float32], ldc int) {
	t.Helper()
	want, mag := naive(1, a, b, 0, c, ldc)
	for i := 0; i < s.m; i++ {
		for j := 0; j < s.n; j++ {
			if e := math.Abs(float64(c[i*ldc+j]) - want[i*s.n+j]); e > 1e-7*float64(s.k)*mag[i*s.n+j] {
				t.Fatalf("%v: C[%d,%d] = %g, want %g", s, i, j, c[i*ldc+j], want[i*s.n+j])
			}
		}
	}
}

// Results do not depend on the number of goroutines: every entry is one
// ordered chain per depth block.
func TestDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	a := RowMajor(randSlice[float32](r, 300*700), 300, 700, 700)
	c1, c2 := make([]float64, 300*300), make([]float64, 300*300)
	must(Mul(c1, 300, 1, a, a.T(), 0, MulOptions{}))
	must(Mul(c2, 300, 1, a, a.T(), 0, MulOptions{Serial: true}))
	for i := range c1 {
		if c1[i] != c2[i] {
			t.Fatalf("entry %d: %v parallel, %v serial", i, c1[i], c2[i])
		}
	}
}

func TestGram(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, sh := range [][2]int{{5, 9}, {9, 5}, {70, 33}, {33, 70}} {
		m, n := sh[0], sh[1]
		a := RowMajor(randSlice[float32](r, m*n), m, n, n)
		for _, v := range []View[float32]{a, a.T()} {
			g, err := Gram(v)
			if err != nil {
				t.Fatal(err)
			}
			k, l := v.Rows, v.Cols
			for i := 0; i < k; i++ {
				for j := 0; j < k; j++ {
					var s float64
					for p := 0; p < l; p++ {
						s += float64(v.Data[i*v.RowStride+p*v.ColStride]) * float64(v.Data[j*v.RowStride+p*v.ColStride])
					}
					if math.Abs(g[i*k+j]-s) > 1e-12*float64(l) {
						t.Fatalf("%v: G[%d,%d] = %g, want %g", sh, i, j, g[i*k+j], s)
					}
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
		got, err := DotAxpy(a, x, y, 0.5)
		if err != nil || got != want {
			t.Errorf("n %d: dot %g (%v), want %g", n, got, err, want)
		}
		for i := range y {
			if y[i] != float64(i%5)+0.5*float64(i+1) {
				t.Errorf("n %d: y[%d] = %g", n, i, y[i])
			}
		}
	}
}

func TestPackT16(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for kb := 0; kb <= 41; kb++ {
		const ldb = 45
		b := randSlice[float32](r, 15*ldb+kb)
		got, want := make([]float32, kb*16), make([]float32, kb*16)
		if err := packT16(got, b, ldb, kb); err != nil {
			t.Fatal(err)
		}
		for p := 0; p < kb; p++ {
			for q := 0; q < 16; q++ {
				want[p*16+q] = b[q*ldb+p]
			}
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("kb=%d: packed strip differs at %d", kb, i)
			}
		}
	}
}

// The assembly kernels agree with the portable ones.
func TestKernelsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, kb := range []int{0, 1, 3, 4, 7, 256} {
		for _, load := range []bool{false, true} {
			a, b := randSlice[float32](r, kb*mr), randSlice[float32](r, kb*16)
			c1 := randSlice[float32](r, mr*20)
			c2 := append([]float32(nil), c1...)
			must(kernel32(kb, a, b, c1, 20, load))
			kernelGo(kb, a, b, c2, 20, load, 16)
			for i := range c1 {
				if math.Abs(float64(c1[i]-c2[i])) > 1e-4 {
					t.Fatalf("f32 kb=%d load=%v: kernels differ at %d: %g vs %g", kb, load, i, c1[i], c2[i])
				}
			}
			a64, b64 := randSlice[float64](r, kb*mr), randSlice[float64](r, kb*8)
			d1 := randSlice[float64](r, mr*11)
			d2 := append([]float64(nil), d1...)
			must(kernel64(kb, a64, b64, d1, 11, load))
			kernelGo(kb, a64, b64, d2, 11, load, 8)
			for i := range d1 {
				if math.Abs(d1[i]-d2[i]) > 1e-12 {
					t.Fatalf("f64 kb=%d load=%v: kernels differ at %d: %g vs %g", kb, load, i, d1[i], d2[i])
				}
			}
		}
	}
}

// Every assembly routine rejects slices too short for the lengths it is
// given, with an error and without touching memory; this runs the same
// checks whichever kernels are selected.
func TestLengthChecks(t *testing.T) {
	f32 := func(n int) []float32 { return make([]float32, n) }
	f64 := func(n int) []float64 { return make([]float64, n) }
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"kernel32 short a", func() error { return kernel32(4, f32(4*mr-1), f32(4*16), f32(5*16+16), 16, false) }},
		{"kernel32 short b", func() error { return kernel32(4, f32(4*mr), f32(4*16-1), f32(5*16+16), 16, true) }},
		{"kernel32 short c", func() error { return kernel32(4, f32(4*mr), f32(4*16), f32(5*20+15), 20, false) }},
		{"kernel32 narrow ldc", func() error { return kernel32(4, f32(4*mr), f32(4*16), f32(200), 15, false) }},
		{"kernel32 negative depth", func() error { return kernel32(-1, nil, nil, f32(96), 16, false) }},
		{"kernel32 huge depth", func() error { return kernel32(math.MaxInt/2, f32(6), f32(16), f32(96), 16, false) }},
		{"kernel32 nil", func() error { return kernel32(1, nil, nil, nil, 16, false) }},
		{"kernel64 short a", func() error { return kernel64(3, f64(3*mr-1), f64(3*8), f64(5*8+8), 8, true) }},
		{"kernel64 short b", func() error { return kernel64(3, f64(3*mr), f64(3*8-1), f64(5*8+8), 8, false) }},
		{"kernel64 short c", func() error { return kernel64(3, f64(3*mr), f64(3*8), f64(5*9+7), 9, false) }},
		{"kernel64 huge ldc", func() error { return kernel64(1, f64(6), f64(8), f64(48), math.MaxInt, false) }},
		{"packT16 short out", func() error { return packT16(f32(16*9-1), f32(15*20+9), 20, 9) }},
		{"packT16 short b", func() error { return packT16(f32(16*9), f32(15*20+8), 20, 9) }},
		{"packT16 overlapping rows", func() error { return packT16(f32(16*9), f32(1000), 8, 9) }},
		{"packT16 negative depth", func() error { return packT16(f32(16), f32(1000), 20, -1) }},
		{"dotAxpy short x", func() error { _, err := DotAxpy(f64(17), f64(16), f64(17), 1); return err }},
		{"dotAxpy short y", func() error { _, err := DotAxpy(f64(17), f64(17), f64(3), 1); return err }},
		{"Mul short C", func() error {
			return Mul(f64(5*7-1), 7, 1, RowMajor(f64(15), 5, 3, 3), RowMajor(f64(21), 3, 7, 7), 0, MulOptions{})
		}},
		{"Mul short A", func() error {
			return Mul(f64(35), 7, 1, RowMajor(f64(14), 5, 3, 3), RowMajor(f64(21), 3, 7, 7), 0, MulOptions{})
		}},
		{"Mul short B view", func() error {
			return Mul(f64(35), 7, 1, RowMajor(f64(15), 5, 3, 3), RowMajor(f64(20), 3, 7, 7).T().T(), 0, MulOptions{})
		}},
		{"Mul mismatched depth", func() error {
			return Mul(f64(35), 7, 1, RowMajor(f64(15), 5, 3, 3), RowMajor(f64(28), 4, 7, 7), 0, MulOptions{})
		}},
		{"Mul triangle of non-square", func() error {
			return Mul(f64(35), 7, 1, RowMajor(f64(15), 5, 3, 3), RowMajor(f64(21), 3, 7, 7), 0, MulOptions{Tri: Lower})
		}},
		{"Mul negative stride", func() error {
			return Mul(f64(35), 7, 1, View[float64]{Data: f64(15), Rows: 5, Cols: 3, RowStride: -3, ColStride: 1}, RowMajor(f64(21), 3, 7, 7), 0, MulOptions{})
		}},
		{"MulPacked wide prefix", func() error {
			pa, _ := PackA[float32](RowMajor(f32(6), 2, 3, 3), false)
			pb, _ := PackB[float32](RowMajor(f32(12), 3, 4, 4))
			return MulPacked(f32(10), 5, pa, pb, 5)
		}},
		{"MulPacked deep A", func() error {
			pa, _ := PackA[float32](RowMajor(f32(8), 2, 4, 4), false)
			pb, _ := PackB[float32](RowMajor(f32(12), 3, 4, 4))
			return MulPacked(f32(8), 4, pa, pb, 4)
		}},
		{"MulPackedA short C", func() error {
			pa, _ := PackA[float32](RowMajor(f32(6), 2, 3, 3), false)
			return MulPackedA(f32(7), 4, pa, RowMajor(f32(12), 3, 4, 4), true)
		}},
		{"LowRank mismatched rank", func() error {
			_, err := LowRankSingularValues(RowMajor(f32(8), 4, 2, 2), RowMajor(f32(15), 3, 5, 5), 1)
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("panicked: %v", p)
					}
				}()
				err = c.call()
			}()
			if !errors.Is(err, ErrShape) {
				t.Errorf("err = %v, want ErrShape", err)
			}
		})
	}
}

// The portable kernels, which AVX2 machines otherwise skip, pass the same
// tests (the purego build tag selects them everywhere).
func TestPortableKernels(t *testing.T) {
	if !haveFMA {
		t.Skip("no assembly kernels selected: the portable ones are already the ones tested")
	}
	haveFMA = false
	defer func() { haveFMA = true }()
	t.Run("Mul", TestMul)
	t.Run("Packed", TestPacked)
	t.Run("Gram", TestGram)
	t.Run("DotAxpy", TestDotAxpy)
	t.Run("PackT16", TestPackT16)
	t.Run("SymEigenvalues", TestSymEigenvalues)
}
