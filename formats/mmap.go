package formats

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapped records the file mappings this package made (start address ->
// length), so that release only ever advises on memory that is a shared
// read-only file mapping: MADV_DONTNEED on ordinary heap memory would zero
// it.
var mapped struct {
	sync.Mutex
	regions map[uintptr]int
}

// mapFile maps a whole file read-only. An empty file maps to an empty slice.
func mapFile(f *os.File, size int64) ([]byte, error) {
	if size == 0 {
		return []byte{}, nil
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("file of %d bytes is too large to map", size)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	mapped.Lock()
	if mapped.regions == nil {
		mapped.regions = map[uintptr]int{}
	}
	mapped.regions[addr(b)] = len(b)
	mapped.Unlock()
	return b, nil
}

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

func unmap(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	mapped.Lock()
	delete(mapped.regions, addr(b))
	mapped.Unlock()
	return unix.Munmap(b)
}

// release tells the kernel this process is done with the mapped bytes b
// for now: the whole pages inside b leave its resident set (they stay in
// the page cache, and a later read maps them again). Long scans call it
// after each piece so that RSS stays bounded on a file larger than memory.
// The mapping is shared and read-only, so dropping its pages loses nothing,
// even while another goroutine reads them. whole is the file's mapping b
// lies in; nothing happens unless it is one mapFile made. Errors are
// ignored: releasing is advice.
func release(whole, b []byte) {
	if len(b) == 0 || len(whole) == 0 {
		return
	}
	mapped.Lock()
	n, ok := mapped.regions[addr(whole)]
	mapped.Unlock()
	start, base := addr(b), addr(whole)
	if !ok || n != len(whole) || start < base || start+uintptr(len(b)) > base+uintptr(n) {
		return
	}
	page := uintptr(os.Getpagesize())
	first := (start + page - 1) &^ (page - 1)
	end := (start + uintptr(len(b))) &^ (page - 1)
	if end <= first {
		return
	}
	lo := int(first - start)
	_ = unix.Madvise(b[lo:lo+int(end-first)], unix.MADV_DONTNEED)
}

// errFault is returned when reading mapped bytes faults, which happens when
// the file shrank after it was mapped.
var errFault = errors.New("the file changed while it was read (it is shorter than when it was opened)")

// guard runs f with faults on mapped memory turned into errFault instead of
// crashing the process. Every read of mapped bytes goes through guard, on the
// goroutine that does the reading.
func guard(f func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); ok {
				err = errFault
				return
			}
			panic(r)
		}
	}()
	return f()
}
