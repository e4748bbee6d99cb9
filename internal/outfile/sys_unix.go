//go:build unix

package outfile

import (
	"io/fs"
	"os"
	"syscall"
	"time"
)

// owner is the user and group owning the file fi describes (-1 when not
// known).
func owner(fi fs.FileInfo) (uid, gid int) {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(sys.Uid), int(sys.Gid)
	}
	return -1, -1
}

// reraise dies of sig (its handler already reset) as the process would
// have without the handler, so that the exit status says so.
func reraise(sig os.Signal) {
	s, _ := sig.(syscall.Signal)
	syscall.Kill(os.Getpid(), s)
	time.Sleep(time.Second) // the signal is delivered meanwhile
	os.Exit(128 + int(s))
}
