//go:build !amd64

package inspect

func kern6x8(kc int, a, b, c *float64, ldc int)              { panic("unreachable") }
func dotAxpy(n int, a, x, y *float64, alpha float64) float64 { panic("unreachable") }

var haveFMA = false
