package formats

import (
	"errors"
	"fmt"
	"strings"

	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/safetensors"
	"github.com/qkvdev/qkv/formats/source"
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
	var re *source.Error
	if errors.As(err, &re) {
		// The source names the file (or the input) itself.
		return &Error{File: re.Name, Offset: -1, Err: oneLine{re.Err}}
	}
	return &Error{File: file, Offset: -1, Err: err}
}

// oneLine shows an error on one line (a server's words may hold line
// breaks) and keeps it for errors.Is (source.ErrOffline, fs.ErrNotExist).
type oneLine struct{ err error }

func (e oneLine) Error() string {
	s := e.err.Error()
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

func (e oneLine) Unwrap() error { return e.err }

// ErrNoAttention is wrapped by the errors FindModel gives for a checkpoint
// with no attention layers at all, as far as qkv can tell: no tensors, a
// GGUF without general.architecture, or no tensor under any name a known
// architecture (or --map) gives. A layer whose attention is found but
// cannot be resolved (its geometry, its factors) does not wrap it.
var ErrNoAttention = errors.New("no attention layers")

// noAttention is an error message that wraps ErrNoAttention without
// showing it.
type noAttention struct{ msg string }

func (e *noAttention) Error() string        { return e.msg }
func (e *noAttention) Is(target error) bool { return target == ErrNoAttention }

func noAttentionf(format string, args ...any) error {
	return &noAttention{fmt.Sprintf(format, args...)}
}

func errorf(file string, offset int64, format string, args ...any) error {
	return &Error{File: file, Offset: offset, Err: fmt.Errorf(format, args...)}
}
