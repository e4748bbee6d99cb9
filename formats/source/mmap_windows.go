//go:build windows

package source

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// mapping is a read-only view of a whole file (CreateFileMapping and
// MapViewOfFile).
type mapping struct {
	data []byte
	h    windows.Handle
}

// mapFile maps a whole file read-only; an empty file maps to nothing (a
// mapping of size 0 is an error on Windows). It is the only place this
// module maps a file.
func (m *mapping) mapFile(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	if int64(int(size)) != size {
		return fmt.Errorf("file of %d bytes is too large to map", size)
	}
	h, err := windows.CreateFileMapping(windows.Handle(f.Fd()), nil, windows.PAGE_READONLY,
		uint32(uint64(size)>>32), uint32(size), nil)
	if err != nil {
		return fmt.Errorf("CreateFileMapping: %v", err)
	}
	p, err := windows.MapViewOfFile(h, windows.FILE_MAP_READ, 0, 0, uintptr(size))
	if err != nil {
		windows.CloseHandle(h)
		return fmt.Errorf("MapViewOfFile: %v", err)
	}
	m.h = h
	// p is the address of the view, outside Go's heap: it does not move.
	// (Reading it through a pointer keeps vet's uintptr check quiet.)
	m.data = unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&p))), int(size))
	return nil
}

func (m *mapping) unmap() error {
	if len(m.data) == 0 {
		return nil
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(m.data)))
	m.data = nil
	err := windows.UnmapViewOfFile(p)
	if cerr := windows.CloseHandle(m.h); err == nil {
		err = cerr
	}
	return err
}

// release is advice; Windows trims a mapped view's working set itself, so
// nothing is done.
func (m *mapping) release([]byte) {}
