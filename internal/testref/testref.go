// Package testref helps tests find ../shared and read the reference files in
// it. Its safetensors reader is deliberately small and separate from
// formats/safetensors, so that tests compare qkv's reader against an
// independent one.
package testref

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"

	"github.com/x448/float16"
)

// SharedDir returns the path of ../shared beside the repository, skipping the
// test with a message when it is absent.
func SharedDir(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	dir := filepath.Join(root, "..", "shared")
	if env := os.Getenv("QKV_SHARED"); env != "" {
		dir = env
	}
	if st, err := os.Stat(filepath.Join(dir, "reference")); err != nil || !st.IsDir() {
		t.Skipf("../shared is absent (looked in %s): skipping a test that needs the reference files", dir)
	}
	abs, _ := filepath.Abs(dir)
	// Walks do not descend into a symbolic link at their root.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	return abs
}

// RepoRoot returns the repository's root folder.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Tensor is one tensor of a reference safetensors file, decoded to float64
// (exact for every dtype the reference files use).
type Tensor struct {
	DType string
	Shape []int
	F64   []float64
}

// F32 returns the values as float32 (exact for F32, F16 and BF16 tensors).
func (t Tensor) F32() []float32 {
	out := make([]float32, len(t.F64))
	for i, v := range t.F64 {
		out[i] = float32(v)
	}
	return out
}

// ReadSafetensors reads a whole safetensors file whose tensors are F64, F32,
// F16, BF16, I32 or I64.
func ReadSafetensors(path string) (map[string]Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 8 {
		return nil, fmt.Errorf("%s: too short", path)
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("%s: header length %d past end", path, n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	data := b[8+n:]
	out := map[string]Tensor{}
	for name, raw := range hdr {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			DType       string   `json:"dtype"`
			Shape       []int    `json:"shape"`
			DataOffsets [2]int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("%s: %s: %v", path, name, err)
		}
		buf := data[e.DataOffsets[0]:e.DataOffsets[1]]
		count := 1
		for _, d := range e.Shape {
			count *= d
		}
		vals := make([]float64, count)
		var size int
		switch e.DType {
		case "F64", "I64":
			size = 8
		case "F32", "I32":
			size = 4
		case "F16", "BF16":
			size = 2
		default:
			return nil, fmt.Errorf("%s: %s: dtype %s not supported by testref", path, name, e.DType)
		}
		if len(buf) != count*size {
			return nil, fmt.Errorf("%s: %s: %d bytes for %d elements", path, name, len(buf), count)
		}
		for i := range vals {
			p := buf[i*size:]
			switch e.DType {
			case "F64":
				vals[i] = math.Float64frombits(binary.LittleEndian.Uint64(p))
			case "I64":
				vals[i] = float64(int64(binary.LittleEndian.Uint64(p)))
			case "F32":
				vals[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(p)))
			case "I32":
				vals[i] = float64(int32(binary.LittleEndian.Uint32(p)))
			case "F16":
				vals[i] = float64(float16.Frombits(binary.LittleEndian.Uint16(p)).Float32())
			case "BF16":
				vals[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(p)) << 16))
			}
		}
		out[name] = Tensor{DType: e.DType, Shape: e.Shape, F64: vals}
	}
	return out, nil
}

// Names returns the sorted tensor names of a map read by ReadSafetensors.
func Names(m map[string]Tensor) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// ReadJSON decodes a JSON file into v.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
