package cmd_test

// End-to-end tests for `qkv export` (issue 3): the written file is read
// back by qkv's own reader (formats.Open) and by internal/testref's
// independent one, and its values equal the reference decoders' exactly
// (NaN matches NaN, the sign of zero must match).

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/internal/testref"
)

// sameF32 is exact equality that also tells -0 from +0 and matches any
// NaN with any NaN.
func sameF32(got, want float32) bool {
	if want != want {
		return got != got
	}
	return got == want && math.Signbit(float64(got)) == math.Signbit(float64(want))
}

// firstDiff returns the index of the first element that differs, -1 when none.
func firstDiff(got, want []float32) int {
	if len(got) != len(want) {
		return 0
	}
	for i := range want {
		if !sameF32(got[i], want[i]) {
			return i
		}
	}
	return -1
}

func int64Shape(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

// exportTo runs `qkv export in -o out extra...` and requires exit 0.
func exportTo(t *testing.T, in, out string, extra ...string) string {
	t.Helper()
	args := append([]string{"export", in, "-o", out}, extra...)
	code, stdout, stderr := runQKV(80, args...)
	if code != 0 {
		t.Fatalf("qkv %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	if stdout != "" {
		t.Errorf("export printed to stdout: %q", stdout)
	}
	return stderr
}

// checkSpecLayout checks the written file against the safetensors layout
// rules: a header padded to a multiple of 8, every tensor F32 with a size
// that matches its shape (refSafetensorsHeader checks that), and data
// offsets that tile the data section without gaps, overlaps or trailing bytes.
func checkSpecLayout(t *testing.T, path string) {
	t.Helper()
	rf, ts := refSafetensorsHeader(t, path)
	if (rf.DataOffset-8)%8 != 0 {
		t.Errorf("%s: header of %d bytes is not padded to a multiple of 8", path, rf.DataOffset-8)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Offset < ts[j].Offset })
	at := rf.DataOffset
	for _, tt := range ts {
		if tt.DType != "F32" {
			t.Errorf("%s: %s is %s, want F32", path, tt.Name, tt.DType)
		}
		if tt.Offset != at {
			t.Errorf("%s: %s starts at %d, want %d (no gaps or overlaps)", path, tt.Name, tt.Offset, at)
		}
		at = tt.Offset + *tt.Bytes
	}
	if at != rf.Size {
		t.Errorf("%s: data ends at %d, the file at %d", path, at, rf.Size)
	}
	if rf.STMeta["source"] == "" || !strings.HasPrefix(rf.STMeta["written_by"], "qkv ") {
		t.Errorf("%s: __metadata__ %v lacks source/written_by", path, rf.STMeta)
	}
}

// checkExported compares an exported file with expected tensors (name ->
// reference tensor) through both readers.
func checkExported(t *testing.T, out string, want map[string]testref.Tensor) {
	t.Helper()
	checkSpecLayout(t, out)
	// The independent reader.
	got, err := testref.ReadSafetensors(out)
	if err != nil {
		t.Fatalf("testref cannot read the export: %v", err)
	}
	if !reflect.DeepEqual(testref.Names(got), testref.Names(want)) {
		t.Fatalf("exported tensors %v, want %v", testref.Names(got), testref.Names(want))
	}
	for name, w := range want {
		g := got[name]
		if g.DType != "F32" || !reflect.DeepEqual(g.Shape, w.Shape) {
			t.Errorf("%s: %s %v, want F32 %v", name, g.DType, g.Shape, w.Shape)
		}
		if i := firstDiff(g.F32(), w.F32()); i >= 0 {
			t.Errorf("%s (testref): element %d = %g, want %g", name, i, g.F32()[min(i, len(g.F64)-1)], w.F32()[i])
		}
	}
	// qkv's own reader.
	ck, err := formats.Open(out, formats.Options{})
	if err != nil {
		t.Fatalf("formats.Open rejects the export: %v", err)
	}
	defer ck.Close()
	if len(ck.Tensors) != len(want) {
		t.Errorf("formats.Open: %d tensors, want %d", len(ck.Tensors), len(want))
	}
	for _, tt := range ck.Tensors {
		w, ok := want[tt.Name]
		if !ok {
			continue
		}
		if tt.Type != dtype.F32 || !reflect.DeepEqual(tt.Shape, int64Shape(w.Shape)) {
			t.Errorf("%s (formats): %s %v, want F32 %v", tt.Name, tt.Type, tt.Shape, w.Shape)
		}
		vals, err := ck.DecodeNew(tt)
		if err != nil {
			t.Errorf("%s (formats): %v", tt.Name, err)
			continue
		}
		if i := firstDiff(vals, w.F32()); i >= 0 {
			t.Errorf("%s (formats): element %d = %g, want %g", tt.Name, i, vals[min(i, len(vals)-1)], w.F32()[i])
		}
	}
}

func readRef(t *testing.T, path string) map[string]testref.Tensor {
	t.Helper()
	m, err := testref.ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExportQuantReference: every GGML type's reference GGUF, and the
// special-values file, exported and compared with ggml's decoded values.
func TestExportQuantReference(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "quant")
	files, _ := filepath.Glob(filepath.Join(dir, "*.gguf"))
	if len(files) != 33 {
		t.Errorf("%d GGUF files in reference/quant, want 32 types + special.gguf", len(files))
	}
	tmp := t.TempDir()
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".gguf")
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(tmp, name+".safetensors")
			if stderr := exportTo(t, in, out); !strings.HasPrefix(stderr, "Wrote "+out+" (") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr: %s", stderr)
			}
			checkExported(t, out, readRef(t, filepath.Join(dir, name+".expected.safetensors")))
		})
	}
}

// TestExportDTypesReference: every safetensors dtype (all_dtypes), compared
// with the float32 values of the reference (rounded once).
func TestExportDTypesReference(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "dtypes")
	out := filepath.Join(t.TempDir(), "all.safetensors")
	exportTo(t, filepath.Join(dir, "all_dtypes.safetensors"), out)
	checkExported(t, out, readRef(t, filepath.Join(dir, "all_dtypes.expected_f32.safetensors")))
}

// TestExportDTypesTestdata: the project's own dtype fixtures (tensor x)
// against testdata/dtypes/expected.safetensors (one tensor per dtype).
func TestExportDTypesTestdata(t *testing.T) {
	dir := filepath.Join(testref.RepoRoot(), "testdata", "dtypes")
	expected := readRef(t, filepath.Join(dir, "expected.safetensors"))
	if len(expected) < 16 {
		t.Fatalf("expected.safetensors holds %d tensors", len(expected))
	}
	tmp := t.TempDir()
	for name, w := range expected {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(tmp, name+".safetensors")
			exportTo(t, filepath.Join(dir, name+".safetensors"), out)
			checkExported(t, out, map[string]testref.Tensor{"x": w})
		})
	}
}

// ggufF32Values reads an F32 tensor's values straight from a little-endian
// GGUF with testref's header reader.
func ggufF32Values(t *testing.T, path string) map[string]testref.Tensor {
	t.Helper()
	g, err := testref.ReadGGUF(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]testref.Tensor{}
	for _, ti := range g.Tensors {
		if ti.Type != 0 || g.BigEndian {
			t.Fatalf("%s: %s is not little-endian F32", path, ti.Name)
		}
		start := g.DataOffset + int64(ti.Offset)
		vals := make([]float64, ti.Elements())
		for i := range vals {
			vals[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[start+4*int64(i):])))
		}
		var shape []int
		for _, d := range ti.Shape() {
			shape = append(shape, int(d))
		}
		out[ti.Name] = testref.Tensor{DType: "F32", Shape: shape, F64: vals}
	}
	return out
}

// TestExportGGUFTestdata: GGUF versions 1-3 and a split set export the
// stored F32 values with row-major shapes; --match selects tensors; the
// big-endian F16 file exports the same values as the little-endian one.
func TestExportGGUFTestdata(t *testing.T) {
	dir := filepath.Join(testref.RepoRoot(), "testdata", "gguf")
	tmp := t.TempDir()
	v3 := ggufF32Values(t, filepath.Join(dir, "tiny-llama-v3-f32.gguf"))
	for _, in := range []string{"tiny-llama-v1-f32.gguf", "tiny-llama-v2-f32.gguf", "tiny-llama-v3-f32.gguf", "tiny-llama-split-00002-of-00003.gguf"} {
		t.Run(in, func(t *testing.T) {
			out := filepath.Join(tmp, in+".safetensors")
			exportTo(t, filepath.Join(dir, in), out)
			checkExported(t, out, v3)
		})
	}
	t.Run("match", func(t *testing.T) {
		out := filepath.Join(tmp, "match.safetensors")
		exportTo(t, filepath.Join(dir, "tiny-llama-v3-f32.gguf"), out, "--match", `attn_(q|k)\.weight`)
		want := map[string]testref.Tensor{}
		for name, w := range v3 {
			if strings.Contains(name, "attn_q.weight") || strings.Contains(name, "attn_k.weight") {
				want[name] = w
			}
		}
		if len(want) != 8 {
			t.Fatalf("fixture has %d attn_q/attn_k tensors", len(want))
		}
		checkExported(t, out, want)
	})
	t.Run("big-endian", func(t *testing.T) {
		le, be := filepath.Join(tmp, "le.safetensors"), filepath.Join(tmp, "be.safetensors")
		exportTo(t, filepath.Join(dir, "tiny-llama-f16.gguf"), le)
		exportTo(t, filepath.Join(dir, "tiny-llama-be-f16.gguf"), be)
		checkExported(t, be, readRef(t, le))
	})
}

// TestExportRefusesInput: -o (attn's --out) naming the input, another part
// of its split set, or a file the model is read with (config.json) is a
// usage error (exit 2) and leaves the file as it was.
func TestExportRefusesInput(t *testing.T) {
	src := filepath.Join(testref.RepoRoot(), "testdata")
	tmp := t.TempDir()
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"tiny-llama-split-00001-of-00003.gguf", "tiny-llama-split-00002-of-00003.gguf",
		"tiny-llama-split-00003-of-00003.gguf", "tiny-llama-v3-f32.gguf"} {
		copyFile(filepath.Join(src, "gguf", p), filepath.Join(tmp, p))
	}
	os.Mkdir(filepath.Join(tmp, "st"), 0o755)
	copyFile(filepath.Join(src, "tiny-llama", "model.safetensors"), filepath.Join(tmp, "st", "model.safetensors"))
	copyFile(filepath.Join(src, "tiny-llama", "config.json"), filepath.Join(tmp, "st", "config.json"))
	for _, c := range []struct{ command, in, flag, out string }{
		{"export", "tiny-llama-v3-f32.gguf", "-o", "tiny-llama-v3-f32.gguf"},
		{"export", "tiny-llama-split-00001-of-00003.gguf", "-o", "tiny-llama-split-00003-of-00003.gguf"},
		{"export", "st", "-o", "st/model.safetensors"},
		{"export", "st/model.safetensors", "-o", "st/../st/model.safetensors"},
		// The files a model is read with, not only its tensor files.
		{"export", "st", "-o", "st/config.json"},
		{"extract", "st", "-o", "st/config.json"},
		{"extract", "st/model.safetensors", "-o", "st/model.safetensors"},
		{"attn", "st", "--out", "st/config.json"},
	} {
		in, out := filepath.Join(tmp, c.in), filepath.Join(tmp, c.out)
		before, _ := os.ReadFile(out)
		code, stdout, stderr := runQKV(80, c.command, in, c.flag, out)
		if code != cmd.ExitUsage || stdout != "" || !strings.Contains(stderr, "never writes its inputs") {
			t.Errorf("%s %s %s %s: exit %d stderr %q, want 2 refusing", c.command, c.in, c.flag, c.out, code, stderr)
		}
		if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
			t.Errorf("%s %s %s %s changed the input", c.command, c.in, c.flag, c.out)
		}
	}
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".qkv-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	if code, _, _ := runQKV(80, "export", filepath.Join(tmp, "tiny-llama-v3-f32.gguf")); code != cmd.ExitUsage {
		t.Errorf("export without -o: exit %d, want 2", code)
	}
}

// TestExportUnknownTypes: tensors of a type qkv cannot decode are skipped
// with a warning naming them; the rest is exported.
func TestExportUnknownTypes(t *testing.T) {
	tmp := t.TempDir()
	vals := []float32{1, -2, 0.5, float32(math.Inf(1))}
	var f32 []byte
	for _, v := range vals {
		f32 = binary.LittleEndian.AppendUint32(f32, math.Float32bits(v))
	}
	w := gguf.Writer{Tensors: []gguf.WriterTensor{
		{Name: "fork.weight", Dims: []uint64{64, 2}, Type: dtype.FromGGML(45), Data: make([]byte, 40)},
		{Name: "plain.weight", Dims: []uint64{2, 2}, Type: dtype.F32, Data: f32},
		{Name: "other.weight", Dims: []uint64{128}, Type: dtype.FromGGML(99), Data: make([]byte, 18)},
	}}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(tmp, "mixed.gguf")
	if err := os.WriteFile(in, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out.safetensors")
	stderr := exportTo(t, in, out)
	for _, name := range []string{"fork.weight", "other.weight"} {
		if !strings.Contains(stderr, "skipping "+name) {
			t.Errorf("stderr %q does not warn about %s", stderr, name)
		}
	}
	if strings.Contains(stderr, "plain.weight") {
		t.Errorf("stderr %q mentions the decodable tensor", stderr)
	}
	checkExported(t, out, map[string]testref.Tensor{"plain.weight": {DType: "F32", Shape: []int{2, 2}, F64: []float64{1, -2, 0.5, math.Inf(1)}}})

	// The fork-types corpus: every tensor has an id >= 40. Each is named in
	// a warning, and no file is written.
	shared := filepath.Join(testref.SharedDir(t), "reference", "fork-types")
	files, _ := filepath.Glob(filepath.Join(shared, "*.gguf"))
	if len(files) == 0 {
		t.Fatal("no fork-types GGUFs")
	}
	for _, in := range files {
		out := filepath.Join(tmp, filepath.Base(in)+".safetensors")
		code, _, stderr := runQKV(80, "export", in, "-o", out)
		for _, name := range []string{"w", "w_small", "w3d"} {
			if !strings.Contains(stderr, "skipping "+name+":") {
				t.Errorf("%s: stderr %q does not warn about %s", filepath.Base(in), stderr, name)
			}
		}
		if code == 0 {
			t.Errorf("%s: exit 0 with nothing to export", filepath.Base(in))
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: wrote %s with nothing in it", filepath.Base(in), out)
		}
	}
}
