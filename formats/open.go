package formats

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/formats/safetensors"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/internal/infile"
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
	// Source resolves remote inputs (hf://ORG/NAME[@REV][/PATH], a bare
	// ORG/NAME[@REV] that is not a local path, https:// URLs) and reads their
	// files; nil means source.Default() (configured from HF_ENDPOINT,
	// HF_TOKEN, HF_HUB_OFFLINE, HF_HUB_CACHE and HF_HOME), made only for a
	// remote input. Local paths need no client.
	Source *source.Client
	// Context bounds every remote read of the checkpoint, during Open and
	// after (tensor bytes); nil means context.Background().
	Context context.Context
}

// File is one file of a checkpoint: its header, parsed, and its bytes,
// memory-mapped read-only when the file is local and fetched by range (each
// tensor when it is read) when it is remote.
type File struct {
	// Path names the file in messages: the path as given (or joined to the
	// folder given), hf://ORG/NAME@REV/FILE, or the URL.
	Path string
	Size int64
	// Src serves the file's bytes. A *source.Local is a mapping (Bytes is
	// zero-copy: read it under a fault guard, see ReadRaw); a remote one
	// fetches each range it is asked for.
	Src source.Source
	// head is the beginning of the file read for its GGUF header (the
	// whole mapping for a local file), which lazy metadata arrays are
	// decoded from without another read.
	head []byte

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
	// whole blocks, whose rows are decoded from the blocks around them.
	Note string

	// scale, for an 8-bit weight stored with a scale tensor, dequantises
	// it on decoding (scales.go); scaleFor marks the scale tensor itself.
	scale    *tensorScale
	scaleFor *Tensor
}

// ScaleOf returns the weight this tensor is the dequantisation scale of
// (X.weight_scale_inv or X.weight_scale of an 8-bit X.weight), nil when it
// is not one. Such a tensor is applied whenever its weight is decoded.
func (t *Tensor) ScaleOf() *Tensor { return t.scaleFor }

// noteFlatRun is the Note of a legacy flat-run tensor.
const noteFlatRun = "legacy layout: one flat run of blocks, rows are not whole blocks (a row is decoded from the blocks around it)"

// Elements is the number of elements (1 for a scalar).
func (t *Tensor) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Checkpoint is an opened model: one or more files presented as one set of
// tensors, plus its configuration.
type Checkpoint struct {
	Format  Format
	Path    string // as given to Open
	Dir     string // the folder holding the files (a path, hf://ORG/NAME@REV or a URL's folder)
	Files   []*File
	Tensors []*Tensor
	byName  map[string]*Tensor

	// Config is config.json beside a safetensors checkpoint, nil when absent.
	Config     map[string]any
	ConfigPath string
	// AdapterConfig is adapter_config.json (PEFT or MLX LoRA), nil when absent.
	AdapterConfig     map[string]any
	AdapterConfigPath string

	// Target is what the input resolved to: its Kind (local, hf-cache, hub,
	// url), the folder its files are read from and, for a Hub repository,
	// the repository, revision and commit (Target.Display() names it).
	Target *source.Target

	client      *source.Client // nil for a local input opened without one
	dir         source.Dir
	configsRead bool
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

// Remote reports whether reading the checkpoint's bytes may use the
// network (a Hub repository not in the Hugging Face cache, or a URL).
func (c *Checkpoint) Remote() bool { return c.Target != nil && c.Target.Kind.Remote() }

// IO returns the counters of the client the checkpoint reads through
// (requests, retries, bytes fetched, bytes from qkv's range cache): the io
// block of a report. The counters are the client's, so they cover every
// checkpoint opened with it; zero for a local input opened without one.
func (c *Checkpoint) IO() source.IO {
	if c.client == nil {
		return source.IO{}
	}
	return c.client.IO()
}

// ReadFile reads a small file of the checkpoint's folder (tokenizer.json,
// generation_config.json, …) wherever the folder is — locally, in the
// Hugging Face cache or on the Hub — refusing one larger than limit bytes.
// It returns the file's name for messages; an absent file gives an error
// for which errors.Is(err, fs.ErrNotExist) holds.
func (c *Checkpoint) ReadFile(name string, limit int64) ([]byte, string, error) {
	p := c.dir.Path(name)
	fi, err := c.dir.Stat(name)
	if err != nil {
		return nil, p, fileError(p, err)
	}
	if err := regularInfo(p, fi); err != nil {
		return nil, p, err
	}
	b, err := c.dir.ReadFile(name, limit)
	if err != nil {
		return nil, p, fileError(p, err)
	}
	return b, p, nil
}

// Close unmaps (or forgets) every file.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.Files {
		if f.Src != nil {
			if err := f.Src.Close(); err != nil && first == nil {
				first = err
			}
		}
		f.Src, f.head = nil, nil
	}
	return first
}

// Open opens a checkpoint by content, not by name: a safetensors file, a
// folder with model.safetensors or model.safetensors.index.json (and
// config.json), an index file, a GGUF file, or any part of a split GGUF set
// (all parts are opened). path may also be remote: hf://ORG/NAME[@REV][/PATH],
// a bare ORG/NAME[@REV] that is not a local path (the Hugging Face cache is
// looked in first), or an https:// URL of one file. Local files are mapped
// read-only; remote ones are read by range. Only headers are read: a
// safetensors header in one or two requests, a GGUF header in a growing
// window, the files of a sharded set in parallel.
func Open(path string, opts Options) (*Checkpoint, error) {
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	var tg *source.Target
	cl := opts.Source
	if source.IsRemote(path) {
		if cl == nil {
			var err error
			if cl, err = source.Default(); err != nil {
				return nil, &Error{File: path, Offset: -1, Err: err}
			}
		}
		var err error
		if tg, err = cl.Resolve(ctx, path); err != nil {
			return nil, fileError(path, err)
		}
	} else {
		tg = source.ResolveLocal(path)
	}
	c := &Checkpoint{Path: path, byName: map[string]*Tensor{}, Target: tg, client: cl, dir: tg.Dir, Dir: tg.Dir.Name()}
	var err error
	if tg.File == "" {
		err = c.openDir(opts)
	} else if _, err = c.dir.Stat(tg.File); err != nil {
		err = fileError(c.dir.Path(tg.File), err)
	} else {
		err = c.openFile(tg.File, opts)
	}
	if err == nil {
		err = c.attachScales()
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Checkpoint) openDir(opts Options) error {
	d := c.dir
	exists := func(name string) bool {
		fi, err := d.Stat(name)
		return err == nil && !fi.Mode.IsDir()
	}
	if err := c.readConfigs(); err != nil {
		return err
	}
	for _, name := range []string{"model.safetensors.index.json", "model.safetensors",
		"adapter_model.safetensors", "adapters.safetensors"} {
		if exists(name) {
			return c.openFile(name, opts)
		}
	}
	files, err := d.List()
	if err != nil {
		return fileError(d.Name(), err)
	}
	var st, gg []string
	for _, fi := range files {
		switch {
		case strings.HasSuffix(fi.Name, ".safetensors"):
			st = append(st, fi.Name)
		case strings.HasSuffix(fi.Name, ".gguf"):
			gg = append(gg, fi.Name)
		}
	}
	switch {
	case len(st) == 1:
		return c.openFile(st[0], opts)
	case len(st) > 1:
		sort.Strings(st)
		c.Format = FormatSafetensors
		return c.addSafetensorsSet(st, opts, nil)
	case len(gg) == 1:
		return c.openFile(gg[0], opts)
	case len(gg) > 1:
		return errorf(d.Name(), -1, "the folder holds %d GGUF files (%s); name the one to open", len(gg), quoteJoin(gg, len(gg)))
	}
	return c.noCheckpointError()
}

// readConfigs reads config.json and adapter_config.json from the
// checkpoint's folder, once.
func (c *Checkpoint) readConfigs() error {
	if c.configsRead {
		return nil
	}
	c.configsRead = true
	for _, x := range []struct {
		name string
		dst  *map[string]any
		path *string
	}{{"config.json", &c.Config, &c.ConfigPath}, {"adapter_config.json", &c.AdapterConfig, &c.AdapterConfigPath}} {
		p := c.dir.Path(x.name)
		fi, err := c.dir.Stat(x.name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fileError(p, err)
		}
		if err := regularInfo(p, fi); err != nil {
			return err
		}
		if fi.Size > maxConfigBytes {
			return errorf(p, -1, "%d bytes is more than the %d a JSON configuration file may have", fi.Size, int64(maxConfigBytes))
		}
		b, err := c.dir.ReadFile(x.name, maxConfigBytes)
		if err != nil {
			return fileError(p, err)
		}
		m, err := parseJSONObject(b)
		if err != nil {
			return fileError(p, err)
		}
		*x.dst, *x.path = m, p
	}
	return nil
}

// regularInfo refuses a folder or a special file (a FIFO or device would
// block or never end) before it is opened.
func regularInfo(path string, fi source.FileInfo) error {
	switch {
	case fi.Mode.IsDir():
		return errorf(path, -1, "is a folder, expected a file")
	case !fi.Mode.IsRegular():
		return errorf(path, -1, "is not a regular file but %s", infile.Kind(fi.Mode))
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

// sniffBytes is how much of a file sniff reads: the first read of a
// safetensors header, or of a GGUF header when the name says GGUF (so that
// one request serves both). It tells the format by content either way.
func sniffBytes(name string, size int64) int64 {
	if strings.HasSuffix(name, ".gguf") {
		return min(source.GGUFFirstRead, size)
	}
	return min(source.SafetensorsFirstRead, size)
}

// sniff reads the first bytes of a file to tell its format.
func sniff(src source.Source, path string) (string, error) {
	var head []byte
	err := guard(func() error {
		b, err := src.Bytes(0, sniffBytes(path, src.Size()))
		if err != nil {
			return err
		}
		head = append([]byte(nil), b[:min(len(b), foreignSniffBytes)]...)
		return nil
	})
	if err != nil {
		return "", readError(path, 0, err)
	}
	b := head[:min(len(head), 9)]
	n := len(b)
	switch {
	case n >= 4 && string(b[:4]) == "GGUF":
		return "gguf", nil
	case n >= 4 && string(b[:4]) == "FUGG":
		return "gguf", nil // a big-endian writer that swapped the magic too
	case n == 9 && b[8] == '{':
		return "safetensors", nil
	}
	if what := foreignFormat(head, path); what != "" {
		return "", errorf(path, -1, "%s", what)
	}
	switch {
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

// readError wraps a failed read of a file's bytes.
func readError(path string, off int64, err error) error {
	if errors.Is(err, errFault) {
		return &Error{File: path, Offset: off, Err: err}
	}
	return fileError(path, err)
}

// openFile opens the file name of the checkpoint's folder by its content.
func (c *Checkpoint) openFile(name string, opts Options) error {
	path := c.dir.Path(name)
	src, err := c.dir.Open(name)
	if err != nil {
		return fileError(path, err)
	}
	kind, err := sniff(src, path)
	if err != nil {
		src.Close()
		return err
	}
	switch kind {
	case "gguf":
		c.Format = FormatGGUF
		return c.openGGUF(name, src)
	case "json":
		if err := c.readConfigs(); err != nil {
			src.Close()
			return err
		}
		return c.openIndex(name, src, opts)
	default:
		c.Format = FormatSafetensors
		if err := c.readConfigs(); err != nil {
			src.Close()
			return err
		}
		return c.addSafetensorsSet([]string{name}, opts, src)
	}
}

// regularFile refuses anything but a regular file (a FIFO or device would
// block or never end) before it is opened.
func regularFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return &Error{File: path, Offset: -1, Err: infile.ReadCause(err)}
	}
	switch {
	case st.IsDir():
		return errorf(path, -1, "is a folder, expected a file")
	case !st.Mode().IsRegular():
		return errorf(path, -1, "is not a regular file but %s", infile.Kind(st.Mode()))
	}
	return nil
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

// parseSafetensors reads and parses the header of a safetensors file: one
// read of the first SafetensorsFirstRead bytes, a second only for a longer
// header (a local file's mapping is parsed in place).
func parseSafetensors(path string, src source.Source, opts Options) (*File, error) {
	f := &File{Path: path, Size: src.Size(), Src: src}
	maxHeader := opts.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = safetensors.DefaultMaxHeaderBytes
	}
	err := guard(func() error {
		b, err := source.SafetensorsPrefix(src, maxHeader)
		if err != nil {
			return err
		}
		f.Safetensors, err = safetensors.Parse(b, safetensors.Options{MaxHeaderBytes: opts.MaxHeaderBytes, Size: src.Size()})
		return err
	})
	if err != nil {
		return nil, readError(path, -1, err)
	}
	return f, nil
}

// addSafetensorsSet opens and parses the safetensors files names of the
// checkpoint's folder — their headers read in parallel — and adds their
// tensors in order. first, when not nil, is names[0] already open. Errors
// are the ones a reading in order would meet first: a file that is missing
// or does not parse, or a tensor that an earlier file holds too.
func (c *Checkpoint) addSafetensorsSet(names []string, opts Options, first source.Source) error {
	return c.addSet(names, 0, first, func(i int, path string, src source.Source) (*File, error) {
		return parseSafetensors(path, src, opts)
	}, func(i int, f *File) error {
		return c.addSafetensorsTensors(f)
	}, nil)
}

// addSafetensorsTensors adds the tensors of the last file added.
func (c *Checkpoint) addSafetensorsTensors(f *File) error {
	idx := len(c.Files) - 1
	sf := f.Safetensors
	ts := make([]Tensor, len(sf.Tensors)) // one allocation for the file
	for i, ti := range sf.Tensors {
		ts[i] = Tensor{Name: ti.Name, Type: ti.DType, Shape: ti.Shape, Bytes: ti.End - ti.Begin,
			File: idx, Offset: sf.DataOffset + ti.Begin}
		if err := c.addTensor(&ts[i]); err != nil {
			return err
		}
	}
	return nil
}

// addSet opens the files names of the checkpoint's folder (have, when not
// nil, is names[haveAt] already open), parses each with parse in parallel,
// then appends them to c.Files and calls add for each in order, stopping at
// the first error in that order. missing, when set, words the error for a
// file that is not there.
func (c *Checkpoint) addSet(names []string, haveAt int, have source.Source,
	parse func(i int, path string, src source.Source) (*File, error),
	add func(i int, f *File) error, missing func(i int, err error) error) error {
	files := make([]*File, len(names))
	errs := make([]error, len(names))
	parallel := runtime.GOMAXPROCS(0)
	if c.client != nil && c.Remote() {
		parallel = c.client.Options().MaxConns
	}
	source.ForEach(len(names), parallel, func(i int) error {
		path := c.dir.Path(names[i])
		src := have
		if i != haveAt || src == nil {
			if _, err := c.dir.Stat(names[i]); err != nil && missing != nil {
				errs[i] = missing(i, err)
				return nil
			}
			var err error
			if src, err = c.dir.Open(names[i]); err != nil {
				errs[i] = fileError(path, err)
				return nil
			}
		}
		f, err := parse(i, path, src)
		if err != nil {
			src.Close()
			errs[i] = err
			return nil
		}
		files[i] = f
		return nil
	})
	// Size the name index for every tensor at once.
	total := len(c.Tensors)
	for _, f := range files {
		if f != nil && f.Safetensors != nil {
			total += len(f.Safetensors.Tensors)
		} else if f != nil && f.GGUF != nil {
			total += len(f.GGUF.Tensors)
		}
	}
	if total > len(c.Tensors) {
		byName := make(map[string]*Tensor, total)
		for k, v := range c.byName {
			byName[k] = v
		}
		c.byName = byName
		c.Tensors = append(make([]*Tensor, 0, total), c.Tensors...)
	}
	var err error
	for i := range names {
		if err == nil && errs[i] != nil {
			err = errs[i]
		}
		if err != nil {
			if files[i] != nil {
				files[i].Src.Close()
			}
			continue
		}
		c.Files = append(c.Files, files[i])
		err = add(i, files[i])
	}
	return err
}
