package gguf

// Array decodes elements [start, start+n) of an array key/value pair from
// data, the same bytes that Parse was given. It works for lazy and decoded
// arrays alike and checks every bound again, so a kv or data that do not
// belong to f give an error, never a panic. Nested arrays decode to []any.
func (f *File) Array(data []byte, kv *KV, start, n int) ([]any, error) {
	if kv.Type != Array {
		return nil, errorf(kv.ValueOffset, "key %q is a %s, not an array", kv.Key, kv.Type)
	}
	if start < 0 || n < 0 || uint64(start) > kv.Count || uint64(n) > kv.Count-uint64(start) {
		return nil, errorf(kv.ValueOffset, "key %q: elements [%d, %d) out of range for an array of %d", kv.Key, start, int64(start)+int64(n), kv.Count)
	}
	if kv.ValueOffset < 0 || kv.ValueOffset > int64(len(data)) {
		return nil, errorf(kv.ValueOffset, "key %q: value offset %d is outside the %d bytes of data", kv.Key, kv.ValueOffset, len(data))
	}
	p := &parser{d: decoder{data: data, off: int(kv.ValueOffset), be: f.BigEndian, v1: f.Version == 1}, key: kv.Key}
	d := &p.d
	elem, count, err := p.arrayHeader(1)
	if err != nil {
		return nil, err
	}
	if elem != kv.ElemType || count != kv.Count {
		return nil, errorf(kv.ValueOffset, "key %q: data holds an array of %d %s, the header said %d %s", kv.Key, count, elem, kv.Count, kv.ElemType)
	}

	// Move to element start.
	switch elem {
	case String:
		skip := uint64(start)
		if c := start / checkpointEvery; c > 0 && c < len(kv.checkpoints) {
			cp := kv.checkpoints[c]
			if cp < int64(d.off) || cp > int64(len(data)) {
				return nil, errorf(kv.ValueOffset, "key %q: stale element index (data is not the parsed file)", kv.Key)
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
