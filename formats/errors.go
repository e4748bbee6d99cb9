package formats

import (
	"errors"
	"fmt"

	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/safetensors"
)

// Error is an error reading a checkpoint: it names the file and, where it
// helps, the tensor and the byte offset. Every error Open and the decoding
// methods return for bad input is an *Error, so commands can tell unreadable
// input (exit status 3) from other failures.
type Error struct {
	File   string
	Tensor string
	Offset int64 // -1 when no offset applies
	Err    error
}

func (e *Error) Error() string {
	s := e.File + ": "
	if e.Tensor != "" {
		s += fmt.Sprintf("tensor %q: ", e.Tensor)
	}
	s += e.Err.Error()
	if e.Offset >= 0 {
		s += fmt.Sprintf(" (at byte %d)", e.Offset)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// fileError wraps err for file, lifting the byte offset and tensor name out of
// the format parsers' own error types.
func fileError(file string, err error) error {
	var fe *Error
	if errors.As(err, &fe) {
		if fe.File == "" { // parseJSONObject does not know the file's name
			fe.File = file
		}
		return err
	}
	var ge *gguf.Error
	if errors.As(err, &ge) {
		return &Error{File: file, Offset: ge.Offset, Err: errors.New(ge.Msg)}
	}
	var se *safetensors.Error
	if errors.As(err, &se) {
		return &Error{File: file, Tensor: se.Tensor, Offset: se.Offset, Err: errors.New(se.Msg)}
	}
	return &Error{File: file, Offset: -1, Err: err}
}

func errorf(file string, offset int64, format string, args ...any) error {
	return &Error{File: file, Offset: offset, Err: fmt.Errorf(format, args...)}
}
