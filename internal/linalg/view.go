package linalg

import (
	"errors"
	"fmt"
)

// Float is the element type of every matrix here.
type Float interface{ ~float32 | ~float64 }

// View is a read-only strided matrix: element (i, j) is
// Data[i*RowStride + j*ColStride]. A row-major matrix has ColStride 1; its
// transpose is the same data with the strides swapped.
type View[S Float] struct {
	Data                 []S
	Rows, Cols           int
	RowStride, ColStride int
}

// RowMajor views data as a rows×cols row-major matrix whose rows start
// stride elements apart.
func RowMajor[S Float](data []S, rows, cols, stride int) View[S] {
	return View[S]{Data: data, Rows: rows, Cols: cols, RowStride: stride, ColStride: 1}
}

// T returns the transpose of v (no copy).
func (v View[S]) T() View[S] {
	return View[S]{Data: v.Data, Rows: v.Cols, Cols: v.Rows, RowStride: v.ColStride, ColStride: v.RowStride}
}

// ErrShape reports operands whose shapes do not fit together or whose
// slices are too short for their shape.
var ErrShape = errors.New("linalg: bad shape")

// Check reports whether every element of v lies inside Data: dimensions
// and strides must be non-negative and the last element in range.
func (v View[S]) Check() error {
	if v.Rows < 0 || v.Cols < 0 || v.RowStride < 0 || v.ColStride < 0 {
		return fmt.Errorf("%w: view %d×%d with strides %d, %d", ErrShape, v.Rows, v.Cols, v.RowStride, v.ColStride)
	}
	if v.Rows == 0 || v.Cols == 0 {
		return nil
	}
	last := (v.Rows-1)*v.RowStride + (v.Cols-1)*v.ColStride
	if last >= len(v.Data) || last < 0 {
		return fmt.Errorf("%w: view %d×%d with strides %d, %d needs %d elements, has %d", ErrShape, v.Rows, v.Cols, v.RowStride, v.ColStride, last+1, len(v.Data))
	}
	return nil
}

// checkC reports whether c holds an m×n row-major matrix with stride ldc.
func checkC[T Float](c []T, m, n, ldc int) error {
	if m <= 0 || n <= 0 {
		return nil
	}
	if ldc < n || (m-1)*ldc+n > len(c) {
		return fmt.Errorf("%w: C %d×%d with stride %d in %d elements", ErrShape, m, n, ldc, len(c))
	}
	return nil
}
