//go:build !unix

package inspect

func cpuSeconds() float64 { return 0 }
