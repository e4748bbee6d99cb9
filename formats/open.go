package formats

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/safetensors"
)

// Format is a checkpoint's file format.
type Format string

const (
	FormatSafetensors Format = "safetensors"
	FormatGGUF        Format = "gguf"
)

// Options tune Open.
type Options struct {
	// MaxHeaderBytes limits a safetensors header (0: the reference crate's 100 MB).
	MaxHeaderBytes int64
}

// File is one file of a checkpoint, mapped read-only.
type File struct {
	Path string
	Size int64
	data []byte

	// Exactly one of these is set.
	GGUF        *gguf.File
	Safetensors *safetensors.File
}

// Tensor is one tensor of a checkpoint, located but not read.
type Tensor struct {
	Name  string
	Type  dtype.Type
	Shape []int64 // row-major, outermost first (a GGUF ne=[4096, 11008] is [11008, 4096])
	// Bytes is the tensor's size on disk; -1 when its type's layout is unknown.
	Bytes  int64
	File   int   // index into Checkpoint.Files
	Offset int64 // absolute byte offset in that file
	// Note says what is unusual about how the tensor is stored ("" for
	// nothing): a legacy flat run of quantized blocks whose rows are not
	// whole blocks decodes whole, not row by row.
	Note string
}

// noteFlatRun is the Note of a legacy flat-run tensor.
const noteFlatRun = "legacy layout: one flat run of blocks, rows are not whole blocks (decodes whole, not by row)"

// Elements is the number of elements (1 for a scalar).
func (t *Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Checkpoint is an opened model: one or more mapped files presented as one
// set of tensors, plus its configuration.
type Checkpoint struct {
	Format  Format
	Path    string // as given to Open
	Dir     string // the folder holding the files
	Files   []*File
	Tensors []*Tensor
	byName  map[string]*Tensor

	// Config is config.json beside a safetensors checkpoint, nil when absent.
	Config     map[string]any
	ConfigPath string
	// AdapterConfig is adapter_config.json (PEFT or MLX LoRA), nil when absent.
	AdapterConfig     map[string]any
	AdapterConfigPath string
}

// Tensor returns the named tensor, nil when there is none.
func (c *Checkpoint) Tensor(name string) *Tensor { return c.byName[name] }

// BigEndian reports whether the checkpoint is a big-endian GGUF.
func (c *Checkpoint) BigEndian() bool {
	return c.Format == FormatGGUF && len(c.Files) > 0 && c.Files[0].GGUF.BigEndian
}

// GGUF returns the first GGUF file's header (which holds a split set's
// metadata), nil for safetensors.
func (c *Checkpoint) GGUF() *gguf.File {
	if c.Format != FormatGGUF || len(c.Files) == 0 {
		return nil
	}
	return c.Files[0].GGUF
}

// Close unmaps every file.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.Files {
		if err := unmap(f.data); err != nil && first == nil {
			first = err
		}
		f.data = nil
	}
	return first
}

// Open opens a checkpoint by content, not by name: a safetensors file, a
// folder with model.safetensors or model.safetensors.index.json (and
// config.json), an index file, a GGUF file, or any part of a split GGUF set
// (all parts are opened). It maps files read-only and parses headers only.
func Open(path string, opts Options) (*Checkpoint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, &Error{File: path, Offset: -1, Err: describeOSError(err)}
	}
	c := &Checkpoint{Path: path, byName: map[string]*Tensor{}}
	if st.IsDir() {
		err = c.openDir(path, opts)
	} else {
		c.Dir = filepath.Dir(path)
		err = c.openFile(path, opts)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func describeOSError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("no such file or folder")
	case errors.Is(err, fs.ErrPermission):
		return errors.New("permission denied (the file cannot be read)")
	}
	return err
}

func (c *Checkpoint) openDir(dir string, opts Options) error {
	c.Dir = dir
	exists := func(name string) bool {
		st, err := os.Stat(filepath.Join(dir, name))
		return err == nil && !st.IsDir()
	}
	if err := c.readConfigs(dir); err != nil {
		return err
	}
	for _, name := range []string{"model.safetensors.index.json", "model.safetensors",
		"adapter_model.safetensors", "adapters.safetensors"} {
		if exists(name) {
			return c.openFile(filepath.Join(dir, name), opts)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return &Error{File: dir, Offset: -1, Err: describeOSError(err)}
	}
	var st, gg []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		switch {
		case strings.HasSuffix(e.Name(), ".safetensors"):
			st = append(st, e.Name())
		case strings.HasSuffix(e.Name(), ".gguf"):
			gg = append(gg, e.Name())
		}
	}
	switch {
	case len(st) == 1:
		return c.openFile(filepath.Join(dir, st[0]), opts)
	case len(st) > 1:
		sort.Strings(st)
		c.Format = FormatSafetensors
		for _, name := range st {
			if err := c.addSafetensors(filepath.Join(dir, name), opts); err != nil {
				return err
			}
		}
		return nil
	case len(gg) == 1:
		return c.openFile(filepath.Join(dir, gg[0]), opts)
	case len(gg) > 1:
		return errorf(dir, -1, "the folder holds %d GGUF files (%s); name the one to open", len(gg), strings.Join(gg, ", "))
	}
	return errorf(dir, -1, "no model.safetensors, model.safetensors.index.json, *.safetensors or *.gguf in this folder")
}

func (c *Checkpoint) readConfigs(dir string) error {
	for _, x := range []struct {
		name string
		dst  *map[string]any
		path *string
	}{{"config.json", &c.Config, &c.ConfigPath}, {"adapter_config.json", &c.AdapterConfig, &c.AdapterConfigPath}} {
		p := filepath.Join(dir, x.name)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := regularFile(p); err != nil {
			return err
		}
		b, err := readLimited(p, maxConfigBytes)
		if err != nil {
			return &Error{File: p, Offset: -1, Err: describeOSError(err)}
		}
		m, err := parseJSONObject(b)
		if err != nil {
			return fileError(p, err)
		}
		*x.dst, *x.path = m, p
	}
	return nil
}

// maxConfigBytes bounds config.json, adapter_config.json and index files:
// real ones are kilobytes (an index of a huge model a few MB).
const maxConfigBytes = 64 << 20

// readLimited reads a small JSON file, refusing one larger than limit.
func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%d bytes is more than the %d a JSON configuration file may have", st.Size(), limit)
	}
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// parseJSONObject decodes a JSON object, keeping numbers exact (json.Number).
func parseJSONObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	err := dec.Decode(&m)
	if err == nil && dec.More() {
		return nil, &Error{Offset: dec.InputOffset(), Err: errors.New("invalid JSON: data after the top-level object")}
	}
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, &Error{Offset: se.Offset - 1, Err: fmt.Errorf("invalid JSON: %v", se)} // Offset counts the bad byte
		}
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if m == nil {
		return nil, errors.New("invalid JSON: expected an object")
	}
	return m, nil
}

// sniff reads the first bytes of a file to tell its format.
func sniff(path string) (string, error) {
	if err := regularFile(path); err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", &Error{File: path, Offset: -1, Err: describeOSError(err)}
	}
	defer f.Close()
	var head [9]byte
	n, err := io.ReadFull(f, head[:])
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", &Error{File: path, Offset: 0, Err: fmt.Errorf("cannot read the file: %v", describeOSError(err))}
	}
	b := head[:n]
	switch {
	case n >= 4 && string(b[:4]) == "GGUF":
		return "gguf", nil
	case n >= 4 && string(b[:4]) == "FUGG":
		return "gguf", nil // a big-endian writer that swapped the magic too
	case n == 9 && b[8] == '{':
		return "safetensors", nil
	case n >= 8 && binary.LittleEndian.Uint64(b) > 0:
		// A safetensors file whose header does not start with '{' is still
		// safetensors to the user; its parser says what is wrong.
		if strings.HasSuffix(path, ".safetensors") || n < 9 {
			return "safetensors", nil
		}
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return "json", nil
	}
	if n == 0 {
		return "", errorf(path, 0, "the file is empty")
	}
	if strings.HasSuffix(path, ".safetensors") {
		return "safetensors", nil
	}
	return "", errorf(path, 0, "not a safetensors or GGUF file (it starts with % x)", b)
}

func (c *Checkpoint) openFile(path string, opts Options) error {
	kind, err := sniff(path)
	if err != nil {
		return err
	}
	switch kind {
	case "gguf":
		c.Format = FormatGGUF
		return c.openGGUF(path)
	case "json":
		if c.Config == nil && c.AdapterConfig == nil {
			if err := c.readConfigs(filepath.Dir(path)); err != nil {
				return err
			}
		}
		return c.openIndex(path, opts)
	default:
		c.Format = FormatSafetensors
		if c.Config == nil && c.AdapterConfig == nil {
			if err := c.readConfigs(filepath.Dir(path)); err != nil {
				return err
			}
		}
		return c.addSafetensors(path, opts)
	}
}

// regularFile refuses anything but a regular file (a FIFO or device would
// block or never end) before it is opened.
func regularFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return &Error{File: path, Offset: -1, Err: describeOSError(err)}
	}
	switch {
	case st.IsDir():
		return errorf(path, -1, "is a folder, expected a file")
	case !st.Mode().IsRegular():
		return errorf(path, -1, "is not a regular file but %s", fileKind(st.Mode()))
	}
	return nil
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file (" + m.Type().String() + ")"
}

// mapPath opens and maps one file.
func mapPath(path string) (*File, error) {
	if err := regularFile(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Offset: -1, Err: describeOSError(err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, &Error{File: path, Offset: -1, Err: err}
	}
	if st.IsDir() {
		return nil, errorf(path, -1, "is a folder, expected a file")
	}
	data, err := mapFile(f, st.Size())
	if err != nil {
		return nil, &Error{File: path, Offset: -1, Err: fmt.Errorf("cannot map the file: %v", err)}
	}
	return &File{Path: path, Size: st.Size(), data: data}, nil
}

func (c *Checkpoint) addTensor(t *Tensor) error {
	if _, dup := c.byName[t.Name]; dup {
		f := c.Files[t.File]
		return &Error{File: f.Path, Tensor: t.Name, Offset: -1, Err: errors.New("the tensor appears in more than one file of this checkpoint")}
	}
	c.byName[t.Name] = t
	c.Tensors = append(c.Tensors, t)
	return nil
}

func (c *Checkpoint) addSafetensors(path string, opts Options) error {
	f, err := mapPath(path)
	if err != nil {
		return err
	}
	c.Files = append(c.Files, f)
	var sf *safetensors.File
	err = guard(func() error {
		var err error
		sf, err = safetensors.Parse(f.data, safetensors.Options{MaxHeaderBytes: opts.MaxHeaderBytes})
		return err
	})
	if err != nil {
		return fileError(path, err)
	}
	f.Safetensors = sf
	idx := len(c.Files) - 1
	for _, ti := range sf.Tensors {
		t := &Tensor{Name: ti.Name, Type: ti.DType, Shape: ti.Shape, Bytes: ti.End - ti.Begin,
			File: idx, Offset: sf.DataOffset + ti.Begin}
		if err := c.addTensor(t); err != nil {
			return err
		}
	}
	return nil
}
