//go:build !unix && !windows

package source

import "os"

// mapping: this platform has no file mapping here; Local reads with ReadAt.
type mapping struct{ data []byte }

func (m *mapping) mapFile(*os.File, int64) error { return nil }
func (m *mapping) unmap() error                  { return nil }
func (m *mapping) release([]byte)                {}
