package main

// The hostile corpus: one small malformed file (or folder) per failure class,
// and expected.json with what qkv must say about each. The expected texts are
// written here from the construction of each file — the offsets are computed
// from where this code put the offending field — not captured from qkv's
// output, so that cmd/hostile_test.go checks the parsers against an
// independent statement of where each problem is.

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/qkvdev/qkv/formats/safetensors"
)

// HostileCase is one entry of testdata/hostile/expected.json, keyed by the
// path to open relative to testdata/hostile.
type HostileCase struct {
	Class string `json:"class"`
	// Exit is the exit status of `qkv ls` and `qkv meta` on the path.
	Exit int `json:"exit"`
	// Error is the whole stderr line after "qkv: " when Exit is not 0, as
	// seen when qkv runs from the repository root.
	Error string `json:"error,omitempty"`
	// ListsDType is a dtype name `qkv ls` must print (files that open).
	ListsDType string `json:"lists_dtype,omitempty"`
	// Cat is `qkv cat PATH TENSOR` on a file that opens.
	Cat *HostileCat `json:"cat,omitempty"`
	// Runs are further commands on the path and what each must do.
	Runs []HostileRun `json:"runs,omitempty"`
}

// HostileRun is one command and its expected outcome. In Args, "{}" stands
// for the corpus path; other arguments are taken as written, relative to
// the repository root.
type HostileRun struct {
	Class string   `json:"class,omitempty"` // for the cases of args.json
	Args  []string `json:"args"`
	Exit  int      `json:"exit"`
	// Error is the whole stderr line after "qkv: " (Exit 2 or 3).
	Error string `json:"error,omitempty"`
	// Stdout is text the standard output must hold (Exit 0 or 1).
	Stdout string `json:"stdout,omitempty"`
}

// HostileCat is the expected outcome of cat on one tensor.
type HostileCat struct {
	Tensor string `json:"tensor"`
	Exit   int    `json:"exit"`
	Error  string `json:"error,omitempty"`
}

type hostileSet struct {
	g     *gen
	dir   string
	cases map[string]HostileCase
}

// rel is the path a user at the repository root types for a corpus entry.
func (h *hostileSet) rel(name string) string { return "testdata/hostile/" + name }

// fail records a case whose every command exits 3 with "PATH: msg".
func (h *hostileSet) fail(name, class, msg string) {
	h.failAs(name, name, class, msg)
}

// failAs records a case opened as name whose error names the file errFile.
func (h *hostileSet) failAs(name, errFile, class, msg string) {
	if _, dup := h.cases[name]; dup {
		log.Fatalf("hostile: duplicate case %s", name)
	}
	h.cases[name] = HostileCase{Class: class, Exit: 3, Error: h.rel(errFile) + ": " + msg}
}

func (h *hostileSet) file(name string, b []byte) {
	if len(b) >= 64<<10 {
		log.Fatalf("hostile: %s is %d bytes, keep it under 64 KB", name, len(b))
	}
	h.g.write(filepath.Join(h.dir, filepath.FromSlash(name)), b)
}

func at(off int) string { return fmt.Sprintf(" (at byte %d)", off) }

// ---- safetensors ------------------------------------------------------------

// stBytes is a safetensors file: the 8-byte header length, header, data.
func stBytes(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// stAt is the file offset of the first sub in header (after skip bytes).
func stAt(header, sub string, skip int) int {
	i := strings.Index(header[skip:], sub)
	if i < 0 {
		log.Fatalf("hostile: %q not in %q", sub, header)
	}
	return 8 + skip + i
}

const stX = `"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}`

func (h *hostileSet) safetensorsCases() {
	data16 := make([]byte, 16)
	one := func(name, class, header string, data []byte, msg string) {
		h.file(name, stBytes(header, data))
		h.fail(name, class, msg)
	}

	// Header length problems.
	b := binary.LittleEndian.AppendUint64(nil, 1000)
	b = append(b, `{"a":1}     `...)
	h.file("st-header-past-eof.safetensors", b)
	h.fail("st-header-past-eof.safetensors", "safetensors header length larger than the file",
		fmt.Sprintf("header length 1000 runs past the end of the file (%d bytes)", len(b))+at(0))

	b = binary.LittleEndian.AppendUint64(nil, 200_000_000)
	b = append(b, `{}      `...)
	h.file("st-header-over-limit.safetensors", b)
	h.fail("st-header-over-limit.safetensors", "safetensors header length larger than the limit",
		"header is 200000000 bytes, more than the limit of 100000000; raise it with --max-header"+at(0))

	b = binary.LittleEndian.AppendUint64(nil, 0)
	b = append(b, `{}      `...)
	h.file("st-header-zero.safetensors", b)
	h.fail("st-header-zero.safetensors", "safetensors header length zero", "header length is 0"+at(0))

	h.file("st-too-short.safetensors", []byte{1, 0, 0, 0, 0})
	h.fail("st-too-short.safetensors", "file shorter than the 8-byte header length",
		"file is 5 bytes, too short for the 8-byte header length"+at(0))

	h.file("st-empty.safetensors", []byte{})
	h.fail("st-empty.safetensors", "empty file", "the file is empty"+at(0))

	// Header text problems.
	one("st-no-brace.safetensors", "safetensors header not starting with '{'", `["x", 1]`, nil,
		"header must begin with '{', not '['"+at(8))

	hdr := "{\"x\xff\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}"
	one("st-bad-utf8.safetensors", "safetensors header not valid UTF-8", hdr, data16,
		"header is not valid UTF-8"+at(stAt(hdr, "\xff", 0)))

	hdr = `{"x":{"dtype":"F32",,"shape":[4],"data_offsets":[0,16]}}`
	one("st-bad-json.safetensors", "safetensors header invalid JSON", hdr, data16,
		"invalid JSON in header: invalid character ',' looking for beginning of object key string"+at(stAt(hdr, ",,", 0)+1))

	hdr = `{"x":{"dtype":"F32"`
	one("st-json-unclosed.safetensors", "safetensors header JSON ends early", hdr, nil,
		"invalid JSON in header: it ends before the object is closed"+at(8+len(hdr)))

	hdr = `{"x\ud800":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`
	one("st-lone-surrogate.safetensors", "safetensors header with an unpaired UTF-16 surrogate escape", hdr, data16,
		`invalid JSON in header: \u escape is an unpaired UTF-16 surrogate`+at(stAt(hdr, `\u`, 0)))

	hdr = "{" + stX + "}x  "
	one("st-header-junk-after.safetensors", "safetensors header with bytes other than spaces after the object", hdr, data16,
		"header has 'x' after its JSON object; only spaces may pad it"+at(8+len(hdr)-3))

	// Keys and metadata.
	hdr = "{" + stX + `,"x":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}}`
	one("st-duplicate-tensor.safetensors", "safetensors duplicate tensor names", hdr, make([]byte, 32),
		fmt.Sprintf(`duplicate key "x" in header (first at byte %d)`, stAt(hdr, `"x"`, 0))+at(stAt(hdr, `"x"`, 2)))

	hdr = `{"__metadata__":{"format":1},` + stX + "}"
	one("st-metadata-non-string.safetensors", "safetensors __metadata__ with a non-string value", hdr, data16,
		`__metadata__ value for key "format" is a number, not a string`+at(stAt(hdr, "1}", 0)))

	hdr = `{"__metadata__":["pt"],` + stX + "}"
	one("st-metadata-not-object.safetensors", "safetensors __metadata__ not an object", hdr, data16,
		"__metadata__ must be an object of strings, not an array"+at(stAt(hdr, "[", 0)))

	hdr = `{"x":5}`
	one("st-entry-not-object.safetensors", "safetensors tensor entry not an object", hdr, nil,
		`tensor "x": entry must be an object with dtype, shape and data_offsets, not a number`+at(stAt(hdr, "5", 0)))

	hdr = `{"x":{"shape":[4],"data_offsets":[0,16]}}`
	one("st-missing-dtype.safetensors", "safetensors tensor entry without dtype", hdr, data16,
		`tensor "x": entry has no dtype`+at(stAt(hdr, `"x"`, 0)))

	hdr = `{"x":{"dtype":5,"shape":[4],"data_offsets":[0,16]}}`
	one("st-dtype-not-string.safetensors", "safetensors dtype that is not a string", hdr, data16,
		`tensor "x": dtype must be a string, not a number`+at(stAt(hdr, "5", 0)))

	hdr = `{"x":{"dtype":"F32","shape":[4],"shape":[4],"data_offsets":[0,16]}}`
	one("st-duplicate-field.safetensors", "safetensors tensor entry with a field twice", hdr, data16,
		`tensor "x": duplicate field "shape"`+at(stAt(hdr, `"shape"`, 21)))

	hdr = `{"__metadata__":{"a":"1","a":"2"},` + stX + "}"
	one("st-metadata-duplicate-key.safetensors", "safetensors __metadata__ with a key twice", hdr, data16,
		fmt.Sprintf(`duplicate key "a" in __metadata__ (first at byte %d)`, stAt(hdr, `"a"`, 0))+at(stAt(hdr, `"a"`, 20)))

	deep := strings.Repeat("[", 200) + strings.Repeat("]", 200)
	hdr = `{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16],"extra":` + deep + "}}"
	one("st-deep-nesting.safetensors", "safetensors header JSON nested 200 deep", hdr, data16,
		"invalid JSON in header: nested more than 128 levels deep"+at(stAt(hdr, "[[", 0)+126))

	// Byte ranges.
	hdr = "{" + stX + `,"y":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}`
	one("st-overlap.safetensors", "safetensors overlapping byte ranges", hdr, make([]byte, 24),
		`tensor "y": data_offsets [8, 24] overlap tensor "x", which ends at 16`+at(8+len(hdr)+8))

	hdr = "{" + stX + `,"y":{"dtype":"F32","shape":[4],"data_offsets":[20,36]}}`
	one("st-gap.safetensors", "safetensors gap between byte ranges", hdr, make([]byte, 36),
		`tensor "y": gap of 4 bytes between tensor "x" (ends at 16) and this tensor (begins at 20)`+at(8+len(hdr)+16))

	hdr = `{"x":{"dtype":"F32","shape":[4],"data_offsets":[4,20]}}`
	one("st-gap-at-start.safetensors", "safetensors data bytes before the first tensor", hdr, make([]byte, 20),
		`tensor "x": data bytes [0, 4) belong to no tensor: the first tensor begins at 4`+at(8+len(hdr)))

	hdr = "{" + stX + "}"
	one("st-trailing-bytes.safetensors", "safetensors trailing bytes after the last tensor", hdr, make([]byte, 20),
		`4 trailing bytes after the last tensor "x" (data buffer is 20 bytes, tensors end at 16)`+at(8+len(hdr)+16))

	one("st-data-past-eof.safetensors", "safetensors byte range past the end of the file", hdr, make([]byte, 8),
		`tensor "x": data_offsets [0, 16] run past the end of the data buffer (8 bytes)`+at(8+len(hdr)))

	hdr = `{"x":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}}`
	one("st-offsets-reversed.safetensors", "safetensors data_offsets end before they begin", hdr, data16,
		`tensor "x": data_offsets [16, 0] end before they begin`+at(stAt(hdr, "[16", 0)))

	hdr = `{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,8,16]}}`
	one("st-offsets-three.safetensors", "safetensors data_offsets with three values", hdr, data16,
		`tensor "x": data_offsets must be [begin, end], two non-negative integers, but has more`+at(stAt(hdr, "16]", 0)))

	hdr = `{"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}}`
	one("st-size-mismatch.safetensors", "safetensors range size not matching dtype x shape", hdr, data16,
		`tensor "x": data_offsets [0, 16] hold 16 bytes, but F32 [2, 3] needs 24`+at(8+len(hdr)))

	hdr = `{"x":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`
	one("st-partial-block.safetensors", "safetensors sub-byte dtype with a shape that is not whole blocks", hdr, make([]byte, 2),
		`tensor "x": shape [3] does not fit dtype F4: 3 elements is not a whole number of F4 blocks of 2`+at(stAt(hdr, "[3]", 0)))

	// Shapes.
	hdr = `{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}`
	one("st-shape-overflow.safetensors", "safetensors shape product overflowing int64", hdr, data16,
		`tensor "x": shape [4294967296, 4294967296] overflows a 64-bit element count`+at(stAt(hdr, "[4294967296", 0)))

	hdr = `{"x":{"dtype":"F32","shape":[-2,4],"data_offsets":[0,16]}}`
	one("st-negative-dim.safetensors", "safetensors negative dimension", hdr, data16,
		`tensor "x": shape value -2 is negative`+at(stAt(hdr, "-2", 0)))

	hdr = `{"x":{"dtype":"F32","shape":[2.5,4],"data_offsets":[0,16]}}`
	one("st-fractional-dim.safetensors", "safetensors non-integer dimension", hdr, data16,
		`tensor "x": shape value 2.5 is not an integer`+at(stAt(hdr, "2.5", 0)))

	hdr = `{"x":{"dtype":"F32","shape":["4"],"data_offsets":[0,16]}}`
	one("st-string-dim.safetensors", "safetensors dimension given as a string", hdr, data16,
		`tensor "x": shape must be an array of non-negative integers, but holds a string`+at(stAt(hdr, `"4"`, 0)))

	hdr = `{"x":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,16]}}`
	one("st-dim-too-large.safetensors", "safetensors dimension beyond int64", hdr, data16,
		`tensor "x": shape value 99999999999999999999 is too large`+at(stAt(hdr, "999", 0)))

	// An unknown dtype is listed, not fatal; only cat fails.
	hdr = `{"x":{"dtype":"F7_E3M3","shape":[4],"data_offsets":[0,16]}}`
	name := "st-unknown-dtype.safetensors"
	h.file(name, stBytes(hdr, data16))
	h.cases[name] = HostileCase{Class: "safetensors unknown dtype (listed, not fatal)", Exit: 0, ListsDType: "F7_E3M3",
		Cat: &HostileCat{Tensor: "x", Exit: 3, Error: h.rel(name) + `: tensor "x": cannot decode "F7_E3M3": its element type is unknown` + at(8+len(hdr))}}

	// Not a model at all.
	h.file("not-a-model.bin", []byte("hello, this is not a model\n"))
	h.fail("not-a-model.bin", "neither safetensors nor GGUF",
		"not a safetensors or GGUF file (it starts with 68 65 6c 6c 6f 2c 20 74 68)"+at(0))
}

// ---- folders, indexes and config.json ----------------------------------------

// validST is a small valid safetensors file holding F32 tensors of 4 zeros.
func validST(names ...string) []byte {
	var ts []safetensors.WriteTensor
	for _, n := range names {
		ts = append(ts, safetensors.F32Tensor(n, []int64{4}, make([]float32, 4)))
	}
	return st(ts, nil)
}

func (h *hostileSet) folderCases() {
	cfg := `{"model_type": "llama", "hidden_size": 64,, "num_attention_heads": 8}`
	h.file("config-invalid-json/model.safetensors", validST("x"))
	h.file("config-invalid-json/config.json", []byte(cfg))
	h.failAs("config-invalid-json", "config-invalid-json/config.json", "config.json that is invalid JSON beside a valid model",
		"invalid JSON: invalid character ',' looking for beginning of object key string"+at(strings.Index(cfg, ",,")+1))

	h.file("dir-empty/notes.txt", []byte("a folder with no checkpoint in it\n"))
	h.fail("dir-empty", "folder without a checkpoint",
		"no model.safetensors, model.safetensors.index.json, *.safetensors or *.gguf in this folder")

	idx := func(m map[string]string) []byte {
		b, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": m})
		return b
	}
	h.file("index-missing-shard/model.safetensors.index.json", idx(map[string]string{"x": "model-00001-of-00002.safetensors"}))
	h.failAs("index-missing-shard", "index-missing-shard/model.safetensors.index.json", "sharded index naming a missing shard",
		`shard "model-00001-of-00002.safetensors" is missing (no such file or folder)`)

	h.file("index-escape/model.safetensors.index.json", idx(map[string]string{"x": "../st-gap.safetensors"}))
	h.failAs("index-escape", "index-escape/model.safetensors.index.json", "sharded index naming a file outside its folder",
		`weight_map entry "x" names "../st-gap.safetensors", which is not a file in this folder`)

	h.file("index-wrong-shard/a.safetensors", validST("x"))
	h.file("index-wrong-shard/b.safetensors", validST("y"))
	h.file("index-wrong-shard/model.safetensors.index.json", idx(map[string]string{"x": "b.safetensors", "y": "b.safetensors"}))
	h.failAs("index-wrong-shard", "index-wrong-shard/model.safetensors.index.json", "sharded index placing a tensor in the wrong shard",
		`weight_map lists tensor "x" in "b.safetensors", but that shard does not hold it`)

	h.file("st-dup-across-files/a.safetensors", validST("x"))
	h.file("st-dup-across-files/b.safetensors", validST("x"))
	h.failAs("st-dup-across-files", "st-dup-across-files/b.safetensors", "the same tensor in two files of one folder",
		`tensor "x": the tensor appears in more than one file of this checkpoint`)
}

// ---- GGUF -------------------------------------------------------------------

// ggb builds GGUF bytes by hand, so that every field's offset is known.
type ggb struct {
	b  []byte
	be bool
}

func (g *ggb) order() binary.AppendByteOrder {
	if g.be {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

func (g *ggb) u16(v uint16) int { at := len(g.b); g.b = g.order().AppendUint16(g.b, v); return at }
func (g *ggb) u32(v uint32) int { at := len(g.b); g.b = g.order().AppendUint32(g.b, v); return at }
func (g *ggb) u64(v uint64) int { at := len(g.b); g.b = g.order().AppendUint64(g.b, v); return at }
func (g *ggb) str(s string) int { at := g.u64(uint64(len(s))); g.b = append(g.b, s...); return at }

// newGGB starts a version 3 file: magic, version, tensor count, kv count.
func newGGB(nt, nkv uint64) *ggb {
	g := &ggb{b: []byte("GGUF")}
	g.u32(3)
	g.u64(nt)
	g.u64(nkv)
	return g
}

// kv writes a key and a value type and returns their offsets.
func (g *ggb) kv(key string, typ uint32) (keyAt, valueAt int) {
	keyAt = g.str(key)
	g.u32(typ)
	return keyAt, len(g.b)
}

type tinfo struct{ at, nd, dims, typ, off int }

func (g *ggb) tensor(name string, ne []uint64, typ uint32, off uint64) tinfo {
	var t tinfo
	t.at = g.str(name)
	t.nd = g.u32(uint32(len(ne)))
	t.dims = len(g.b)
	for _, d := range ne {
		g.u64(d)
	}
	t.typ = g.u32(typ)
	t.off = g.u64(off)
	return t
}

// data pads to 32 and appends n zero bytes; it returns the data offset.
func (g *ggb) data(n int) int {
	for len(g.b)%32 != 0 {
		g.b = append(g.b, 0)
	}
	at := len(g.b)
	g.b = append(g.b, make([]byte, n)...)
	return at
}

// GGUF value and tensor type ids used below.
const (
	vUint16 = 2
	vUint32 = 4
	vString = 8
	vArray  = 9
	vUint64 = 10
	tF32    = 0
	tQ4_0   = 2
	tQ4_2   = 4 // removed upstream: known by name, not decodable
	tQ8_0   = 8
)

func (h *hostileSet) ggufCases() {
	one := func(name, class string, b []byte, msg string) {
		h.file(name, b)
		h.fail(name, class, msg)
	}

	// Magic and version.
	g := newGGB(0, 0)
	copy(g.b, "GGUX")
	one("gguf-bad-magic.gguf", "GGUF bad magic", g.b,
		"not a safetensors or GGUF file (it starts with 47 47 55 58 03 00 00 00 00)"+at(0))

	for _, v := range []uint32{0, 99} {
		g = newGGB(0, 0)
		binary.LittleEndian.PutUint32(g.b[4:], v)
		one(fmt.Sprintf("gguf-version-%d.gguf", v), fmt.Sprintf("GGUF version %d", v), g.b,
			fmt.Sprintf("unsupported GGUF version %d", v)+at(4))
	}
	g = &ggb{b: []byte("GGUF"), be: true}
	g.u32(99)
	g.u64(0)
	g.u64(0)
	one("gguf-be-version-99.gguf", "big-endian GGUF version 99", g.b, "unsupported GGUF version 99 (big-endian)"+at(4))

	// Counts the file cannot hold.
	g = newGGB(0, 1<<40)
	g.b = append(g.b, make([]byte, 16)...)
	one("gguf-kv-count-huge.gguf", "GGUF kv count larger than the file could hold", g.b,
		"kv count 1099511627776 exceeds what the remaining 16 bytes can hold (at least 13 bytes each)"+at(16))

	g = newGGB(1<<40, 0)
	g.b = append(g.b, make([]byte, 40)...)
	one("gguf-tensor-count-huge.gguf", "GGUF tensor count larger than the file could hold", g.b,
		"tensor count 1099511627776 exceeds what the remaining 40 bytes can hold (at least 32 bytes each)"+at(8))

	// The counts of a big-endian file read little-endian: version 3 written
	// little-endian, everything after it big-endian.
	g = &ggb{b: []byte("GGUF"), be: true}
	g.b = binary.LittleEndian.AppendUint32(g.b, 3)
	g.u64(1)
	g.u64(1)
	g.kv("general.architecture", vString)
	g.str("llama")
	g.tensor("t", []uint64{8}, tF32, 0)
	g.data(32)
	one("gguf-byteswapped.gguf", "byte-swapped GGUF header read with the wrong endianness", g.b,
		fmt.Sprintf("kv count 72057594037927936 exceeds what the remaining %d bytes can hold (at least 13 bytes each)", len(g.b)-24)+at(16))

	// Strings and key/values.
	g = newGGB(0, 1)
	g.u64(1 << 50)
	g.b = append(g.b, "general.name"...)
	one("gguf-string-too-long.gguf", "GGUF string length larger than the file", g.b,
		fmt.Sprintf("key 0: string length 1125899906842624 exceeds the %d bytes remaining", len(g.b)-32)+at(24))

	g = newGGB(0, 2)
	g.kv("a", vUint32)
	g.u32(7)
	g.str("bb")
	typeAt := len(g.b)
	g.b = append(g.b, 0, 0)
	one("gguf-truncated-header.gguf", "GGUF header cut off inside a key/value", g.b,
		`unexpected end of file reading type of key "bb": need 4 bytes, 2 remain`+at(typeAt))

	g = newGGB(0, 1)
	g.str("k")
	typeAt = g.u32(13)
	g.u32(0)
	one("gguf-invalid-value-type.gguf", "GGUF invalid metadata value type", g.b,
		`key "k": invalid value type 13`+at(typeAt))

	g = newGGB(0, 2)
	first, _ := g.kv("k", vUint32)
	g.u32(1)
	second, _ := g.kv("k", vUint32)
	g.u32(2)
	one("gguf-duplicate-key.gguf", "GGUF duplicate metadata key", g.b,
		fmt.Sprintf(`duplicate key "k" (first at byte %d)`, first)+at(second))

	g = newGGB(0, 1)
	_, v := g.kv("deep", vArray)
	for i := 0; i < 100; i++ {
		g.u32(vArray)
		g.u64(1)
	}
	g.u32(0)
	g.u64(0)
	one("gguf-array-nested-100.gguf", "GGUF arrays nested 100 deep", g.b,
		`key "deep": arrays nested too deep (more than 8 levels)`+at(v+8*12))

	g = newGGB(0, 1)
	g.kv("a", vArray)
	g.u32(vUint64)
	countAt := g.u64(1 << 62)
	g.u64(1)
	g.u64(2)
	one("gguf-array-count-overflow.gguf", "GGUF array count overflowing", g.b,
		fmt.Sprintf(`key "a": array count 4611686018427387904 exceeds what the remaining %d bytes can hold (at least 8 bytes per uint64 element)`, len(g.b)-countAt-8)+at(countAt))

	g = newGGB(0, 1)
	_, v = g.kv("a", vArray)
	g.u32(42)
	g.u64(1)
	g.u32(0)
	one("gguf-array-bad-element-type.gguf", "GGUF invalid array element type", g.b,
		`key "a": invalid array element type 42`+at(v))

	g = newGGB(0, 1)
	g.kv("tok", vArray)
	g.u32(vString)
	g.u64(2)
	g.str("ab")
	elemAt := g.u64(1 << 40)
	g.b = append(g.b, "cd"...)
	one("gguf-array-string-too-long.gguf", "GGUF string array element longer than the file", g.b,
		fmt.Sprintf(`element 1 of key "tok": string length 1099511627776 exceeds the %d bytes remaining`, len(g.b)-elemAt-8)+at(elemAt))

	// Alignment.
	for _, a := range []uint32{0, 48} {
		g = newGGB(1, 1)
		_, v := g.kv("general.alignment", vUint32)
		g.u32(a)
		g.tensor("t", []uint64{8}, tF32, 0)
		g.data(64)
		one(fmt.Sprintf("gguf-alignment-%d.gguf", a), fmt.Sprintf("GGUF alignment %d (not a power of two)", a), g.b,
			fmt.Sprintf("general.alignment = %d is not a non-zero power of two", a)+at(v))
	}
	g = newGGB(0, 1)
	_, v = g.kv("general.alignment", vString)
	g.str("32")
	one("gguf-alignment-string.gguf", "GGUF alignment that is not an integer", g.b,
		"general.alignment has type string, want an integer"+at(v))

	// Tensor infos.
	for _, nd := range []int{0, 9} {
		g = newGGB(1, 0)
		ne := make([]uint64, nd)
		for i := range ne {
			ne[i] = 1
		}
		t := g.tensor("t", ne, tF32, 0)
		g.data(32)
		one(fmt.Sprintf("gguf-tensor-%d-dims.gguf", nd), fmt.Sprintf("GGUF tensor with %d dimensions", nd), g.b,
			fmt.Sprintf(`tensor "t": %d dimensions, want 1 to 4 (GGML_MAX_DIMS is 4)`, nd)+at(t.nd))
	}

	g = newGGB(1, 0)
	t := g.tensor("t", []uint64{1 << 32, 1 << 32}, tF32, 0)
	g.data(32)
	one("gguf-dims-overflow.gguf", "GGUF dimension product overflowing int64", g.b,
		`tensor "t": element count of shape [4294967296 4294967296] overflows int64`+at(t.dims))

	g = newGGB(1, 0)
	t = g.tensor("t", []uint64{30}, tQ4_0, 0)
	g.data(32)
	one("gguf-row-not-whole-blocks.gguf", "GGUF quantized row that is not whole blocks", g.b,
		`tensor "t": row of 30 elements is not a multiple of the Q4_0 block size 32`+at(t.typ))

	g = newGGB(2, 0)
	t1 := g.tensor("t", []uint64{8}, tF32, 0)
	t2 := g.tensor("t", []uint64{8}, tF32, 32)
	g.data(64)
	one("gguf-duplicate-tensor.gguf", "GGUF duplicate tensor name", g.b,
		fmt.Sprintf(`duplicate tensor name "t" (first at byte %d)`, t1.at)+at(t2.at))

	// Tensor data.
	g = newGGB(1, 0)
	t = g.tensor("t", []uint64{8}, tF32, 4)
	g.data(64)
	one("gguf-offset-unaligned.gguf", "GGUF tensor offset not aligned", g.b,
		`tensor "t": data offset 4 is not a multiple of the alignment 32`+at(t.off))

	g = newGGB(1, 0)
	t = g.tensor("t", []uint64{8}, tF32, 1<<20)
	d := g.data(32)
	one("gguf-offset-past-end.gguf", "GGUF tensor offset past the end of the file", g.b,
		fmt.Sprintf(`tensor "t": data [%d, %d) runs past the end of the file (%d bytes)`, d+1<<20, d+1<<20+32, len(g.b))+at(t.off))

	g = newGGB(1, 0)
	t = g.tensor("t", []uint64{64}, tF32, 0)
	d = g.data(100)
	one("gguf-data-truncated.gguf", "GGUF tensor shorter than its type needs (data truncated)", g.b,
		fmt.Sprintf(`tensor "t": data [%d, %d) runs past the end of the file (%d bytes)`, d, d+256, len(g.b))+at(t.off))

	g = newGGB(2, 0)
	g.tensor("a", []uint64{16}, tF32, 0)
	t = g.tensor("b", []uint64{8}, tF32, 32)
	g.data(64)
	one("gguf-overlap.gguf", "GGUF two tensors overlapping", g.b,
		`tensor "b" (data offsets [32, 64)) overlaps tensor "a" ([0, 64))`+at(t.off))

	// Listed, not fatal: unknown and removed type ids, and big-endian blocks.
	g = newGGB(1, 0)
	g.tensor("t", []uint64{8}, 77, 0)
	d = g.data(32)
	name := "gguf-unknown-type.gguf"
	h.file(name, g.b)
	h.cases[name] = HostileCase{Class: "GGUF unknown type id (listed, not fatal)", Exit: 0, ListsDType: "type 77 (unknown)",
		Cat: &HostileCat{Tensor: "t", Exit: 3, Error: h.rel(name) + `: tensor "t": cannot decode type 77 (unknown): its element type is unknown` + at(d)}}

	// Unknown types have no size, so nothing bounds their shapes by the
	// file: two of 2^62 elements each must not overflow the totals.
	g = newGGB(2, 0)
	g.tensor("a", []uint64{1 << 62}, 77, 0)
	g.tensor("b", []uint64{1 << 62}, 77, 32)
	d = g.data(64)
	name = "gguf-unknown-type-huge.gguf"
	h.file(name, g.b)
	h.cases[name] = HostileCase{Class: "GGUF unknown type ids with shapes of 2^62 elements (listed, totals must not overflow)", Exit: 0, ListsDType: "type 77 (unknown)",
		Cat: &HostileCat{Tensor: "a", Exit: 3, Error: h.rel(name) + `: tensor "a": cannot decode type 77 (unknown): its element type is unknown` + at(d)}}

	g = newGGB(1, 0)
	g.tensor("t", []uint64{16}, tQ4_2, 0)
	d = g.data(32)
	name = "gguf-removed-type.gguf"
	h.file(name, g.b)
	h.cases[name] = HostileCase{Class: "GGUF type id removed upstream (listed, not decoded)", Exit: 0, ListsDType: "Q4_2",
		Cat: &HostileCat{Tensor: "t", Exit: 3, Error: h.rel(name) + `: tensor "t": decoding Q4_2 to float32 is not supported` + at(d)}}

	g = &ggb{b: []byte("GGUF"), be: true}
	g.u32(3)
	g.u64(1)
	g.u64(0)
	g.tensor("t", []uint64{32}, tQ8_0, 0)
	d = g.data(64)
	name = "gguf-be-quantized.gguf"
	h.file(name, g.b)
	h.cases[name] = HostileCase{Class: "big-endian GGUF with quantized blocks (listed, not decoded)", Exit: 0, ListsDType: "Q8_0",
		Cat: &HostileCat{Tensor: "t", Exit: 3, Error: h.rel(name) + `: tensor "t": decoding big-endian Q8_0 blocks is not supported` + at(d)}}

	h.splitCases()
}

// splitPart is one part of a split set holding tensor name, with split.no
// and split.count as given; it returns the file and the offset of the
// split.count and split.no records.
func splitPart(tensor string, no, count uint16) (b []byte, countAt, noAt int) {
	g := newGGB(1, 3)
	noAt, _ = g.kv("split.no", vUint16)
	g.u16(no)
	countAt, _ = g.kv("split.count", vUint16)
	g.u16(count)
	g.kv("split.tensors.count", vUint32)
	g.u32(3)
	g.tensor(tensor, []uint64{8}, tF32, 0)
	g.data(32)
	return g.b, countAt, noAt
}

func (h *hostileSet) splitCases() {
	p1, _, _ := splitPart("a", 0, 3)
	p3, _, _ := splitPart("c", 2, 3)
	h.file("gguf-split-missing/m-00001-of-00003.gguf", p1)
	h.file("gguf-split-missing/m-00003-of-00003.gguf", p3)
	h.fail("gguf-split-missing/m-00001-of-00003.gguf", "split GGUF set with a missing part",
		`part 2 of 3 of this split GGUF is missing: "m-00002-of-00003.gguf"`)

	p1, countAt, _ := splitPart("a", 0, 3)
	p2, _, _ := splitPart("b", 1, 3)
	h.file("gguf-split-mismatch/m-00001-of-00002.gguf", p1)
	h.file("gguf-split-mismatch/m-00002-of-00002.gguf", p2)
	h.fail("gguf-split-mismatch/m-00001-of-00002.gguf", "split GGUF part whose split.count disagrees with the set",
		"split.count is 3 but the file names say 2 parts"+at(countAt))

	p1, _, _ = splitPart("a", 0, 2)
	p2, _, noAt := splitPart("b", 0, 2)
	h.file("gguf-split-wrong-no/m-00001-of-00002.gguf", p1)
	h.file("gguf-split-wrong-no/m-00002-of-00002.gguf", p2)
	h.failAs("gguf-split-wrong-no/m-00001-of-00002.gguf", "gguf-split-wrong-no/m-00002-of-00002.gguf",
		"split GGUF part whose split.no disagrees with its file name",
		"split.no is 0 but this is part 1 (split.no counts from 0)"+at(noAt))

	p1, _, _ = splitPart("a", 0, 2)
	p2, _, _ = splitPart("b", 1, 2)
	h.file("gguf-split-part-zero/m-00000-of-00002.gguf", p1)
	h.file("gguf-split-part-zero/m-00001-of-00002.gguf", p1)
	h.file("gguf-split-part-zero/m-00002-of-00002.gguf", p2)
	h.fail("gguf-split-part-zero/m-00000-of-00002.gguf", "split GGUF file name numbering its part from 0",
		"the file name says part 0 of 2, but the parts of a split set are numbered 1 to 2")

	p1, countAt, _ = splitPart("a", 0, 3)
	h.file("gguf-split-lone-part.gguf", p1)
	h.fail("gguf-split-lone-part.gguf", "one part of a split set opened under a plain name",
		"this file is part of a 3-part split set (split.count); open it by its split name NAME-0000K-of-0000N.gguf with all parts present"+at(countAt))

	g := newGGB(1, 0)
	g.tensor("t", []uint64{8}, tF32, 0)
	g.data(32)
	h.file("gguf-two-in-folder/a.gguf", g.b)
	h.file("gguf-two-in-folder/b.gguf", g.b)
	h.fail("gguf-two-in-folder", "folder holding two unrelated GGUF files",
		`the folder holds 2 GGUF files ("a.gguf", "b.gguf"); name the one to open`)
}

// hostile writes testdata/hostile and its expected.json.
func hostile(g *gen) {
	h := &hostileSet{g: g, dir: filepath.Join(g.root, "hostile"), cases: map[string]HostileCase{}}
	// Start empty so that renamed or removed cases leave nothing behind.
	if err := os.RemoveAll(h.dir); err != nil {
		log.Fatal(err)
	}
	h.safetensorsCases()
	h.folderCases()
	h.ggufCases()
	h.harmCases()
	h.foreignCases()
	b, err := json.MarshalIndent(h.cases, "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	g.write(filepath.Join(h.dir, "expected.json"), append(b, '\n'))
	b, err = json.MarshalIndent(argCases(), "", "  ")
	if err != nil {
		log.Fatal(err)
	}
	g.write(filepath.Join(h.dir, "args.json"), append(b, '\n'))
}

// ---- issue 11: never harmful ------------------------------------------------

// The corpus's cases for issue 11 ("never harmful"): strings from the file
// that would drive a terminal (tensor names, dtypes, metadata keys,
// model_type, a LoRA's base model, a shard's name), attention geometry a
// gate must fail, and flag values and named files (args.json) that must be
// refused. Escapes are expected as qkv's sanitiser shows them: identifiers
// double-quoted with Go escapes, free text with \x1b-style escapes.

// The payload: set the window title, ring the bell, clear the screen.
const pwned = "\x1b]0;pwned\a\x1b[2J"

// quoted is how qkv prints an identifier that holds escapes.
func quoted(s string) string { return strconv.Quote(s) }

// smallValues are n deterministic non-zero float32 values.
func smallValues(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i%7+1) * 0.01
	}
	return v
}

// llamaST is a one-layer Llama-style attention block of width d.
func llamaST(d int64, kv int64) []byte {
	var ts []safetensors.WriteTensor
	for _, p := range []struct {
		name string
		out  int64
	}{{"q_proj", d}, {"k_proj", kv}, {"v_proj", kv}, {"o_proj", d}} {
		ts = append(ts, safetensors.F32Tensor("model.layers.0.self_attn."+p.name+".weight", []int64{p.out, d}, smallValues(int(p.out*d))))
	}
	return st(ts, nil)
}

func jsonText(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// run is a command on the corpus path.
func run(exit int, errMsg, stdout string, args ...string) HostileRun {
	return HostileRun{Args: args, Exit: exit, Error: errMsg, Stdout: stdout}
}

func (h *hostileSet) harmCases() {
	// Escapes in a tensor name: listed and catted with the name quoted;
	// its NaN fails check, whose text names the tensor the same way.
	name := "st-escape-tensor-name.safetensors"
	vals := smallValues(4)
	vals[2] = float32NaN()
	h.file(name, st([]safetensors.WriteTensor{safetensors.F32Tensor(pwned, []int64{4}, vals)}, nil))
	h.cases[name] = HostileCase{Class: "tensor name holding terminal escapes (OSC title, BEL, clear screen)", Exit: 0, ListsDType: "F32",
		Cat: &HostileCat{Tensor: pwned, Exit: 0},
		Runs: []HostileRun{
			run(0, "", quoted(pwned)+"  F32    [4]", "ls", "{}"),
			run(0, "", quoted(pwned)+"  F32 [4]", "cat", "{}", pwned),
			run(1, "", "FAIL nan              "+quoted(pwned)+": 1 NaN values of 4", "check", "{}"),
		}}

	// Escapes in a dtype string: an unknown dtype, listed quoted; cat's
	// error shows the escapes.
	name = "st-escape-dtype.safetensors"
	dt := "F32\x1b[2J"
	hdr := `{"x":{"dtype":` + string(jsonText(dt)) + `,"shape":[4],"data_offsets":[0,16]}}`
	h.file(name, stBytes(hdr, make([]byte, 16)))
	h.cases[name] = HostileCase{Class: "dtype string holding a terminal escape (listed, not decoded)", Exit: 0, ListsDType: dt,
		Cat:  &HostileCat{Tensor: "x", Exit: 3, Error: h.rel(name) + `: tensor "x": cannot decode ` + quoted(dt) + `: its element type is unknown` + at(8+len(hdr))},
		Runs: []HostileRun{run(0, "", "x       "+quoted(dt)+"  [4]", "ls", "{}")}}

	// Escapes in __metadata__ keys and values.
	name = "st-escape-metadata.safetensors"
	key, val := "\x1b[2Jkey\u202e", "v\x1b[31mred\u009b"
	h.file(name, st([]safetensors.WriteTensor{safetensors.F32Tensor("x", []int64{4}, smallValues(4))}, [][2]string{{key, val}}))
	h.cases[name] = HostileCase{Class: "safetensors __metadata__ key and value holding terminal escapes and a bidi override", Exit: 0, ListsDType: "F32",
		Runs: []HostileRun{run(0, "", quoted(key)+"  string         "+quoted(val), "meta", "{}")}}

	// Escapes in a GGUF metadata key.
	g := newGGB(1, 2)
	g.kv("general.architecture", vString)
	g.str("llama")
	g.kv(pwned, vUint32)
	g.u32(7)
	g.tensor("t", []uint64{8}, tF32, 0)
	g.data(32)
	name = "gguf-escape-key.gguf"
	h.file(name, g.b)
	h.cases[name] = HostileCase{Class: "GGUF metadata key holding terminal escapes", Exit: 0, ListsDType: "F32",
		Runs: []HostileRun{run(0, "", quoted(pwned)+"  uint32", "meta", "{}")}}

	// Escapes in config.json's model_type (a Llama by its tensor names).
	mt := "llama" + pwned
	h.file("escape-model-type/model.safetensors", llamaST(16, 16))
	h.file("escape-model-type/config.json", jsonText(map[string]any{"model_type": mt, "hidden_size": 16, "num_attention_heads": 2, "num_hidden_layers": 1}))
	h.cases["escape-model-type"] = HostileCase{Class: "config.json model_type holding terminal escapes", Exit: 0, ListsDType: "F32",
		Runs: []HostileRun{
			run(0, "", quoted(mt)+": 1 layer, d_model 16", "layers", "{}"),
			run(0, "", quoted(mt)+" — 1 layer, d_model 16", "inspect", "{}"),
			run(0, "", string(jsonText(mt)), "meta", "{}"), // config.json values show as JSON
		}}

	// Escapes in a LoRA adapter's base model.
	base := "org/model" + pwned
	r := int64(2)
	var lts []safetensors.WriteTensor
	for _, p := range []string{"q_proj", "v_proj"} {
		pre := "base_model.model.model.layers.0.self_attn." + p
		lts = append(lts, safetensors.F32Tensor(pre+".lora_A.weight", []int64{r, 16}, smallValues(int(r*16))),
			safetensors.F32Tensor(pre+".lora_B.weight", []int64{16, r}, smallValues(int(r*16))))
	}
	h.file("escape-lora-base/adapter_model.safetensors", st(lts, nil))
	h.file("escape-lora-base/adapter_config.json", jsonText(map[string]any{"peft_type": "LORA", "r": r, "lora_alpha": 4, "base_model_name_or_path": base}))
	h.cases["escape-lora-base"] = HostileCase{Class: "LoRA adapter whose base_model_name_or_path holds terminal escapes", Exit: 0, ListsDType: "F32",
		Runs: []HostileRun{run(0, "", ", base "+quoted(base), "layers", "{}")}}

	// Escapes in the name of a missing shard: the error on stderr.
	shard := "model-" + pwned + ".safetensors"
	h.file("index-escape-missing-shard/model.safetensors.index.json", jsonText(map[string]any{"metadata": map[string]any{}, "weight_map": map[string]string{"x": shard}}))
	h.failAs("index-escape-missing-shard", "index-escape-missing-shard/model.safetensors.index.json", "sharded index naming a missing shard whose name holds terminal escapes",
		"shard "+quoted(shard)+" is missing (no such file or folder)")

	// Attention geometry that cannot be resolved: layers and inspect
	// refuse it (exit 3), check fails it as a structure problem (exit 1).
	// content maps file names in the case's folder to their bytes ("" for
	// a case that is one file); tensor names the tensor the error is about
	// ("" for the model).
	geometry := func(name, class string, content map[string][]byte, tensor, msg string) {
		for f, b := range content {
			if f == "" { // a single file: the case itself
				h.file(name, b)
			} else {
				h.file(name+"/"+f, b)
			}
		}
		errLine, where := h.rel(name)+": "+msg, h.rel(name)
		if tensor != "" {
			errLine, where = h.rel(name)+": tensor "+quoted(tensor)+": "+msg, tensor
		}
		h.cases[name] = HostileCase{Class: class, Exit: 0, ListsDType: "F32", Runs: []HostileRun{
			run(3, errLine, "", "layers", "{}"),
			run(3, errLine, "", "inspect", "{}"),
			run(1, "", "FAIL structure        "+where+": attention layers cannot be resolved, so attention checks were skipped: "+msg, "check", "{}"),
		}}
	}
	geometry("geometry-heads-3", "3 attention heads for a 16-wide model (head_dim cannot be derived)",
		map[string][]byte{"model.safetensors": llamaST(16, 16),
			"config.json": jsonText(map[string]any{"model_type": "llama", "hidden_size": 16, "num_attention_heads": 3, "num_hidden_layers": 1})},
		"", "head_dim cannot be derived from the tensor shapes with 3 heads (from config.json); check --n-heads, or pass --head-dim N")
	geometry("geometry-kv-above-heads", "more KV heads than attention heads",
		map[string][]byte{"model.safetensors": llamaST(16, 16),
			"config.json": jsonText(map[string]any{"model_type": "llama", "hidden_size": 16, "num_attention_heads": 2, "num_key_value_heads": 4, "num_hidden_layers": 1})},
		"", "n_heads 2 is not a multiple of n_kv_heads 4 (from config.json); fix with --n-heads/--n-kv-heads")
	geometry("geometry-heads-unknown", "attention layers without config.json: head counts unknown",
		map[string][]byte{"model.safetensors": llamaST(16, 16)},
		"", "the number of attention heads is unknown (tensor shapes (no config.json) gives none); pass --n-heads N (and --n-kv-heads N, --head-dim N for grouped-query attention)")
	geometry("gguf-head-count-string.gguf", "GGUF head count stored as a string",
		map[string][]byte{"": llamaGGUF(func(g *ggb) { g.kv("llama.attention.head_count", vString); g.str("2") })},
		"", `llama.attention.head_count is not a usable count (the string "2")`)
	geometry("gguf-head-count-array.gguf", "GGUF head count stored as an array of differing per-layer counts",
		map[string][]byte{"": llamaGGUF(func(g *ggb) {
			g.kv("llama.attention.head_count", vArray)
			g.u32(vUint32)
			g.u64(2)
			g.u32(2)
			g.u32(4)
		})},
		"", "llama.attention.head_count varies per layer, which is not supported")
	var lora []safetensors.WriteTensor
	for _, p := range []struct {
		name string
		ra   int64
		rb   int64
	}{{"q_proj", 2, 3}, {"v_proj", 2, 2}} {
		pre := "base_model.model.model.layers.0.self_attn." + p.name
		lora = append(lora, safetensors.F32Tensor(pre+".lora_A.weight", []int64{p.ra, 16}, smallValues(int(p.ra*16))),
			safetensors.F32Tensor(pre+".lora_B.weight", []int64{16, p.rb}, smallValues(int(p.rb*16))))
	}
	geometry("lora-ranks-disagree", "LoRA factors whose ranks disagree (A has rank 2, B rank 3)",
		map[string][]byte{"adapter_model.safetensors": st(lora, nil),
			"adapter_config.json": jsonText(map[string]any{"peft_type": "LORA", "r": 2, "lora_alpha": 4, "base_model_name_or_path": "org/model"})},
		"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", "LoRA ranks disagree or are implausible: A [2 16], B [16 3]")

	// A model with no attention at all stays a warning.
	name = "no-attention.safetensors"
	h.file(name, st([]safetensors.WriteTensor{safetensors.F32Tensor("embeddings.word_embeddings.weight", []int64{4, 4}, smallValues(16))}, nil))
	h.cases[name] = HostileCase{Class: "a checkpoint without attention layers: check warns, it does not fail", Exit: 0, ListsDType: "F32",
		Runs: []HostileRun{run(0, "", "warn no_attention", "check", "{}")}}
}

// llamaGGUF is a one-layer Llama GGUF of width 16 whose head count is
// written by headCount (one key/value).
func llamaGGUF(headCount func(g *ggb)) []byte {
	g := newGGB(4, 3)
	g.kv("general.architecture", vString)
	g.str("llama")
	g.kv("llama.embedding_length", vUint32)
	g.u32(16)
	headCount(g)
	for i, n := range []string{"attn_q", "attn_k", "attn_v", "attn_output"} {
		g.tensor("blk.0."+n+".weight", []uint64{16, 16}, tF32, uint64(i*1024))
	}
	g.data(4096)
	return g.b
}

func float32NaN() float32 {
	var z float32
	return z / z
}

// argCases are flag values and named files the commands must refuse, each
// with its exact message (args.json). Output paths naming devices are not
// here: cmd's tests make device nodes of their own, so that a regression
// cannot replace the system's /dev/null or /dev/full.
func argCases() map[string]HostileRun {
	const model = "testdata/tiny-llama"
	usage := func(class, msg string, args ...string) HostileRun {
		return HostileRun{Class: class, Args: args, Exit: 2, Error: msg}
	}
	m := map[string]HostileRun{
		"attn-random-0":          usage("--random 0 (no rows)", "--random must be at least 1, not 0", "attn", model, "--random", "0"),
		"attn-tokens-empty":      usage("--tokens given but empty", `--tokens: no values in ""`, "attn", model, "--tokens", ""),
		"attn-scale-nan":         usage("--scale NaN with --json (not a JSON encoding error)", "--scale must be a positive finite number, not NaN", "attn", model, "--scale", "NaN", "--json"),
		"attn-scale-zero":        usage("--scale 0", "--scale must be a positive finite number, not 0", "attn", model, "--scale", "0"),
		"attn-input-folder":      usage("--input naming a folder", "--input "+model+": is a folder; give a .safetensors file holding a [T, d_model] tensor", "attn", model, "--input", model),
		"inspect-workers-0":      usage("--workers 0", "--workers must be between 1 and 1024, not 0", "inspect", model, "--workers", "0"),
		"inspect-workers-neg":    usage("--workers -1", "--workers must be between 1 and 1024, not -1", "inspect", model, "--workers", "-1"),
		"inspect-workers-1e6":    usage("--workers 1000000", "--workers must be between 1 and 1024, not 1000000", "inspect", model, "--workers", "1000000"),
		"ls-max-header-0":        usage("--max-header 0", "--max-header must be a positive number of bytes, not 0", "ls", model, "--max-header", "0"),
		"meta-max-header-neg":    usage("--max-header -5", "--max-header must be a positive number of bytes, not -5", "meta", model, "--max-header", "-5"),
		"layers-n-heads-0":       usage("--n-heads 0", "--n-heads must be at least 1, not 0", "layers", model, "--n-heads", "0"),
		"layers-head-dim-neg":    usage("--head-dim -2", "--head-dim must be at least 1, not -2", "layers", model, "--head-dim", "-2"),
		"inspect-layers-empty":   usage("--layers given but empty", `--layers: no values in ""`, "inspect", model, "--layers", ""),
		"extract-matrices-empty": usage("--matrices given but only commas", `--matrices: no values in ", ,"`, "extract", model, "-o", "testdata/hostile/never-written.safetensors", "--matrices", ", ,"),
		"inspect-rank-tol-nan":   usage("--rank-tol NaN (a tolerance that never matches)", "--rank-tol must be a positive finite number, not NaN", "inspect", model, "--rank-tol", "NaN"),
		"inspect-dead-inf":       usage("--dead +Inf", "--dead must be a positive finite number, not +Inf", "inspect", model, "--dead", "+Inf"),
		"check-duplicate-5":      usage("--duplicate 5 (a cosine above 1 never matches)", "--duplicate is a cosine similarity: at most 1, not 5", "check", model, "--duplicate", "5"),
		"check-rules-dev-zero": usage("--rules naming a character device (endless input)",
			"--rules /dev/zero: not a regular file (a character device)", "check", model, "--rules", "/dev/zero"),
		"check-rules-folder": usage("--rules naming a folder", "--rules "+model+": not a regular file (a folder)", "check", model, "--rules", model),
		"export-o-folder": usage("-o naming a folder (the temporary name must not leak)",
			"-o testdata/hostile/dir-empty: is a folder; name a file to write", "export", model, "-o", "testdata/hostile/dir-empty"),
	}
	m["check-baseline-dev-zero"] = HostileRun{Class: "--baseline naming a character device (endless input)", Args: []string{"check", model, "--baseline", "/dev/zero"},
		Exit: 3, Error: "--baseline /dev/zero: not a regular file (a character device)"}
	return m
}
