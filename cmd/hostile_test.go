package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/safetensors"
	"github.com/qkvdev/qkv/internal/termui"
	"github.com/qkvdev/qkv/internal/testref"
)

// hostileCase mirrors internal/gen's HostileCase (testdata/hostile/expected.json).
type hostileCase struct {
	Class      string `json:"class"`
	Exit       int    `json:"exit"`
	Error      string `json:"error"`
	ListsDType string `json:"lists_dtype"`
	Cat        *struct {
		Tensor string `json:"tensor"`
		Exit   int    `json:"exit"`
		Error  string `json:"error"`
	} `json:"cat"`
	Runs []hostileRun `json:"runs"`
}

// hostileRun mirrors internal/gen's HostileRun: a command ("{}" is the
// corpus path) and its exit status, stderr line or text on stdout.
type hostileRun struct {
	Class  string   `json:"class"`
	Args   []string `json:"args"`
	Exit   int      `json:"exit"`
	Error  string   `json:"error"`
	Stdout string   `json:"stdout"`
}

// expectRun runs r and compares the outcome.
func expectRun(t *testing.T, r hostileRun, path string) {
	t.Helper()
	args := make([]string, len(r.Args))
	for i, a := range r.Args {
		args[i] = strings.ReplaceAll(a, "{}", path)
	}
	code, out, errs := run(args...)
	what := strings.Join(args, " ")
	if r.Exit == 0 || r.Exit == cmd.ExitFindings {
		if code != r.Exit {
			t.Errorf("%q: exit %d, want %d (stderr %q)", what, code, r.Exit, errs)
		}
		if !strings.Contains(out, r.Stdout) && !strings.Contains(spaced(out), spaced(r.Stdout)) {
			t.Errorf("%q: stdout does not hold %q:\n%s", what, r.Stdout, out)
		}
	} else {
		if r.Exit == cmd.ExitUsage {
			errs = trimUsageHint(errs)
		}
		checkFailure(t, fmt.Sprintf("%q", what), code, out, errs, r.Exit, r.Error)
	}
	checkSafe(t, what, out, errs)
}

// spaced is s with every run of white space one space: check's text wraps
// its messages to the terminal's width.
func spaced(s string) string { return strings.Join(strings.Fields(s), " ") }

// usageHint is the line qkv adds after a usage error, naming the command.
var usageHint = regexp.MustCompile(`\nRun 'qkv( [a-z]+)* --help' for usage\.\n$`)

// trimUsageHint removes the usage hint from stderr.
func trimUsageHint(errs string) string { return usageHint.ReplaceAllString(errs, "\n") }

// checkSafe: nothing qkv prints as text may drive a terminal — no control
// character but line breaks, no C1 control, bidi override or invalid UTF-8.
func checkSafe(t *testing.T, what, stdout, stderr string) {
	t.Helper()
	for _, x := range []struct{ name, text string }{{"stdout", stdout}, {"stderr", stderr}} {
		if clean := termui.CleanLines(x.text); clean != x.text {
			i := 0
			for i < len(clean) && i < len(x.text) && clean[i] == x.text[i] {
				i++
			}
			t.Errorf("%s: %s holds a character that reaches the terminal raw, at byte %d: %q", what, x.name, i, x.text[max(i-40, 0):min(i+40, len(x.text))])
		}
	}
}

// checkReason is the text check must print for a failure to open a file:
// the error without the file (the report names it) and without the tensor
// (the problem's line names it).
func checkReason(errLine, path string) string {
	s := strings.TrimPrefix(errLine, path+": ")
	s = strings.TrimPrefix(s, path+"/") // another file of the folder: named within it
	if i := strings.Index(s, `tensor "`); i >= 0 {
		if j := strings.Index(s[i:], `": `); j > 0 {
			s = s[:i] + s[i+j+3:]
		}
	}
	return s
}

func loadHostile(t *testing.T) map[string]hostileCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testref.RepoRoot(), "testdata", "hostile", "expected.json"))
	if err != nil {
		t.Fatalf("%v (run go generate ./... first)", err)
	}
	var m map[string]hostileCase
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) < 40 {
		t.Fatalf("expected.json lists %d cases, want at least 40", len(m))
	}
	return m
}

// run runs qkv in-process and returns the exit status, stdout and stderr.
func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cmd.Run(context.Background(), args, &cmd.Streams{In: strings.NewReader(""), Out: &out, Err: &errb, Width: 80})
	return code, out.String(), errb.String()
}

// checkFailure asserts exit status 3... (want), one stderr line "qkv: msg",
// nothing on stdout.
func checkFailure(t *testing.T, what string, code int, stdout, stderr string, wantCode int, wantMsg string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("%s: exit %d, want %d (stderr %q)", what, code, wantCode, stderr)
	}
	if stdout != "" {
		t.Errorf("%s: failure printed %d bytes on stdout: %.200q", what, len(stdout), stdout)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("%s: stderr is not one line: %q", what, stderr)
	}
	if wantMsg != "" {
		if got := strings.TrimSuffix(stderr, "\n"); got != "qkv: "+wantMsg {
			t.Errorf("%s:\n got  %s\n want qkv: %s", what, got, wantMsg)
		}
	}
}

// TestHostileCorpus runs ls, meta and cat on every file of testdata/hostile
// and compares exit status and message with expected.json.
func TestHostileCorpus(t *testing.T) {
	cases := loadHostile(t)
	t.Chdir(testref.RepoRoot()) // messages name files as a user at the root sees them
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		c := cases[name]
		path := "testdata/hostile/" + name
		t.Run(name, func(t *testing.T) {
			for _, sub := range []string{"ls", "meta"} {
				code, out, errs := run(sub, path)
				checkSafe(t, sub, out, errs)
				if c.Exit == 0 {
					if code != 0 || errs != "" {
						t.Errorf("%s: exit %d, stderr %q; want success", sub, code, errs)
					}
					if sub == "ls" && c.ListsDType != "" && !strings.Contains(out, termui.Name(c.ListsDType)) {
						t.Errorf("ls does not list dtype %q:\n%s", c.ListsDType, out)
					}
					continue
				}
				checkFailure(t, sub, code, out, errs, c.Exit, c.Error)
			}
			if c.ListsDType != "" {
				code, out, errs := run("ls", "--json", path)
				var rep struct {
					Tensors []struct {
						DType string `json:"dtype"`
					} `json:"tensors"`
					Totals struct {
						Parameters int64 `json:"parameters"`
						Bytes      int64 `json:"bytes"`
					} `json:"totals"`
				}
				if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil || len(rep.Tensors) == 0 || rep.Tensors[0].DType != c.ListsDType {
					t.Errorf("ls --json: exit %d, err %v, stderr %q, output %.300s; want dtype %q", code, err, errs, out, c.ListsDType)
				}
				if rep.Totals.Parameters < 0 || rep.Totals.Bytes < 0 {
					t.Errorf("ls --json: totals overflowed: %+v", rep.Totals)
				}
			}
			if c.Cat != nil {
				code, out, errs := run("cat", path, c.Cat.Tensor)
				if c.Cat.Exit == 0 {
					if code != 0 {
						t.Errorf("cat: exit %d, stderr %q", code, errs)
					}
				} else {
					checkFailure(t, "cat", code, out, errs, c.Cat.Exit, c.Cat.Error)
				}
			} else if c.Exit != 0 {
				// cat fails the same way: opening comes first.
				code, out, errs := run("cat", path, "x")
				checkFailure(t, "cat", code, out, errs, c.Exit, c.Error)
			}
			// The commands that find layers open the same way first.
			for _, sub := range []string{"inspect", "layers"} {
				code, out, errs := run(sub, path)
				if c.Exit != 0 {
					checkFailure(t, sub, code, out, errs, c.Exit, c.Error)
				} else if code != 0 {
					checkFailure(t, sub, code, out, errs, cmd.ExitInput, "")
				}
			}
			// check reports a malformed file as a failed "structure" check
			// (exit 1, the reason on stdout) and one it cannot read at all
			// as exit 3.
			code, out, errs := run("check", path)
			checkSafe(t, "check", out, errs)
			switch {
			case code == cmd.ExitInput:
				checkFailure(t, "check", code, out, errs, cmd.ExitInput, c.Error)
			case code == cmd.ExitFindings && c.Exit != 0:
				if reason := checkReason(c.Error, path); !strings.Contains(spaced(out), spaced(reason)) {
					t.Errorf("check: exit 1 but stdout does not give the reason %q:\n%s", reason, out)
				}
				if strings.Contains(out, path+": "+path) {
					t.Errorf("check: a line repeats its prefix:\n%s", out)
				}
			case code == cmd.ExitFindings || code == cmd.ExitOK:
			default:
				t.Errorf("check: exit %d, stderr %q", code, errs)
			}
			for _, r := range c.Runs {
				expectRun(t, r, path)
			}
		})
	}
}

// TestHostileArgs runs testdata/hostile/args.json: flag values and named
// files every command must refuse, with the exact message, and leaves the
// files it names as they were.
func TestHostileArgs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(testref.RepoRoot(), "testdata", "hostile", "args.json"))
	if err != nil {
		t.Fatalf("%v (run go generate ./... first)", err)
	}
	var cases map[string]hostileRun
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	t.Chdir(testref.RepoRoot())
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	before := snapshotDir(t, "testdata")
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			done := make(chan struct{})
			go func() {
				defer close(done)
				expectRun(t, cases[name], "")
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("%s: still running after 20 s (a named file that never ends?)", name)
			}
		})
	}
	if after := snapshotDir(t, "testdata"); after != before {
		t.Errorf("refused commands changed testdata:\n%s", lineDiff(before, after))
	}
	for _, dev := range []string{"/dev/full", "/dev/null", "/dev/zero"} {
		if st, err := os.Stat(dev); err == nil && st.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("%s is no longer a character device (%v)", dev, st.Mode())
		}
	}
}

// snapshotDir lists every path under dir with its size and mode.
func snapshotDir(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if st, err := d.Info(); err == nil {
			fmt.Fprintf(&b, "%s %d %v\n", p, st.Size(), st.Mode())
		}
		return nil
	})
	return b.String()
}

// TestHostileCorpusSmall keeps the corpus within its size budget.
func TestHostileCorpusSmall(t *testing.T) {
	root := filepath.Join(testref.RepoRoot(), "testdata", "hostile")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, err := d.Info()
		if err == nil && st.Size() >= 64<<10 {
			t.Errorf("%s is %d bytes, want < 64 KB", p, st.Size())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// headerEnd returns where the header of a checkpoint file ends: the data
// offset of a GGUF or safetensors file.
func headerEnd(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gguf") {
		f, err := gguf.Parse(b, gguf.Options{})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return f.DataOffset
	}
	f, err := safetensors.Parse(b, safetensors.Options{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f.DataOffset
}

// truncationOffsets lists a few lengths to cut a file to: inside the magic
// and the counts, and in the middle and at the end of the header. Every
// byte of every header is cut in-process by the parsers' own tests
// (formats/gguf and formats/safetensors truncate_test.go); here the
// command's contract on such a file is checked.
func truncationOffsets(end int64) []int64 {
	var out []int64
	for _, n := range []int64{0, 1, 4, 7, 8, 12, 16, 24, 40, end / 3, end / 2, end - 8, end - 1} {
		if n >= 0 && n < end && (len(out) == 0 || n > out[len(out)-1]) {
			out = append(out, n)
		}
	}
	return out
}

// TestTruncatedFixtures cuts fixtures at a few offsets inside their header
// and checks that each cut file is refused with exit 3 and one line
// naming it.
func TestTruncatedFixtures(t *testing.T) {
	root := testref.RepoRoot()
	files, _ := filepath.Glob(filepath.Join(root, "testdata", "gguf", "*.gguf"))
	files = append(files, filepath.Join(root, "testdata", "tiny-llama", "model.safetensors"))
	if len(files) < 2 {
		t.Fatal("no fixtures in testdata (run go generate ./...)")
	}
	for _, src := range files {
		t.Run(filepath.Base(src), func(t *testing.T) { cutEverywhere(t, src) })
	}
	t.Run("shared", func(t *testing.T) {
		shared := testref.SharedDir(t)
		for _, rel := range []string{
			"fixtures/gguf/stories260k-v3-f32/stories260K.gguf",
			"fixtures/safetensors/gpt2-tiny-random/model.safetensors",
		} {
			src := filepath.Join(shared, filepath.FromSlash(rel))
			t.Run(filepath.Base(src), func(t *testing.T) { cutEverywhere(t, src) })
		}
	})
}

func cutEverywhere(t *testing.T, src string) {
	if _, err := os.Stat(src); err != nil {
		t.Skip(err)
	}
	end := headerEnd(t, src)
	full, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	// A plain name: split-set names would send qkv looking for the other
	// parts, which is not what this test is about.
	dst := filepath.Join(t.TempDir(), "cut"+filepath.Ext(src))
	if err := os.WriteFile(dst, full[:end], 0o644); err != nil {
		t.Fatal(err)
	}
	offs := truncationOffsets(end)
	// Cut from the longest down so that each cut is one truncate.
	for i := len(offs) - 1; i >= 0; i-- {
		n := offs[i]
		if err := os.Truncate(dst, n); err != nil {
			t.Fatal(err)
		}
		code, out, errs := run("ls", dst)
		if code != cmd.ExitInput || out != "" || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "qkv: "+dst+": ") {
			t.Fatalf("cut at %d of %d: exit %d, stdout %.100q, stderr %q", n, end, code, out, errs)
		}
	}
	t.Logf("%d cuts of a %d-byte header", len(offs), end)
}

// TestTruncatedWhileMapped opens a checkpoint, cuts the file under the
// mapping and decodes a tensor whose pages are gone: an error, not a crash.
func TestTruncatedWhileMapped(t *testing.T) {
	src := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama", "model.safetensors")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"model.safetensors", "model.gguf"} {
		t.Run(name, func(t *testing.T) {
			data := b
			if name == "model.gguf" {
				data, err = os.ReadFile(filepath.Join(testref.RepoRoot(), "testdata", "gguf", "tiny-llama-f16.gguf"))
				if err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			ck, err := formats.Open(p, formats.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			// The tensor furthest into the file.
			last := ck.Tensors[0]
			for _, x := range ck.Tensors {
				if x.Offset > last.Offset {
					last = x
				}
			}
			page := int64(os.Getpagesize())
			cut := (last.Offset/page - 1) * page // whole pages before the tensor
			if cut <= 0 {
				t.Fatalf("tensor %s at %d is too near the start to cut before it", last.Name, last.Offset)
			}
			if err := os.Truncate(p, cut); err != nil {
				t.Fatal(err)
			}
			_, err = ck.DecodeNew(last)
			var fe *formats.Error
			if !errors.As(err, &fe) {
				t.Fatalf("DecodeNew after truncation: %v (%T), want a *formats.Error", err, err)
			}
			if !strings.Contains(err.Error(), "changed while it was read") || fe.Tensor != last.Name || fe.File != p {
				t.Errorf("message %q does not say the file shrank, or names the wrong tensor/file", err)
			}
			err = ck.ReadRaw(last, func(b []byte) error {
				for _, x := range b {
					rawSink += x
				}
				return nil
			})
			if !errors.As(err, &fe) {
				t.Fatalf("ReadRaw after truncation: %v, want a *formats.Error", err)
			}
		})
	}
}

var rawSink byte // keeps the read in ReadRaw's callback from being optimized away

// copyDir copies the regular files of src into a new folder.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestPermissions: read-only files and folders open normally (qkv never
// writes); unreadable ones give a clear "permission denied", exit 3.
func TestPermissions(t *testing.T) {
	dir := copyDir(t, filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama"))
	model := filepath.Join(dir, "model.safetensors")
	cfg := filepath.Join(dir, "config.json")
	for _, p := range []string{model, cfg} {
		if err := os.Chmod(p, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	for _, args := range [][]string{{"ls", dir}, {"meta", dir}, {"ls", model}, {"cat", model, "model.norm.weight"}} {
		if code, _, errs := run(args...); code != 0 {
			t.Errorf("read-only %v: exit %d, %q", args, code, errs)
		}
	}

	// Unreadable files: as root, permission bits do not stop reads, so run
	// the built binary as an unprivileged user instead.
	runU := run
	if os.Geteuid() == 0 {
		if qkvBinary == "" {
			t.Skip("running as root without a built qkv binary: permission bits do not stop root's reads, so the unreadable cases cannot be tested")
		}
		runU = func(args ...string) (int, string, string) { return runAsNobody(t, args...) }
		// Let the unprivileged user reach the copy.
		for p := filepath.Dir(dir); p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
			os.Chmod(p, 0o755)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runU("ls", model); code != 0 {
		t.Fatalf("readable model: exit %d, %q (the unprivileged run itself fails)", code, errs)
	}
	if err := os.Chmod(model, 0o000); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runU("ls", model)
	t.Logf("unreadable file: exit %d, %s", code, strings.TrimSpace(errs))
	checkFailure(t, "unreadable file", code, out, errs, cmd.ExitInput, model+": permission denied (the file cannot be read)")
	code, out, errs = runU("ls", dir)
	checkFailure(t, "folder with an unreadable model", code, out, errs, cmd.ExitInput, model+": permission denied (the file cannot be read)")
	os.Chmod(model, 0o444)
	if err := os.Chmod(cfg, 0o000); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runU("ls", dir)
	checkFailure(t, "unreadable config.json", code, out, errs, cmd.ExitInput, cfg+": permission denied (the file cannot be read)")
	os.Chmod(cfg, 0o444)
	if err := os.Chmod(dir, 0o000); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runU("ls", dir)
	t.Logf("unreadable folder: exit %d, %s", code, strings.TrimSpace(errs))
	checkFailure(t, "unreadable folder", code, out, errs, cmd.ExitInput, "")
	if !strings.Contains(errs, "permission denied") {
		t.Errorf("unreadable folder: %q does not say permission denied", errs)
	}
}

// runAsNobody runs the built binary as uid/gid 65534.
func runAsNobody(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	c := exec.Command(qkvBinary, args...)
	asNobody(c)
	c.Dir = "/"
	c.Env = []string{"NO_COLOR=1", "PATH=/usr/bin:/bin"}
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Skipf("cannot run qkv as an unprivileged user: %v", err)
	}
	return c.ProcessState.ExitCode(), out.String(), errb.String()
}

// TestNonRegularFiles: a named pipe (FIFO) given as the checkpoint, found in
// a folder, or sitting where config.json goes must be refused with exit 3,
// not wait forever for a writer. The built binary runs as a child with a
// deadline so that a hang fails the test instead of stalling it.
func TestNonRegularFiles(t *testing.T) {
	if qkvBinary == "" {
		t.Skip("the go tool is unavailable or the build failed: cannot build qkv to run it with a deadline")
	}
	model, err := os.ReadFile(filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	mkfifo := func(p string) {
		if err := mkfifo(p); err != nil {
			t.Skipf("cannot make a FIFO: %v", err)
		}
	}
	root := t.TempDir()
	lone := filepath.Join(root, "pipe.safetensors")
	mkfifo(lone)
	inDir := filepath.Join(root, "fifo-model")
	os.Mkdir(inDir, 0o755)
	mkfifo(filepath.Join(inDir, "model.safetensors"))
	cfgDir := filepath.Join(root, "fifo-config")
	os.Mkdir(cfgDir, 0o755)
	if err := os.WriteFile(filepath.Join(cfgDir, "model.safetensors"), model, 0o644); err != nil {
		t.Fatal(err)
	}
	mkfifo(filepath.Join(cfgDir, "config.json"))
	// All at once, so that a hang costs one deadline.
	type result struct {
		path, out, errs string
		code            int
		hung            bool
	}
	paths := []string{lone, inDir, cfgDir}
	results := make(chan result, len(paths))
	for _, path := range paths {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c := exec.CommandContext(ctx, qkvBinary, "ls", path)
			var out, errb bytes.Buffer
			c.Stdout, c.Stderr = &out, &errb
			c.Run()
			results <- result{path, out.String(), errb.String(), c.ProcessState.ExitCode(), ctx.Err() != nil}
		}()
	}
	for range paths {
		r := <-results
		if r.hung {
			t.Errorf("ls %s: still running after 5 s: qkv blocks opening a FIFO (check that the file is regular before opening it)", r.path)
			continue
		}
		checkFailure(t, "ls "+r.path, r.code, r.out, r.errs, cmd.ExitInput, "")
		if !strings.HasPrefix(r.errs, "qkv: "+r.path) {
			t.Errorf("ls %s: %q does not name the file", r.path, r.errs)
		}
	}
}

// ---- bounded memory: the real binary as a child ------------------------------

var qkvBinary string // built once by TestMain; "" when go is unavailable

func TestMain(m *testing.M) {
	rssProxyMain()
	code := func() int {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool, err = exec.LookPath(filepath.Join(runtime.GOROOT(), "bin", "go"))
		}
		if err == nil {
			dir, err := os.MkdirTemp("", "qkv-bin-")
			if err == nil {
				os.Chmod(dir, 0o755) // TestPermissions runs it as an unprivileged user
				defer os.RemoveAll(dir)
				bin := filepath.Join(dir, "qkv")
				c := exec.Command(goTool, "build", "-o", bin, ".")
				c.Dir = testref.RepoRoot()
				if out, err := c.CombinedOutput(); err != nil {
					fmt.Fprintf(os.Stderr, "building qkv for the memory test failed: %v\n%s", err, out)
				} else {
					qkvBinary = bin
				}
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// maxRSS runs the binary and returns its exit status, stderr and peak RSS
// in bytes.
func maxRSS(t *testing.T, args ...string) (int, string, int64) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rss")
	c := exec.Command(os.Args[0], append([]string{qkvBinary}, args...)...)
	c.Dir = testref.RepoRoot()
	var errb bytes.Buffer
	c.Stdout = io.Discard
	c.Stderr = &errb
	c.Env = append(os.Environ(), "NO_COLOR=1", rssProxyEnv+"="+out)
	err := c.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if c.ProcessState.ExitCode() == 125 {
		t.Fatalf("the RSS proxy failed: %s", errb.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rss, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || rss < 0 {
		t.Skip("no rusage on this platform")
	}
	return c.ProcessState.ExitCode(), errb.String(), rss
}

// TestHostileMemory runs the built binary on every hostile file and checks
// its peak RSS stays below 64 MB plus the file's size.
func TestHostileMemory(t *testing.T) {
	if qkvBinary == "" {
		t.Skip("the go tool is unavailable or the build failed: cannot build qkv to measure it")
	}
	if runtime.GOOS != "linux" {
		t.Skip("ru_maxrss units differ off Linux")
	}
	cases := loadHostile(t)
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	const budget = 64 << 20
	var worst int64
	for _, name := range names {
		c := cases[name]
		path := "testdata/hostile/" + name
		var size int64
		filepath.WalkDir(filepath.Join(testref.RepoRoot(), filepath.FromSlash(path)), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if st, err := d.Info(); err == nil {
					size += st.Size()
				}
			}
			return nil
		})
		cmds := [][]string{{"ls", path}, {"meta", path}, {"inspect", path}}
		if c.Cat != nil {
			cmds = append(cmds, []string{"cat", path, c.Cat.Tensor})
		}
		for _, args := range cmds {
			code, errs, rss := maxRSS(t, args...)
			worst = max(worst, rss)
			want := c.Exit
			switch {
			case args[0] == "cat":
				want = c.Cat.Exit
			case args[0] == "inspect" && c.Exit == 0:
				want = code // files that open may still hold no attention layers
			}
			if code != want {
				t.Errorf("%v: exit %d, want %d (%s)", args, code, want, strings.TrimSpace(errs))
			}
			if rss > budget+size {
				t.Errorf("%v: peak RSS %d bytes, over 64 MB + the file's %d bytes", args, rss, size)
			}
		}
	}
	t.Logf("largest peak RSS over the corpus: %.1f MB", float64(worst)/(1<<20))
}
