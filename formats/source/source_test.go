package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/source/hubtest"
	"github.com/qkvdev/qkv/internal/testref"
)

func TestParseInput(t *testing.T) {
	c := newTestClient(t, nil, "", nil)
	for _, tc := range []struct {
		in             string
		remote, hub    bool
		repo, rev, pth string
		err            string
	}{
		{in: "hf://Qwen/Qwen3-8B", remote: true, hub: true, repo: "Qwen/Qwen3-8B", rev: "main"},
		{in: "hf://Qwen/Qwen3-8B@v1.0", remote: true, hub: true, repo: "Qwen/Qwen3-8B", rev: "v1.0"},
		{in: "hf://Qwen/Qwen3-8B@main/sub/model.safetensors", remote: true, hub: true, repo: "Qwen/Qwen3-8B", rev: "main", pth: "sub/model.safetensors"},
		{in: "hf://Qwen/Qwen3-8B/model.safetensors", remote: true, hub: true, repo: "Qwen/Qwen3-8B", rev: "main", pth: "model.safetensors"},
		{in: "hf://org/name@refs/pr/12/config.json", remote: true, hub: true, repo: "org/name", rev: "refs/pr/12", pth: "config.json"},
		{in: "hf://org/name@refs%2Fpr%2F12", remote: true, hub: true, repo: "org/name", rev: "refs/pr/12"},
		{in: "hf://models/org/name", remote: true, hub: true, repo: "org/name", rev: "main"},
		{in: "unsloth/Qwen3-8B-GGUF", remote: true, hub: true, repo: "unsloth/Qwen3-8B-GGUF", rev: "main"},
		{in: "unsloth/Qwen3-8B-GGUF@0123456789abcdef0123456789abcdef01234567", remote: true, hub: true, repo: "unsloth/Qwen3-8B-GGUF", rev: "0123456789abcdef0123456789abcdef01234567"},
		{in: "https://huggingface.co/org/name/resolve/main/a/b.gguf", remote: true, hub: true, repo: "org/name", rev: "main", pth: "a/b.gguf"},
		{in: "https://huggingface.co/org/name/blob/v2/model.safetensors", remote: true, hub: true, repo: "org/name", rev: "v2", pth: "model.safetensors"},
		{in: "https://example.com/models/x.gguf?sig=1", remote: true},
		{in: "https://huggingface.co/org/name", remote: true},
		{in: "./org/name", remote: false},
		{in: "model.gguf", remote: false},
		{in: "/abs/org/name", remote: false},
		{in: "hf://datasets/org/name", remote: true, err: "only model repositories"},
		{in: "hf://org", remote: true, err: "expected ORG/NAME"},
		{in: "hf://org/na--me", remote: true, err: "not a valid repository id"},
		{in: "hf://org/name/../x", remote: true, err: "segment"},
		{in: "hf://org/name@", remote: true, err: "not a revision"},
		{in: "hf://org/name@a..b", remote: true, err: "not a revision"},
		{in: "hf://org/name@../x", remote: true, err: "not a revision"},
		{in: "org/name/file.gguf", remote: false},
		{in: "https://user:pw@example.com/x.gguf", remote: true, err: "user name or password"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, remote, err := c.parseInput(tc.in)
			if remote != tc.remote {
				t.Fatalf("remote = %v", remote)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.hub != tc.hub || r.repo != tc.repo || r.rev != tc.rev || r.pth != tc.pth {
				t.Errorf("got hub=%v repo=%q rev=%q path=%q", r.hub, r.repo, r.rev, r.pth)
			}
		})
	}
	// An existing local folder named like a repository id stays local.
	d := t.TempDir()
	os.MkdirAll(filepath.Join(d, "org", "name"), 0o755)
	wd, _ := os.Getwd()
	os.Chdir(d)
	defer os.Chdir(wd)
	if IsRemote("org/name") {
		t.Error("an existing folder org/name was taken for a repository")
	}
	tg, err := c.Resolve(context.Background(), "org/name")
	if err != nil || tg.Kind != KindLocal || tg.File != "" {
		t.Errorf("local folder: %+v %v", tg, err)
	}
}

func TestLocal(t *testing.T) {
	p := repoDir("testdata", "tiny-llama-sharded", "model-00002-of-00002.safetensors")
	truth := readFile(t, p)
	src, err := OpenLocal(p)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Size() != int64(len(truth)) || src.Name() != p {
		t.Fatalf("size %d name %s", src.Size(), src.Name())
	}
	mustBytes(t, src, truth, 10, 100)
	b1, _ := src.Bytes(10, 5)
	b2, _ := src.Bytes(10, 5)
	if &b1[0] != &b2[0] || &src.Data()[10] != &b1[0] {
		t.Error("Bytes of a mapped file copies")
	}
	for _, r := range [][2]int64{{-1, 1}, {0, -1}, {int64(len(truth)), 1}, {1, int64(len(truth))}, {1 << 62, 1 << 62}} {
		if _, err := src.Bytes(r[0], r[1]); err == nil {
			t.Errorf("Bytes(%d, %d) outside the file: no error", r[0], r[1])
		}
	}
	buf := make([]byte, 20)
	if n, err := src.ReadAt(buf, int64(len(truth))-10); n != 10 || err != io.EOF || !bytes.Equal(buf[:10], truth[len(truth)-10:]) {
		t.Errorf("ReadAt at the end: %d %v", n, err)
	}
	// The whole file as one prefix, without copying.
	pre, err := ReadPrefix(src, 16, 0, 4, func(b []byte) error { return nil })
	if err != nil || len(pre) != len(truth) || &pre[0] != &src.Data()[0] {
		t.Error("ReadPrefix of a local file is not the mapping")
	}
	if pre, _ := SafetensorsPrefix(src, 0); len(pre) != len(truth) {
		t.Error("SafetensorsPrefix of a local file is not the whole mapping")
	}
	// Release advises only on bytes of the file's own mapping (DONTNEED
	// on heap memory would zero it); released pages read back unchanged.
	heap := bytes.Repeat([]byte{1}, 1<<16)
	src.Release(heap)
	if !bytes.Equal(heap, bytes.Repeat([]byte{1}, 1<<16)) {
		t.Fatal("heap memory changed after Release")
	}
	all, _ := src.Bytes(0, src.Size())
	src.Release(all)
	if !bytes.Equal(all, truth) {
		t.Fatal("the mapping reads differently after Release")
	}

	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.gguf")
	if err := mkfifo(fifo); err == nil {
		if _, err := OpenLocal(fifo); err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Errorf("FIFO: %v", err)
		}
	}
	if _, err := OpenLocal(dir); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Errorf("folder: %v", err)
	}
	_, err = OpenLocal(filepath.Join(dir, "nope"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no such file or folder") {
		t.Errorf("missing: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	if e, err := OpenLocal(empty); err != nil || e.Size() != 0 {
		t.Errorf("empty: %v", err)
	} else {
		e.Close()
	}
}

// ggufParse parses a prefix of a GGUF file the way formats does: every
// bound against the real size; a header that continues past the prefix
// (gguf.ErrTruncated) asks for more.
func ggufParse(size int64, out **gguf.File) func([]byte) error {
	return func(b []byte) error {
		f, err := gguf.Parse(b, gguf.Options{Size: size})
		if errors.Is(err, gguf.ErrTruncated) {
			return NeedMore(err)
		}
		if err != nil {
			return err
		}
		*out = f
		return nil
	}
}

func TestGGUFGrowingWindow(t *testing.T) {
	shared := testref.SharedDir(t)
	p := filepath.Join(shared, "fixtures", "gguf", "vocab", "ggml-vocab-falcon.gguf")
	truth := readFile(t, p)
	local, err := gguf.Parse(truth, gguf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := hubtest.New(t)
	u := h.AddURLFile("ggml-vocab-falcon.gguf", truth)
	c := newTestClient(t, h, "", nil)
	tg, err := c.Resolve(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	src, err := tg.Dir.Open(tg.File)
	if err != nil {
		t.Fatal(err)
	}
	var f *gguf.File
	pre, err := ReadPrefix(src, 64<<10, 0, GGUFGrowth, ggufParse(src.Size(), &f))
	if err != nil {
		t.Fatal(err)
	}
	if f.DataOffset != local.DataOffset || len(f.KVs) != len(local.KVs) || len(f.Tensors) != len(local.Tensors) {
		t.Errorf("remote parse differs: data at %d (want %d), %d KVs", f.DataOffset, local.DataOffset, len(f.KVs))
	}
	if !bytes.Equal(pre, truth[:len(pre)]) {
		t.Error("prefix bytes differ")
	}
	// 64 KiB, 256 KiB, 1 MiB, 2.2 MB (the whole file): each step reads only
	// the new bytes.
	ranges := h.Count(func(r hubtest.Request) bool { return isRange(r) })
	if ranges != 4 || h.BytesServed() != int64(len(pre)) {
		t.Errorf("%d range reads, %d bytes served for a %d-byte prefix", ranges, h.BytesServed(), len(pre))
	}
	t.Logf("GGUF header of %d bytes (file %d): %d range reads, %d bytes", local.DataOffset, len(truth), ranges, h.BytesServed())

	// A limit below the header's size: the parser's error, and the limit named.
	h.ResetLog()
	var g *gguf.File
	_, err = ReadPrefix(src, 64<<10, 300<<10, GGUFGrowth, ggufParse(src.Size(), &g))
	if err == nil || !strings.Contains(err.Error(), "the limit for a header") {
		t.Errorf("limited: %v", err)
	}
}

// Sizes and counts a server claims are untrusted: a hostile listing is
// refused, and a huge claimed body costs memory only as bytes arrive.
func TestUntrustedServer(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"path traversal", `{"sha":"` + strings.Repeat("a", 40) + `","siblings":[{"rfilename":"../../etc/passwd","size":1}]}`, "segment"},
		{"negative size", `{"sha":"` + strings.Repeat("a", 40) + `","siblings":[{"rfilename":"a.gguf","size":-5}]}`, "no size"},
		{"bad LFS id", `{"sha":"` + strings.Repeat("a", 40) + `","siblings":[{"rfilename":"a.gguf","size":5,"lfs":{"sha256":"zz","size":5}}]}`, "not a SHA-256"},
		{"no commit", `{"sha":"main","siblings":[]}`, "no commit id"},
		{"duplicate", `{"sha":"` + strings.Repeat("a", 40) + `","siblings":[{"rfilename":"a","size":1},{"rfilename":"a","size":1}]}`, "twice"},
		{"not JSON", `<html>`, "not the expected JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, nil, "", func(o *Options) {
				o.Endpoint = "https://hub.example"
				o.Transport = fixedTransport{status: 200, body: tc.body}
			})
			_, err := c.Resolve(context.Background(), "hf://org/m")
			oneLineErr(t, err)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want %q", err, tc.want)
			}
		})
	}
	// An API answer larger than the limit is refused without reading it all.
	c := newTestClient(t, nil, "", func(o *Options) {
		o.Endpoint = "https://hub.example"
		o.Transport = fixedTransport{status: 200, length: maxAPIBytes + 1, body: "{"}
	})
	if _, err := c.Resolve(context.Background(), "hf://org/m"); err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Errorf("huge API answer: %v", err)
	}

	// A body claimed to be 1 TiB that stops after a few bytes: memory stays small.
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	_, err := c.readBody("x", strings.NewReader("abc"), 1<<40)
	runtime.ReadMemStats(&ms1)
	if err == nil || !strings.Contains(err.Error(), "short body") {
		t.Errorf("short huge body: %v", err)
	}
	if grew := ms1.TotalAlloc - ms0.TotalAlloc; grew > 2*initialAlloc {
		t.Errorf("reading a 3-byte body claimed to be 1 TiB allocated %d bytes", grew)
	}
}

// fixedTransport answers every request with one response.
type fixedTransport struct {
	status int
	body   string
	length int64
}

func (f fixedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	n := f.length
	if n == 0 {
		n = int64(len(f.body))
	}
	return &http.Response{StatusCode: f.status, Status: fmt.Sprint(f.status), Request: r, ContentLength: n,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader(f.body))}, nil
}

func TestForEach(t *testing.T) {
	var hit [10]bool
	err := ForEach(10, 3, func(i int) error {
		hit[i] = true
		if i == 7 || i == 4 {
			return fmt.Errorf("e%d", i)
		}
		return nil
	})
	if err == nil || err.Error() != "e4" {
		t.Errorf("err = %v, want the lowest index's", err)
	}
	for i, h := range hit {
		if !h {
			t.Errorf("f(%d) not called", i)
		}
	}
}

func TestProgress(t *testing.T) {
	dir := repoDir("testdata", "tiny-llama-sharded")
	h := hubtest.New(t)
	h.AddRepo(t, "org/m", dir)
	var last Progress
	calls := 0
	c := newTestClient(t, h, "", func(o *Options) {
		o.Progress = func(p Progress) { last = p; calls++ }
		o.MaxConns = 1
	})
	tg, err := c.Resolve(context.Background(), "hf://org/m")
	if err != nil {
		t.Fatal(err)
	}
	src, _ := tg.Dir.Open("model-00001-of-00002.safetensors")
	if _, err := src.Bytes(0, src.Size()); err != nil {
		t.Fatal(err)
	}
	if calls == 0 || !last.Done || last.Bytes != c.IO().BytesFetched || last.Bytes != h.BytesServed() {
		t.Errorf("progress %+v after %d calls; IO %+v; served %d", last, calls, c.IO(), h.BytesServed())
	}
}

// A local file keeps the name it was given; a folder lists regular files only.
func TestLocalTargetNames(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "m.gguf"), []byte("GGUF"), 0o644)
	mkfifo(filepath.Join(dir, "pipe.gguf"))
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	wd, _ := os.Getwd()
	os.Chdir(dir)
	defer os.Chdir(wd)
	c := newTestClient(t, nil, "", func(o *Options) { o.Transport = failTransport{t} })
	tg, err := c.Resolve(context.Background(), "./m.gguf")
	if err != nil || tg.Kind != KindLocal || tg.File != "m.gguf" || tg.Dir.Path(tg.File) != "./m.gguf" || tg.Display() != "./m.gguf" {
		t.Fatalf("%+v %v", tg, err)
	}
	tg, _ = c.Resolve(context.Background(), ".")
	l, _ := tg.Dir.List()
	if len(l) != 1 || l[0].Name != "m.gguf" {
		t.Errorf("List = %+v", l)
	}
}

// The hostile corpus served over HTTP: reading headers never fetches more
// than the file holds, never panics, and ends in a parse or a clear error.
func TestHostileOverHTTP(t *testing.T) {
	files, _ := filepath.Glob(repoDir("testdata", "hostile", "*"))
	h := hubtest.New(t)
	c := newTestClient(t, h, "", nil)
	n := 0
	for _, p := range files {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
			continue
		}
		data := readFile(t, p)
		name := filepath.Base(p)
		h.ResetLog()
		tg, err := c.Resolve(context.Background(), h.AddURLFile(name, data))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		src, err := tg.Dir.Open(tg.File)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		switch {
		case strings.HasSuffix(name, ".gguf"):
			var f *gguf.File
			ReadPrefix(src, 64, 0, GGUFGrowth, ggufParse(src.Size(), &f))
		default:
			SafetensorsPrefix(src, 0)
		}
		var served int64
		for _, r := range h.Requests() {
			served += r.Bytes
		}
		if served > int64(len(data)) {
			t.Errorf("%s: %d bytes fetched from a %d-byte file", name, served, len(data))
		}
		n++
	}
	if n < 40 {
		t.Errorf("only %d hostile files served", n)
	}
}
