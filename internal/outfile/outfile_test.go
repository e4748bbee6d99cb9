//go:build unix

package outfile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// write creates path, writes content and commits.
func write(t *testing.T, path, content string) error {
	t.Helper()
	f, err := Create(path, nil)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write([]byte(content)); err != nil {
		return err
	}
	return f.Commit()
}

// onlyFiles fails unless dir holds exactly these names (no temporary file).
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func TestWriteNewAndOverwrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.safetensors")
	if err := write(t, p, "one"); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := write(t, p, "two"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	st, _ := os.Stat(p)
	if string(b) != "two" || st.Mode().Perm() != 0o640 {
		t.Errorf("overwritten file holds %q with mode %v, want \"two\" with 0640 (the old mode kept)", b, st.Mode().Perm())
	}
	onlyFiles(t, dir, "out.safetensors")

	// Even mode 0 is kept (it is not "no file yet").
	os.Chmod(p, 0)
	if err := write(t, p, "zero"); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0 {
		t.Errorf("overwritten mode-0 file has mode %v", st.Mode().Perm())
	}
	os.Chmod(p, 0o640)

	// Abort leaves nothing, and an existing file as it was.
	f, err := Create(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("three"))
	f.Abort()
	f.Abort()
	if b, _ := os.ReadFile(p); string(b) != "zero" {
		t.Errorf("aborted write changed the file to %q", b)
	}
	onlyFiles(t, dir, "out.safetensors")
}

// TestModeUmask: a new file is 0666 &^ umask; an overwritten 0644 file
// stays 0644 whatever the umask.
func TestModeUmask(t *testing.T) {
	for _, c := range []struct {
		umask int
		want  fs.FileMode
	}{{0o022, 0o644}, {0o077, 0o600}, {0o002, 0o664}} {
		t.Run(fmt.Sprintf("%04o", c.umask), func(t *testing.T) {
			old := syscall.Umask(c.umask)
			defer syscall.Umask(old)
			dir := t.TempDir()
			p := filepath.Join(dir, "new.bin")
			if err := write(t, p, "x"); err != nil {
				t.Fatal(err)
			}
			if st, _ := os.Stat(p); st.Mode().Perm() != c.want {
				t.Errorf("umask %04o: new file has mode %v, want %v", c.umask, st.Mode().Perm(), c.want)
			}
			q := filepath.Join(dir, "old.bin")
			os.WriteFile(q, []byte("old"), 0o644)
			os.Chmod(q, 0o644)
			if err := write(t, q, "new"); err != nil {
				t.Fatal(err)
			}
			if st, _ := os.Stat(q); st.Mode().Perm() != 0o644 {
				t.Errorf("umask %04o: overwritten 0644 file has mode %v", c.umask, st.Mode().Perm())
			}
		})
	}
}

// TestRefusesNonRegular: a FIFO, a character device, a symbolic link to a
// device and a folder are refused, and each node is left as it was.
func TestRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{fifo: "not a regular file (a named pipe)", dir: "is a folder"}
	link := filepath.Join(dir, "link-to-null")
	if err := os.Symlink("/dev/null", link); err != nil {
		t.Fatal(err)
	}
	cases[link] = "not a regular file (a character device)"
	if os.Geteuid() == 0 {
		// A device node of our own, so that a failure harms nothing else:
		// the same numbers as /dev/full.
		dev := filepath.Join(dir, "full")
		if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, int(1<<8|7)); err != nil {
			t.Fatalf("mknod as root: %v", err)
		}
		cases[dev] = "not a regular file (a character device)"
		link2 := filepath.Join(dir, "link-to-full")
		os.Symlink(dev, link2)
		cases[link2] = "not a regular file (a character device)"
	} else {
		t.Log("not root: no device node of our own; the symbolic link to /dev/null stands for it")
	}
	modes := map[string]fs.FileMode{}
	for p := range cases {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		modes[p] = st.Mode()
	}
	for p, want := range cases {
		_, err := Create(p, nil)
		var oe *Error
		if !errors.As(err, &oe) || !oe.Refused || !strings.Contains(err.Error(), want) {
			t.Errorf("Create(%s): %v, want a refusal saying %q", p, err, want)
		}
	}
	for p, m := range modes {
		st, err := os.Lstat(p)
		if err != nil || st.Mode() != m {
			t.Errorf("%s changed: mode %v, was %v (%v)", p, st.Mode(), m, err)
		}
	}
	if st, err := os.Stat("/dev/null"); err != nil || st.Mode()&fs.ModeCharDevice == 0 {
		t.Errorf("/dev/null is no longer a character device: %v %v", st.Mode(), err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".qkv-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestSymlinkToFile: a link to a regular file writes that file; the link
// stays a link.
func TestSymlinkToFile(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.bin")
	os.WriteFile(real, []byte("old"), 0o644)
	link := filepath.Join(dir, "link.bin")
	os.Symlink("real.bin", link)
	if err := write(t, link, "new"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(real); string(b) != "new" {
		t.Errorf("target holds %q", b)
	}
	if st, _ := os.Lstat(link); st.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the link was replaced by a %v", st.Mode())
	}
	dangling := filepath.Join(dir, "dangling")
	os.Symlink("nowhere", dangling)
	if _, err := Create(dangling, nil); err == nil || !strings.Contains(err.Error(), "symbolic link to nothing") {
		t.Errorf("dangling link: %v", err)
	}
}

func TestStdout(t *testing.T) {
	for _, p := range []string{"-", "/dev/stdout"} {
		var buf bytes.Buffer
		f, err := Create(p, &buf)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("bytes"))
		if err := f.Commit(); err != nil || buf.String() != "bytes" {
			t.Errorf("%s: %q, %v", p, buf.String(), err)
		}
	}
}

func TestMissingFolder(t *testing.T) {
	p := filepath.Join(t.TempDir(), "no", "such", "out.bin")
	_, err := Create(p, nil)
	var oe *Error
	if !errors.As(err, &oe) || oe.Refused || err.Error() != "cannot write "+p+": no such file or folder" {
		t.Errorf("%v", err)
	}
}

// TestSignalRemovesTemporary re-runs this test binary as a child that
// starts a file, writes to it and waits; SIGINT or SIGTERM must kill it
// (by the signal) and leave no temporary file.
func TestSignalRemovesTemporary(t *testing.T) {
	if dir := os.Getenv("OUTFILE_SIGNAL_CHILD"); dir != "" {
		f, err := Create(filepath.Join(dir, "out.bin"), nil)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		f.Write(make([]byte, 1<<21)) // past the buffer: bytes on disk
		fmt.Println("ready")
		time.Sleep(time.Minute)
		os.Exit(3)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			c := exec.Command(os.Args[0], "-test.run", "^TestSignalRemovesTemporary$")
			c.Env = append(os.Environ(), "OUTFILE_SIGNAL_CHILD="+dir)
			out, _ := c.StdoutPipe()
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			n, _ := out.Read(buf)
			if !strings.Contains(string(buf[:n]), "ready") {
				c.Process.Kill()
				t.Fatalf("child: %q", buf[:n])
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 || !strings.Contains(ents[0].Name(), ".qkv-") {
				t.Fatalf("while writing, %s holds %v, want one temporary file", dir, ents)
			}
			c.Process.Signal(sig)
			err := c.Wait()
			ws, _ := c.ProcessState.Sys().(syscall.WaitStatus)
			if err == nil || !ws.Signaled() || ws.Signal() != sig {
				t.Errorf("child ended with %v (%v), want killed by %v", err, ws, sig)
			}
			onlyFiles(t, dir)
		})
	}
}
