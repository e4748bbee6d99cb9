package cmd_test

// Agreement tests for `qkv ls --json` (issue 2): on every GGUF and
// safetensors file in ../shared and the project's testdata, the listing
// must equal what the independent readers in internal/testref (GGUF) and
// refSafetensorsHeader below (safetensors) find: tensor names, dtypes,
// row-major shapes, byte sizes, absolute offsets, files and totals.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/testref"
)

// lsJSON mirrors the qkv.ls/v1 document.
type lsJSON struct {
	Schema string `json:"schema"`
	Format string `json:"format"`
	Files  []struct {
		Path       string `json:"path"`
		Size       int64  `json:"size"`
		Format     string `json:"format"`
		Version    uint32 `json:"version"`
		Endianness string `json:"endianness"`
		DataOffset int64  `json:"data_offset"`
	} `json:"files"`
	Tensors []lsJSONTensor `json:"tensors"`
	Totals  struct {
		Tensors     int              `json:"tensors"`
		Parameters  int64            `json:"parameters"`
		Bytes       int64            `json:"bytes"`
		BytesByType map[string]int64 `json:"bytes_by_dtype"`
		CountByType map[string]int   `json:"tensors_by_dtype"`
	} `json:"totals"`
}

type lsJSONTensor struct {
	Name   string  `json:"name"`
	DType  string  `json:"dtype"`
	Shape  []int64 `json:"shape"`
	Bytes  *int64  `json:"bytes"`
	File   string  `json:"file"`
	Offset int64   `json:"offset"`
}

// runQKV runs qkv in-process with the given width and returns its status,
// stdout and stderr.
func runQKV(width int, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cmd.Run(context.Background(), args, &cmd.Streams{In: strings.NewReader(""), Out: &out, Err: &errb, Width: width})
	return code, out.String(), errb.String()
}

// runJSONInto runs qkv, requires exit status 0 and decodes stdout (numbers
// as json.Number) into v.
func runJSONInto(t *testing.T, v any, args ...string) {
	t.Helper()
	code, out, errs := runQKV(80, args...)
	if code != 0 {
		t.Fatalf("qkv %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("qkv %s: stdout is not one JSON document: %v\n%.500s", strings.Join(args, " "), err, out)
	}
	if dec.More() {
		t.Fatalf("qkv %s: more than one JSON document on stdout", strings.Join(args, " "))
	}
}

// refFile is one file of a checkpoint as the independent readers see it.
type refFile struct {
	Path       string
	Size       int64
	Version    uint32 // GGUF
	BigEndian  bool   // GGUF
	DataOffset int64
	GGUF       *testref.GGUFFile
	STMeta     map[string]string // safetensors __metadata__
}

// refListing is a checkpoint listed by the independent readers.
type refListing struct {
	Format  string
	Files   []refFile
	Tensors []lsJSONTensor
}

// safetensorsElemBytes are the safetensors dtypes' element sizes (the spec's).
var safetensorsElemBytes = map[string]int64{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
	"U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
}

// refSafetensorsHeader lists a safetensors file from its JSON header with
// encoding/json alone, independent of formats/safetensors.
func refSafetensorsHeader(t *testing.T, path string) (refFile, []lsJSONTensor) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 8 {
		t.Fatalf("%s: too short", path)
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) {
		t.Fatalf("%s: header length %d past the end", path, n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	rf := refFile{Path: path, Size: int64(len(b)), DataOffset: 8 + int64(n)}
	var ts []lsJSONTensor
	for name, raw := range hdr {
		if name == "__metadata__" {
			if err := json.Unmarshal(raw, &rf.STMeta); err != nil {
				t.Fatalf("%s: __metadata__: %v", path, err)
			}
			continue
		}
		var e struct {
			DType   string   `json:"dtype"`
			Shape   []int64  `json:"shape"`
			Offsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s: %s: %v", path, name, err)
		}
		size := e.Offsets[1] - e.Offsets[0]
		elems := int64(1)
		for _, d := range e.Shape {
			elems *= d
		}
		if eb, ok := safetensorsElemBytes[e.DType]; !ok || eb*elems != size {
			t.Fatalf("%s: %s: %s %v takes %d bytes (reference reader's check)", path, name, e.DType, e.Shape, size)
		}
		if e.Shape == nil {
			e.Shape = []int64{}
		}
		ts = append(ts, lsJSONTensor{Name: name, DType: e.DType, Shape: e.Shape, Bytes: &size, File: path, Offset: rf.DataOffset + e.Offsets[0]})
	}
	return rf, ts
}

var refSplitName = regexp.MustCompile(`^(.*)-(\d{5})-of-(\d{5})\.gguf$`)

// refGGUFParts returns every part of a split GGUF set that path belongs to
// (just path when it is not a split name).
func refGGUFParts(path string) []string {
	m := refSplitName.FindStringSubmatch(filepath.Base(path))
	if m == nil {
		return []string{path}
	}
	n, _ := strconv.Atoi(m[3])
	var parts []string
	for i := 1; i <= n; i++ {
		parts = append(parts, filepath.Join(filepath.Dir(path), fmt.Sprintf("%s-%05d-of-%05d.gguf", m[1], i, n)))
	}
	return parts
}

// refGGUFTypeName is the dtype ls prints for a GGML type id.
func refGGUFTypeName(id uint32) string {
	if ty, ok := testref.GGMLTypes[id]; ok {
		return ty.Name
	}
	return fmt.Sprintf("type %d (unknown)", id)
}

// refListGGUF lists a GGUF file or split set with testref.ReadGGUF.
func refListGGUF(t *testing.T, path string) refListing {
	t.Helper()
	l := refListing{Format: "gguf"}
	for _, p := range refGGUFParts(path) {
		g, err := testref.ReadGGUF(p, 8)
		if err != nil {
			t.Fatal(err)
		}
		l.Files = append(l.Files, refFile{Path: p, Size: g.Size, Version: g.Version, BigEndian: g.BigEndian, DataOffset: g.DataOffset, GGUF: g})
		for _, ti := range g.Tensors {
			lt := lsJSONTensor{Name: ti.Name, DType: refGGUFTypeName(ti.Type), Shape: ti.Shape(), File: p, Offset: g.DataOffset + int64(ti.Offset)}
			if n, ok := ti.Bytes(); ok {
				lt.Bytes = &n
			}
			l.Tensors = append(l.Tensors, lt)
		}
	}
	return l
}

// refListSafetensors lists safetensors files (one checkpoint's shards).
func refListSafetensors(t *testing.T, paths ...string) refListing {
	t.Helper()
	l := refListing{Format: "safetensors"}
	for _, p := range paths {
		rf, ts := refSafetensorsHeader(t, p)
		l.Files = append(l.Files, rf)
		l.Tensors = append(l.Tensors, ts...)
	}
	return l
}

// sameFile reports whether ls's name of a file (relative to the
// checkpoint's folder) names the reference's path.
func sameFile(name, path string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		return false
	}
	abs, err := filepath.Abs(path)
	return err == nil && strings.HasSuffix(filepath.ToSlash(abs), "/"+name)
}

// checkLs runs `qkv ls --json arg` and compares it with want.
func checkLs(t *testing.T, arg string, want refListing) {
	t.Helper()
	var got lsJSON
	runJSONInto(t, &got, "ls", "--json", arg)
	if got.Schema != "qkv.ls/v1" || got.Format != want.Format {
		t.Errorf("ls %s: schema %q format %q, want qkv.ls/v1 %s", arg, got.Schema, got.Format, want.Format)
	}
	if len(got.Files) != len(want.Files) {
		t.Fatalf("ls %s: %d files, want %d", arg, len(got.Files), len(want.Files))
	}
	for i, wf := range want.Files {
		gf := got.Files[i]
		end := ""
		if want.Format == "gguf" {
			end = "little"
			if wf.BigEndian {
				end = "big"
			}
		}
		if !sameFile(gf.Path, wf.Path) || gf.Size != wf.Size || gf.Format != want.Format || gf.Version != wf.Version ||
			gf.Endianness != end || gf.DataOffset != wf.DataOffset {
			t.Errorf("ls %s: file %d = %+v, want path %s size %d version %d endianness %q data_offset %d",
				arg, i, gf, wf.Path, wf.Size, wf.Version, end, wf.DataOffset)
		}
	}
	if len(got.Tensors) != len(want.Tensors) {
		t.Errorf("ls %s: %d tensors, want %d", arg, len(got.Tensors), len(want.Tensors))
	}
	byName := map[string]lsJSONTensor{}
	for _, gt := range got.Tensors {
		if _, dup := byName[gt.Name]; dup {
			t.Errorf("ls %s: tensor %s listed twice", arg, gt.Name)
		}
		byName[gt.Name] = gt
	}
	var params, total int64
	bytesBy, countBy := map[string]int64{}, map[string]int{}
	for i, wt := range want.Tensors {
		gt, ok := byName[wt.Name]
		if !ok {
			t.Errorf("ls %s: tensor %s missing", arg, wt.Name)
			continue
		}
		if want.Format == "gguf" && i < len(got.Tensors) && got.Tensors[i].Name != wt.Name {
			t.Errorf("ls %s: tensor %d is %s, want %s (GGUF file order)", arg, i, got.Tensors[i].Name, wt.Name)
		}
		if gt.DType != wt.DType || !reflect.DeepEqual(gt.Shape, wt.Shape) || !sameFile(gt.File, wt.File) || gt.Offset != wt.Offset ||
			(gt.Bytes == nil) != (wt.Bytes == nil) || (gt.Bytes != nil && *gt.Bytes != *wt.Bytes) {
			t.Errorf("ls %s: %s = %s %v bytes %s at %s:%d, want %s %v bytes %s at %s:%d", arg, wt.Name,
				gt.DType, gt.Shape, ptrString(gt.Bytes), gt.File, gt.Offset, wt.DType, wt.Shape, ptrString(wt.Bytes), wt.File, wt.Offset)
		}
		n := int64(1)
		for _, d := range wt.Shape {
			n *= d
		}
		params += n
		if wt.Bytes != nil {
			total += *wt.Bytes
			bytesBy[wt.DType] += *wt.Bytes
		}
		countBy[wt.DType]++
	}
	tot := got.Totals
	if tot.Tensors != len(want.Tensors) || tot.Parameters != params || tot.Bytes != total {
		t.Errorf("ls %s: totals %d tensors %d parameters %d bytes, want %d %d %d", arg, tot.Tensors, tot.Parameters, tot.Bytes, len(want.Tensors), params, total)
	}
	if !reflect.DeepEqual(tot.CountByType, countBy) || !reflect.DeepEqual(tot.BytesByType, bytesBy) {
		t.Errorf("ls %s: by dtype %v %v, want %v %v", arg, tot.CountByType, tot.BytesByType, countBy, bytesBy)
	}
}

func ptrString(p *int64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// lsCase is one checkpoint argument and the files that make it up.
type lsCase struct {
	arg   string
	files []string // safetensors: the shards in order; GGUF: the file (parts are found)
}

func (c lsCase) want(t *testing.T) refListing {
	if strings.HasSuffix(c.files[0], ".gguf") {
		return refListGGUF(t, c.files[0])
	}
	return refListSafetensors(t, c.files...)
}

// checkpointCases walks root for every .gguf and .safetensors file, and
// adds each folder a user would name (one model file, or an index with its
// shards; the index file itself too).
func checkpointCases(t *testing.T, root string) []lsCase {
	t.Helper()
	var cases []lsCase
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "hostile" {
				return filepath.SkipDir
			}
			cases = append(cases, folderCases(t, p)...)
			return nil
		}
		if strings.HasSuffix(p, ".gguf") || strings.HasSuffix(p, ".safetensors") {
			cases = append(cases, lsCase{p, []string{p}})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

func folderCases(t *testing.T, dir string) []lsCase {
	idx := filepath.Join(dir, "model.safetensors.index.json")
	if b, err := os.ReadFile(idx); err == nil {
		var m struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", idx, err)
		}
		seen := map[string]bool{}
		var shards []string
		for _, s := range m.WeightMap {
			if !seen[s] {
				seen[s] = true
				shards = append(shards, filepath.Join(dir, s))
			}
		}
		sort.Strings(shards)
		return []lsCase{{dir, shards}, {idx, shards}}
	}
	for _, name := range []string{"model.safetensors", "adapters.safetensors"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return []lsCase{{dir, []string{filepath.Join(dir, name)}}}
		}
	}
	return nil
}

// TestLsAgreesShared: every file and model folder in ../shared/fixtures and
// ../shared/reference.
func TestLsAgreesShared(t *testing.T) {
	shared := testref.SharedDir(t)
	var n int
	for _, sub := range []string{"fixtures", "reference"} {
		for _, c := range checkpointCases(t, filepath.Join(shared, sub)) {
			rel, _ := filepath.Rel(shared, c.arg)
			t.Run(rel, func(t *testing.T) { checkLs(t, c.arg, c.want(t)) })
			n++
		}
	}
	if n < 150 {
		t.Errorf("only %d checkpoints found in ../shared; expected every quant, zoo, fixture file", n)
	}
}

// TestLsAgreesTestdata: the project's own fixtures (no ../shared needed).
func TestLsAgreesTestdata(t *testing.T) {
	cases := checkpointCases(t, filepath.Join(testref.RepoRoot(), "testdata"))
	if len(cases) < 25 {
		t.Fatalf("only %d checkpoints in testdata (run go generate ./...)", len(cases))
	}
	for _, c := range cases {
		rel, _ := filepath.Rel(testref.RepoRoot(), c.arg)
		t.Run(rel, func(t *testing.T) { checkLs(t, c.arg, c.want(t)) })
	}
}

// verifyLine matches a tensor line of a fixture's VERIFY.txt:
// gguf-py's dump ("   1:  32768 |  64, 512, 1, 1 | F32 | token_embd.weight"),
// the lenient GGUF v1 parse ("tensor NAME: F32 [64, 512] @ 1040128") and
// the safetensors listing ("  NAME: F32 [8, 4096]").
var (
	verifyDump = regexp.MustCompile(`^\s+\d+:\s+(\d+) \|\s+([\d, ]+) \| (\w+)\s+\| (\S+)$`)
	verifyV1   = regexp.MustCompile(`^\s+tensor (\S+): (\w+) \[([\d, ]*)\] @ (\d+)$`)
	verifyST   = regexp.MustCompile(`^\s+(\S+): (\w+) \[([\d, ]*)\]$`)
)

func parseDims(s string) []int64 {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			n, _ := strconv.ParseInt(f, 10, 64)
			out = append(out, n)
		}
	}
	return out
}

// TestLsVerifyFacts compares ls with the fixtures' VERIFY.txt, written by
// gguf-py and by the fixture collector's own parsers.
func TestLsVerifyFacts(t *testing.T) {
	shared := testref.SharedDir(t)
	for _, c := range []struct {
		dir, file string
		tensors   int
		gguf      bool
	}{
		{"gguf/stories260k-v3-f32", "stories260K.gguf", 48, true},
		{"gguf/stories260k-v1-f32", "tinyllamas-stories-260k-f32.gguf", 48, true},
		{"safetensors/bart-tiny-random", "model.safetensors", 56, false},
		{"safetensors/gpt2-capp-4l", "model.safetensors", 52, false},
		{"safetensors/gpt2-tiny-random", "model.safetensors", 64, false},
		{"lora/mlx-llama3-8b-discollama", "adapters.safetensors", 8, false},
	} {
		t.Run(c.dir, func(t *testing.T) {
			dir := filepath.Join(shared, "fixtures", c.dir)
			verify, err := os.ReadFile(filepath.Join(dir, "VERIFY.txt"))
			if err != nil {
				t.Fatal(err)
			}
			var got lsJSON
			runJSONInto(t, &got, "ls", "--json", filepath.Join(dir, c.file))
			byName := map[string]lsJSONTensor{}
			for _, gt := range got.Tensors {
				byName[gt.Name] = gt
			}
			if got.Totals.Tensors != c.tensors || len(got.Tensors) != c.tensors {
				t.Errorf("%d tensors, VERIFY.txt says %d", got.Totals.Tensors, c.tensors)
			}
			seen := map[string]bool{}
			for _, line := range strings.Split(string(verify), "\n") {
				var name, dt string
				var shape []int64
				off := int64(-1)
				if m := verifyDump.FindStringSubmatch(line); m != nil && c.gguf {
					name, dt = m[4], m[3]
					ne := parseDims(m[2])
					for len(ne) > 1 && ne[len(ne)-1] == 1 { // gguf-py pads ne with 1s to 4 dims
						ne = ne[:len(ne)-1]
					}
					for i := len(ne) - 1; i >= 0; i-- {
						shape = append(shape, ne[i])
					}
				} else if m := verifyV1.FindStringSubmatch(line); m != nil && c.gguf {
					name, dt = m[1], m[2]
					ne := parseDims(m[3])
					for i := len(ne) - 1; i >= 0; i-- {
						shape = append(shape, ne[i])
					}
					off, _ = strconv.ParseInt(m[4], 10, 64)
					off += got.Files[0].DataOffset
				} else if m := verifyST.FindStringSubmatch(line); m != nil && !c.gguf {
					name, dt, shape = m[1], m[2], parseDims(m[3])
				} else {
					continue
				}
				seen[name] = true
				gt, ok := byName[name]
				if !ok {
					t.Errorf("VERIFY.txt lists %s, ls does not", name)
					continue
				}
				if gt.DType != dt || !reflect.DeepEqual(gt.Shape, shape) || (off >= 0 && gt.Offset != off) {
					t.Errorf("%s: ls says %s %v at %d; VERIFY.txt says %s %v at %d", name, gt.DType, gt.Shape, gt.Offset, dt, shape, off)
				}
			}
			if len(seen) != c.tensors {
				t.Errorf("VERIFY.txt lines matched for %d tensors, want %d (did its format change?)", len(seen), c.tensors)
			}
			if strings.Contains(string(verify), "data_start 11456") && got.Files[0].DataOffset != 11456 {
				t.Errorf("data offset %d, VERIFY.txt says 11456", got.Files[0].DataOffset)
			}
			if m := regexp.MustCompile(`header_len': (\d+)`).FindStringSubmatch(string(verify)); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				if got.Files[0].DataOffset != 8+n {
					t.Errorf("data offset %d, VERIFY.txt says a %d-byte header", got.Files[0].DataOffset, n)
				}
			}
		})
	}
}

// TestLsMatch: --match keeps only matching tensors and totals count only them.
func TestLsMatch(t *testing.T) {
	var got lsJSON
	runJSONInto(t, &got, "ls", "--json", "--match", `attn_(q|k)\.`, filepath.Join(testref.RepoRoot(), "testdata/gguf/tiny-llama-v3-f32.gguf"))
	if len(got.Tensors) != 8 || got.Totals.Tensors != 8 {
		t.Fatalf("--match attn_(q|k): %d tensors, want 8 (4 layers x q, k)", len(got.Tensors))
	}
	for _, gt := range got.Tensors {
		if !strings.Contains(gt.Name, "attn_q.") && !strings.Contains(gt.Name, "attn_k.") {
			t.Errorf("--match kept %s", gt.Name)
		}
	}
	if code, _, errs := runQKV(80, "ls", "--match", "(", "testdata/tiny-llama"); code != cmd.ExitUsage || !strings.Contains(errs, "--match") {
		t.Errorf("bad --match: exit %d %q, want 2 naming --match", code, errs)
	}
}

// TestLsNote: a tensor stored in a way worth knowing (a legacy flat run of
// quantized blocks) carries its note in the text, under the table, and in
// the JSON; other tensors have none.
func TestLsNote(t *testing.T) {
	p := filepath.Join(testref.RepoRoot(), "testdata", "gguf", "legacy-q8_0-flat-run.gguf")
	code, out, errs := run("ls", p)
	if code != cmd.ExitOK || !strings.Contains(out, "\nnote: blk.0.ffn_down.weight: legacy layout: one flat run of blocks") {
		t.Errorf("exit %d, %s\n%s", code, errs, out)
	}
	code, js, _ := run("ls", p, "--json")
	var rep struct {
		Tensors []struct {
			Name string `json:"name"`
			Note string `json:"note"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal([]byte(js), &rep); code != cmd.ExitOK || err != nil {
		t.Fatalf("exit %d: %v", code, err)
	}
	for _, tn := range rep.Tensors {
		if (tn.Name == "blk.0.ffn_down.weight") != strings.HasPrefix(tn.Note, "legacy layout") {
			t.Errorf("%s: note %q", tn.Name, tn.Note)
		}
	}
}
