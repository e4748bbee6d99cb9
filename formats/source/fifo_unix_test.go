//go:build unix

package source

import "syscall"

// mkfifo makes a named pipe (tests of special files).
func mkfifo(p string) error { return syscall.Mkfifo(p, 0o600) }
