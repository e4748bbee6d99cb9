package source

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultEndpoint is the Hugging Face Hub.
const DefaultEndpoint = "https://huggingface.co"

// Options configure a Client. EnvOptions fills them from the environment the
// way huggingface_hub reads it.
type Options struct {
	// Endpoint is the Hub's base URL (HF_ENDPOINT; DefaultEndpoint when "").
	Endpoint string
	// Token authenticates to the Endpoint's host (HF_TOKEN or the token
	// file). It is never sent to any other host, redirects included.
	Token string
	// Offline forbids the network (HF_HUB_OFFLINE=1): inputs are served from
	// the Hugging Face cache or qkv's range cache, or fail naming what is
	// missing.
	Offline bool
	// HFCacheDir is the Hugging Face hub cache (HF_HUB_CACHE, or
	// HF_HOME/hub, or ~/.cache/huggingface/hub). "-" disables it.
	HFCacheDir string
	// CacheDir holds qkv's cache of fetched ranges and resolved revisions
	// (os.UserCacheDir()/qkv when "").
	CacheDir string
	// NoCache neither reads nor writes CacheDir.
	NoCache bool
	// AllowHTTP permits plain http:// to hosts other than loopback.
	AllowHTTP bool

	// Attempts is how many times a request is tried (default 5).
	Attempts int
	// RetryBase is the first backoff (default 500ms; doubled each retry,
	// with jitter, up to 10 s).
	RetryBase time.Duration
	// MaxRetryAfter caps the wait a 429 or 503's Retry-After asks for
	// (default 60 s).
	MaxRetryAfter time.Duration
	// IdleTimeout aborts (and retries) a request that receives nothing for
	// this long (default 30 s).
	IdleTimeout time.Duration
	// MaxConns bounds concurrent requests (default 8).
	MaxConns int
	// Progress, when set, is called as remote bytes arrive (at most every
	// 100 ms from any goroutine, and once at the end of each request).
	Progress func(Progress)
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
	// UserAgent is sent with every request.
	UserAgent string
}

// EnvOptions returns Options from HF_ENDPOINT, HF_TOKEN (or HF_TOKEN_PATH, or
// $HF_HOME/token), HF_HUB_OFFLINE, HF_HUB_CACHE and HF_HOME.
func EnvOptions() Options {
	var o Options
	o.Endpoint = strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/")
	o.Offline = envTrue("HF_HUB_OFFLINE")
	home := os.Getenv("HF_HOME")
	if home == "" {
		xdg := os.Getenv("XDG_CACHE_HOME")
		if xdg == "" {
			if h, err := os.UserHomeDir(); err == nil {
				xdg = filepath.Join(h, ".cache")
			}
		}
		if xdg != "" {
			home = filepath.Join(xdg, "huggingface")
		}
	}
	o.HFCacheDir = os.Getenv("HF_HUB_CACHE")
	if o.HFCacheDir == "" {
		o.HFCacheDir = os.Getenv("HUGGINGFACE_HUB_CACHE") // the older name
	}
	if o.HFCacheDir == "" && home != "" {
		o.HFCacheDir = filepath.Join(home, "hub")
	}
	o.Token = strings.TrimSpace(os.Getenv("HF_TOKEN"))
	if o.Token == "" {
		o.Token = strings.TrimSpace(os.Getenv("HUGGING_FACE_HUB_TOKEN"))
	}
	if o.Token == "" {
		p := os.Getenv("HF_TOKEN_PATH")
		if p == "" && home != "" {
			p = filepath.Join(home, "token")
		}
		if p != "" {
			if b, err := readSmallFile(p, 4096); err == nil {
				o.Token = strings.TrimSpace(string(b))
			}
		}
	}
	return o
}

func envTrue(name string) bool {
	switch strings.ToUpper(strings.TrimSpace(os.Getenv(name))) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// Client resolves inputs and reads remote files. It is safe for concurrent
// use; its IO counters cover everything it did.
type Client struct {
	opts     Options
	endpoint *url.URL
	http     *http.Client
	sem      chan struct{}
	cache    *rangeCache // nil with NoCache
	io       ioCounters
	sleep    func(ctx context.Context, d time.Duration) error // tests replace it

	progMu   sync.Mutex
	progLast time.Time
	progT0   time.Time
}

// New returns a Client. The endpoint must be https (or loopback, or
// AllowHTTP).
func New(opts Options) (*Client, error) {
	if opts.Endpoint == "" {
		opts.Endpoint = DefaultEndpoint
	}
	opts.Endpoint = strings.TrimRight(opts.Endpoint, "/")
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = 500 * time.Millisecond
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = 60 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 30 * time.Second
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = 8
	}
	c := &Client{opts: opts, sem: make(chan struct{}, opts.MaxConns), sleep: sleepCtx}
	u, err := url.Parse(opts.Endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("HF_ENDPOINT %q is not an http(s) URL", opts.Endpoint)
	}
	if err := c.checkScheme(u); err != nil {
		return nil, fmt.Errorf("HF_ENDPOINT: %v", err)
	}
	c.endpoint = u
	tr := opts.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: opts.IdleTimeout,
			MaxIdleConnsPerHost:   opts.MaxConns,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		}
	}
	c.http = &http.Client{
		Transport: tr,
		// Redirects are followed by hand (see send), so that the token goes
		// to the endpoint's host only and every hop is checked.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if !opts.NoCache {
		dir := opts.CacheDir
		if dir == "" {
			if ucd, err := os.UserCacheDir(); err == nil {
				dir = filepath.Join(ucd, "qkv")
			}
		}
		if dir != "" {
			c.cache = &rangeCache{dir: dir}
		}
	}
	return c, nil
}

var (
	defaultOnce   sync.Once
	defaultClient *Client
	defaultErr    error
)

// Default returns one Client per process, configured by EnvOptions, for
// callers that were not given one.
func Default() (*Client, error) {
	defaultOnce.Do(func() { defaultClient, defaultErr = New(EnvOptions()) })
	return defaultClient, defaultErr
}

// Options returns the client's options, defaults filled in.
func (c *Client) Options() Options { return c.opts }

// IO is what a client read from the network and its cache, for reports (the
// "io" block of --json output).
type IO struct {
	Requests       int64 `json:"requests"`         // HTTP requests sent, redirects and retries included
	Retries        int64 `json:"retries"`          // requests that were retries after a fault
	BytesFetched   int64 `json:"bytes_fetched"`    // body bytes received
	BytesFromCache int64 `json:"bytes_from_cache"` // bytes served from the range cache
	CacheHits      int64 `json:"cache_hits"`       // reads served from the range cache
}

type ioCounters struct {
	requests, retries, fetched, fromCache, hits atomic.Int64
}

// IO returns a snapshot of the counters.
func (c *Client) IO() IO {
	return IO{Requests: c.io.requests.Load(), Retries: c.io.retries.Load(), BytesFetched: c.io.fetched.Load(),
		BytesFromCache: c.io.fromCache.Load(), CacheHits: c.io.hits.Load()}
}

// Progress reports remote reads.
type Progress struct {
	Name  string  // the file being read
	Bytes int64   // body bytes received by the client so far
	Rate  float64 // bytes per second since the first byte
	Done  bool    // a request finished
}

// progress counts n received bytes and calls the callback when due.
func (c *Client) progress(name string, n int64, done bool) {
	total := c.io.fetched.Add(n)
	if c.opts.Progress == nil {
		return
	}
	c.progMu.Lock()
	now := time.Now()
	if c.progT0.IsZero() {
		c.progT0 = now
	}
	if !done && now.Sub(c.progLast) < 100*time.Millisecond {
		c.progMu.Unlock()
		return
	}
	c.progLast = now
	rate := 0.0
	if el := now.Sub(c.progT0).Seconds(); el > 0 {
		rate = float64(total) / el
	}
	c.progMu.Unlock()
	c.opts.Progress(Progress{Name: name, Bytes: total, Rate: rate, Done: done})
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func readSmallFile(p string, limit int64) ([]byte, error) {
	return NewLocalDir(filepath.Dir(p)).ReadFile(filepath.Base(p), limit)
}
