//go:build unix

package source

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapping is a read-only shared mapping of a whole file (mmap).
type mapping struct{ data []byte }

// mapFile maps a whole file read-only; an empty file maps to nothing. It is
// the only place this module maps a file.
func (m *mapping) mapFile(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	if int64(int(size)) != size {
		return fmt.Errorf("file of %d bytes is too large to map", size)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	m.data = b
	return nil
}

func (m *mapping) unmap() error {
	if len(m.data) == 0 {
		return nil
	}
	b := m.data
	m.data = nil
	return unix.Munmap(b)
}

// release drops whole pages b of the mapping from the resident set.
func (m *mapping) release(b []byte) { _ = unix.Madvise(b, unix.MADV_DONTNEED) }
