package circuits

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// view is a strided read-only matrix: element (i, j) is
// data[i*rs + j*cs].
type view[S float32 | float64] struct {
	data       []S
	rows, cols int
	rs, cs     int
}

func rowMajor[S float32 | float64](data []S, rows, cols, stride int) view[S] {
	return view[S]{data: data, rows: rows, cols: cols, rs: stride, cs: 1}
}

func (v view[S]) t() view[S] {
	return view[S]{data: v.data, rows: v.cols, cols: v.rows, rs: v.cs, cs: v.rs}
}

func (v view[S]) at(i, j int) S { return v.data[i*v.rs+j*v.cs] }

// dense returns v as a contiguous row-major float64 matrix.
func (v view[S]) dense() []float64 {
	out := make([]float64, v.rows*v.cols)
	for i := 0; i < v.rows; i++ {
		row := out[i*v.cols : (i+1)*v.cols]
		for j := range row {
			row[j] = float64(v.at(i, j))
		}
	}
	return out
}

// mul computes C = A·B in float64 (C m×n row-major with stride ldc,
// overwritten). Products of float32 operands are exact in float64.
func mul[SA, SB float32 | float64](c []float64, ldc int, a view[SA], b view[SB]) error {
	m, k, n := a.rows, a.cols, b.cols
	if b.rows != k {
		return fmt.Errorf("circuits: product of %d×%d and %d×%d", m, k, b.rows, n)
	}
	if m == 0 || n == 0 {
		return nil
	}
	if ldc < n || len(c) < (m-1)*ldc+n {
		return fmt.Errorf("circuits: C %d×%d with stride %d in %d values", m, n, ldc, len(c))
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
		}
		return nil
	}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas64.General{Rows: m, Cols: k, Stride: k, Data: a.dense()},
		blas64.General{Rows: k, Cols: n, Stride: n, Data: b.dense()},
		0, blas64.General{Rows: m, Cols: n, Stride: ldc, Data: c})
	return nil
}
