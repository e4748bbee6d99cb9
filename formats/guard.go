package formats

import (
	"errors"
	"runtime/debug"
)

// Local files are memory-mapped by formats/source (the only place a file is
// mapped; see source.Local); reading mapped bytes can fault when the file
// shrinks after it was mapped. guard turns such a fault into an error.

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
