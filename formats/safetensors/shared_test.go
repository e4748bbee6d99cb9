package safetensors

import (
	"bufio"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

func parseFile(t *testing.T, path string) (*File, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data, Options{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f, data
}

// TestAllDtypes checks every tensor of all_dtypes.safetensors against the
// dtype, shape and offsets its manifest.json states.
func TestAllDtypes(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "dtypes")
	f, _ := parseFile(t, filepath.Join(dir, "all_dtypes.safetensors"))
	var manifest struct {
		Tensors map[string]struct {
			DType       string   `json:"dtype"`
			Shape       []int64  `json:"shape"`
			DataOffsets [2]int64 `json:"data_offsets"`
		} `json:"tensors"`
	}
	if err := testref.ReadJSON(filepath.Join(dir, "manifest.json"), &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest.Tensors) != 16 || len(f.Tensors) != len(manifest.Tensors) {
		t.Fatalf("%d tensors parsed, manifest lists %d (README says 16)", len(f.Tensors), len(manifest.Tensors))
	}
	for _, ti := range f.Tensors {
		m, ok := manifest.Tensors[ti.Name]
		if !ok {
			t.Errorf("tensor %q is not in the manifest", ti.Name)
			continue
		}
		if !ti.DType.Known() || ti.DType.SafetensorsName() != m.DType || ti.Name != strings.ToLower(m.DType) {
			t.Errorf("%s: dtype %s (known %v), manifest %s", ti.Name, ti.DType, ti.DType.Known(), m.DType)
		}
		if !reflect.DeepEqual(ti.Shape, m.Shape) || ti.Begin != m.DataOffsets[0] || ti.End != m.DataOffsets[1] {
			t.Errorf("%s: shape %v [%d, %d], manifest %v %v", ti.Name, ti.Shape, ti.Begin, ti.End, m.Shape, m.DataOffsets)
		}
	}
	// The README: header keys sorted, so the parse order is name order,
	// and a __metadata__ entry is present.
	if !sort.SliceIsSorted(f.Tensors, func(i, j int) bool { return f.Tensors[i].Name < f.Tensors[j].Name }) {
		t.Error("tensors are not in sorted header order")
	}
	if _, ok := f.MetadataValue("description"); !ok {
		t.Errorf("metadata %q has no description", f.Metadata)
	}
}

var (
	verifyHead   = regexp.MustCompile(`^== .*: header (\d+) bytes, (\d+) tensors, metadata=\{(.*)\}$`)
	verifyTensor = regexp.MustCompile(`^  (\S+): (\w+) \[([0-9, ]*)\]$`)
	pyStrPair    = regexp.MustCompile(`'([^']*)': '([^']*)'`)
)

// TestFixtures checks the real checkpoints in fixtures/safetensors against
// the independent listing in their VERIFY.txt.
func TestFixtures(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join(testref.SharedDir(t), "fixtures", "safetensors", "*"))
	if len(dirs) == 0 {
		t.Fatal("no fixtures found")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			f, _ := parseFile(t, filepath.Join(dir, "model.safetensors"))
			vf, err := os.Open(filepath.Join(dir, "VERIFY.txt"))
			if err != nil {
				t.Fatal(err)
			}
			defer vf.Close()
			var headerLen, count int64 = -1, -1
			var meta [][2]string
			var names []string
			listed := map[string]string{}
			sc := bufio.NewScanner(vf)
			for sc.Scan() {
				line := sc.Text()
				if m := verifyHead.FindStringSubmatch(line); m != nil {
					headerLen, _ = strconv.ParseInt(m[1], 10, 64)
					count, _ = strconv.ParseInt(m[2], 10, 64)
					for _, kv := range pyStrPair.FindAllStringSubmatch(m[3], -1) {
						meta = append(meta, [2]string{kv[1], kv[2]})
					}
				} else if m := verifyTensor.FindStringSubmatch(line); m != nil {
					names = append(names, m[1])
					listed[m[1]] = m[2] + " [" + m[3] + "]"
				}
			}
			if headerLen < 0 || len(names) == 0 {
				t.Fatal("VERIFY.txt has no header line or no tensor lines")
			}
			if f.HeaderLen != headerLen || int64(len(f.Tensors)) != count || len(names) != len(f.Tensors) {
				t.Errorf("header %d bytes, %d tensors; VERIFY.txt says %d bytes, %d tensors (%d listed)",
					f.HeaderLen, len(f.Tensors), headerLen, count, len(names))
			}
			if !reflect.DeepEqual(f.Metadata, meta) {
				t.Errorf("metadata %q, VERIFY.txt %q", f.Metadata, meta)
			}
			for _, ti := range f.Tensors {
				got := ti.DType.Name() + " " + formatShape(ti.Shape)
				if want, ok := listed[ti.Name]; !ok || got != want {
					t.Errorf("%s: %s, VERIFY.txt %q", ti.Name, got, want)
				}
			}
		})
	}
}

// TestSharedFiles parses every safetensors file under ../shared (the
// reference zoo's hf and hf-sharded checkpoints, every expected file, the
// fixtures) and cross-checks the parse with two independent views: a plain
// encoding/json decode of the header and, where its dtypes allow,
// internal/testref.ReadSafetensors.
func TestSharedFiles(t *testing.T) {
	root := testref.SharedDir(t)
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".safetensors") {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	zoo, _ := filepath.Glob(filepath.Join(root, "reference", "zoo", "*", "hf", "model.safetensors"))
	shards, _ := filepath.Glob(filepath.Join(root, "reference", "zoo", "*", "hf-sharded", "*.safetensors"))
	if len(paths) < 100 || len(zoo) != 8 || len(shards) == 0 {
		t.Fatalf("found %d files, %d zoo checkpoints, %d shards; expected the full reference tree", len(paths), len(zoo), len(shards))
	}
	crossChecked := 0
	for _, p := range paths {
		rel, _ := filepath.Rel(root, p)
		t.Run(rel, func(t *testing.T) {
			f, data := parseFile(t, p)
			if f.Size != int64(len(data)) || f.DataOffset != 8+f.HeaderLen {
				t.Errorf("size %d, data offset %d, header %d", f.Size, f.DataOffset, f.HeaderLen)
			}

			// View 1: the header decoded by encoding/json.
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(data[8:f.DataOffset], &raw); err != nil {
				t.Fatal(err)
			}
			// MLX writes "__metadata__":null, which the crate reads as absent.
			if m, ok := raw["__metadata__"]; (ok && string(m) != "null") != (f.Metadata != nil) {
				t.Errorf("__metadata__ is %s, parsed %v", m, f.Metadata != nil)
			}
			delete(raw, "__metadata__")
			if len(raw) != len(f.Tensors) {
				t.Errorf("%d tensors, encoding/json sees %d", len(f.Tensors), len(raw))
			}
			for _, ti := range f.Tensors {
				var e struct {
					DType       string   `json:"dtype"`
					Shape       []int64  `json:"shape"`
					DataOffsets [2]int64 `json:"data_offsets"`
				}
				if err := json.Unmarshal(raw[ti.Name], &e); err != nil {
					t.Fatalf("%s: %v", ti.Name, err)
				}
				if e.Shape == nil {
					e.Shape = []int64{}
				}
				if !ti.DType.Known() || ti.DType.SafetensorsName() != e.DType || !reflect.DeepEqual(ti.Shape, e.Shape) ||
					ti.Begin != e.DataOffsets[0] || ti.End != e.DataOffsets[1] {
					t.Errorf("%s: %s %v [%d, %d], encoding/json %+v", ti.Name, ti.DType, ti.Shape, ti.Begin, ti.End, e)
				}
			}

			// View 2: testref's reader, which decodes the data too.
			ref, err := testref.ReadSafetensors(p)
			if err != nil {
				if !strings.Contains(err.Error(), "not supported by testref") {
					t.Fatal(err)
				}
				return
			}
			crossChecked++
			var names []string
			for _, ti := range f.Tensors {
				names = append(names, ti.Name)
				r := ref[ti.Name]
				shape := make([]int64, len(r.Shape))
				for i, d := range r.Shape {
					shape[i] = int64(d)
				}
				if r.DType != ti.DType.Name() || !reflect.DeepEqual(shape, ti.Shape) || int64(len(r.F64)) != ti.Elements() {
					t.Errorf("%s: %s %v, testref %s %v (%d values)", ti.Name, ti.DType, ti.Shape, r.DType, r.Shape, len(r.F64))
				}
			}
			sort.Strings(names)
			if want := testref.Names(ref); !reflect.DeepEqual(names, want) {
				t.Errorf("names %v, testref %v", names, want)
			}
		})
	}
	if crossChecked < len(paths)-1 {
		t.Errorf("testref cross-checked only %d of %d files", crossChecked, len(paths))
	}
}

// TestShardedIndex checks that the shards of the sharded llama hold exactly
// the tensors its index maps to them, and the index's total_size.
func TestShardedIndex(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "zoo", "llama", "hf-sharded")
	var index struct {
		Metadata struct {
			TotalSize int64 `json:"total_size"`
		} `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := testref.ReadJSON(filepath.Join(dir, "model.safetensors.index.json"), &index); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var total int64
	shards, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	for _, p := range shards {
		f, _ := parseFile(t, p)
		for _, ti := range f.Tensors {
			got[ti.Name] = filepath.Base(p)
			total += ti.Bytes()
		}
	}
	if !reflect.DeepEqual(got, index.WeightMap) {
		t.Errorf("shards hold %v\nindex maps %v", got, index.WeightMap)
	}
	if total != index.Metadata.TotalSize {
		t.Errorf("tensor bytes %d, index total_size %d", total, index.Metadata.TotalSize)
	}
}

// TestRewriteShared writes every zoo checkpoint again with Write and checks
// that the copy parses to the same tensors and bytes.
func TestRewriteShared(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(testref.SharedDir(t), "reference", "zoo", "*", "hf", "model.safetensors"))
	for _, p := range paths {
		t.Run(filepath.Base(filepath.Dir(filepath.Dir(p))), func(t *testing.T) {
			f, data := parseFile(t, p)
			var ws []WriteTensor
			for _, ti := range f.Tensors {
				ws = append(ws, rawTensor(ti.Name, ti.DType, ti.Shape, f.TensorData(data, ti)))
			}
			var buf strings.Builder
			if err := Write(&buf, ws, f.Metadata); err != nil {
				t.Fatal(err)
			}
			out := []byte(buf.String())
			g, err := Parse(out, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g.Metadata, f.Metadata) || len(g.Tensors) != len(f.Tensors) {
				t.Fatalf("metadata %q, %d tensors; want %q, %d", g.Metadata, len(g.Tensors), f.Metadata, len(f.Tensors))
			}
			for _, ti := range f.Tensors {
				gi, ok := g.Tensor(ti.Name)
				if !ok || gi.DType != ti.DType || !reflect.DeepEqual(gi.Shape, ti.Shape) ||
					string(g.TensorData(out, gi)) != string(f.TensorData(data, ti)) {
					t.Errorf("%s differs after rewrite", ti.Name)
				}
			}
		})
	}
}
