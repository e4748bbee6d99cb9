package source

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qkvdev/qkv/formats/source/hubtest"
)

// checkCacheEntries reads back every entry of a cache folder: each must be
// whole and hold the file's true bytes at its range.
func checkCacheEntries(t *testing.T, cacheDir string, truth []byte) int {
	t.Helper()
	n := 0
	filepath.WalkDir(filepath.Join(cacheDir, "ranges"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		a, b, ok := parseEntryName(d.Name())
		if !ok {
			t.Errorf("stray file in the cache: %s", p)
			return nil
		}
		data, ok := readEntry(p, b-a)
		if !ok {
			t.Errorf("corrupt cache entry %s", p)
			return nil
		}
		if truth != nil && (b > int64(len(truth)) || string(data) != string(truth[a:b])) {
			t.Errorf("cache entry %s holds the wrong bytes", p)
		}
		n++
		return nil
	})
	return n
}

func TestFaultsEndInSuccess(t *testing.T) {
	dir := repoDir("testdata", "tiny-llama-sharded")
	const shard = "model-00001-of-00002.safetensors"
	truth := readFile(t, filepath.Join(dir, shard))
	for _, tc := range []struct {
		name  string
		fault hubtest.Fault
		wait  time.Duration // the Retry-After wait expected among the sleeps
		hub   int           // extra Hub requests expected (a re-resolve)
	}{
		{name: "429", fault: hubtest.Fault{Kind: hubtest.TooManyRequests, Host: hubtest.HostCDN, RetryAfter: "7"}, wait: 7 * time.Second},
		{name: "429 on the Hub", fault: hubtest.Fault{Kind: hubtest.TooManyRequests, Host: hubtest.HostHub, Path: "/resolve/", RetryAfter: "3"}, wait: 3 * time.Second, hub: 1},
		{name: "500", fault: hubtest.Fault{Kind: hubtest.ServerError, Host: hubtest.HostCDN, Times: 2}},
		{name: "reset mid-body", fault: hubtest.Fault{Kind: hubtest.ResetMidBody, Host: hubtest.HostCDN}},
		{name: "short body", fault: hubtest.Fault{Kind: hubtest.ShortBody, Host: hubtest.HostCDN}},
		{name: "wrong Content-Range", fault: hubtest.Fault{Kind: hubtest.WrongRange, Host: hubtest.HostCDN}},
		{name: "expired URL", fault: hubtest.Fault{Kind: hubtest.ExpiredURL, Host: hubtest.HostCDN}, hub: 1},
		{name: "stall", fault: hubtest.Fault{Kind: hubtest.Stall, Host: hubtest.HostCDN, Delay: 2 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hubtest.New(t)
			h.AddRepo(t, "org/m", dir)
			cache := t.TempDir()
			c := newTestClient(t, h, cache, func(o *Options) { o.IdleTimeout = 200 * time.Millisecond })
			tg, err := c.Resolve(context.Background(), "hf://org/m")
			if err != nil {
				t.Fatal(err)
			}
			src, err := tg.Dir.Open(shard)
			if err != nil {
				t.Fatal(err)
			}
			h.Inject(tc.fault)
			h.ResetLog()
			mustBytes(t, src, truth, 0, int64(len(truth))-1)
			if c.IO().Retries == 0 {
				t.Errorf("no retry counted")
			}
			if tc.wait > 0 {
				found := false
				for _, d := range c.sleeps {
					found = found || d == tc.wait
				}
				if !found {
					t.Errorf("sleeps %v do not include the Retry-After %v", c.sleeps, tc.wait)
				}
			}
			if got := h.Count(func(r hubtest.Request) bool { return isHub(r) }); got != 1+tc.hub {
				t.Errorf("Hub requests %d, want %d", got, 1+tc.hub)
			}
			if n := checkCacheEntries(t, cache, truth); n != 1 {
				t.Errorf("%d cache entries, want 1", n)
			}
		})
	}
}

func TestFaultsEndInOneLineError(t *testing.T) {
	dir := repoDir("testdata", "tiny-llama-sharded")
	const shard = "model-00002-of-00002.safetensors"
	truth := readFile(t, filepath.Join(dir, shard))
	for _, tc := range []struct {
		name  string
		fault hubtest.Fault
		want  string
		is    error
	}{
		{name: "persistent 500", fault: hubtest.Fault{Kind: hubtest.ServerError, Host: hubtest.HostCDN, Times: 100}, want: "HTTP 500 (gave up after 5 attempts)"},
		{name: "persistent reset", fault: hubtest.Fault{Kind: hubtest.ResetMidBody, Host: hubtest.HostCDN, Times: 100}, want: "gave up after 5 attempts"},
		{name: "persistent short body", fault: hubtest.Fault{Kind: hubtest.ShortBody, Host: hubtest.HostCDN, Times: 100}, want: "short body"},
		{name: "persistent wrong range", fault: hubtest.Fault{Kind: hubtest.WrongRange, Host: hubtest.HostCDN, Times: 100}, want: "(Content-Range)"},
		{name: "ETag changes", fault: hubtest.Fault{Kind: hubtest.ChangeETag, Path: shard}, is: ErrChanged, want: "ETag was"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hubtest.New(t)
			h.AddRepo(t, "org/m", dir)
			cache := t.TempDir()
			c := newTestClient(t, h, cache, nil)
			tg, err := c.Resolve(context.Background(), "hf://org/m")
			if err != nil {
				t.Fatal(err)
			}
			src, err := tg.Dir.Open(shard)
			if err != nil {
				t.Fatal(err)
			}
			mustBytes(t, src, truth, 0, 100) // a first range, before the fault
			h.Inject(tc.fault)
			_, err = src.Bytes(100, 200)
			oneLineErr(t, err)
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), shard) {
				t.Errorf("error %q: want %q and the file's name", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if n := checkCacheEntries(t, cache, truth); n != 1 {
				t.Errorf("%d cache entries, want only the first range's", n)
			}
		})
	}
}

// A plain URL whose file is replaced during the run: its size (and ETag)
// change, and reading on is an error.
func TestURLFileChanges(t *testing.T) {
	h := hubtest.New(t)
	data := []byte(strings.Repeat("GGUF-data-", 1000))
	u := h.AddURLFile("model.gguf", data)
	c := newTestClient(t, h, "", nil)
	tg, err := c.Resolve(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	if tg.Kind != KindURL || tg.File != "model.gguf" || tg.URL != u {
		t.Fatalf("target %+v", tg)
	}
	src, err := tg.Dir.Open(tg.File)
	if err != nil {
		t.Fatal(err)
	}
	mustBytes(t, src, data, 10, 100)
	if got := h.Count(func(r hubtest.Request) bool { return r.Method == "HEAD" }); got != 1 {
		t.Errorf("HEAD requests = %d, want 1", got)
	}
	h.AddURLFile("model.gguf", append(data, "more"...))
	_, err = src.Bytes(200, 100)
	oneLineErr(t, err)
	if !errors.Is(err, ErrChanged) {
		t.Errorf("replaced file: %v", err)
	}
	// A sibling that does not exist is fs.ErrNotExist (a missing split part).
	if _, err := tg.Dir.Stat("model-00002-of-00003.gguf"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing sibling: %v", err)
	}
}

// The cache survives a writer killed at any point and damaged entries: a
// bad entry is never served, it is fetched again and replaced.
func TestCacheSurvivesKilledWriter(t *testing.T) {
	dir := repoDir("testdata", "tiny-llama-sharded")
	const shard = "model-00001-of-00002.safetensors"
	truth := readFile(t, filepath.Join(dir, shard))
	h := hubtest.New(t)
	h.AddRepo(t, "org/m", dir)
	cache := t.TempDir()
	read := func() *testClient {
		t.Helper()
		c := newTestClient(t, h, cache, nil)
		tg, err := c.Resolve(context.Background(), "hf://org/m")
		if err != nil {
			t.Fatal(err)
		}
		src, err := tg.Dir.Open(shard)
		if err != nil {
			t.Fatal(err)
		}
		mustBytes(t, src, truth, 64, 4096)
		return c
	}
	c := read()
	if c.IO().CacheHits != 0 {
		t.Fatal("cold cache hit")
	}
	entry := ""
	filepath.WalkDir(filepath.Join(cache, "ranges"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			entry = p
		}
		return nil
	})
	if entry == "" {
		t.Fatal("no cache entry written")
	}
	good := readFile(t, entry)

	for _, tc := range []struct {
		name   string
		damage func()
		hit    bool
	}{
		{"intact", func() {}, true},
		{"truncated (a writer killed mid-write without rename)", func() { os.WriteFile(entry, good[:len(good)/2], 0o600) }, false},
		{"empty", func() { os.WriteFile(entry, nil, 0o600) }, false},
		{"one flipped byte", func() {
			b := append([]byte(nil), good...)
			b[100] ^= 1
			os.WriteFile(entry, b, 0o600)
		}, false},
		{"trailer of another length", func() {
			b := append([]byte(nil), good[:len(good)-trailerLen-1]...)
			b = append(b, good[len(good)-trailerLen:]...)
			os.WriteFile(entry, b, 0o600)
		}, false},
		{"removed, a killed writer's temporary file beside it", func() {
			os.Remove(entry)
			os.WriteFile(filepath.Join(filepath.Dir(entry), tempPrefix+"123"), good[:10], 0o600)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.damage()
			h.ResetLog()
			c := read()
			if hit := c.IO().CacheHits == 1; hit != tc.hit {
				t.Errorf("cache hit %v, want %v", hit, tc.hit)
			}
			if got := h.Count(isCDN); (got == 0) != tc.hit {
				t.Errorf("CDN requests %d", got)
			}
			if !bytesEqualFile(t, entry, good) {
				t.Errorf("the entry was not replaced by a good one")
			}
		})
	}
	// A stale temporary file is removed; a fresh one (a live writer) is not.
	tmpOld := filepath.Join(filepath.Dir(entry), tempPrefix+"old")
	tmpNew := filepath.Join(filepath.Dir(entry), tempPrefix+"new")
	os.WriteFile(tmpOld, []byte("x"), 0o600)
	os.WriteFile(tmpNew, []byte("x"), 0o600)
	old := time.Now().Add(-2 * staleTemp)
	os.Chtimes(tmpOld, old, old)
	read()
	if _, err := os.Stat(tmpOld); err == nil {
		t.Error("a stale temporary file was kept")
	}
	if _, err := os.Stat(tmpNew); err != nil {
		t.Error("a live writer's temporary file was removed")
	}
	// A write that fails midway leaves nothing behind.
	err := writeAtomic(filepath.Join(filepath.Dir(entry), entryName(0, 5)), func(w io.Writer) error {
		w.Write([]byte("ab"))
		return errors.New("killed")
	})
	if err == nil {
		t.Fatal("no error from a failed write")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(entry), entryName(0, 5))); err == nil {
		t.Error("a failed write left an entry")
	}
	checkCacheEntries(t, cache, truth)
}

func bytesEqualFile(t *testing.T, p string, want []byte) bool {
	b, err := os.ReadFile(p)
	return err == nil && string(b) == string(want)
}

// Concurrent readers sharing one cache folder (two runs at once).
func TestCacheConcurrentRuns(t *testing.T) {
	dir := repoDir("testdata", "tiny-llama-sharded")
	const shard = "model-00001-of-00002.safetensors"
	truth := readFile(t, filepath.Join(dir, shard))
	h := hubtest.New(t)
	h.AddRepo(t, "org/m", dir)
	cache := t.TempDir()
	errs := make(chan error, 16)
	for run := 0; run < 4; run++ {
		go func() {
			c := newTestClient(t, h, cache, nil)
			tg, err := c.Resolve(context.Background(), "hf://org/m")
			if err != nil {
				errs <- err
				return
			}
			src, err := tg.Dir.Open(shard)
			if err != nil {
				errs <- err
				return
			}
			errs <- ForEach(8, 4, func(i int) error {
				off := int64(i) * 1000
				b, err := src.Bytes(off, 3000)
				if err == nil && string(b) != string(truth[off:off+3000]) {
					err = errors.New("wrong bytes")
				}
				return err
			})
		}()
	}
	for run := 0; run < 4; run++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := checkCacheEntries(t, cache, truth); n != 8 {
		t.Errorf("%d cache entries, want 8", n)
	}
}
