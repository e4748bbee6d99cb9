//go:build !unix

package attn

import "time"

func cpuTime() time.Duration { return 0 }
