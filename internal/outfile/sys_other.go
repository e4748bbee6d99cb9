//go:build !unix

package outfile

import (
	"io/fs"
	"os"
	"runtime"
)

// owner: files have no Unix owner here; the writer owns what it writes.
func owner(fs.FileInfo) (uid, gid int) { return -1, -1 }

// reraise ends the process as an interrupted one. Windows has no signal to
// send to oneself: its status for a console interrupt is
// STATUS_CONTROL_C_EXIT, 0xC000013A (as an int32, -1073741510); elsewhere
// 128 + SIGINT's number, as a shell reports it.
func reraise(os.Signal) {
	if runtime.GOOS == "windows" {
		os.Exit(-1073741510)
	}
	os.Exit(130)
}
