// Package infile reads the small files a user names on the command line —
// a rules file, a baseline report — safely: only a regular file (a FIFO
// would block forever, /dev/zero never ends), and never more than a cap,
// checked before reading and while reading (the file may grow).
package infile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Read returns the contents of the regular file at path, refusing anything
// else and any file larger than limit bytes. Its errors are one line and do
// not repeat the path (callers name the flag and the path).
func Read(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, Cause(err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", Kind(st.Mode()))
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%d bytes is more than the %d this file may have", st.Size(), limit)
	}
	// O_NONBLOCK: if the path was swapped for a FIFO after the check, the
	// open does not wait for a writer.
	f, err := os.OpenFile(path, os.O_RDONLY|nonblock, 0)
	if err != nil {
		return nil, Cause(err)
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file (it changed while it was opened)")
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, Cause(err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than the %d bytes this file may have (it grew while it was read)", limit)
	}
	return b, nil
}

// Cause is an os error as a short phrase without the path. A missing file
// is still errors.Is fs.ErrNotExist.
func Cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return notExist{}
	case errors.Is(err, fs.ErrPermission):
		return errors.New("permission denied")
	}
	return err
}

// ReadCause is Cause for a file qkv was to read: a permission error says so.
func ReadCause(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return errors.New("permission denied (the file cannot be read)")
	}
	return Cause(err)
}

type notExist struct{}

func (notExist) Error() string        { return "no such file or folder" }
func (notExist) Is(target error) bool { return target == fs.ErrNotExist }

// Kind names a file's type for messages: "a folder", "a named pipe (FIFO)".
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsRegular():
		return "a regular file"
	}
	return "a special file"
}
