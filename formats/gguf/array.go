package gguf

// Array decodes elements [start, start+n) of an array key/value pair from
// data, the same bytes that Parse was given. It works for lazy and decoded
// arrays alike and checks every bound again, so a kv or data that do not
// belong to f give an error, never a panic. Nested arrays decode to []any.
func (f *File) Array(data []byte, kv *KV, start, n int) ([]any, error) {
	return f.ArrayAt(data, 0, kv, start, n)
}

// ArrayRange is the byte range [off, off+n) of the file that holds an array
// value (its element type, count and elements): what ArrayAt needs.
func (kv *KV) ArrayRange() (off, n int64) {
	if kv.End < kv.ValueOffset {
		return kv.ValueOffset, 0
	}
	return kv.ValueOffset, kv.End - kv.ValueOffset
}

// ArrayAt is Array on a window of the file: window holds the file's bytes
// [at, at+len(window)), which must include kv.ArrayRange() (a remote file
// fetches just that range). Offsets in errors are the file's.
func (f *File) ArrayAt(window []byte, at int64, kv *KV, start, n int) ([]any, error) {
	out, err := f.arrayAt(window, at, kv, start, n)
	if e, ok := err.(*Error); ok && at != 0 {
		e.Offset += at
	}
	return out, err
}

func (f *File) arrayAt(window []byte, at int64, kv *KV, start, n int) ([]any, error) {
	if kv.Type != Array {
		return nil, errorf(kv.ValueOffset-at, "key %q is a %s, not an array", kv.Key, kv.Type)
	}
	if start < 0 || n < 0 || uint64(start) > kv.Count || uint64(n) > kv.Count-uint64(start) {
		return nil, errorf(kv.ValueOffset-at, "key %q: elements [%d, %d) out of range for an array of %d", kv.Key, start, int64(start)+int64(n), kv.Count)
	}
	rel := kv.ValueOffset - at
	if at < 0 || rel < 0 || rel > int64(len(window)) {
		return nil, errorf(rel, "key %q: value offset %d is outside the %d bytes of data", kv.Key, kv.ValueOffset, len(window))
	}
	p := &parser{d: decoder{data: window, size: len(window), off: int(rel), be: f.BigEndian, v1: f.Version == 1}, key: kv.Key}
	d := &p.d
	elem, count, err := p.arrayHeader(1)
	if err != nil {
		return nil, err
	}
	if elem != kv.ElemType || count != kv.Count {
		return nil, errorf(rel, "key %q: data holds an array of %d %s, the header said %d %s", kv.Key, count, elem, kv.Count, kv.ElemType)
	}

	// Move to element start.
	switch elem {
	case String:
		skip := uint64(start)
		if c := start / checkpointEvery; c > 0 && c < len(kv.checkpoints) {
			cp := kv.checkpoints[c] - at
			if cp < int64(d.off) || cp > int64(len(window)) {
				return nil, errorf(rel, "key %q: stale element index (data is not the parsed file)", kv.Key)
			}
			d.off = int(cp)
			skip = uint64(start - c*checkpointEvery)
		}
		if _, err := p.skipStrings(skip, false); err != nil {
			return nil, err
		}
	case Array:
		for i := 0; i < start; i++ {
			if _, _, _, err := p.skipArray(2); err != nil {
				return nil, err
			}
		}
	default:
		// arrayHeader checked that count elements fit.
		d.off += start * fixedSize[elem]
	}

	out := make([]any, n)
	for i := range out {
		if out[i], err = p.element(elem, 1); err != nil {
			return nil, err
		}
	}
	return out, nil
}
