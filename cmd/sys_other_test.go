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

// cpuTime falls back to wall time where the process's CPU time is not read.
func cpuTime() time.Duration { return time.Duration(time.Now().UnixNano()) }

func childUsage(*os.ProcessState) (time.Duration, int64, bool) { return 0, 0, false }
