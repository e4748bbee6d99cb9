package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// retryable marks a fault worth another attempt; after is the wait the
// server asked for (Retry-After), 0 for the usual backoff.
type retryable struct {
	err   error
	after time.Duration
}

func (e *retryable) Error() string { return e.err.Error() }
func (e *retryable) Unwrap() error { return e.err }

func retry(err error) error { return &retryable{err: err} }

// withRetries runs f until it succeeds, fails with an error that is not
// retryable, or has been tried opts.Attempts times.
func (c *Client) withRetries(ctx context.Context, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		var re *retryable
		if err == nil || !errors.As(err, &re) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt >= c.opts.Attempts {
			return fmt.Errorf("%v (gave up after %d attempts)", re.err, attempt)
		}
		wait := re.after
		if wait <= 0 {
			wait = c.opts.RetryBase << (attempt - 1)
			wait = min(wait, 10*time.Second)
			wait += time.Duration(rand.Int64N(int64(wait)/4 + 1)) // jitter, so parallel readers spread out
		}
		wait = min(wait, c.opts.MaxRetryAfter)
		c.io.retries.Add(1)
		if err := c.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// checkScheme allows https, and http only to loopback or with AllowHTTP.
func (c *Client) checkScheme(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if c.opts.AllowHTTP || isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("refusing plain http:// to %s: the bytes would not be authenticated (use https, or --allow-http)", u.Host)
	}
	return fmt.Errorf("unsupported URL scheme %q (only https)", u.Scheme)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

const maxRedirects = 8

// exchange sends one request, follows redirects by hand and hands the final
// response to use; the body is closed after. The Authorization header goes
// only to the endpoint's host. With stopLinked, a redirect to another host
// that carries X-Linked-Size is not followed: use gets the redirect itself
// (the Hub's HEAD of an LFS file says its size and id there). A request that receives nothing for
// IdleTimeout is aborted and retryable.
func (c *Client) exchange(ctx context.Context, method string, u *url.URL, h http.Header, stopLinked bool,
	use func(resp *http.Response, first http.Header, final *url.URL) error) error {
	if c.opts.Offline {
		return fmt.Errorf("%w: HF_HUB_OFFLINE is set, so %s was not fetched", ErrOffline, redact(u))
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idle := time.AfterFunc(c.opts.IdleTimeout, cancel)
	defer idle.Stop()
	timedOut := func(err error) error {
		if ctx.Err() == nil && rctx.Err() != nil {
			return retry(fmt.Errorf("no data from %s for %v", u.Host, c.opts.IdleTimeout))
		}
		return err
	}

	var first http.Header
	for hop := 0; ; hop++ {
		if err := c.checkScheme(u); err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(rctx, method, u.String(), nil)
		if err != nil {
			return err
		}
		for k, v := range h {
			req.Header[k] = v
		}
		// Sizes must be the file's, not a compressed body's.
		req.Header.Set("Accept-Encoding", "identity")
		if c.opts.UserAgent != "" {
			req.Header.Set("User-Agent", c.opts.UserAgent)
		}
		if c.opts.Token != "" && sameHost(u, c.endpoint) {
			req.Header.Set("Authorization", "Bearer "+c.opts.Token)
		}
		c.io.requests.Add(1)
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var dns *net.DNSError
			if errors.As(err, &dns) && dns.IsNotFound {
				return fmt.Errorf("%s: %v", u.Host, netCause(err)) // no such host: retrying will not help
			}
			return timedOut(retry(fmt.Errorf("%s: %v", u.Host, netCause(err))))
		}
		if first == nil {
			first = resp.Header
		}
		switch resp.StatusCode {
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			idle.Reset(c.opts.IdleTimeout)
			resp.Body = &idleBody{r: resp.Body, t: idle, d: c.opts.IdleTimeout}
			err := use(resp, first, u)
			resp.Body.Close()
			return timedOut(err)
		}
		loc := resp.Header.Get("Location")
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if loc == "" {
			return fmt.Errorf("%s answered %s without a Location", u.Host, resp.Status)
		}
		next, err := u.Parse(loc)
		if err != nil {
			return fmt.Errorf("%s redirected to an invalid URL: %v", u.Host, err)
		}
		if stopLinked && !sameHost(next, u) && resp.Header.Get("X-Linked-Size") != "" {
			resp.Body = http.NoBody
			return use(resp, first, u)
		}
		if hop+1 >= maxRedirects {
			return fmt.Errorf("more than %d redirects from %s", maxRedirects, redact(u))
		}
		u = next
	}
}

// idleBody re-arms the idle timer whenever bytes arrive.
type idleBody struct {
	r io.ReadCloser
	t *time.Timer
	d time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.t.Reset(b.d)
	}
	return n, err
}

func (b *idleBody) Close() error { return b.r.Close() }

func netCause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return oneLine(err.Error())
}

// redact drops a URL's query (signed URLs carry credentials) and user info
// for messages.
func redact(u *url.URL) string {
	v := *u
	v.RawQuery, v.ForceQuery, v.User, v.Fragment = "", false, nil, ""
	return v.String()
}

// statusError turns a non-2xx status into an error: retryable for 429 and
// 5xx (with the Retry-After wait), a plain one for the rest. It names the
// Hub's X-Error-Code / X-Error-Message when present.
func (c *Client) statusError(resp *http.Response, what string) error {
	detail := cleanHeader(resp.Header.Get("X-Error-Message"))
	if code := cleanHeader(resp.Header.Get("X-Error-Code")); code != "" {
		if detail != "" {
			detail = code + ": " + detail
		} else {
			detail = code
		}
	}
	if detail != "" {
		detail = " (" + detail + ")"
	}
	st := resp.StatusCode
	switch {
	case st == http.StatusTooManyRequests || st == http.StatusServiceUnavailable:
		return &retryable{err: fmt.Errorf("%s: HTTP %d%s", what, st, detail), after: retryAfter(resp.Header.Get("Retry-After"), c.opts.MaxRetryAfter)}
	case st >= 500:
		return retry(fmt.Errorf("%s: HTTP %d%s", what, st, detail))
	case st == http.StatusUnauthorized:
		hint := "set HF_TOKEN"
		if c.opts.Token != "" {
			hint = "the token was refused"
		}
		return fmt.Errorf("%s: HTTP 401%s: the repository is private, gated or does not exist (%s)", what, detail, hint)
	case st == http.StatusForbidden:
		return fmt.Errorf("%s: HTTP 403%s: access denied (a gated model needs its terms accepted on the Hub, and HF_TOKEN)", what, detail)
	case st == http.StatusNotFound || st == http.StatusGone:
		return &notExist{fmt.Sprintf("%s: not found (HTTP %d%s)", what, st, detail)}
	}
	return fmt.Errorf("%s: unexpected HTTP status %d%s", what, st, detail)
}

// cleanHeader makes a server-sent string safe to print: printable, one
// line, at most 200 characters.
func cleanHeader(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, limit time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > int64(limit/time.Second) {
			return limit
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), limit)
	}
	return 0
}

// parseContentRange reads "bytes FIRST-LAST/TOTAL" (TOTAL may be "*": -1).
func parseContentRange(v string) (first, last, total int64, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, 0, 0, fmt.Errorf("malformed Content-Range %q", cleanHeader(v))
	}
	rng, tot, ok := strings.Cut(rest, "/")
	a, b, ok2 := strings.Cut(rng, "-")
	if !ok || !ok2 {
		return 0, 0, 0, fmt.Errorf("malformed Content-Range %q", cleanHeader(v))
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	total = -1
	var err3 error
	if tot != "*" {
		total, err3 = strconv.ParseInt(tot, 10, 64)
	}
	if err1 != nil || err2 != nil || err3 != nil || first < 0 || last < first || (total >= 0 && last >= total) {
		return 0, 0, 0, fmt.Errorf("malformed Content-Range %q", cleanHeader(v))
	}
	return first, last, total, nil
}

// normETag strips a weak prefix and quotes.
func normETag(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "W/")
	return strings.Trim(v, `"`)
}

// initialAlloc caps what is allocated before bytes arrive: a body of n
// bytes grows its buffer as it is received, so a size the server claims
// costs memory only when the bytes really come.
const initialAlloc = 32 << 20

// readBody reads exactly n bytes of a body; fewer is a retryable short body.
func (c *Client) readBody(name string, r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, 0, min(n, initialAlloc))
	var pending int64
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(n, 2*int64(cap(buf))))
			copy(nb, buf)
			buf = nb
		}
		m, err := r.Read(buf[len(buf):min(int64(cap(buf)), int64(len(buf))+(1<<20))])
		buf = buf[:len(buf)+m]
		if pending += int64(m); pending >= 1<<20 {
			c.progress(name, pending, false)
			pending = 0
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			c.progress(name, pending, true)
			return nil, retry(fmt.Errorf("the connection failed after %d of %d bytes: %v", len(buf), n, netCause(err)))
		}
	}
	c.progress(name, pending, true)
	if int64(len(buf)) < n {
		return nil, retry(fmt.Errorf("short body: the server sent %d of %d bytes", len(buf), n))
	}
	return buf, nil
}

// getSmall GETs a small document (an API answer), refusing more than limit
// bytes, with retries.
func (c *Client) getSmall(ctx context.Context, u *url.URL, what string, limit int64) ([]byte, error) {
	var out []byte
	err := c.withRetries(ctx, func() error {
		return c.exchange(ctx, http.MethodGet, u, nil, false, func(resp *http.Response, _ http.Header, _ *url.URL) error {
			if resp.StatusCode != http.StatusOK {
				return c.statusError(resp, what)
			}
			if resp.ContentLength > limit {
				return fmt.Errorf("%s: the answer is %d bytes, more than the %d allowed", what, resp.ContentLength, limit)
			}
			b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
			c.progress(what, int64(len(b)), true)
			if err != nil {
				return retry(fmt.Errorf("%s: %v", what, netCause(err)))
			}
			if int64(len(b)) > limit {
				return fmt.Errorf("%s: the answer is more than the %d bytes allowed", what, limit)
			}
			if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
				return retry(fmt.Errorf("%s: short body: %d of %d bytes", what, len(b), resp.ContentLength))
			}
			out = b
			return nil
		})
	})
	return out, err
}
