package source

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// rangeCache is qkv's on-disk cache of fetched byte ranges, under
// CacheDir/ranges/XX/KEYHASH/FIRST-END, where KEYHASH is the SHA-256 of the
// file's identity (the Hub repository, commit and path, or the URL with its
// ETag) and FIRST-END the range in hex. An entry is the bytes followed by a
// trailer (magic, length, CRC-32C); it is written to a temporary file and
// renamed into place, so that readers see whole entries or none, and it is
// checked on every read, so that a damaged entry is deleted and fetched
// again rather than served. Resolved revisions are kept as JSON under
// CacheDir/meta.
type rangeCache struct {
	dir string
}

const (
	trailerMagic = "QKVRANGE"
	trailerLen   = 8 + 8 + 4
	tempPrefix   = ".tmp-"
	// staleTemp: a temporary file this old belongs to a writer that died.
	staleTemp = time.Hour
)

var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

func keyHash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func (rc *rangeCache) fileDir(key string) string {
	h := keyHash(key)
	return filepath.Join(rc.dir, "ranges", h[:2], h)
}

func entryName(first, end int64) string { return fmt.Sprintf("%016x-%016x", first, end) }

func parseEntryName(s string) (first, end int64, ok bool) {
	if len(s) != 33 || s[16] != '-' {
		return 0, 0, false
	}
	var a, b uint64
	if _, err := fmt.Sscanf(s, "%016x-%016x", &a, &b); err != nil || a > b || b > 1<<62 {
		return 0, 0, false
	}
	return int64(a), int64(b), true
}

// get returns bytes [off, off+n) from a cached entry holding them, or false.
func (rc *rangeCache) get(key string, off, n int64) ([]byte, bool) {
	dir := rc.fileDir(key)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false
	}
	// Entries containing the range, smallest (exact hits) first.
	type cand struct {
		name       string
		first, end int64
	}
	var cands []cand
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) {
			rc.removeStale(filepath.Join(dir, name))
			continue
		}
		a, b, ok := parseEntryName(name)
		if !ok || a > off || b < off+n {
			continue
		}
		cands = append(cands, cand{name, a, b})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].end-cands[i].first < cands[j].end-cands[j].first })
	for _, c := range cands {
		p := filepath.Join(dir, c.name)
		data, ok := readEntry(p, c.end-c.first)
		if !ok {
			os.Remove(p) // damaged: never served, fetched again
			continue
		}
		return data[off-c.first : off-c.first+n : off-c.first+n], true
	}
	return nil, false
}

// readEntry reads and checks one entry of want data bytes.
func readEntry(p string, want int64) ([]byte, bool) {
	f, err := os.Open(p)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() != want+trailerLen {
		return nil, false
	}
	buf := make([]byte, st.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, false
	}
	data, tr := buf[:want], buf[want:]
	if string(tr[:8]) != trailerMagic || binary.LittleEndian.Uint64(tr[8:16]) != uint64(want) ||
		binary.LittleEndian.Uint32(tr[16:20]) != crc32.Checksum(data, castagnoli()) {
		return nil, false
	}
	return data, true
}

// put stores bytes at off. Errors leave the cache as it was: a cache that
// cannot be written only costs refetching.
func (rc *rangeCache) put(key string, off int64, data []byte) error {
	dir := rc.fileDir(key)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, entryName(off, off+int64(len(data)))), func(w io.Writer) error {
		if _, err := w.Write(data); err != nil {
			return err
		}
		var tr [trailerLen]byte
		copy(tr[:], trailerMagic)
		binary.LittleEndian.PutUint64(tr[8:], uint64(len(data)))
		binary.LittleEndian.PutUint32(tr[16:], crc32.Checksum(data, castagnoli()))
		_, err := w.Write(tr[:])
		return err
	})
}

// writeAtomic writes a file through a temporary file in the same folder,
// synced and renamed into place.
func writeAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), tempPrefix+"*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	ok = true
	return nil
}

func (rc *rangeCache) removeStale(p string) {
	if st, err := os.Stat(p); err == nil && time.Since(st.ModTime()) > staleTemp {
		os.Remove(p)
	}
}

// metaEntry wraps a cached JSON document with the key it is for.
type metaEntry struct {
	Schema string          `json:"schema"`
	Key    string          `json:"key"`
	Data   json.RawMessage `json:"data"`
}

const metaSchema = "qkv.source-meta/v1"

// maxMetaBytes bounds a cached metadata document (a listing of a repository
// with many files is a few MB).
const maxMetaBytes = 64 << 20

func (rc *rangeCache) metaPath(key string) string {
	h := keyHash(key)
	return filepath.Join(rc.dir, "meta", h[:2], h+".json")
}

func (rc *rangeCache) loadMeta(key string, v any) bool {
	p := rc.metaPath(key)
	b, err := readSmallFile(p, maxMetaBytes)
	if err != nil {
		return false
	}
	var m metaEntry
	if json.Unmarshal(b, &m) != nil || m.Schema != metaSchema || m.Key != key {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(m.Data))
	dec.DisallowUnknownFields()
	return dec.Decode(v) == nil
}

func (rc *rangeCache) saveMeta(key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b, err := json.Marshal(metaEntry{Schema: metaSchema, Key: key, Data: data})
	if err != nil {
		return err
	}
	p := rc.metaPath(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return writeAtomic(p, func(w io.Writer) error { _, err := w.Write(b); return err })
}
