package dtype

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// quantManifest is the part of reference/quant/manifest.json the tests use:
// where each tensor's bytes sit in the GGUF file (parsed independently by the
// corpus generator), so the test needs no GGUF parser of its own.
type quantManifest struct {
	Types   []quantEntry `json:"types"`
	Special quantEntry   `json:"special"`
}

type quantEntry struct {
	Name         string `json:"name"`
	GGUFFile     string `json:"gguf_file"`
	ExpectedFile string `json:"expected_file"`
	Layout       struct {
		DataStart int64 `json:"data_start"`
		Tensors   []struct {
			Name   string  `json:"name"`
			NE     []int64 `json:"ne"`
			Offset int64   `json:"offset"`
			Type   uint32  `json:"type"`
		} `json:"tensors"`
	} `json:"gguf_layout"`
}

// TestReferenceQuant decodes every tensor of every GGUF file in
// reference/quant and compares it, element by element and exactly, with the
// values ggml's own dequantizer produced.
func TestReferenceQuant(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "quant")
	var m quantManifest
	if err := testref.ReadJSON(filepath.Join(dir, "manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Types) == 0 {
		t.Fatal("manifest lists no types")
	}
	entries := append(slices.Clone(m.Types), m.Special)
	entries[len(entries)-1].Name = "special"
	for _, e := range entries {
		t.Run(e.Name, func(t *testing.T) {
			checkQuantEntry(t, dir, e)
		})
	}
}

func checkQuantEntry(t *testing.T, dir string, e quantEntry) {
	gguf, err := os.ReadFile(filepath.Join(dir, e.GGUFFile))
	if err != nil {
		t.Fatal(err)
	}
	want, err := testref.ReadSafetensors(filepath.Join(dir, e.ExpectedFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Layout.Tensors) == 0 {
		t.Fatal("manifest gives no tensors")
	}
	for _, ti := range e.Layout.Tensors {
		typ := FromGGML(ti.Type)
		n := int64(1)
		for _, d := range ti.NE {
			n *= d
		}
		size, err := typ.ByteSize(n)
		if err != nil {
			t.Errorf("%s: %v", ti.Name, err)
			continue
		}
		start := e.Layout.DataStart + ti.Offset
		if start < 0 || start+size > int64(len(gguf)) {
			t.Errorf("%s: bytes [%d, %d) past the end of %s (%d bytes)", ti.Name, start, start+size, e.GGUFFile, len(gguf))
			continue
		}
		exp, ok := want[ti.Name]
		if !ok {
			t.Errorf("%s: not in %s", ti.Name, e.ExpectedFile)
			continue
		}
		// Expected shape is ne reversed.
		shape := make([]int, len(ti.NE))
		for i, d := range ti.NE {
			shape[len(ti.NE)-1-i] = int(d)
		}
		if !slices.Equal(shape, exp.Shape) {
			t.Errorf("%s: expected file has shape %v, ne %v gives %v", ti.Name, exp.Shape, ti.NE, shape)
			continue
		}
		got := make([]float32, n)
		if err := Decode(typ, got, gguf[start:start+size]); err != nil {
			t.Errorf("%s (%s): %v", ti.Name, typ, err)
			continue
		}
		compareExact(t, fmt.Sprintf("%s (%s)", ti.Name, typ), got, exp.F32())
	}
}

// compareExact fails on the first few elements that differ: equal values
// must also have the same sign of zero, and NaN matches any NaN.
func compareExact(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	bad := 0
	for i := range got {
		if sameFloat(got[i], want[i]) {
			continue
		}
		if bad < 5 {
			t.Errorf("%s[%d] = %g (0x%08x), want %g (0x%08x)", what, i,
				got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
		bad++
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(got))
	}
}

func sameFloat(a, b float32) bool {
	if a != a || b != b {
		return a != a && b != b
	}
	return a == b && math.Signbit(float64(a)) == math.Signbit(float64(b))
}

// TestReferenceDtypes decodes every tensor of reference/dtypes/all_dtypes.safetensors
// and compares it exactly with all_dtypes.expected_f32.safetensors.
func TestReferenceDtypes(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "dtypes")
	raw, err := os.ReadFile(filepath.Join(dir, "all_dtypes.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := testref.ReadSafetensors(filepath.Join(dir, "all_dtypes.expected_f32.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	// A tiny safetensors header read: u64 length, JSON, then data.
	if len(raw) < 8 {
		t.Fatal("all_dtypes.safetensors too short")
	}
	hn := binary.LittleEndian.Uint64(raw)
	if hn > uint64(len(raw)-8) {
		t.Fatalf("header length %d past end", hn)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+hn], &hdr); err != nil {
		t.Fatal(err)
	}
	data := raw[8+hn:]
	seen := map[string]bool{}
	names := make([]string, 0, len(hdr))
	for name := range hdr {
		if name != "__metadata__" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		r := hdr[name]
		var e struct {
			DType       string   `json:"dtype"`
			Shape       []int    `json:"shape"`
			DataOffsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(r, &e); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Run(e.DType, func(t *testing.T) {
			typ := FromSafetensors(e.DType)
			if !typ.Known() {
				t.Fatalf("dtype %s unknown", e.DType)
			}
			seen[e.DType] = true
			exp, ok := want[name]
			if !ok {
				t.Fatalf("%s not in expected file", name)
			}
			if !slices.Equal(e.Shape, exp.Shape) {
				t.Fatalf("shape %v, expected file has %v", e.Shape, exp.Shape)
			}
			n := 1
			for _, d := range e.Shape {
				n *= d
			}
			a, b := e.DataOffsets[0], e.DataOffsets[1]
			if a < 0 || b < a || b > int64(len(data)) {
				t.Fatalf("data offsets %v out of range", e.DataOffsets)
			}
			got := make([]float32, n)
			if err := Decode(typ, got, data[a:b]); err != nil {
				t.Fatal(err)
			}
			compareExact(t, name, got, exp.F32())
		})
	}
	for _, d := range []string{"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8",
		"U64", "U32", "U16", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "F8_E8M0"} {
		if !seen[d] {
			t.Errorf("all_dtypes.safetensors has no %s tensor", d)
		}
	}
}
