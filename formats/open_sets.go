package formats

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/qkvdev/qkv/formats/gguf"
)

// Checkpoints in several files: a sharded safetensors index and a split GGUF
// set, presented as one set of tensors.

func (c *Checkpoint) openIndex(path string, opts Options) error {
	if err := regularFile(path); err != nil {
		return err
	}
	b, err := readLimited(path, maxConfigBytes)
	if err != nil {
		return &Error{File: path, Offset: -1, Err: describeOSError(err)}
	}
	m, err := parseJSONObject(b)
	if err != nil {
		return fileError(path, err)
	}
	wm, ok := m["weight_map"].(map[string]any)
	if !ok {
		return errorf(path, -1, "not a safetensors index: no \"weight_map\" object")
	}
	c.Format = FormatSafetensors
	dir := filepath.Dir(path)
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
	for _, s := range shards {
		p := filepath.Join(dir, s)
		if _, err := os.Stat(p); err != nil {
			return errorf(path, -1, "shard %s is missing (%v)", s, describeOSError(err))
		}
		if err := c.addSafetensors(p, opts); err != nil {
			return err
		}
	}
	for name, shard := range want {
		t := c.byName[name]
		if t == nil {
			return errorf(path, -1, "weight_map lists tensor %q in %s, but that shard does not hold it", name, shard)
		}
		if filepath.Base(c.Files[t.File].Path) != shard {
			return errorf(path, -1, "weight_map puts tensor %q in %s, but it is in %s", name, shard, filepath.Base(c.Files[t.File].Path))
		}
	}
	return nil
}

var splitName = regexp.MustCompile(`^(.*)-(\d{5})-of-(\d{5})\.gguf$`)

func (c *Checkpoint) openGGUF(path string) error {
	base := filepath.Base(path)
	parts := []string{path}
	if m := splitName.FindStringSubmatch(base); m != nil {
		count, _ := strconv.Atoi(m[3])
		if count < 1 {
			return errorf(path, -1, "split file name says 0 parts")
		}
		parts = parts[:0]
		for i := 1; i <= count; i++ {
			p := filepath.Join(filepath.Dir(path), fmt.Sprintf("%s-%05d-of-%05d.gguf", m[1], i, count))
			if _, err := os.Stat(p); err != nil {
				return errorf(path, -1, "part %d of %d of this split GGUF is missing: %s", i, count, filepath.Base(p))
			}
			parts = append(parts, p)
		}
	}
	for i, p := range parts {
		if err := c.addGGUF(p, i, len(parts)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Checkpoint) addGGUF(path string, part, parts int) error {
	f, err := mapPath(path)
	if err != nil {
		return err
	}
	c.Files = append(c.Files, f)
	var gf *gguf.File
	err = guard(func() error {
		var err error
		gf, err = gguf.Parse(f.data, gguf.Options{})
		return err
	})
	if err != nil {
		return fileError(path, err)
	}
	f.GGUF = gf
	if part > 0 && gf.BigEndian != c.Files[0].GGUF.BigEndian {
		return errorf(path, -1, "part %d has a different byte order from part 1", part+1)
	}
	if err := checkSplitPart(path, gf, part, parts); err != nil {
		return err
	}
	idx := len(c.Files) - 1
	for _, ti := range gf.Tensors {
		shape := make([]int64, len(ti.Dims))
		for i, d := range ti.Dims {
			shape[len(ti.Dims)-1-i] = int64(d)
		}
		t := &Tensor{Name: ti.Name, Type: ti.Type, Shape: shape, Bytes: ti.Bytes,
			File: idx, Offset: gf.DataOffset + int64(ti.Offset)}
		if ti.FlatRun {
			t.Note = noteFlatRun
		}
		if err := c.addTensor(t); err != nil {
			return err
		}
	}
	return nil
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
// checkpoint's first file (lazy arrays are decoded only when asked for).
func (c *Checkpoint) MetaArray(kv *gguf.KV, start, n int) ([]any, error) {
	f := c.Files[0]
	if f.GGUF == nil {
		return nil, errorf(f.Path, -1, "not a GGUF file")
	}
	var out []any
	err := guard(func() error {
		var err error
		out, err = f.GGUF.Array(f.data, kv, start, n)
		return err
	})
	if err != nil {
		return nil, fileError(f.Path, err)
	}
	return out, nil
}
