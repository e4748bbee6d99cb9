// Package hubtest is a Hugging Face Hub emulator for tests: two loopback
// HTTP servers, the Hub (the API routes and resolve URLs a client needs)
// and a second host standing for the CDN the Hub redirects LFS files to,
// which serves Range requests. Faults can be injected (429 with Retry-After,
// 500, a connection reset mid-body, a short body, a wrong Content-Range, an
// expired download URL, an ETag that changes, a stall), and every request is logged
// so that tests can count requests and bytes.
//
// Routes of the Hub host, as the real Hub has them:
//
//	GET  /api/models/ORG/NAME[/revision/REV][?blobs=true]  {"id","sha","siblings":[{"rfilename","size","blobId","lfs":{"sha256","size","pointerSize"}}]}
//	HEAD /ORG/NAME/resolve/REV/PATH   X-Repo-Commit, ETag; LFS files: 302 to the CDN with X-Linked-Size and X-Linked-Etag
//	GET  /ORG/NAME/resolve/REV/PATH   small files: the bytes (Range honoured); LFS files: the same 302
//
// Routes of the CDN host:
//
//	GET|HEAD /lfs/SHA256?sig=…        an LFS object, Range honoured
//	GET|HEAD /files/NAME              a plain file (AddURLFile), Range honoured
//
// Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound,
// GatedRepo) like the Hub's.
package hubtest

import (
	"bufio"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Host names a server in faults and the request log.
const (
	HostHub = "hub"
	HostCDN = "cdn"
)

// Hub is the emulator.
type Hub struct {
	URL string // the Hub's base URL (give it as the endpoint)
	CDN string // the CDN's base URL

	// Token, when set, is required ("Authorization: Bearer TOKEN") for the
	// repositories added with Private.
	Token string

	hub, cdn *httptest.Server

	mu     sync.Mutex
	repos  map[string]*Repo
	lfs    map[string]*blob // by SHA-256
	plain  map[string]*blob // by name
	faults []*Fault
	log    []Request
	start  int // log[start:] is the log since ResetLog
}

// Repo is a repository served by the emulator.
type Repo struct {
	ID      string
	Commit  string
	Private bool
	files   map[string]*blob
}

type blob struct {
	path   string
	data   []byte
	sha256 string
	gitOID string
	lfs    bool
	etagV  int // bumped by ChangeETag
}

func (b *blob) etag() string {
	tag := b.sha256
	if !b.lfs {
		tag = b.gitOID
	}
	if b.etagV > 0 {
		tag += "-v" + strconv.Itoa(b.etagV)
	}
	return `"` + tag + `"`
}

// Request is one logged request.
type Request struct {
	Host   string // HostHub or HostCDN
	Method string
	Path   string // escaped path
	Query  string
	Range  string
	Auth   string // the Authorization header received
	Status int
	Bytes  int64 // body bytes sent
}

// FaultKind is what a fault does.
type FaultKind int

const (
	TooManyRequests FaultKind = iota // 429 with Retry-After
	ServerError                      // 500
	ResetMidBody                     // half the body, then a TCP reset
	ShortBody                        // a 206 whose body stops at half, cleanly
	WrongRange                       // bytes one further than asked, with a Content-Range saying so
	ExpiredURL                       // the CDN refuses the signed URL (403)
	ChangeETag                       // at Inject, the ETag of the files whose repo path (ORG/NAME/PATH or /files/NAME) contains Path changes
	Stall                            // half the body, then nothing for Delay, then the rest
)

// Fault is an injected fault: it hits the next Times requests (default 1)
// to Host ("" any) whose path contains Path ("" any), after skipping After
// of them.
type Fault struct {
	Kind       FaultKind
	Host       string
	Path       string
	Times      int
	After      int
	RetryAfter string        // for TooManyRequests (default "1")
	Delay      time.Duration // for Stall
}

// New starts the emulator on loopback; it stops when the test ends. A
// machine whose loopback cannot be dialled (a network namespace with lo
// down) skips the test with a message rather than failing it.
func New(t testing.TB) *Hub {
	t.Helper()
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("hubtest: no loopback listener here: %v", err)
	}
	conn, err := net.DialTimeout("tcp", probe.Addr().String(), 2*time.Second)
	probe.Close()
	if err != nil {
		t.Skipf("hubtest: loopback cannot be dialled here (%v); the Hub emulator needs it", err)
	}
	conn.Close()
	h := &Hub{repos: map[string]*Repo{}, lfs: map[string]*blob{}, plain: map[string]*blob{}}
	h.hub = httptest.NewServer(h.handler(HostHub, h.serveHub))
	h.cdn = httptest.NewServer(h.handler(HostCDN, h.serveCDN))
	h.URL, h.CDN = h.hub.URL, h.cdn.URL
	t.Cleanup(func() { h.hub.Close(); h.cdn.Close() })
	return h
}

func isLFS(name string) bool {
	for _, ext := range []string{".safetensors", ".gguf", ".bin", ".model", ".pt", ".pth", ".onnx", ".msgpack", ".h5"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

func newBlob(path string, data []byte, lfs bool) *blob {
	s := sha256.Sum256(data)
	g := sha1.New()
	fmt.Fprintf(g, "blob %d\x00", len(data))
	g.Write(data)
	return &blob{path: path, data: data, sha256: hex.EncodeToString(s[:]), gitOID: hex.EncodeToString(g.Sum(nil)), lfs: lfs}
}

// AddRepo serves every regular file under dir (recursively) as repository
// id at revision "main". Files named like weights (*.safetensors, *.gguf,
// *.bin, *.model, …) are LFS files served by the CDN.
func (h *Hub) AddRepo(t testing.TB, id, dir string) *Repo {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		t.Fatalf("hubtest: %v", err)
	}
	return h.AddRepoFiles(id, files)
}

// AddRepoFiles serves files (path -> bytes) as repository id.
func (h *Hub) AddRepoFiles(id string, files map[string][]byte) *Repo {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := &Repo{ID: id, files: map[string]*blob{}}
	names := make([]string, 0, len(files))
	for p := range files {
		names = append(names, p)
	}
	sort.Strings(names)
	c := sha1.New()
	c.Write([]byte(id))
	for _, p := range names {
		b := newBlob(p, files[p], isLFS(p))
		r.files[p] = b
		if b.lfs {
			h.lfs[b.sha256] = b
		}
		fmt.Fprintf(c, "\x00%s\x00%s", p, b.sha256)
	}
	r.Commit = hex.EncodeToString(c.Sum(nil))
	h.repos[id] = r
	return r
}

// SetPrivate makes a repository require the Hub's Token.
func (h *Hub) SetPrivate(id string) {
	h.mu.Lock()
	h.repos[id].Private = true
	h.mu.Unlock()
}

// AddURLFile serves data at CDN/files/NAME and returns that URL.
func (h *Hub) AddURLFile(name string, data []byte) string {
	h.mu.Lock()
	h.plain[name] = newBlob(name, data, true)
	h.mu.Unlock()
	return h.CDN + "/files/" + url.PathEscape(name)
}

// Inject adds a fault.
func (h *Hub) Inject(f Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if f.Times <= 0 {
		f.Times = 1
	}
	if f.Kind == TooManyRequests && f.RetryAfter == "" {
		f.RetryAfter = "1"
	}
	if f.Kind == ChangeETag {
		for _, b := range h.blobsMatching(f.Path) {
			b.etagV++
		}
		return
	}
	h.faults = append(h.faults, &f)
}

// Requests returns the request log.
func (h *Hub) Requests() []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Request(nil), h.log[h.start:]...)
}

// ResetLog clears the request log (requests in flight are dropped from it
// too).
func (h *Hub) ResetLog() {
	h.mu.Lock()
	h.start = len(h.log)
	h.mu.Unlock()
}

// Count counts the logged requests for which match holds (nil: all).
func (h *Hub) Count(match func(Request) bool) int {
	n := 0
	for _, r := range h.Requests() {
		if match == nil || match(r) {
			n++
		}
	}
	return n
}

// BytesServed is the body bytes sent for the logged requests.
func (h *Hub) BytesServed() int64 {
	var n int64
	for _, r := range h.Requests() {
		n += r.Bytes
	}
	return n
}

// recorder logs the status and body bytes of a request before they are
// sent, so that a client that has its answer finds it logged.
type recorder struct {
	http.ResponseWriter
	h      *Hub
	i      int // index in h.log
	status int
}

func (w *recorder) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
		w.h.mu.Lock()
		w.h.log[w.i].Status = s
		w.h.mu.Unlock()
	}
	w.ResponseWriter.WriteHeader(s)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.h.mu.Lock()
	w.h.log[w.i].Bytes += int64(len(p))
	w.h.mu.Unlock()
	return w.ResponseWriter.Write(p)
}

func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.ResponseWriter.(http.Hijacker).Hijack()
}

func (h *Hub) handler(host string, serve func(w *recorder, r *http.Request, f *Fault)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.log = append(h.log, Request{Host: host, Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
			Range: r.Header.Get("Range"), Auth: r.Header.Get("Authorization")})
		rec := &recorder{ResponseWriter: w, h: h, i: len(h.log) - 1}
		h.mu.Unlock()
		if f := h.takeFault(host, r); f != nil {
			switch f.Kind {
			case TooManyRequests:
				w.Header().Set("Retry-After", f.RetryAfter)
				rec.WriteHeader(http.StatusTooManyRequests)
				return
			case ServerError:
				rec.WriteHeader(http.StatusInternalServerError)
				return
			case ExpiredURL:
				if host == HostCDN {
					rec.WriteHeader(http.StatusForbidden)
					return
				}
			}
			serve(rec, r, f)
			return
		}
		serve(rec, r, nil)
	})
}

// takeFault returns the fault hitting this request, if any.
func (h *Hub) takeFault(host string, r *http.Request) *Fault {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.faults {
		if f.Times <= 0 || (f.Host != "" && f.Host != host) || !strings.Contains(r.URL.Path, f.Path) {
			continue
		}
		if f.After > 0 {
			f.After--
			continue
		}
		f.Times--
		return f
	}
	return nil
}

func (h *Hub) blobsMatching(sub string) []*blob {
	var out []*blob
	seen := map[*blob]bool{}
	add := func(b *blob, p string) {
		if !seen[b] && strings.Contains(p, sub) {
			seen[b] = true
			out = append(out, b)
		}
	}
	for _, r := range h.repos {
		for p, b := range r.files {
			add(b, r.ID+"/"+p)
		}
	}
	for n, b := range h.plain {
		add(b, "/files/"+n)
	}
	return out
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Error-Code", code)
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// repoFor finds a repository and checks access; it writes the error itself.
func (h *Hub) repoFor(w http.ResponseWriter, r *http.Request, id, rev string) *Repo {
	h.mu.Lock()
	repo := h.repos[id]
	h.mu.Unlock()
	if repo == nil {
		hubError(w, http.StatusNotFound, "RepoNotFound", "Repository not found")
		return nil
	}
	if repo.Private && (h.Token == "" || r.Header.Get("Authorization") != "Bearer "+h.Token) {
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Invalid username or password.")
		return nil
	}
	if rev != "main" && rev != repo.Commit {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return nil
	}
	return repo
}

func (h *Hub) serveHub(w *recorder, r *http.Request, f *Fault) {
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	unesc := func(s string) string {
		u, err := url.PathUnescape(s)
		if err != nil {
			return "\x00"
		}
		return u
	}
	// /api/models/ORG/NAME[/revision/REV]
	if len(parts) >= 4 && parts[0] == "api" && parts[1] == "models" && r.Method == http.MethodGet {
		id := parts[2] + "/" + parts[3]
		rev := "main"
		switch {
		case len(parts) == 4:
		case len(parts) == 6 && parts[4] == "revision":
			rev = unesc(parts[5])
		default:
			http.NotFound(w, r)
			return
		}
		repo := h.repoFor(w, r, id, rev)
		if repo == nil {
			return
		}
		h.serveInfo(w, r, repo)
		return
	}
	// /ORG/NAME/resolve/REV/PATH
	if len(parts) >= 5 && parts[2] == "resolve" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		repo := h.repoFor(w, r, parts[0]+"/"+parts[1], unesc(parts[3]))
		if repo == nil {
			return
		}
		p := unesc(strings.Join(parts[4:], "/"))
		h.mu.Lock()
		b := repo.files[p]
		h.mu.Unlock()
		if b == nil {
			hubError(w, http.StatusNotFound, "EntryNotFound", "Entry not found")
			return
		}
		w.Header().Set("X-Repo-Commit", repo.Commit)
		if b.lfs {
			h.mu.Lock()
			tag := b.etag()
			h.mu.Unlock()
			w.Header().Set("X-Linked-Size", strconv.Itoa(len(b.data)))
			w.Header().Set("X-Linked-Etag", `"`+b.sha256+`"`)
			w.Header().Set("ETag", tag)
			w.Header().Set("Location", h.CDN+"/lfs/"+b.sha256+"?sig="+sign(b.sha256))
			w.WriteHeader(http.StatusFound)
			return
		}
		serveRange(w, r, b, f, h)
		return
	}
	http.NotFound(w, r)
}

func sign(s string) string {
	x := sha256.Sum256([]byte("hubtest-secret" + s))
	return hex.EncodeToString(x[:8])
}

func (h *Hub) serveInfo(w http.ResponseWriter, r *http.Request, repo *Repo) {
	type lfsInfo struct {
		SHA256      string `json:"sha256"`
		Size        int    `json:"size"`
		PointerSize int    `json:"pointerSize"`
	}
	type sibling struct {
		RFilename string   `json:"rfilename"`
		Size      *int     `json:"size,omitempty"`
		BlobID    string   `json:"blobId,omitempty"`
		LFS       *lfsInfo `json:"lfs,omitempty"`
	}
	blobs := r.URL.Query().Get("blobs") == "true" || r.URL.Query().Get("blobs") == "True" || r.URL.Query().Get("blobs") == "1"
	var sib []sibling
	h.mu.Lock()
	names := make([]string, 0, len(repo.files))
	for p := range repo.files {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		b := repo.files[p]
		s := sibling{RFilename: p}
		if blobs {
			n := len(b.data)
			s.Size = &n
			s.BlobID = b.gitOID
			if b.lfs {
				s.LFS = &lfsInfo{SHA256: b.sha256, Size: n, PointerSize: 134}
			}
		}
		sib = append(sib, s)
	}
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"id": repo.ID, "modelId": repo.ID, "sha": repo.Commit, "private": repo.Private, "siblings": sib})
}

func (h *Hub) serveCDN(w *recorder, r *http.Request, f *Fault) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var b *blob
	h.mu.Lock()
	switch {
	case strings.HasPrefix(r.URL.Path, "/lfs/"):
		sha := strings.TrimPrefix(r.URL.Path, "/lfs/")
		if r.URL.Query().Get("sig") == sign(sha) {
			b = h.lfs[sha]
		} else {
			h.mu.Unlock()
			http.Error(w, "AccessDenied: bad signature", http.StatusForbidden)
			return
		}
	case strings.HasPrefix(r.URL.Path, "/files/"):
		b = h.plain[strings.TrimPrefix(r.URL.Path, "/files/")]
	}
	h.mu.Unlock()
	if b == nil {
		http.NotFound(w, r)
		return
	}
	serveRange(w, r, b, f, h)
}

// serveRange serves a blob honouring a single "bytes=A-B" or "bytes=A-"
// range, applying a body fault.
func serveRange(w *recorder, r *http.Request, b *blob, f *Fault, h *Hub) {
	h.mu.Lock()
	tag := b.etag()
	h.mu.Unlock()
	size := int64(len(b.data))
	w.Header().Set("ETag", tag)
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Type", "application/octet-stream")
	first, last, status := int64(0), size-1, http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" {
		a, z, ok := parseRange(rg, size)
		if !ok {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		first, last, status = a, z, http.StatusPartialContent
	}
	if f != nil && f.Kind == WrongRange && status == http.StatusPartialContent && last+1 < size {
		first, last = first+1, last+1
	}
	body := b.data[first : last+1]
	if status == http.StatusPartialContent {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", first, last, size))
	}
	if f == nil || f.Kind != ShortBody {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	switch {
	case f != nil && f.Kind == ShortBody:
		w.Write(body[:len(body)/2])
		w.Flush() // sent chunked: the body ends cleanly, short
	case f != nil && f.Kind == ResetMidBody:
		w.Write(body[:len(body)/2])
		w.Flush()
		if conn, _, err := w.Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // close with a reset
			}
			conn.Close()
		}
	case f != nil && f.Kind == Stall:
		w.Write(body[:len(body)/2])
		w.Flush()
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
			return
		}
		w.Write(body[len(body)/2:])
	default:
		w.Write(body)
	}
}

func parseRange(v string, size int64) (int64, int64, bool) {
	s, ok := strings.CutPrefix(v, "bytes=")
	if !ok || strings.Contains(s, ",") {
		return 0, 0, false
	}
	a, z, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, false
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 || first >= size {
		return 0, 0, false
	}
	last := size - 1
	if z != "" {
		l, err := strconv.ParseInt(z, 10, 64)
		if err != nil || l < first {
			return 0, 0, false
		}
		last = min(l, size-1)
	}
	return first, last, true
}
