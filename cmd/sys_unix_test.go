//go:build unix

package cmd_test

import (
	"os/exec"
	"syscall"
	"time"
)

// The tests' few system calls that differ between Unix and Windows.

// asNobody makes c run as uid/gid 65534.
func asNobody(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
