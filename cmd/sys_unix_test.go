//go:build unix

package cmd_test

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// The tests' few system calls that differ between Unix and Windows, so
// that every test file vets for every GOOS (.ci/run).

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

// childUsage is a finished child's CPU time (user + system) and peak RSS
// in bytes.
func childUsage(ps *os.ProcessState) (cpu time.Duration, rss int64, ok bool) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0, 0, false
	}
	rss = int64(ru.Maxrss)
	if runtime.GOOS != "darwin" && runtime.GOOS != "ios" {
		rss *= 1024 // KiB elsewhere; bytes on Darwin
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), rss, true
}
