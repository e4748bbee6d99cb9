// Package outfile writes the files qkv's commands produce (export -o,
// extract -o, attn --out) without harming what the path names:
//
//   - only regular files are written: a path that exists and is anything
//     else — a folder, a FIFO, a device, a socket, or a symbolic link to one
//     — is refused, and the node is left as it was;
//   - "-" and /dev/stdout (also /dev/fd/1, /proc/self/fd/1) mean standard
//     output: the bytes are written to it sequentially, nothing is renamed;
//   - everything else is written to a temporary file in the same folder,
//     synced and renamed over the path, so that a reader never sees half a
//     file; the temporary file is removed on every exit path — an error, a
//     panic unwinding through Abort, and SIGINT or SIGTERM;
//   - a new file gets mode 0666 &^ umask, like any file a program creates;
//     an existing file keeps its mode (and, where the process may, its
//     owner). A symbolic link to a regular file writes that file.
package outfile

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/qkvdev/qkv/internal/infile"
)

// Error is a failure to write Path. Refused is true when the path names
// something qkv will not write (the caller's usage error); false when the
// writing itself failed (a full disk, a missing folder, permissions).
type Error struct {
	Path    string
	Refused bool
	Err     error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// IsStdout reports whether path means standard output.
func IsStdout(path string) bool {
	switch path {
	case "-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1":
		return true
	}
	return false
}

// File is an output being written. Write through it (it buffers), then
// Commit; Abort (safe to defer, and after Commit) removes what was written.
type File struct {
	path   string // as the user gave it, for messages
	target string // the file renamed over (symbolic links resolved)
	tmp    *os.File
	bw     *bufio.Writer
	out    io.Writer // standard output when streaming
	done   bool
}

// Check reports what Create would refuse about path — a folder, a FIFO, a
// device, a link to one — without creating anything, so that a command can
// refuse before doing its work. A path that does not exist yet is fine.
func Check(path string) error {
	if IsStdout(path) {
		return nil
	}
	_, err := examine(path)
	return err
}

// existing is what an output path names now.
type existing struct {
	target   string // the file to replace (symbolic links resolved)
	found    bool   // a regular file is there now
	mode     fs.FileMode
	uid, gid int
}

func examine(path string) (existing, error) {
	e := existing{target: path, uid: -1, gid: -1}
	if path == "" {
		return e, &Error{Path: path, Refused: true, Err: errors.New("no file named")}
	}
	lst, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return e, nil
	}
	if err != nil {
		return e, &Error{Path: path, Err: fmt.Errorf("cannot write %s: %v", path, infile.Cause(err))}
	}
	st := lst
	if lst.Mode()&fs.ModeSymlink != 0 {
		if st, err = os.Stat(path); err != nil {
			return e, refused(path, "is a symbolic link to nothing (%v); name the file to write", infile.Cause(err))
		}
		if e.target, err = filepath.EvalSymlinks(path); err != nil {
			return e, refused(path, "is a symbolic link that cannot be followed (%v)", infile.Cause(err))
		}
	}
	switch {
	case st.IsDir():
		return e, refused(path, "is a folder; name a file to write")
	case !st.Mode().IsRegular():
		return e, refused(path, "not a regular file (%s); qkv writes only regular files, or - for standard output", infile.Kind(st.Mode()))
	}
	e.found, e.mode = true, st.Mode().Perm()
	e.uid, e.gid = owner(st)
	return e, nil
}

// Create starts writing path. stdout is where "-" and /dev/stdout go.
func Create(path string, stdout io.Writer) (*File, error) {
	if IsStdout(path) {
		return &File{path: path, bw: bufio.NewWriterSize(stdout, 1<<20), out: stdout}, nil
	}
	e, err := examine(path)
	if err != nil {
		return nil, err
	}
	f := &File{path: path, target: e.target}
	tmp, err := createTemp(e.target)
	if err != nil {
		return nil, &Error{Path: path, Err: fmt.Errorf("cannot write %s: %v", path, infile.Cause(err))}
	}
	f.tmp = tmp
	if e.found {
		// Overwriting: the file keeps its mode and owner.
		if err := tmp.Chmod(e.mode); err != nil {
			f.Abort()
			return nil, &Error{Path: path, Err: fmt.Errorf("cannot write %s: %v", path, infile.Cause(err))}
		}
		if e.uid >= 0 && (e.uid != os.Getuid() || e.gid != os.Getgid()) {
			_ = tmp.Chown(e.uid, e.gid) // only root may; otherwise the writer owns it
		}
	}
	f.bw = bufio.NewWriterSize(tmp, 1<<20)
	return f, nil
}

func refused(path, format string, args ...any) error {
	return &Error{Path: path, Refused: true, Err: fmt.Errorf(format, args...)}
}

// createTemp makes a new file beside target, tracked for removal on a
// signal from before it exists. The mode 0666 lets the umask decide a new
// file's permissions, as for any file a program creates.
func createTemp(target string) (*os.File, error) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	var b [6]byte
	for try := 0; ; try++ {
		rand.Read(b[:])
		name := filepath.Join(dir, "."+base+".qkv-"+hex.EncodeToString(b[:])+".tmp")
		track(name)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if err == nil {
			return f, nil
		}
		untrack(name)
		if !errors.Is(err, fs.ErrExist) || try == 100 {
			return nil, err
		}
	}
}

// Write buffers p for the file.
func (f *File) Write(p []byte) (int, error) {
	if f.done {
		return 0, errors.New("outfile: write after Commit or Abort")
	}
	n, err := f.bw.Write(p)
	if err != nil {
		return n, f.writeErr(err)
	}
	return n, nil
}

func (f *File) writeErr(err error) error {
	return &Error{Path: f.path, Err: fmt.Errorf("cannot write %s: %v", f.path, infile.Cause(err))}
}

// Commit finishes the file: flushes, syncs it to disk and renames it over
// the path (for standard output: flushes).
func (f *File) Commit() error {
	if f.done {
		return errors.New("outfile: Commit after Commit or Abort")
	}
	if err := f.bw.Flush(); err != nil {
		f.Abort()
		return f.writeErr(err)
	}
	if f.out != nil {
		f.done = true
		return nil
	}
	if err := f.tmp.Sync(); err != nil {
		f.Abort()
		return f.writeErr(err)
	}
	if err := f.tmp.Close(); err != nil {
		f.Abort()
		return f.writeErr(err)
	}
	reg.Lock()
	err := os.Rename(f.tmp.Name(), f.target)
	if err == nil {
		delete(reg.live, f.tmp.Name())
		reg.untrackLocked()
	}
	reg.Unlock()
	if err != nil {
		f.Abort()
		var le *os.LinkError
		if errors.As(err, &le) {
			err = le.Err
		}
		return f.writeErr(err)
	}
	f.done = true
	// The rename is durable once the folder is synced too.
	if d, err := os.Open(filepath.Dir(f.target)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Abort removes the temporary file (nothing is renamed). It does nothing
// after Commit, so callers defer it.
func (f *File) Abort() {
	if f == nil || f.done {
		return
	}
	f.done = true
	if f.tmp == nil {
		return
	}
	f.tmp.Close()
	reg.Lock()
	os.Remove(f.tmp.Name())
	delete(reg.live, f.tmp.Name())
	reg.untrackLocked()
	reg.Unlock()
}

// reg holds the temporary files that exist now, so that SIGINT and SIGTERM
// can remove them before the process dies.
var reg registry

type registry struct {
	sync.Mutex
	live map[string]bool
	sigs chan os.Signal
}

func track(name string) {
	reg.Lock()
	defer reg.Unlock()
	if reg.live == nil {
		reg.live = map[string]bool{}
	}
	reg.live[name] = true
	if reg.sigs == nil {
		reg.sigs = make(chan os.Signal, 1)
		signal.Notify(reg.sigs, os.Interrupt, syscall.SIGTERM)
		go onSignal(reg.sigs)
	}
}

// untrack forgets a temporary file that was never made (no removal: the
// name may be another process's file).
func untrack(name string) {
	reg.Lock()
	delete(reg.live, name)
	reg.untrackLocked()
	reg.Unlock()
}

// untrackLocked stops catching signals once no temporary file is left, so
// that the process dies of them as usual.
func (r *registry) untrackLocked() {
	if len(r.live) == 0 && r.sigs != nil {
		signal.Stop(r.sigs)
		close(r.sigs)
		r.sigs = nil
	}
}

// onSignal removes every temporary file, then dies of the signal as the
// process would have without the handler (the exit status says so).
func onSignal(ch chan os.Signal) {
	sig, ok := <-ch
	if !ok {
		return
	}
	reg.Lock()
	for name := range reg.live {
		os.Remove(name)
	}
	reg.live = map[string]bool{}
	signal.Reset(sig)
	// Keep the lock: nothing may create or rename a file now.
	reraise(sig)
}
