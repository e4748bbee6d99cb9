package circuits

import (
	"github.com/qkvdev/qkv/internal/linalg"
)

// mul computes C = A·B in float64 (C m×n row-major with stride ldc,
// overwritten). Products of float32 operands are exact in float64.
func mul[SA, SB linalg.Float](c []float64, ldc int, a linalg.View[SA], b linalg.View[SB]) error {
	return linalg.Mul(c, ldc, 1, a, b, 0, linalg.MulOptions{})
}
