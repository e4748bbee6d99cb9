package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"unsafe"

	"github.com/qkvdev/qkv/internal/infile"
)

// Source is one file of a checkpoint, local or remote.
type Source interface {
	// ReadAt reads len(p) bytes at off, like io.ReaderAt (io.EOF past the end).
	io.ReaderAt
	// Name is the file's name for messages: a path, hf://ORG/NAME@COMMIT/PATH
	// or a URL.
	Name() string
	// Size is the file's size in bytes (for a remote file, what the server
	// said; every read is checked against it).
	Size() int64
	// Bytes returns bytes [off, off+n). The slice is read-only: for a mapped
	// local file it aliases the mapping (zero-copy, so reading it can fault
	// if the file shrinks: read it under the caller's fault guard); for a
	// remote file it is a fresh copy fetched (or read from the cache) for
	// this call. Only the bytes asked for are fetched.
	Bytes(off, n int64) ([]byte, error)
	Close() error
}

// FileInfo describes one file of a Dir.
type FileInfo struct {
	Name string      // relative to the Dir, '/'-separated
	Size int64       // bytes
	Mode fs.FileMode // local files: the mode (after symbolic links); remote files: 0 (regular)
	// SHA256 is the file's expected SHA-256 (lower-case hex) when something
	// other than its bytes says what it should be: the Hub's LFS object id
	// or the Hugging Face cache's blob name. "" when unknown.
	SHA256 string
	// GitOID is the expected git blob id (SHA-1 of "blob SIZE\0" + bytes) of
	// a file the Hub stores in git rather than LFS; "" when unknown.
	GitOID string
}

// Regular reports whether the file is a regular file.
func (fi FileInfo) Regular() bool { return fi.Mode.IsRegular() }

// Dir is a folder of checkpoint files: a local folder, a folder of a Hub
// repository (remote or in the Hugging Face cache), or the folder of a URL.
type Dir interface {
	// Name is the folder's name for messages.
	Name() string
	// Path is the name of a file in the folder for messages.
	Path(name string) string
	// List returns the regular files directly in the folder, sorted by
	// name (symbolic links followed). A Hub repository lists only the
	// files a checkpoint needs (see CheckpointFile); a URL's folder lists
	// the URL's file alone.
	List() ([]FileInfo, error)
	// Stat describes one file; an absent file gives an error for which
	// errors.Is(err, fs.ErrNotExist) holds.
	Stat(name string) (FileInfo, error)
	// Open opens one file for random access.
	Open(name string) (Source, error)
	// ReadFile reads a whole small file (config.json, an index), refusing
	// one larger than limit bytes.
	ReadFile(name string, limit int64) ([]byte, error)
}

// Error is an error reading a file or resolving an input: it names the file
// (or input) and says what went wrong, on one line.
type Error struct {
	Name string
	Err  error
}

func (e *Error) Error() string { return e.Name + ": " + oneLine(e.Err.Error()) }
func (e *Error) Unwrap() error { return e.Err }

func errorf(name, format string, args ...any) error {
	return &Error{Name: name, Err: fmt.Errorf(format, args...)}
}

func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// Sentinel causes, for errors.Is.
var (
	// ErrOffline: the bytes are not on this machine and the network is
	// forbidden (HF_HUB_OFFLINE=1).
	ErrOffline = errors.New("offline")
	// ErrChanged: a remote file changed (ETag or size) during the run.
	ErrChanged = errors.New("the file changed on the server during the run")
	// ErrNeedMore: a parser needs a longer prefix (see ReadPrefix).
	ErrNeedMore = errors.New("need more bytes")
)

// notExist is an absent file: errors.Is(err, fs.ErrNotExist) holds.
type notExist struct{ msg string }

func (e *notExist) Error() string        { return e.msg }
func (e *notExist) Is(target error) bool { return target == fs.ErrNotExist }

// checkRange checks a read of n bytes at off against a file of size bytes.
func checkRange(name string, off, n, size int64) error {
	if off < 0 || n < 0 || off > size || n > size-off {
		return errorf(name, "read of %d bytes at byte %d is outside the file (%d bytes)", n, off, size)
	}
	return nil
}

// Local is a local file, memory-mapped read-only (on platforms without a
// mapping, read with ReadAt: see Mapped).
type Local struct {
	name string
	f    *os.File
	size int64
	data []byte // the mapping; nil when unmapped
	m    mapping

	// pending is the span Release has yet to drop: small reads in a row
	// (a tensor decoded in pieces of a few values, a row at a time) are
	// dropped together, one system call per releaseBatch.
	relMu                sync.Mutex
	pendingLo, pendingHi int
}

// OpenLocal opens and maps a local file read-only. Anything but a regular
// file (a folder, a FIFO, a device) is refused before it is opened.
func OpenLocal(path string) (*Local, error) {
	if err := regularFile(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Name: path, Err: infile.ReadCause(err)}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &Error{Name: path, Err: infile.ReadCause(err)}
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, errorf(path, "is not a regular file but %s", infile.Kind(st.Mode()))
	}
	l := &Local{name: path, f: f, size: st.Size()}
	if err := l.m.mapFile(f, st.Size()); err != nil {
		f.Close()
		return nil, errorf(path, "cannot map the file: %v", err)
	}
	l.data = l.m.data
	return l, nil
}

func (l *Local) Name() string { return l.name }
func (l *Local) Size() int64  { return l.size }

// Mapped reports whether the file is memory-mapped: Data is the whole file
// and Bytes is zero-copy. Where the platform has no mapping it is read
// with ReadAt, and Bytes copies.
func (l *Local) Mapped() bool { return l.data != nil || l.size == 0 }

// Data returns the whole mapped file (read-only; see Source.Bytes), nil
// when the file is not mapped.
func (l *Local) Data() []byte { return l.data }

// File returns the open file, for sequential reads that should not go
// through the mapping (hashing).
func (l *Local) File() *os.File { return l.f }

// ReadAt reads with pread, not from the mapping, so that a file that shrank
// gives a short read instead of a fault.
func (l *Local) ReadAt(p []byte, off int64) (int, error) { return l.f.ReadAt(p, off) }

func (l *Local) Bytes(off, n int64) ([]byte, error) {
	if err := checkRange(l.name, off, n, l.Size()); err != nil {
		return nil, err
	}
	if l.Mapped() {
		if l.data == nil {
			return []byte{}, nil
		}
		return l.data[off : off+n : off+n], nil
	}
	if int64(int(n)) != n {
		return nil, errorf(l.name, "a read of %d bytes is too large", n)
	}
	b := make([]byte, n)
	if _, err := l.f.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errorf(l.name, "the file changed while it was read (it is shorter than when it was opened)")
		}
		return nil, &Error{Name: l.name, Err: infile.ReadCause(err)}
	}
	return b, nil
}

// faultAround is the span, aligned in the address space, that Linux maps
// at once on a page fault in a file mapping when the pages are in the page
// cache (fault_around_bytes, 64 KiB by default).
const faultAround = 64 << 10

// releaseBatch is how much adjacent released span Release gathers before
// it drops it: a read of a few bytes does not cost a system call, and at
// most this much of a long scan stays resident.
const releaseBatch = 1 << 20

// Release tells the kernel that this process is done with b, bytes Bytes
// returned, for now: the pages of b leave the resident set (they stay in
// the page cache, and a later read maps them again), so that a long scan of
// a file larger than memory keeps its RSS bounded. Whole fault-around spans
// around b are dropped, not only b's own pages: reading b's first page maps
// the rest of its span, which may hold the end of a piece released before
// (a scan of 64 KiB pieces kept a third of a file resident that way). The
// mapping is shared and read-only, so a page dropped while another
// goroutine reads it is only faulted in again. Spans released one after
// another are gathered and dropped once releaseBatch of them are pending
// (or when the next lies elsewhere). Nothing happens unless b lies inside
// this file's mapping; it is advice, errors are ignored.
func (l *Local) Release(b []byte) {
	if len(b) == 0 || len(l.data) == 0 {
		return
	}
	start, base := addr(b), addr(l.data)
	end := start + uintptr(len(b))
	if start < base || end > base+uintptr(len(l.data)) {
		return
	}
	lo := int(max(start&^(faultAround-1), base) - base) // base is page-aligned
	hi := int(min((end+faultAround-1)&^(faultAround-1)-base, uintptr(len(l.data))))
	l.relMu.Lock()
	defer l.relMu.Unlock()
	switch {
	case l.pendingHi == l.pendingLo:
		l.pendingLo, l.pendingHi = lo, hi
	case lo <= l.pendingHi && hi >= l.pendingLo: // overlapping or adjacent
		l.pendingLo, l.pendingHi = min(lo, l.pendingLo), max(hi, l.pendingHi)
	default:
		l.m.release(l.data[l.pendingLo:l.pendingHi])
		l.pendingLo, l.pendingHi = lo, hi
	}
	if l.pendingHi-l.pendingLo >= releaseBatch {
		l.m.release(l.data[l.pendingLo:l.pendingHi])
		l.pendingLo, l.pendingHi = 0, 0
	}
}

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

func (l *Local) Close() error {
	err := l.m.unmap()
	l.data = nil
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// regularFile refuses anything but a regular file (a FIFO or device would
// block or never end) before it is opened.
func regularFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return &Error{Name: path, Err: infile.ReadCause(err)}
	}
	switch {
	case st.IsDir():
		return errorf(path, "is a folder, expected a file")
	case !st.Mode().IsRegular():
		return errorf(path, "is not a regular file but %s", infile.Kind(st.Mode()))
	}
	return nil
}

// LocalDir is a local folder.
type LocalDir struct {
	dir string
	// blobs: the folder is a snapshot of the Hugging Face cache, whose files
	// are symbolic links to blobs named by their SHA-256 (LFS) or git id.
	blobs bool
	// prefix is the folder's path inside its repository ("" or "sub/"),
	// for Target.Display.
	prefix string
	// given: names of files as the user gave them, for messages.
	given map[string]string
}

// NewLocalDir returns the local folder dir (not checked until used).
func NewLocalDir(dir string) *LocalDir { return &LocalDir{dir: dir} }

func (d *LocalDir) Name() string { return d.dir }
func (d *LocalDir) Path(name string) string {
	if g, ok := d.given[name]; ok {
		return g
	}
	return filepath.Join(d.dir, filepath.FromSlash(name))
}

func (d *LocalDir) List() ([]FileInfo, error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, &Error{Name: d.dir, Err: infile.ReadCause(err)}
	}
	var out []FileInfo
	for _, e := range entries {
		fi, err := d.Stat(e.Name())
		if err != nil || !fi.Mode.IsRegular() {
			continue // a dangling link (a blob not downloaded), a folder, a FIFO
		}
		out = append(out, fi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (d *LocalDir) Stat(name string) (FileInfo, error) {
	p := d.Path(name)
	st, err := os.Stat(p)
	if err != nil {
		return FileInfo{}, &Error{Name: p, Err: infile.ReadCause(err)}
	}
	fi := FileInfo{Name: name, Size: st.Size(), Mode: st.Mode()}
	if d.blobs {
		if target, err := os.Readlink(p); err == nil {
			blob := filepath.Base(target)
			switch {
			case isHex(blob, 64):
				fi.SHA256 = blob
			case isHex(blob, 40):
				fi.GitOID = blob
			}
		}
	}
	return fi, nil
}

func (d *LocalDir) Open(name string) (Source, error) { return OpenLocal(d.Path(name)) }

func (d *LocalDir) ReadFile(name string, limit int64) ([]byte, error) {
	p := d.Path(name)
	if err := regularFile(p); err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, &Error{Name: p, Err: infile.ReadCause(err)}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &Error{Name: p, Err: infile.ReadCause(err)}
	}
	if int64(len(b)) > limit {
		return nil, errorf(p, "more than the %d bytes this file may have", limit)
	}
	return b, nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// CheckpointFile reports whether a file of a Hub repository is one a
// checkpoint may need: its weights (*.safetensors, a safetensors index,
// *.gguf), its configuration and its tokenizer.
func CheckpointFile(name string) bool {
	base := name[strings.LastIndexByte(name, '/')+1:]
	switch base {
	case "config.json", "adapter_config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json":
		return true
	}
	return strings.HasSuffix(base, ".safetensors") || strings.HasSuffix(base, ".safetensors.index.json") ||
		strings.HasSuffix(base, ".gguf")
}
