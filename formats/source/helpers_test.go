package source

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qkvdev/qkv/formats/source/hubtest"
	"github.com/qkvdev/qkv/internal/testref"
)

// testClient is a Client against the emulator, with its own cache folder,
// no Hugging Face cache, fast backoff, and sleeps recorded instead of slept.
type testClient struct {
	*Client
	mu     sync.Mutex
	sleeps []time.Duration
}

func newTestClient(t *testing.T, h *hubtest.Hub, cacheDir string, mod func(*Options)) *testClient {
	t.Helper()
	if cacheDir == "" {
		cacheDir = t.TempDir()
	}
	o := Options{Endpoint: "", CacheDir: cacheDir, HFCacheDir: "-", RetryBase: time.Millisecond, IdleTimeout: 5 * time.Second}
	if h != nil {
		o.Endpoint = h.URL
	}
	if mod != nil {
		mod(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	tc := &testClient{Client: c}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		tc.mu.Lock()
		tc.sleeps = append(tc.sleeps, d)
		tc.mu.Unlock()
		return ctx.Err()
	}
	return tc
}

func repoDir(elem ...string) string {
	return filepath.Join(append([]string{testref.RepoRoot()}, elem...)...)
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustBytes reads a range and compares it with the local file's bytes.
func mustBytes(t *testing.T, src Source, local []byte, off, n int64) {
	t.Helper()
	b, err := src.Bytes(off, n)
	if err != nil {
		t.Fatalf("Bytes(%d, %d): %v", off, n, err)
	}
	if !bytes.Equal(b, local[off:off+n]) {
		t.Fatalf("Bytes(%d, %d) differ from the file's bytes", off, n)
	}
}

func oneLineErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error")
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Errorf("error is not one line: %q", err)
	}
}

func isCDN(r hubtest.Request) bool { return r.Host == hubtest.HostCDN }
func isHub(r hubtest.Request) bool { return r.Host == hubtest.HostHub }
func isAPI(r hubtest.Request) bool {
	return r.Host == hubtest.HostHub && strings.HasPrefix(r.Path, "/api/")
}
func isRange(r hubtest.Request) bool { return r.Range != "" }

// failTransport fails the test when the network is used.
type failTransport struct{ t *testing.T }

func (f failTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
	return nil, errors.New("no network in this test")
}

// redirectTransport answers every request with a redirect to plain http on
// another host.
type redirectTransport struct{}

func (redirectTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusFound, Status: "302 Found", Request: r, Body: http.NoBody,
		Header: http.Header{"Location": {"http://example.com/elsewhere.gguf"}}}, nil
}
