//go:build unix

package cmd_test

// Issue 11, "never harmful": output paths that are not regular files are
// refused and left intact, temporary files never outlive the process (not
// even a SIGINT or SIGTERM), new files honour the umask, and memory stays
// bounded by what is printed or written.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/testref"
)

// node is a file-system node a test must leave as it was.
type node struct {
	path string
	mode fs.FileMode
	rdev uint64
}

func lstatNode(t *testing.T, p string) node {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	n := node{path: p, mode: st.Mode()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		n.rdev = uint64(sys.Rdev)
	}
	return n
}

// runWithin runs qkv in-process and fails the test if it has not returned
// after d (writing into a FIFO would block forever).
func runWithin(t *testing.T, d time.Duration, args ...string) (int, string, string) {
	t.Helper()
	type result struct {
		code      int
		out, errs string
	}
	ch := make(chan result, 1)
	go func() {
		code, out, errs := runQKV(80, args...)
		ch <- result{code, out, errs}
	}()
	select {
	case r := <-ch:
		return r.code, r.out, r.errs
	case <-time.After(d):
		t.Fatalf("qkv %s: still running after %v", strings.Join(args, " "), d)
		return 0, "", ""
	}
}

// TestOutputRefusesNonRegular: export -o, extract -o, attn --out and verify
// --write-manifest refuse a FIFO, a character device (a node of our own,
// made when running as root), a symbolic link to a device or FIFO and a
// folder, with exit 2 and one line; every node is left as it was and no
// temporary file is left beside it.
func TestOutputRefusesNonRegular(t *testing.T) {
	model := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	dir := t.TempDir()
	want := map[string]string{}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	want[fifo] = "not a regular file (a named pipe)"
	linkFifo := filepath.Join(dir, "link-to-fifo")
	os.Symlink(fifo, linkFifo)
	want[linkFifo] = "not a regular file (a named pipe)"
	sub := filepath.Join(dir, "folder")
	os.Mkdir(sub, 0o755)
	want[sub] = "is a folder; name a file to write"
	if os.Geteuid() == 0 {
		// /dev/full's numbers, in our own folder: a regression replaces
		// this node, not the system's.
		dev := filepath.Join(dir, "full")
		if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, 1<<8|7); err != nil {
			t.Fatalf("mknod as root: %v", err)
		}
		want[dev] = "not a regular file (a character device)"
		link := filepath.Join(dir, "link-to-full")
		os.Symlink(dev, link)
		want[link] = "not a regular file (a character device)"
	} else {
		t.Log("not root: no character device of our own to test with")
	}
	var nodes []node
	for p := range want {
		nodes = append(nodes, lstatNode(t, p))
	}
	commands := []struct {
		flag string
		args []string
	}{
		{"-o", []string{"export", model, "-o"}},
		{"-o", []string{"extract", model, "-o"}},
		{"--out", []string{"attn", model, "--random", "2", "--out"}},
		{"--write-manifest", []string{"verify", model, "--write-manifest"}},
	}
	for _, c := range commands {
		for p, msg := range want {
			args := append(append([]string{}, c.args...), p)
			code, out, errs := runWithin(t, 20*time.Second, args...)
			errs = trimUsageHint(errs)
			checkFailure(t, strings.Join(args, " "), code, out, errs, cmd.ExitUsage, c.flag+" "+p+": "+msg+
				map[bool]string{true: "; qkv writes only regular files, or - for standard output", false: ""}[strings.HasPrefix(msg, "not a regular")])
		}
	}
	for _, n := range nodes {
		if now := lstatNode(t, n.path); now != n {
			t.Errorf("%s changed: %+v, was %+v", n.path, now, n)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".qkv-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	// attn's report is on stdout, so --out - is refused; export streams.
	code, _, errs := runQKV(80, "attn", model, "--random", "2", "--out", "-")
	if code != cmd.ExitUsage || !strings.Contains(errs, "--out -: standard output carries attn's report") {
		t.Errorf("attn --out -: exit %d, %q", code, errs)
	}
}

// TestExportStdout: -o - writes the same bytes as a file, to stdout.
func TestExportStdout(t *testing.T) {
	model := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	p := filepath.Join(t.TempDir(), "out.safetensors")
	exportTo(t, model, p)
	want, _ := os.ReadFile(p)
	for _, o := range []string{"-", "/dev/stdout"} {
		code, out, errs := runQKV(80, "export", model, "-o", o)
		if code != 0 || out != string(want) {
			t.Errorf("export -o %s: exit %d, %d bytes on stdout (want %d), %q", o, code, len(out), len(want), errs)
		}
	}
}

// TestOutputModes: under umask 022 and 077 a new output is 0644 and 0600
// (0666 &^ umask), and an existing 0644 file keeps 0644.
func TestOutputModes(t *testing.T) {
	model := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	for _, c := range []struct {
		umask int
		want  fs.FileMode
	}{{0o022, 0o644}, {0o077, 0o600}} {
		t.Run(fmt.Sprintf("umask %04o", c.umask), func(t *testing.T) {
			old := syscall.Umask(c.umask)
			defer syscall.Umask(old)
			dir := t.TempDir()
			for _, args := range [][]string{{"export", model, "-o"}, {"extract", model, "-o"}, {"attn", model, "--random", "2", "--json", "--out"}} {
				p := filepath.Join(dir, args[0]+".safetensors")
				if code, _, errs := runQKV(80, append(args, p)...); code != 0 {
					t.Fatalf("%v: exit %d %s", args, code, errs)
				}
				if st, _ := os.Stat(p); st.Mode().Perm() != c.want {
					t.Errorf("%s: new file has mode %v, want %v", args[0], st.Mode().Perm(), c.want)
				}
				os.Chmod(p, 0o644)
				if code, _, errs := runQKV(80, append(args, p)...); code != 0 {
					t.Fatalf("%v: exit %d %s", args, code, errs)
				}
				if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
					t.Errorf("%s: overwritten 0644 file has mode %v", args[0], st.Mode().Perm())
				}
			}
		})
	}
}

// writeSparseTensor writes a safetensors file of one tensor of the given
// dtype and shape whose data is a hole (no disk space, reads as zeros).
func writeSparseTensor(t *testing.T, path, dtype string, shape []int64, elemBytes int64) int64 {
	t.Helper()
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	size := n * elemBytes
	hdr := fmt.Sprintf(`{"w":{"dtype":%q,"shape":[%d,%d],"data_offsets":[0,%d]}}`, dtype, shape[0], shape[1], size)
	for len(hdr)%8 != 0 {
		hdr += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, int64(len(b))+size); err != nil {
		t.Fatal(err)
	}
	return int64(len(b)) + size
}

// TestExportSignal runs the built binary exporting a 256 MB tensor, sends
// SIGINT or SIGTERM once its temporary file exists, and checks that the
// process died of the signal leaving neither the temporary file nor an
// output behind.
func TestExportSignal(t *testing.T) {
	if qkvBinary == "" {
		t.Skip("the go tool is unavailable or the build failed: cannot run qkv as a child")
	}
	src := filepath.Join(t.TempDir(), "big.safetensors")
	writeSparseTensor(t, src, "F16", []int64{8192, 16384}, 2) // 256 MB, 512 MB as F32
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.safetensors")
			c := exec.Command(qkvBinary, "export", src, "-o", out)
			var errb bytes.Buffer
			c.Stderr = &errb
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			seen := ""
			for deadline := time.Now().Add(20 * time.Second); seen == "" && time.Now().Before(deadline); {
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					if st, err := e.Info(); err == nil && strings.Contains(e.Name(), ".qkv-") && st.Size() > 0 {
						seen = e.Name()
					}
				}
				if seen == "" {
					time.Sleep(time.Millisecond)
				}
			}
			if seen == "" {
				c.Process.Kill()
				c.Wait()
				t.Fatalf("no temporary file appeared in %s (stderr %q)", dir, errb.String())
			}
			c.Process.Signal(sig)
			err := c.Wait()
			ws, _ := c.ProcessState.Sys().(syscall.WaitStatus)
			if err == nil || !ws.Signaled() || ws.Signal() != sig {
				t.Errorf("export ended with %v (%v), want killed by %v; stderr %q", err, ws, sig, errb.String())
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				t.Errorf("%s left behind after %v (the temporary file was %s)", e.Name(), sig, seen)
			}
		})
	}
}

// TestMemoryBounded runs the built binary on files larger than what it
// may hold: cat --rows 1 and export of a 64 MB F16 tensor (128 MB as
// float32) and check of a 256 MB F32 tensor must stay well below those
// sizes (cat and export decoded the whole tensor at once, about 200 MB;
// check kept every mapped page resident, about 330 MB).
func TestMemoryBounded(t *testing.T) {
	if qkvBinary == "" {
		t.Skip("the go tool is unavailable or the build failed: cannot measure qkv")
	}
	if runtime.GOOS != "linux" {
		t.Skip("ru_maxrss units differ off Linux")
	}
	dir := t.TempDir()
	f16 := filepath.Join(dir, "f16.safetensors")
	writeSparseTensor(t, f16, "F16", []int64{2048, 16384}, 2)
	f32 := filepath.Join(dir, "f32.safetensors")
	writeSparseTensor(t, f32, "F32", []int64{4096, 16384}, 4)
	for _, c := range []struct {
		args   []string
		code   int
		budget int64
	}{
		{[]string{"cat", f16, "w", "--rows", "1"}, 0, 80 << 20},
		{[]string{"export", f16, "-o", filepath.Join(dir, "out.safetensors")}, 0, 80 << 20},
		{[]string{"check", f32}, cmd.ExitFindings, 200 << 20},
	} {
		start := time.Now()
		code, errs, rss := maxRSS(t, c.args...)
		t.Logf("qkv %s: peak RSS %.0f MB (%v)", c.args[0], float64(rss)/(1<<20), time.Since(start).Round(time.Millisecond))
		if code != c.code {
			t.Errorf("%v: exit %d, want %d (%s)", c.args, code, c.code, errs)
		}
		if rss > c.budget {
			t.Errorf("qkv %s: peak RSS %.0f MB, over the %d MB budget", c.args[0], float64(rss)/(1<<20), c.budget>>20)
		}
	}
}

// TestNamedFilesBounded: --rules, --baseline and --manifest naming a FIFO
// are refused at once (no wait for a writer), and a file over the cap is
// refused by its size without being read.
func TestNamedFilesBounded(t *testing.T) {
	model := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(big, 2<<30) // a 2 GB hole: over every cap
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"check", model, "--rules", fifo}, cmd.ExitUsage, "--rules " + fifo + ": not a regular file (a named pipe)"},
		{[]string{"check", model, "--baseline", fifo}, cmd.ExitInput, "--baseline " + fifo + ": not a regular file (a named pipe)"},
		{[]string{"verify", model, "--manifest", fifo}, cmd.ExitInput, "--manifest " + fifo + ": not a regular file (a named pipe)"},
		{[]string{"check", model, "--rules", big}, cmd.ExitUsage, "--rules " + big + ": 2147483648 bytes is more than the 1048576 this file may have"},
		{[]string{"check", model, "--baseline", big}, cmd.ExitInput, "--baseline " + big + ": 2147483648 bytes is more than the 268435456 this file may have"},
		{[]string{"verify", model, "--manifest", big}, cmd.ExitInput, "--manifest " + big + ": 2147483648 bytes is more than the 67108864 this file may have"},
	} {
		code, out, errs := runWithin(t, 20*time.Second, c.args...)
		checkFailure(t, strings.Join(c.args, " "), code, out, trimUsageHint(errs), c.code, c.msg)
	}
}
