package infile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRead: a regular file within the cap is read whole; a missing file, a
// folder, a file over the cap and (on Unix) a FIFO are refused in one line
// that does not repeat the path, the FIFO without waiting for a writer.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "rules.json")
	if err := os.WriteFile(small, []byte(`{"a": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := Read(small, 8); err != nil || string(b) != `{"a": 1}` {
		t.Fatalf("Read at the cap: %q, %v", b, err)
	}
	cases := []struct {
		name, path string
		limit      int64
		want       string
	}{
		{"over the cap", small, 7, "8 bytes is more than the 7 this file may have"},
		{"missing", filepath.Join(dir, "nope"), 1 << 20, "no such file or folder"},
		{"folder", dir, 1 << 20, "not a regular file (a folder)"},
	}
	if fifo := filepath.Join(dir, "fifo"); mkfifo(fifo) == nil {
		cases = append(cases, struct {
			name, path string
			limit      int64
			want       string
		}{"fifo", fifo, 1 << 20, "not a regular file (a named pipe)"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := Read(c.path, c.limit); done <- err }()
			select {
			case err := <-done:
				if err == nil || err.Error() != c.want {
					t.Errorf("Read(%s) = %v, want %q", c.name, err, c.want)
				}
				if err != nil && strings.Contains(err.Error(), c.path) {
					t.Errorf("the error repeats the path: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("Read(%s) blocked", c.name)
			}
		})
	}
}

// TestCause: os errors become short phrases; a missing file is still
// fs.ErrNotExist, and a file qkv was to read says it cannot be read.
func TestCause(t *testing.T) {
	missing := &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrNotExist}
	denied := &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}
	for _, c := range []struct {
		got  error
		want string
	}{
		{Cause(missing), "no such file or folder"},
		{ReadCause(missing), "no such file or folder"},
		{Cause(denied), "permission denied"},
		{ReadCause(denied), "permission denied (the file cannot be read)"},
		{Cause(errors.New("other")), "other"},
	} {
		if c.got.Error() != c.want {
			t.Errorf("%v, want %q", c.got, c.want)
		}
	}
	if !errors.Is(Cause(missing), fs.ErrNotExist) || !errors.Is(ReadCause(missing), fs.ErrNotExist) {
		t.Error("a missing file is no longer fs.ErrNotExist")
	}
	for m, want := range map[fs.FileMode]string{fs.ModeDir: "a folder", fs.ModeNamedPipe: "a named pipe",
		fs.ModeDevice | fs.ModeCharDevice: "a character device", fs.ModeDevice: "a block device", fs.ModeSocket: "a socket", 0: "a regular file"} {
		if got := Kind(m); got != want {
			t.Errorf("Kind(%v) = %q, want %q", m, got, want)
		}
	}
}
