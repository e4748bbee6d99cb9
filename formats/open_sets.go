package formats

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/source"
)

// Checkpoints in several files: a sharded safetensors index and a split GGUF
// set, presented as one set of tensors.

func (c *Checkpoint) openIndex(name string, src source.Source, opts Options) error {
	path := c.dir.Path(name)
	if src.Size() > maxConfigBytes {
		src.Close()
		return errorf(path, -1, "%d bytes is more than the %d a JSON configuration file may have", src.Size(), int64(maxConfigBytes))
	}
	// The sniffed bytes are the start of the index: a remote index is not
	// fetched twice.
	var m map[string]any
	err := guard(func() error {
		b, err := src.Bytes(0, src.Size())
		if err != nil {
			return err
		}
		m, err = parseJSONObject(b)
		return err
	})
	src.Close()
	if err != nil {
		return readError(path, -1, err)
	}
	wm, ok := m["weight_map"].(map[string]any)
	if !ok {
		return errorf(path, -1, "not a safetensors index: no \"weight_map\" object")
	}
	c.Format = FormatSafetensors
	want := map[string]string{} // tensor -> shard
	var shards []string
	seen := map[string]bool{}
	for name, v := range wm {
		shard, ok := v.(string)
		if !ok {
			return errorf(path, -1, "weight_map entry %q is not a file name", name)
		}
		// "./model-00002-of-00002.safetensors" names a file in this folder too.
		if clean := filepath.Clean(shard); clean != "." && !strings.ContainsAny(clean, "/\\") {
			shard = clean
		}
		if shard == "" || strings.ContainsAny(shard, "/\\") || shard == ".." || shard == "." {
			return errorf(path, -1, "weight_map entry %q names %q, which is not a file in this folder", name, shard)
		}
		want[name] = shard
		if !seen[shard] {
			seen[shard] = true
			shards = append(shards, shard)
		}
	}
	sort.Strings(shards)
	first := len(c.Files)
	err = c.addSet(shards, -1, nil, func(i int, p string, src source.Source) (*File, error) {
		return parseSafetensors(p, src, opts)
	}, func(i int, f *File) error {
		return c.addSafetensorsTensors(f)
	}, func(i int, err error) error {
		return errorf(path, -1, "shard %q is missing (%v)", shards[i], describeSourceError(err))
	})
	if err != nil {
		return err
	}
	shardOf := map[int]string{}
	for i := range shards {
		shardOf[first+i] = shards[i]
	}
	for name, shard := range want {
		t := c.byName[name]
		if t == nil {
			return errorf(path, -1, "weight_map lists tensor %q in %q, but that shard does not hold it", name, shard)
		}
		if got := shardOf[t.File]; got != shard {
			return errorf(path, -1, "weight_map puts tensor %q in %q, but it is in %q", name, shard, got)
		}
	}
	return nil
}

// describeSourceError is the cause of a Dir error, without the file name:
// an absent file is "no such file or folder" wherever it is looked for.
func describeSourceError(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("no such file or folder")
	}
	var re *source.Error
	if errors.As(err, &re) {
		return oneLine{re.Err}
	}
	return err
}

var splitName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(.*)-(\d{5})-of-(\d{5})\.gguf$`) })

// openGGUF opens a GGUF file (src, named name) and, when its name is one of
// a split set's, every part of the set, reading their headers in parallel.
func (c *Checkpoint) openGGUF(name string, src source.Source) error {
	path := c.dir.Path(name)
	parts := []string{name}
	self := 1 // the part src is, counting from 1
	if m := splitName().FindStringSubmatch(name); m != nil {
		count, _ := strconv.Atoi(m[3])
		if count < 1 {
			src.Close()
			return errorf(path, -1, "split file name says 0 parts")
		}
		dir := ""
		if i := strings.LastIndexAny(name, "/\\"); i >= 0 {
			dir = name[:i+1]
		}
		self, _ = strconv.Atoi(m[2])
		if self < 1 || self > count {
			src.Close()
			return errorf(path, -1, "the file name says part %d of %d, but the parts of a split set are numbered 1 to %d", self, count, count)
		}
		parts = parts[:0]
		for i := 1; i <= count; i++ {
			p := dir + fmt.Sprintf("%s-%05d-of-%05d.gguf", m[1], i, count)
			if _, err := c.dir.Stat(p); err != nil {
				src.Close()
				return errorf(path, -1, "part %d of %d of this split GGUF is missing: %q", i, count, p)
			}
			parts = append(parts, p)
		}
	}
	return c.addSet(parts, self-1, src, func(i int, p string, src source.Source) (*File, error) {
		return parseGGUF(p, src)
	}, func(i int, f *File) error {
		gf := f.GGUF
		if i > 0 && gf.BigEndian != c.Files[0].GGUF.BigEndian {
			return errorf(f.Path, -1, "part %d has a different byte order from part 1", i+1)
		}
		if err := checkSplitPart(f.Path, gf, i, len(parts)); err != nil {
			return err
		}
		idx := len(c.Files) - 1
		ts := make([]Tensor, len(gf.Tensors)) // one allocation for the file
		for k, ti := range gf.Tensors {
			shape := make([]int64, len(ti.Dims))
			for i, d := range ti.Dims {
				shape[len(ti.Dims)-1-i] = int64(d)
			}
			t := &ts[k]
			*t = Tensor{Name: ti.Name, Type: ti.Type, Shape: shape, Bytes: ti.Bytes,
				File: idx, Offset: gf.DataOffset + int64(ti.Offset)}
			if ti.FlatRun {
				t.Note = noteFlatRun
			}
			if err := c.addTensor(t); err != nil {
				return err
			}
		}
		return nil
	}, nil)
}

// parseGGUF reads and parses a GGUF header: a local file's mapping in
// place, a remote file in a window that grows until the header fits.
func parseGGUF(path string, src source.Source) (*File, error) {
	f := &File{Path: path, Size: src.Size(), Src: src}
	size := src.Size()
	err := guard(func() error {
		head, err := source.ReadPrefix(src, source.GGUFFirstRead, source.DefaultMaxGGUFHeader, source.GGUFGrowth, func(b []byte) error {
			gf, err := gguf.Parse(b, gguf.Options{Size: size})
			if errors.Is(err, gguf.ErrTruncated) {
				return source.NeedMore(err)
			}
			f.GGUF = gf
			return err
		})
		f.head = head
		return err
	})
	if err != nil {
		var ge *gguf.Error
		if errors.Is(err, gguf.ErrTruncated) && errors.As(err, &ge) {
			return nil, errorf(path, ge.Offset, "the GGUF header is longer than the %d bytes qkv reads for a header (%s)", int64(source.DefaultMaxGGUFHeader), ge.Msg)
		}
		return nil, readError(path, -1, err)
	}
	return f, nil
}

// checkSplitPart compares a part's split.* metadata with its place in the set.
func checkSplitPart(path string, gf *gguf.File, part, parts int) error {
	kvNo, hasNo := gf.Lookup("split.no")
	kvCount, hasCount := gf.Lookup("split.count")
	if !hasNo && !hasCount {
		if parts > 1 {
			return errorf(path, -1, "part %d of a %d-part split set has no split.no/split.count metadata", part+1, parts)
		}
		return nil
	}
	if hasCount {
		n, ok := kvCount.Uint()
		if !ok || n != uint64(parts) {
			if parts == 1 {
				return errorf(path, kvCount.Offset, "this file is part of a %d-part split set (split.count); open it by its split name NAME-0000K-of-0000N.gguf with all parts present", n)
			}
			return errorf(path, kvCount.Offset, "split.count is %d but the file names say %d parts", n, parts)
		}
	}
	if hasNo {
		n, ok := kvNo.Uint()
		if !ok || n != uint64(part) {
			return errorf(path, kvNo.Offset, "split.no is %d but this is part %d (split.no counts from 0)", n, part)
		}
	}
	return nil
}

// MetaArray decodes elements [start, start+n) of a GGUF metadata array of the
// checkpoint's first file (lazy arrays are decoded only when asked for; a
// remote file's header bytes are kept, so this reads nothing more).
func (c *Checkpoint) MetaArray(kv *gguf.KV, start, n int) ([]any, error) {
	f := c.Files[0]
	if f.GGUF == nil {
		return nil, errorf(f.Path, -1, "not a GGUF file")
	}
	var out []any
	err := guard(func() error {
		off, size := kv.ArrayRange()
		if off >= 0 && off+size <= int64(len(f.head)) {
			var err error
			out, err = f.GGUF.Array(f.head, kv, start, n)
			return err
		}
		if f.Src == nil {
			return errors.New("the checkpoint is closed")
		}
		b, err := f.Src.Bytes(off, size)
		if err != nil {
			return err
		}
		out, err = f.GGUF.ArrayAt(b, off, kv, start, n)
		return err
	})
	if err != nil {
		return nil, readError(f.Path, -1, err)
	}
	return out, nil
}
