package source

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Header reads.
const (
	// SafetensorsFirstRead is the first read of a safetensors file: most
	// headers fit, so one request lists a shard.
	SafetensorsFirstRead = 100 << 10
	// DefaultMaxSafetensorsHeader is the reference crate's header limit.
	DefaultMaxSafetensorsHeader = 100 << 20
	// GGUFFirstRead is the first window of a GGUF header; it grows ×4
	// (vocabularies make headers of several MB).
	GGUFFirstRead = 1 << 20
	// GGUFGrowth is the window's growth factor.
	GGUFGrowth = 4
	// DefaultMaxGGUFHeader bounds a GGUF header read remotely.
	DefaultMaxGGUFHeader = 512 << 20
)

// needMore wraps a parser's error to ask ReadPrefix for more bytes.
type needMore struct{ err error }

func (e *needMore) Error() string        { return e.err.Error() }
func (e *needMore) Unwrap() error        { return e.err }
func (e *needMore) Is(target error) bool { return target == ErrNeedMore }

// NeedMore wraps err, the error a parser gave on a prefix, to say that a
// longer prefix may parse: errors.Is(NeedMore(err), ErrNeedMore) holds and
// the message is err's.
func NeedMore(err error) error { return &needMore{err} }

// ReadPrefix hands parse a prefix of src and grows it while parse returns an
// error wrapped with NeedMore: the first min(first, size) bytes, then ×growth
// (at least 2), each step reading only the new bytes, up to min(size, max)
// (max <= 0: the whole file). It returns the last prefix and parse's last
// error, unwrapped (when the limit stopped the growth, the message says so).
// A mapped local file is handed whole at once, without copying: the parsers
// see exactly what they see today.
func ReadPrefix(src Source, first, max int64, growth int, parse func(prefix []byte) error) ([]byte, error) {
	size := src.Size()
	if l, ok := src.(*Local); ok && l.Mapped() {
		data := l.Data()
		return data, unwrapNeedMore(parse(data))
	}
	limit := size
	if max > 0 && max < limit {
		limit = max
	}
	if growth < 2 {
		growth = 2
	}
	n := min(max64(first, 1), limit)
	buf, err := src.Bytes(0, n)
	if err != nil {
		return nil, err
	}
	for {
		perr := parse(buf)
		if perr == nil || !errors.Is(perr, ErrNeedMore) {
			return buf, perr
		}
		have := int64(len(buf))
		if have >= limit {
			perr = unwrapNeedMore(perr)
			if limit < size {
				perr = fmt.Errorf("%w (read the first %d bytes, the limit for a header)", perr, limit)
			}
			return buf, perr
		}
		next := limit
		if have <= limit/int64(growth) {
			next = have * int64(growth)
		}
		more, err := src.Bytes(have, next-have)
		if err != nil {
			return nil, err
		}
		nb := make([]byte, 0, next)
		buf = append(append(nb, buf...), more...)
	}
}

func unwrapNeedMore(err error) error {
	var nm *needMore
	for errors.As(err, &nm) {
		err = nm.err
	}
	return err
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// SafetensorsPrefix returns the beginning of a safetensors file holding its
// whole header (8 + N bytes, N the little-endian length in the first 8), in
// at most two reads: the first min(SafetensorsFirstRead, size) bytes, and
// the rest of the header only when it is longer. A length over maxHeader
// (0: DefaultMaxSafetensorsHeader) or past the end of the file is not
// fetched: the prefix is returned as it is, for the parser to report. A
// mapped local file is returned whole, without copying.
func SafetensorsPrefix(src Source, maxHeader int64) ([]byte, error) {
	if l, ok := src.(*Local); ok && l.Mapped() {
		return l.Data(), nil
	}
	if maxHeader <= 0 {
		maxHeader = DefaultMaxSafetensorsHeader
	}
	size := src.Size()
	buf, err := src.Bytes(0, min(SafetensorsFirstRead, size))
	if err != nil || len(buf) < 8 {
		return buf, err
	}
	h := binary.LittleEndian.Uint64(buf)
	if h > uint64(maxHeader) || h > uint64(size-8) || 8+int64(h) <= int64(len(buf)) {
		return buf, nil
	}
	end := 8 + int64(h)
	more, err := src.Bytes(int64(len(buf)), end-int64(len(buf)))
	if err != nil {
		return nil, err
	}
	nb := make([]byte, 0, end)
	return append(append(nb, buf...), more...), nil
}

// ForEach calls f(0), …, f(n-1) with at most parallel calls at once (every
// shard's header is read in parallel) and returns the error of the lowest
// index that failed.
func ForEach(n, parallel int, f func(i int) error) error {
	if parallel < 1 {
		parallel = 1
	}
	errs := make([]error, n)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			errs[i] = f(i)
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
