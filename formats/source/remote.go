package source

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
)

// remoteFile is a file read by HTTP range requests through the cache.
type remoteFile struct {
	c    *Client
	ctx  context.Context
	name string   // for messages
	u    *url.URL // what is requested: a Hub resolve URL at a commit, or the URL given
	size int64
	key  string // cache identity; "" when the file cannot be cached (no validator)

	mu   sync.Mutex
	etag string   // the first ETag a body came with; later ones must match
	loc  *url.URL // where u last redirected to on another host (the CDN), reused for later ranges
	// head holds bytes [0, len(head)) once read from the start (sniffing,
	// then the header), so that a longer read from 0 fetches only the rest.
	// It is only ever replaced, never written into: slices of it stay valid.
	head []byte
}

// maxHead bounds the bytes kept in head.
const maxHead = 64 << 20

func (r *remoteFile) Name() string { return r.name }
func (r *remoteFile) Size() int64  { return r.size }
func (r *remoteFile) Close() error { return nil }

func (r *remoteFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errorf(r.name, "negative offset %d", off)
	}
	if off >= r.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.size-off)
	b, err := r.Bytes(off, n)
	if err != nil {
		return 0, err
	}
	copy(p, b)
	if n < int64(len(p)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

func (r *remoteFile) Bytes(off, n int64) ([]byte, error) {
	if err := checkRange(r.name, off, n, r.size); err != nil {
		return nil, err
	}
	if n == 0 {
		return []byte{}, nil
	}
	r.mu.Lock()
	head := r.head
	r.mu.Unlock()
	if off+n <= int64(len(head)) {
		return head[off : off+n : off+n], nil
	}
	if off != 0 || n > maxHead {
		return r.read(off, n)
	}
	// A longer read from the start: fetch only what head lacks.
	tail, err := r.read(int64(len(head)), n-int64(len(head)))
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, n)
	b = append(append(b, head...), tail...)
	r.mu.Lock()
	if len(b) > len(r.head) {
		r.head = b
	}
	r.mu.Unlock()
	return b, nil
}

// read reads [off, off+n) from the cache or the server.
func (r *remoteFile) read(off, n int64) ([]byte, error) {
	cache := r.c.cache
	if cache != nil && r.key != "" {
		if b, ok := cache.get(r.key, off, n); ok {
			r.c.io.hits.Add(1)
			r.c.io.fromCache.Add(n)
			return b, nil
		}
	}
	if r.c.opts.Offline {
		return nil, &Error{Name: r.name, Err: fmt.Errorf("%w: bytes [%d, %d) are not in qkv's cache and HF_HUB_OFFLINE is set", ErrOffline, off, off+n)}
	}
	b, err := r.fetch(off, n)
	if err != nil {
		return nil, &Error{Name: r.name, Err: err}
	}
	if cache != nil && r.key != "" {
		cache.put(r.key, off, b) // best effort: a failed write only costs a refetch
	}
	return b, nil
}

// target is the URL to request: the remembered redirect target, or u.
func (r *remoteFile) target() (*url.URL, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loc != nil {
		return r.loc, true
	}
	return r.u, false
}

func (r *remoteFile) setLoc(final *url.URL) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sameHost(final, r.u) {
		return
	}
	r.loc = final
}

func (r *remoteFile) dropLoc() {
	r.mu.Lock()
	r.loc = nil
	r.mu.Unlock()
}

// checkETag records the first ETag and refuses a different one later.
func (r *remoteFile) checkETag(h http.Header) error {
	tag := normETag(h.Get("ETag"))
	if tag == "" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.etag == "" {
		r.etag = tag
		return nil
	}
	if tag != r.etag {
		return fmt.Errorf("%w (ETag was %q, now %q)", ErrChanged, cleanHeader(r.etag), cleanHeader(tag))
	}
	return nil
}

// refused: a redirect target (a signed CDN URL) refuses the request, as it
// does once the signature expires; the Hub is asked for a fresh one.
func refused(status int) bool {
	return status == http.StatusForbidden || status == http.StatusUnauthorized || status == http.StatusNotFound || status == http.StatusGone
}

// fetch reads [off, off+n) from the server, with retries.
func (r *remoteFile) fetch(off, n int64) ([]byte, error) {
	var out []byte
	err := r.c.withRetries(r.ctx, func() error {
		u, viaLoc := r.target()
		h := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", off, off+n-1)}}
		return r.c.exchange(r.ctx, http.MethodGet, u, h, false, func(resp *http.Response, _ http.Header, final *url.URL) error {
			if (viaLoc || !sameHost(final, r.u)) && refused(resp.StatusCode) {
				// A signed CDN URL expired: ask the Hub again.
				r.dropLoc()
				return retry(fmt.Errorf("the download URL was refused (HTTP %d)", resp.StatusCode))
			}
			// Later ranges and retries go straight to the redirect target.
			r.setLoc(final)
			b, err := r.body(resp, off, n)
			if err != nil {
				return err
			}
			out = b
			return nil
		})
	})
	return out, err
}

// body checks a range response against the request and reads it.
func (r *remoteFile) body(resp *http.Response, off, n int64) ([]byte, error) {
	switch resp.StatusCode {
	case http.StatusPartialContent:
		first, last, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return nil, retry(err)
		}
		if total >= 0 && total != r.size {
			return nil, fmt.Errorf("%w (it was %d bytes, the server now says %d)", ErrChanged, r.size, total)
		}
		if first != off || last != off+n-1 {
			return nil, retry(fmt.Errorf("asked for bytes %d-%d, the server sent %d-%d (Content-Range)", off, off+n-1, first, last))
		}
		if resp.ContentLength >= 0 && resp.ContentLength != n {
			return nil, retry(fmt.Errorf("asked for %d bytes, the server announced %d (Content-Length)", n, resp.ContentLength))
		}
	case http.StatusOK:
		// The server ignored Range and sends the whole file: usable only
		// from the start, reading what was asked and dropping the rest.
		if resp.ContentLength >= 0 && resp.ContentLength != r.size {
			return nil, fmt.Errorf("%w (it was %d bytes, the server now says %d)", ErrChanged, r.size, resp.ContentLength)
		}
		if off != 0 {
			return nil, fmt.Errorf("the server does not support range requests (it answered a range with the whole file)")
		}
	case http.StatusRequestedRangeNotSatisfiable:
		return nil, fmt.Errorf("%w (bytes %d-%d are past its end: HTTP 416)", ErrChanged, off, off+n-1)
	default:
		return nil, r.c.statusError(resp, "GET "+redact(r.u))
	}
	if err := r.checkETag(resp.Header); err != nil {
		return nil, err
	}
	return r.c.readBody(r.name, resp.Body, n)
}

// WriteTo streams the whole file to w, bypassing the cache (hashing a
// 100 GB model must not copy it into the cache), resuming after faults.
func (r *remoteFile) WriteTo(w io.Writer) (int64, error) {
	var pos int64
	buf := make([]byte, 1<<20)
	for pos < r.size {
		start := pos
		err := r.c.withRetries(r.ctx, func() error {
			u, viaLoc := r.target()
			h := http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", pos, r.size-1)}}
			return r.c.exchange(r.ctx, http.MethodGet, u, h, false, func(resp *http.Response, _ http.Header, final *url.URL) error {
				if (viaLoc || !sameHost(final, r.u)) && refused(resp.StatusCode) {
					r.dropLoc()
					return retry(fmt.Errorf("the download URL was refused (HTTP %d)", resp.StatusCode))
				}
				r.setLoc(final)
				want := r.size - pos
				switch resp.StatusCode {
				case http.StatusPartialContent:
					first, last, total, err := parseContentRange(resp.Header.Get("Content-Range"))
					if err != nil {
						return retry(err)
					}
					if total >= 0 && total != r.size {
						return fmt.Errorf("%w (it was %d bytes, the server now says %d)", ErrChanged, r.size, total)
					}
					if first != pos || last != r.size-1 {
						return retry(fmt.Errorf("asked for bytes %d-%d, the server sent %d-%d (Content-Range)", pos, r.size-1, first, last))
					}
				case http.StatusOK:
					if resp.ContentLength >= 0 && resp.ContentLength != r.size {
						return fmt.Errorf("%w (it was %d bytes, the server now says %d)", ErrChanged, r.size, resp.ContentLength)
					}
					if pos != 0 {
						return fmt.Errorf("the server does not support range requests")
					}
				default:
					return r.c.statusError(resp, "GET "+redact(r.u))
				}
				if err := r.checkETag(resp.Header); err != nil {
					return err
				}
				body := io.LimitReader(resp.Body, want)
				for {
					m, err := body.Read(buf)
					if m > 0 {
						if _, werr := w.Write(buf[:m]); werr != nil {
							return werr
						}
						pos += int64(m)
						r.c.progress(r.name, int64(m), false)
					}
					if err == io.EOF {
						break
					}
					if err != nil {
						return retry(fmt.Errorf("the connection failed at byte %d of %d: %v", pos, r.size, netCause(err)))
					}
				}
				if pos < r.size {
					return retry(fmt.Errorf("short body: the server stopped at byte %d of %d", pos, r.size))
				}
				return nil
			})
		})
		// After progress, a fault gets a fresh budget of attempts from
		// where the bytes stopped; a fault without progress is final.
		if err != nil && pos == start {
			return pos, &Error{Name: r.name, Err: err}
		}
	}
	return pos, nil
}
