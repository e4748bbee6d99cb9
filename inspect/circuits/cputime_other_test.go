//go:build !unix

package circuits

func cpuSeconds() float64 { return 0 }
