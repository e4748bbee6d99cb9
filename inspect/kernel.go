package inspect

// Register-tile sizes of the matrix-product micro-kernel.
const (
	tileM = 6 // rows of a C tile
	tileN = 8 // columns of a C tile
)

// microKernel computes C[0:6, 0:8] += Ap·Bp for a packed 6×kc A strip
// (k-major: 6 values per k) and a packed kc×8 B strip.
func microKernel(kc int, ap, bp, c []float64, ldc int) {
	if haveFMA {
		kern6x8(kc, &ap[0], &bp[0], &c[0], ldc)
		return
	}
	var acc [tileM][tileN]float64
	for p := 0; p < kc; p++ {
		a := ap[p*tileM : p*tileM+tileM]
		b := bp[p*tileN : p*tileN+tileN]
		for i := 0; i < tileM; i++ {
			ai := a[i]
			for j := 0; j < tileN; j++ {
				acc[i][j] += ai * b[j]
			}
		}
	}
	for i := 0; i < tileM; i++ {
		row := c[i*ldc : i*ldc+tileN]
		for j := range row {
			row[j] += acc[i][j]
		}
	}
}

// dotAxpyF returns Σ a[i]·x[i] and sets y += alpha·a, reading a once.
func dotAxpyF(a, x, y []float64, alpha float64) float64 {
	n := len(a)
	if n == 0 {
		return 0
	}
	_ = x[n-1]
	_ = y[n-1]
	if haveFMA {
		return dotAxpy(n, &a[0], &x[0], &y[0], alpha)
	}
	var s float64
	for i, v := range a {
		s += v * x[i]
		y[i] += alpha * v
	}
	return s
}
