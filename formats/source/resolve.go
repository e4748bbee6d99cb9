package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Kind is where a Target's bytes come from.
type Kind int

const (
	KindLocal   Kind = iota // a local path
	KindHFCache             // a Hub repository found in the Hugging Face cache (local files)
	KindHub                 // a Hub repository read over HTTP (or from qkv's cache)
	KindURL                 // an https:// URL of one file
)

func (k Kind) String() string {
	return [...]string{"local", "hf-cache", "hub", "url"}[k]
}

// Remote reports whether reading the target may use the network.
func (k Kind) Remote() bool { return k == KindHub || k == KindURL }

// Target is a resolved input: a folder and, when the input named one, the
// file in it.
type Target struct {
	Input string // as given
	Kind  Kind
	Dir   Dir
	File  string // the file named, relative to Dir; "" when the input is a folder or repository

	// Hub inputs (KindHFCache, KindHub).
	Repo     string // ORG/NAME
	Revision string // as asked ("main" by default)
	Commit   string // the commit it resolved to
	// URL inputs: the URL (query removed).
	URL string
}

// Display names the target for people: the path, hf://ORG/NAME@REV[/PATH]
// or the URL.
func (t *Target) Display() string {
	switch t.Kind {
	case KindHub, KindHFCache:
		s := "hf://" + t.Repo + "@" + t.Revision
		if p := t.repoPath(); p != "" {
			s += "/" + p
		}
		return s
	case KindURL:
		return t.URL
	}
	return t.Input
}

func (t *Target) repoPath() string {
	var prefix string
	switch d := t.Dir.(type) {
	case *hubDir:
		prefix = d.prefix
	case *LocalDir:
		prefix = d.prefix
	}
	return strings.TrimSuffix(prefix+t.File, "/")
}

// ref is a parsed remote input.
type ref struct {
	hub            bool
	repo, rev, pth string   // hub
	u              *url.URL // url
}

var repoPart = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$`) })

// validRepoID checks ORG/NAME the way the Hub names repositories.
func validRepoID(id string) error {
	org, name, ok := strings.Cut(id, "/")
	if !ok || !repoPart().MatchString(org) || !repoPart().MatchString(name) {
		return fmt.Errorf("%q is not a repository id ORG/NAME", id)
	}
	if strings.Contains(id, "--") || strings.Contains(id, "..") || strings.HasSuffix(name, ".git") {
		return fmt.Errorf("%q is not a valid repository id (no \"--\", \"..\" or \".git\")", id)
	}
	return nil
}

// validRepoPath checks a path inside a repository: relative, '/'-separated,
// no empty, "." or ".." segment, no backslash or control character.
func validRepoPath(p string) error {
	if p == "" || len(p) > 4096 {
		return errors.New("empty or too long path")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return errors.New("the path has an empty, \".\" or \"..\" segment")
		}
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return errors.New("the path has a control character or a backslash")
		}
	}
	return nil
}

var revChars = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9._/-]{1,256}$`) })

func validRevision(rev string) error {
	if !revChars().MatchString(rev) || validRepoPath(rev) != nil || strings.Contains(rev, "..") {
		return fmt.Errorf("%q is not a revision (a branch, tag or commit id)", rev)
	}
	return nil
}

// splitRevPath splits "REV[/PATH]" (after '@'). A revision has no '/', except
// the Hub's refs/pr/N and refs/convert/NAME; %2F also stands for '/'.
func splitRevPath(s string) (rev, pth string) {
	if strings.HasPrefix(s, "refs/pr/") || strings.HasPrefix(s, "refs/convert/") {
		parts := strings.SplitN(s, "/", 4)
		rev = strings.Join(parts[:min(3, len(parts))], "/")
		if len(parts) == 4 {
			pth = parts[3]
		}
	} else {
		rev, pth, _ = strings.Cut(s, "/")
	}
	if r, err := url.PathUnescape(rev); err == nil {
		rev = r
	}
	return rev, pth
}

// parseHub parses ORG/NAME[@REV][/PATH].
func parseHub(s string) (ref, error) {
	r := ref{hub: true, rev: "main"}
	org, rest, ok := strings.Cut(s, "/")
	if !ok {
		return r, fmt.Errorf("%q: expected ORG/NAME", s)
	}
	name := rest
	if i := strings.IndexAny(rest, "@/"); i >= 0 {
		name = rest[:i]
		if rest[i] == '@' {
			r.rev, r.pth = splitRevPath(rest[i+1:])
		} else {
			r.pth = rest[i+1:]
		}
	}
	r.repo = org + "/" + name
	if err := validRepoID(r.repo); err != nil {
		return r, err
	}
	if err := validRevision(r.rev); err != nil {
		return r, err
	}
	r.pth = strings.TrimSuffix(r.pth, "/")
	if r.pth != "" {
		if err := validRepoPath(r.pth); err != nil {
			return r, fmt.Errorf("%q: %v", r.pth, err)
		}
	}
	return r, nil
}

var bareRepo = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9._/%-]+)?$`)
})

// IsRemote reports whether input has a remote form (hf://, http(s)://, or a
// bare ORG/NAME[@REV] that is not an existing local path).
func IsRemote(input string) bool {
	if strings.HasPrefix(input, "hf://") || strings.HasPrefix(input, "https://") || strings.HasPrefix(input, "http://") {
		return true
	}
	if bareRepo().MatchString(input) {
		_, err := os.Lstat(input)
		return errors.Is(err, fs.ErrNotExist)
	}
	return false
}

// parseInput classifies a remote input. ok is false for a local path.
func (c *Client) parseInput(input string) (ref, bool, error) {
	switch {
	case strings.HasPrefix(input, "hf://"):
		rest := strings.TrimPrefix(input, "hf://")
		if s, ok := strings.CutPrefix(rest, "models/"); ok && strings.Count(strings.SplitN(s, "@", 2)[0], "/") >= 1 {
			rest = s
		}
		for _, kind := range []string{"datasets/", "spaces/"} {
			if strings.HasPrefix(rest, kind) {
				return ref{}, true, fmt.Errorf("only model repositories hold checkpoints, not %s", strings.TrimSuffix(kind, "/"))
			}
		}
		r, err := parseHub(rest)
		return r, true, err
	case strings.HasPrefix(input, "https://") || strings.HasPrefix(input, "http://"):
		u, err := url.Parse(input)
		if err != nil || u.Host == "" {
			return ref{}, true, fmt.Errorf("not a URL: %v", err)
		}
		if u.User != nil {
			return ref{}, true, errors.New("a URL with a user name or password is refused (use HF_TOKEN for the Hub)")
		}
		if r, ok := c.hubURL(u); ok {
			return r, true, nil
		}
		return ref{u: u}, true, nil
	case IsRemote(input):
		r, err := parseHub(input)
		if err == nil && r.pth != "" {
			return r, true, fmt.Errorf("a bare repository id has no path; use hf://%s", input)
		}
		return r, true, err
	}
	return ref{}, false, nil
}

// hubURL recognises a file URL of the Hub (the endpoint, huggingface.co or
// hf.co): /ORG/NAME/resolve/REV/PATH or the browser's /ORG/NAME/blob/REV/PATH.
func (c *Client) hubURL(u *url.URL) (ref, bool) {
	host := strings.ToLower(u.Host)
	if !sameHost(u, c.endpoint) && host != "huggingface.co" && host != "hf.co" {
		return ref{}, false
	}
	if (host == "huggingface.co" || host == "hf.co") && !sameHost(u, c.endpoint) && c.endpoint.Host != "huggingface.co" {
		return ref{}, false // a mirror is configured: huggingface.co is just a URL then
	}
	parts := strings.SplitN(strings.TrimPrefix(u.EscapedPath(), "/"), "/", 5)
	if len(parts) < 5 || (parts[2] != "resolve" && parts[2] != "blob") {
		return ref{}, false
	}
	rev, err := url.PathUnescape(parts[3])
	if err != nil {
		return ref{}, false
	}
	pth, err := url.PathUnescape(parts[4])
	if err != nil {
		return ref{}, false
	}
	r, err := parseHub(parts[0] + "/" + parts[1])
	if err != nil || validRevision(rev) != nil || validRepoPath(pth) != nil {
		return ref{}, false
	}
	r.rev, r.pth = rev, pth
	return r, true
}

// Resolve turns an input into a Target: a local path (which wins when it
// exists), hf://ORG/NAME[@REV][/PATH], a bare ORG/NAME[@REV] that is not a
// local path, or an http(s) URL of one file (a Hub file URL is read as the
// repository's). A repository is looked up in the Hugging Face cache first
// and only then on the Hub; with Offline it is served from the Hugging Face
// cache or qkv's cache, or fails naming what is missing. ctx bounds every
// later read of the Target's files.
func (c *Client) Resolve(ctx context.Context, input string) (*Target, error) {
	r, remote, err := c.parseInput(input)
	if err != nil {
		return nil, &Error{Name: input, Err: err}
	}
	if !remote {
		return ResolveLocal(input), nil
	}
	if !r.hub {
		return c.resolveURL(ctx, input, r.u)
	}
	return c.resolveHub(ctx, input, r)
}

// ResolveLocal is Resolve for an input that names a local path (which
// needs no Client): a folder, or a file of its folder. Nothing is checked:
// a path that does not exist gives a Target whose file's Stat fails with
// fs.ErrNotExist.
func ResolveLocal(input string) *Target {
	st, err := os.Stat(input)
	if err == nil && st.IsDir() {
		return &Target{Input: input, Kind: KindLocal, Dir: NewLocalDir(input)}
	}
	// The file keeps the name it was given in messages ("./m.gguf").
	file := filepath.Base(input)
	d := &LocalDir{dir: filepath.Dir(input), given: map[string]string{file: input}}
	return &Target{Input: input, Kind: KindLocal, Dir: d, File: file}
}

func (c *Client) resolveHub(ctx context.Context, input string, r ref) (*Target, error) {
	t := &Target{Input: input, Repo: r.repo, Revision: r.rev}
	display := "hf://" + r.repo + "@" + r.rev
	if r.pth != "" {
		display += "/" + r.pth
	}
	// 1. The Hugging Face cache.
	snap, commit, why := c.hfSnapshot(r.repo, r.rev)
	if snap != "" {
		sub, file := "", ""
		if r.pth != "" {
			if st, err := os.Stat(filepath.Join(snap, filepath.FromSlash(r.pth))); err == nil && st.IsDir() {
				sub = r.pth + "/"
			} else {
				sub, file = dirPrefix(r.pth), path.Base(r.pth)
			}
		}
		sd := &LocalDir{dir: filepath.Join(snap, filepath.FromSlash(sub)), blobs: true, prefix: sub}
		miss := missingFiles(sd, file)
		if len(miss) == 0 {
			t.Kind, t.Dir, t.File, t.Commit = KindHFCache, sd, file, commit
			return t, nil
		}
		// A partial download: the Hub has the rest.
		why = fmt.Sprintf("snapshot %s in %s lacks %s", commit[:12], c.opts.HFCacheDir, joinMax(miss, 3))
	}
	// 2. The Hub (or, offline, qkv's record of it).
	repo, err := c.hubRepoCached(ctx, r.repo, r.rev)
	if err != nil {
		bare := bareRepo().MatchString(input) && !strings.HasPrefix(input, "hf://")
		if errors.Is(err, ErrOffline) {
			err = fmt.Errorf("%w: HF_HUB_OFFLINE is set and the repository is not cached (%s; qkv's cache has no record of it either)", ErrOffline, why)
		}
		switch {
		case bare && errors.Is(err, fs.ErrNotExist):
			return nil, &Error{Name: input, Err: &notExist{fmt.Sprintf("no such file or folder, and no such repository on %s (%v)", c.endpoint.Host, err)}}
		case bare:
			// A local path mistyped, or a repository that cannot be
			// reached: say both.
			return nil, &Error{Name: input, Err: fmt.Errorf("no such file or folder; as the repository %s: %w", display, err)}
		}
		return nil, &Error{Name: display, Err: err}
	}
	t.Kind, t.Commit = KindHub, repo.Commit
	d := &hubDir{c: c, ctx: ctx, repo: repo}
	if r.pth != "" {
		if _, ok := repo.Files[r.pth]; ok {
			d.prefix, t.File = dirPrefix(r.pth), path.Base(r.pth)
		} else if repo.hasFolder(r.pth) {
			d.prefix = r.pth + "/"
		} else {
			return nil, &Error{Name: display, Err: &notExist{fmt.Sprintf("no file or folder %s in the repository at commit %s", r.pth, repo.Commit[:12])}}
		}
	}
	// Offline, the files' ranges come from qkv's cache; a range never
	// read before fails when it is read, naming the file and the bytes.
	t.Dir = d
	return t, nil
}

func (r *hubRepo) hasFolder(p string) bool {
	for name := range r.Files {
		if strings.HasPrefix(name, p+"/") {
			return true
		}
	}
	return false
}

func dirPrefix(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i+1]
	}
	return ""
}

func joinMax(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(" and %d more", len(s)-n)
}

// resolveURL resolves a plain URL of one file.
func (c *Client) resolveURL(ctx context.Context, input string, u *url.URL) (*Target, error) {
	if err := c.checkScheme(u); err != nil {
		return nil, &Error{Name: redact(u), Err: err}
	}
	dirURL := *u
	dirURL.RawQuery, dirURL.Fragment = "", ""
	i := strings.LastIndexByte(dirURL.Path, '/')
	file := dirURL.Path[i+1:]
	if file == "" {
		return nil, errorf(redact(u), "the URL names a folder; give the URL of a .safetensors or .gguf file")
	}
	dirURL.Path, dirURL.RawPath = dirURL.Path[:i+1], ""
	d := &urlDir{c: c, ctx: ctx, base: &dirURL, file: file, fileURL: u, stats: map[string]urlStat{}}
	if _, err := d.Stat(file); err != nil {
		return nil, err
	}
	return &Target{Input: input, Kind: KindURL, Dir: d, File: file, URL: redact(u)}, nil
}

// urlDir is the folder of a URL: the URL's file, and siblings by name (the
// other parts of a split GGUF, config.json).
type urlDir struct {
	c       *Client
	ctx     context.Context
	base    *url.URL // the folder, no query
	file    string
	fileURL *url.URL // the file as given (with its query)

	mu    sync.Mutex
	stats map[string]urlStat
}

type urlStat struct {
	Size int64  `json:"size"`
	ETag string `json:"etag"`
	// Linked: the ETag is the Hub's id of the file (X-Linked-Etag), not the
	// one its bytes will be served with.
	Linked bool `json:"linked,omitempty"`
}

func (d *urlDir) Name() string { return redact(d.base) }

func (d *urlDir) Path(name string) string { return redact(d.urlOf(name)) }

func (d *urlDir) urlOf(name string) *url.URL {
	if name == d.file {
		return d.fileURL
	}
	u := *d.base
	u.Path += name
	return &u
}

func (d *urlDir) List() ([]FileInfo, error) {
	fi, err := d.Stat(d.file)
	if err != nil {
		return nil, err
	}
	return []FileInfo{fi}, nil
}

func urlMetaKey(u *url.URL) string { return "urlhead\x00" + redact(u) }

// Stat asks the server for a file's size and ETag (HEAD), once per file.
func (d *urlDir) Stat(name string) (FileInfo, error) {
	if strings.Contains(name, "/") || validRepoPath(name) != nil {
		return FileInfo{}, &Error{Name: d.Path(name), Err: &notExist{"not a file name"}}
	}
	d.mu.Lock()
	st, ok := d.stats[name]
	d.mu.Unlock()
	if !ok {
		var err error
		st, err = d.head(d.urlOf(name))
		if err != nil {
			return FileInfo{}, &Error{Name: d.Path(name), Err: err}
		}
		d.mu.Lock()
		d.stats[name] = st
		d.mu.Unlock()
	}
	return FileInfo{Name: name, Size: st.Size}, nil
}

func (d *urlDir) head(u *url.URL) (urlStat, error) {
	c := d.c
	if c.opts.Offline {
		var st urlStat
		if c.cache != nil && c.cache.loadMeta(urlMetaKey(u), &st) && st.Size >= 0 {
			return st, nil
		}
		return st, fmt.Errorf("%w: HF_HUB_OFFLINE is set and qkv's cache has no record of this URL", ErrOffline)
	}
	var st urlStat
	err := c.withRetries(d.ctx, func() error {
		return c.exchange(d.ctx, http.MethodHead, u, nil, true, func(resp *http.Response, first http.Header, _ *url.URL) error {
			h := resp.Header
			if ls := first.Get("X-Linked-Size"); ls != "" {
				// The Hub answers with a redirect carrying the size and id.
				n, err := strconv.ParseInt(ls, 10, 64)
				if err != nil || n < 0 {
					return fmt.Errorf("X-Linked-Size %q is not a size", cleanHeader(ls))
				}
				st = urlStat{Size: n, ETag: normETag(first.Get("X-Linked-Etag")), Linked: true}
				return nil
			}
			if resp.StatusCode != http.StatusOK {
				return c.statusError(resp, "HEAD "+redact(u))
			}
			if resp.ContentLength < 0 {
				return errors.New("the server does not say the file's size (no Content-Length)")
			}
			st = urlStat{Size: resp.ContentLength, ETag: normETag(h.Get("ETag"))}
			if st.ETag == "" {
				st.ETag = "lm:" + h.Get("Last-Modified")
			}
			return nil
		})
	})
	if err == nil && c.cache != nil {
		c.cache.saveMeta(urlMetaKey(u), st)
	}
	return st, err
}

func (d *urlDir) Open(name string) (Source, error) {
	fi, err := d.Stat(name)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	st := d.stats[name]
	d.mu.Unlock()
	u := d.urlOf(name)
	key := ""
	if st.ETag != "" && st.ETag != "lm:" {
		key = "url\x00" + redact(u) + "\x00" + st.ETag + "\x00" + strconv.FormatInt(st.Size, 10)
	}
	r := &remoteFile{c: d.c, ctx: d.ctx, name: d.Path(name), u: u, size: fi.Size, key: key}
	if !st.Linked && !strings.HasPrefix(st.ETag, "lm:") {
		r.etag = st.ETag // the bytes must come with the ETag the HEAD saw
	}
	return r, nil
}

func (d *urlDir) ReadFile(name string, limit int64) ([]byte, error) { return readWhole(d, name, limit) }
