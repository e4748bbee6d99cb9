//go:build !unix

package cmd_test

import (
	"errors"
	"os"
	"os/exec"
	"time"
)

var errNoUnix = errors.New("not on this system")

func asNobody(*exec.Cmd) {}

func mkfifo(string) error { return errNoUnix }

func peakRSS(*os.ProcessState) (int64, bool) { return 0, false }

// cpuTime falls back to wall time where the process's CPU time is not read.
func cpuTime() time.Duration { return time.Duration(time.Now().UnixNano()) }
