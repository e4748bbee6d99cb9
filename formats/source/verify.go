package source

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qkvdev/qkv/internal/jsonmsg"
)

// ManifestSchema is the schema of a manifest file.
const ManifestSchema = "qkv.manifest/v1"

// Manifest lists a checkpoint's files with their sizes and SHA-256, as
// written by WriteManifest (qkv verify --write-manifest):
//
//	{
//	  "schema": "qkv.manifest/v1",
//	  "files": [
//	    {"path": "config.json", "size": 666, "sha256": "3f5a…"},
//	    {"path": "model-00001-of-00002.safetensors", "size": 394888, "sha256": "…"}
//	  ]
//	}
//
// Paths are relative to the checkpoint's folder, '/'-separated, sorted and
// unique; sha256 is 64 lower-case hex digits.
type Manifest struct {
	Schema string         `json:"schema"`
	Files  []ManifestFile `json:"files"`
}

// ManifestFile is one file of a Manifest.
type ManifestFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// maxManifestBytes bounds a manifest read (one line per file).
const maxManifestBytes = 64 << 20

// ParseManifest reads a manifest and checks every field.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("manifest of %d bytes is larger than the %d allowed", len(b), maxManifestBytes)
	}
	var m Manifest
	if err := jsonmsg.Decode(b, &m); err != nil {
		return nil, fmt.Errorf("not a qkv manifest: %v", err)
	}
	if m.Schema != ManifestSchema {
		return nil, fmt.Errorf("manifest schema is %q, want %q", m.Schema, ManifestSchema)
	}
	seen := map[string]bool{}
	for i, f := range m.Files {
		if err := validRepoPath(f.Path); err != nil {
			return nil, fmt.Errorf("manifest file %d: path %q: %v", i, f.Path, err)
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("manifest lists %q twice", f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 {
			return nil, fmt.Errorf("manifest: %s: negative size %d", f.Path, f.Size)
		}
		if !isHex(f.SHA256, 64) {
			return nil, fmt.Errorf("manifest: %s: sha256 %q is not 64 lower-case hex digits", f.Path, f.SHA256)
		}
	}
	return &m, nil
}

// Write writes the manifest as indented JSON.
func (m *Manifest) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// How a file's expected hash is known (FileCheck.Against).
const (
	AgainstManifest = "manifest" // the manifest given
	AgainstHubLFS   = "hub-lfs"  // the Hub's LFS object id (SHA-256)
	AgainstHubGit   = "hub-git"  // the Hub's git blob id (SHA-1 of "blob N\0" + bytes)
	AgainstCacheLFS = "hf-cache-blob"
	AgainstCacheGit = "hf-cache-git"
	AgainstNone     = "none"
)

// File statuses (FileCheck.Status).
const (
	StatusOK         = "ok"
	StatusMismatch   = "mismatch"   // the hash differs
	StatusSize       = "size"       // the size differs (a truncated or padded file)
	StatusMissing    = "missing"    // listed in the manifest, absent
	StatusError      = "error"      // could not be read
	StatusUnverified = "unverified" // nothing says what it should be; the hash is shown
	StatusUnlisted   = "unlisted"   // present but not in the manifest (not a failure)
)

// FileCheck is the verdict on one file.
type FileCheck struct {
	Path         string `json:"path"`
	Size         int64  `json:"size"`
	SHA256       string `json:"sha256,omitempty"`
	Against      string `json:"against"`
	Expected     string `json:"expected,omitempty"` // the SHA-256 (or git blob id) expected
	ExpectedSize int64  `json:"expected_size"`      // -1 when unknown
	Status       string `json:"status"`
	Message      string `json:"message,omitempty"`
}

// Failed reports whether the file fails verification.
func (f *FileCheck) Failed() bool {
	switch f.Status {
	case StatusMismatch, StatusSize, StatusMissing, StatusError:
		return true
	}
	return false
}

// VerifyOptions tune Verify and WriteManifest.
type VerifyOptions struct {
	// Manifest, when set, is what the files must match; otherwise the
	// hashes the Dir knows (Hub LFS ids, Hugging Face cache blob names).
	Manifest *Manifest
	// Parallel is how many files are hashed at once (default: the CPUs, at
	// most 4).
	Parallel int
	// Skip leaves files out (the manifest file itself, in the folder).
	Skip func(name string) bool
	// Progress is called as bytes are hashed (at most every 100 ms, and at
	// the end).
	Progress func(HashProgress)
}

// HashProgress reports hashing.
type HashProgress struct {
	Bytes, Total int64   // hashed so far, to hash in all
	Rate         float64 // bytes per second
	Done         bool
}

// VerifyResult is the verdict on every file.
type VerifyResult struct {
	Files  []FileCheck `json:"files"`
	Passed bool        `json:"passed"`
	// Compared counts the files whose hash was compared with an expected one.
	Compared int   `json:"compared"`
	Bytes    int64 `json:"bytes_hashed"`
}

// Verify hashes every file of d (those of the manifest when one is given,
// else d.List()) in parallel and compares each with what is expected of it.
// A file that cannot be read fails; the error returned is for d itself.
func Verify(ctx context.Context, d Dir, opts VerifyOptions) (*VerifyResult, error) {
	listed, err := d.List()
	if err != nil {
		return nil, err
	}
	var checks []FileCheck
	var infos []FileInfo
	inManifest := map[string]bool{}
	if m := opts.Manifest; m != nil {
		for _, mf := range m.Files {
			inManifest[mf.Path] = true
			fc := FileCheck{Path: mf.Path, Against: AgainstManifest, Expected: mf.SHA256, ExpectedSize: mf.Size}
			fi, err := d.Stat(mf.Path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				fc.Status, fc.Size, fc.Message = StatusMissing, -1, "listed in the manifest but absent"
			case err != nil:
				fc.Status, fc.Size, fc.Message = StatusError, -1, oneLine(err.Error())
			case !fi.Mode.IsRegular() && fi.Mode != 0:
				fc.Status, fc.Size, fc.Message = StatusError, -1, "not a regular file"
			default:
				fc.Size = fi.Size
			}
			checks = append(checks, fc)
			infos = append(infos, fi)
		}
		for _, fi := range listed {
			if !inManifest[fi.Name] && (opts.Skip == nil || !opts.Skip(fi.Name)) {
				checks = append(checks, FileCheck{Path: fi.Name, Size: fi.Size, Against: AgainstNone, ExpectedSize: -1, Status: StatusUnlisted})
				infos = append(infos, fi)
			}
		}
	} else {
		_, fromCache := d.(*LocalDir)
		for _, fi := range listed {
			if opts.Skip != nil && opts.Skip(fi.Name) {
				continue
			}
			fc := FileCheck{Path: fi.Name, Size: fi.Size, Against: AgainstNone, ExpectedSize: -1}
			switch {
			case fi.SHA256 != "":
				fc.Expected, fc.Against = fi.SHA256, AgainstHubLFS
				if fromCache {
					fc.Against = AgainstCacheLFS
				}
			case fi.GitOID != "":
				fc.Expected, fc.Against = fi.GitOID, AgainstHubGit
				if fromCache {
					fc.Against = AgainstCacheGit
				}
			}
			if _, remote := d.(*hubDir); remote {
				fc.ExpectedSize = fi.Size
			}
			checks = append(checks, fc)
			infos = append(infos, fi)
		}
	}

	// Sizes first: a truncated file fails without being read.
	var total int64
	var todo []int
	for i := range checks {
		fc := &checks[i]
		if fc.Status != "" && fc.Status != StatusUnlisted {
			continue
		}
		if fc.ExpectedSize >= 0 && fc.Size != fc.ExpectedSize {
			fc.Status = StatusSize
			fc.Message = fmt.Sprintf("is %d bytes, expected %d (%s)", fc.Size, fc.ExpectedSize, fc.Against)
			continue
		}
		todo = append(todo, i)
		total += fc.Size
	}

	h := newHasher(opts, total)
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = min(runtime.NumCPU(), 4)
	}
	ForEach(len(todo), parallel, func(k int) error {
		fc := &checks[todo[k]]
		git := fc.Against == AgainstHubGit || fc.Against == AgainstCacheGit
		sum, gitSum, n, err := h.hashFile(ctx, d, fc.Path, fc.Size, git)
		if err != nil {
			fc.Status, fc.Message = StatusError, oneLine(err.Error())
			return nil
		}
		fc.SHA256 = sum
		if n != fc.Size {
			fc.Status, fc.Message = StatusSize, fmt.Sprintf("read %d bytes, the listing said %d (the file changed)", n, fc.Size)
			return nil
		}
		got := sum
		if git {
			got = gitSum
		}
		switch {
		case fc.Status == StatusUnlisted:
		case fc.Expected == "":
			fc.Status = StatusUnverified
		case got == fc.Expected:
			fc.Status = StatusOK
		default:
			fc.Status = StatusMismatch
			what := "sha256"
			if git {
				what = "git blob id"
			}
			fc.Message = fmt.Sprintf("%s is %s, expected %s (%s)", what, got, fc.Expected, fc.Against)
		}
		return nil
	})
	h.done()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := &VerifyResult{Files: checks, Passed: true, Bytes: h.hashed.Load()}
	for i := range checks {
		if checks[i].Failed() {
			res.Passed = false
		}
		if checks[i].Status == StatusOK || checks[i].Status == StatusMismatch {
			res.Compared++
		}
	}
	sort.SliceStable(res.Files, func(i, j int) bool { return res.Files[i].Path < res.Files[j].Path })
	return res, nil
}

// WriteManifest hashes every file of d (d.List(), minus Skip) and returns
// their manifest. It verifies them on the way against what d knows (Hub ids,
// cache blob names): the result says whether they passed, and a manifest
// of files that failed should not be written.
func WriteManifest(ctx context.Context, d Dir, opts VerifyOptions) (*Manifest, *VerifyResult, error) {
	opts.Manifest = nil
	res, err := Verify(ctx, d, opts)
	if err != nil {
		return nil, nil, err
	}
	m := &Manifest{Schema: ManifestSchema, Files: []ManifestFile{}}
	for _, fc := range res.Files {
		if fc.SHA256 != "" {
			m.Files = append(m.Files, ManifestFile{Path: fc.Path, Size: fc.Size, SHA256: fc.SHA256})
		}
	}
	return m, res, nil
}

// hasher hashes files and reports progress across them.
type hasher struct {
	opts   VerifyOptions
	total  int64
	hashed atomic.Int64
	t0     time.Time
	mu     sync.Mutex
	last   time.Time
}

func newHasher(opts VerifyOptions, total int64) *hasher {
	return &hasher{opts: opts, total: total, t0: time.Now()}
}

func (h *hasher) add(n int64) {
	done := h.hashed.Add(n)
	if h.opts.Progress == nil {
		return
	}
	h.mu.Lock()
	now := time.Now()
	if now.Sub(h.last) < 100*time.Millisecond {
		h.mu.Unlock()
		return
	}
	h.last = now
	h.mu.Unlock()
	h.opts.Progress(HashProgress{Bytes: done, Total: h.total, Rate: float64(done) / max(now.Sub(h.t0).Seconds(), 1e-9)})
}

func (h *hasher) done() {
	if h.opts.Progress != nil {
		done := h.hashed.Load()
		h.opts.Progress(HashProgress{Bytes: done, Total: h.total, Rate: float64(done) / max(time.Since(h.t0).Seconds(), 1e-9), Done: true})
	}
}

// progressWriter feeds the hashes and counts.
type progressWriter struct {
	ws []hash.Hash
	h  *hasher
	n  int64
}

func (w *progressWriter) Write(p []byte) (int, error) {
	for _, x := range w.ws {
		x.Write(p)
	}
	w.n += int64(len(p))
	w.h.add(int64(len(p)))
	return len(p), nil
}

// hashFile returns the SHA-256 of a file and, with git, its git blob id.
// Local files are read sequentially with large reads (not through the
// mapping); remote files are streamed without going through the cache.
func (h *hasher) hashFile(ctx context.Context, d Dir, name string, size int64, git bool) (sum, gitSum string, n int64, err error) {
	src, err := d.Open(name)
	if err != nil {
		return "", "", 0, err
	}
	defer src.Close()
	s256 := sha256.New()
	w := &progressWriter{ws: []hash.Hash{s256}, h: h}
	var g hash.Hash
	if git {
		g = sha1.New()
		io.WriteString(g, "blob "+strconv.FormatInt(size, 10)+"\x00")
		w.ws = append(w.ws, g)
	}
	switch s := src.(type) {
	case *Local:
		buf := make([]byte, 4<<20)
		r := &ctxReader{ctx: ctx, r: s.File()}
		if _, err := io.CopyBuffer(w, r, buf); err != nil {
			return "", "", w.n, &Error{Name: src.Name(), Err: err}
		}
	case io.WriterTo:
		if _, err := s.WriteTo(w); err != nil {
			return "", "", w.n, err
		}
	default:
		if _, err := io.Copy(w, io.NewSectionReader(src, 0, src.Size())); err != nil {
			return "", "", w.n, err
		}
	}
	sum = hex.EncodeToString(s256.Sum(nil))
	if g != nil {
		gitSum = hex.EncodeToString(g.Sum(nil))
	}
	return sum, gitSum, w.n, nil
}

// ctxReader stops a long read when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
