package formats

// Matrix is a dense row-major float32 matrix. Projections use the layout of a
// PyTorch nn.Linear weight: rows are output features, columns input features.
type Matrix struct {
	Rows, Cols int
	Data       []float32 // len(Data) == Rows*Cols
}

// NewMatrix allocates a zero rows×cols matrix.
func NewMatrix(rows, cols int) Matrix {
	return Matrix{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
}

// Row returns row i as a slice of Data (not a copy).
func (m Matrix) Row(i int) []float32 { return m.Data[i*m.Cols : (i+1)*m.Cols] }

// At returns element (i, j).
func (m Matrix) At(i, j int) float32 { return m.Data[i*m.Cols+j] }

// RowBlock returns rows [r0, r1) as a Matrix sharing Data.
func (m Matrix) RowBlock(r0, r1 int) Matrix {
	return Matrix{Rows: r1 - r0, Cols: m.Cols, Data: m.Data[r0*m.Cols : r1*m.Cols]}
}

// ColBlock returns a copy of columns [c0, c1).
func (m Matrix) ColBlock(c0, c1 int) Matrix {
	out := NewMatrix(m.Rows, c1-c0)
	for i := 0; i < m.Rows; i++ {
		copy(out.Row(i), m.Data[i*m.Cols+c0:i*m.Cols+c1])
	}
	return out
}

// Empty reports whether the matrix holds no elements.
func (m Matrix) Empty() bool { return m.Rows == 0 || m.Cols == 0 }
