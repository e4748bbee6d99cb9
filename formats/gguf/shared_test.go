package gguf

// Tests against real files written by other tools (../shared/fixtures) and
// the layouts that independent parsers recorded for them (VERIFY.txt,
// reference manifests). They skip when ../shared is absent.

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/internal/testref"
)

func readShared(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testref.SharedDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseShared(t *testing.T, rel string) (*File, []byte) {
	t.Helper()
	b := readShared(t, rel)
	f, err := Parse(b, Options{})
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return f, b
}

// pyValue compares one value as a Python repr prints it ('str', 1, 0.5,
// True) with a decoded value.
func pyValue(repr string, v any) bool {
	repr = strings.TrimSpace(repr)
	if s, ok := v.(string); ok {
		return len(repr) >= 2 && (repr[0] == '\'' || repr[0] == '"') && repr[1:len(repr)-1] == s
	}
	if b, ok := v.(bool); ok {
		return repr == map[bool]string{true: "True", false: "False"}[b]
	}
	want, err := strconv.ParseFloat(repr, 64)
	if err != nil {
		return false
	}
	got, ok := (&KV{Value: v}).Float()
	return ok && got == want
}

// pyList splits the first elements of a Python list repr "['a', 'b', ...]".
func pyList(repr string) []string {
	repr = strings.TrimSuffix(strings.TrimSpace(repr), "...")
	repr = strings.TrimSuffix(strings.TrimPrefix(repr, "["), "]")
	var out []string
	for _, s := range strings.Split(repr, ", ") {
		if s != "..." && s != "" {
			out = append(out, s)
		}
	}
	return out
}

func checkArrayPrefix(t *testing.T, f *File, data []byte, kv *KV, repr string) {
	t.Helper()
	items := pyList(repr)
	got, err := f.Array(data, kv, 0, len(items))
	if err != nil {
		t.Errorf("%s: %v", kv.Key, err)
		return
	}
	for i, it := range items {
		if !pyValue(it, got[i]) {
			t.Errorf("%s[%d] = %#v, want %s", kv.Key, i, got[i], it)
		}
	}
}

func TestStories260KV1(t *testing.T) {
	const dir = "fixtures/gguf/stories260k-v1-f32/"
	f, data := parseShared(t, dir+"tinyllamas-stories-260k-f32.gguf")
	verify := string(readShared(t, dir+"VERIFY.txt"))

	if f.Version != 1 || f.BigEndian || len(f.Tensors) != 48 || len(f.KVs) != 18 {
		t.Errorf("version %d BE %v, %d tensors, %d KVs; want 1, false, 48, 18", f.Version, f.BigEndian, len(f.Tensors), len(f.KVs))
	}
	m := regexp.MustCompile(`data_start (\d+) file (\d+)`).FindStringSubmatch(verify)
	if m == nil || strconv.FormatInt(f.DataOffset, 10) != m[1] || strconv.FormatInt(f.Size, 10) != m[2] {
		t.Errorf("data_start %d, size %d; VERIFY says %v", f.DataOffset, f.Size, m)
	}

	kvRe := regexp.MustCompile(`^  ([a-z_.]+): (.*)$`)
	arrRe := regexp.MustCompile(`^array\[(\d+)\] (.*)$`)
	tRe := regexp.MustCompile(`^  tensor (\S+): (\w+) \[([0-9, ]+)\] @ (\d+)$`)
	nkv, nt := 0, 0
	sc := bufio.NewScanner(strings.NewReader(verify[strings.Index(verify, "independent lenient parse"):]))
	for sc.Scan() {
		line := sc.Text()
		if m := tRe.FindStringSubmatch(line); m != nil {
			ti := &f.Tensors[nt]
			nt++
			dims := fmt.Sprint(ti.Dims)
			want := "[" + strings.ReplaceAll(m[3], ",", "") + "]"
			if ti.Name != m[1] || ti.Type.Name() != m[2] || dims != want || strconv.FormatUint(ti.Offset, 10) != m[4] {
				t.Errorf("tensor %d: %s %s %s @ %d; VERIFY: %s", nt-1, ti.Name, ti.Type.Name(), dims, ti.Offset, line)
			}
			if want := ti.Elements() * 4; ti.Bytes != want {
				t.Errorf("tensor %s: Bytes %d, want %d", ti.Name, ti.Bytes, want)
			}
			continue
		}
		m := kvRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		kv := &f.KVs[nkv]
		nkv++
		if kv.Key != m[1] {
			t.Errorf("kv %d is %q, VERIFY lists %q", nkv-1, kv.Key, m[1])
			continue
		}
		if am := arrRe.FindStringSubmatch(m[2]); am != nil {
			if kv.Type != Array || strconv.FormatUint(kv.Count, 10) != am[1] || !kv.Lazy {
				t.Errorf("%s: %s of %d (lazy %v), want a lazy array of %s", kv.Key, kv.Type, kv.Count, kv.Lazy, am[1])
			}
			checkArrayPrefix(t, f, data, kv, am[2])
			continue
		}
		if !pyValue(m[2], kv.Value) {
			t.Errorf("%s = %#v, VERIFY says %s", kv.Key, kv.Value, m[2])
		}
	}
	if nkv != 18 || nt != 48 {
		t.Errorf("checked %d KVs and %d tensors from VERIFY.txt, want 18 and 48", nkv, nt)
	}
	// Types as the v1 converter wrote them.
	for key, typ := range map[string]ValueType{"llama.context_length": Uint32, "llama.attention.layer_norm_rms_epsilon": Float32, "general.name": String} {
		if kv, ok := f.Lookup(key); !ok || kv.Type != typ {
			t.Errorf("%s: %v, want type %s", key, kv, typ)
		}
	}
	if kv, _ := f.Lookup("tokenizer.ggml.tokens"); kv.ElemType != String {
		t.Errorf("tokens element type %s", kv.ElemType)
	}
}

func TestStories260KV3(t *testing.T) {
	const dir = "fixtures/gguf/stories260k-v3-f32/"
	f, data := parseShared(t, dir+"stories260K.gguf")
	verify := string(readShared(t, dir+"VERIFY.txt"))
	if f.Version != 3 || len(f.Tensors) != 48 || len(f.KVs) != 19 || f.Alignment != 32 {
		t.Errorf("version %d, %d tensors, %d KVs, alignment %d", f.Version, len(f.Tensors), len(f.KVs), f.Alignment)
	}
	// gguf_dump: "  4: [STRING]   |      512 | tokenizer.ggml.tokens = [...]"
	kvRe := regexp.MustCompile(`^\s+(\d+): (\[?)([A-Z0-9]+)\]?\s+\|\s+(\d+) \| (\S+) = (.*)$`)
	// "  1:      32768 |    64,   512,     1,     1 | F32     | token_embd.weight"
	tRe := regexp.MustCompile(`^\s+(\d+):\s+(\d+) \|([0-9, ]+)\| (\w+)\s+\| (\S+)$`)
	nkv, nt := 0, 0
	for _, line := range strings.Split(verify, "\n") {
		if m := kvRe.FindStringSubmatch(line); m != nil {
			if strings.HasPrefix(m[5], "GGUF.") {
				continue
			}
			kv := &f.KVs[nkv]
			nkv++
			count, _ := strconv.ParseUint(m[4], 10, 64)
			if kv.Key != m[5] || kv.Count != count {
				t.Errorf("kv %d: %q count %d; VERIFY: %s", nkv-1, kv.Key, kv.Count, line)
				continue
			}
			typ := kv.Type
			if m[2] == "[" {
				if kv.Type != Array {
					t.Errorf("%s is %s, want an array", kv.Key, kv.Type)
				}
				typ = kv.ElemType
				checkArrayPrefix(t, f, data, kv, m[6])
			} else if !pyValue(m[6], kv.Value) {
				t.Errorf("%s = %#v, VERIFY says %s", kv.Key, kv.Value, m[6])
			}
			if strings.ToUpper(typ.String()) != m[3] {
				t.Errorf("%s: type %s, VERIFY says %s", kv.Key, typ, m[3])
			}
			continue
		}
		if m := tRe.FindStringSubmatch(line); m != nil {
			ti := &f.Tensors[nt]
			nt++
			dims := []string{}
			for _, d := range ti.Dims {
				dims = append(dims, strconv.FormatUint(d, 10))
			}
			for len(dims) < 4 {
				dims = append(dims, "1") // gguf_dump pads ne to 4
			}
			want := strings.Join(strings.Fields(strings.ReplaceAll(m[3], ",", " ")), " ")
			if ti.Name != m[5] || ti.Type.Name() != m[4] || strings.Join(dims, " ") != want || strconv.FormatInt(ti.Elements(), 10) != m[2] {
				t.Errorf("tensor %d: %s %s %v; VERIFY: %s", nt-1, ti.Name, ti.Type.Name(), ti.Dims, line)
			}
		}
	}
	if nkv != 19 || nt != 48 {
		t.Errorf("checked %d KVs and %d tensors from VERIFY.txt, want 19 and 48", nkv, nt)
	}
	checkPacked(t, f)
}

// checkPacked checks ggml's writer layout: the data section starts at the
// aligned end of the tensor infos and each tensor follows the previous one,
// padded to the alignment.
func checkPacked(t *testing.T, f *File) {
	t.Helper()
	var next uint64
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if ti.Offset != next {
			t.Errorf("tensor %s at %d, want %d", ti.Name, ti.Offset, next)
		}
		next = pad(ti.Offset+uint64(ti.Bytes), f.Alignment)
	}
	if want := f.DataOffset + int64(next); len(f.Tensors) > 0 && f.Size != want {
		t.Errorf("file is %d bytes, data ends at %d", f.Size, want)
	}
}

func TestLlama2TinyRandom(t *testing.T) {
	f, data := parseShared(t, "fixtures/gguf/llama2-tiny-random/llama-2-tiny-random.gguf")
	// PROVENANCE.txt: v3, llama, n_embd 8, 1 block, 2/2 heads, F16 matrices
	// and F32 norms, vocab 32000.
	want := []struct {
		name string
		ne   string
		typ  dtype.Type
	}{
		{"token_embd.weight", "[8 32000]", dtype.F16},
		{"blk.0.attn_q.weight", "[8 8]", dtype.F16},
		{"blk.0.attn_k.weight", "[8 8]", dtype.F16},
		{"blk.0.attn_v.weight", "[8 8]", dtype.F16},
		{"blk.0.attn_output.weight", "[8 8]", dtype.F16},
		{"blk.0.ffn_gate.weight", "[8 32]", dtype.F16},
		{"blk.0.ffn_up.weight", "[8 32]", dtype.F16},
		{"blk.0.ffn_down.weight", "[32 8]", dtype.F16},
		{"blk.0.attn_norm.weight", "[8]", dtype.F32},
		{"blk.0.ffn_norm.weight", "[8]", dtype.F32},
		{"output_norm.weight", "[8]", dtype.F32},
		{"output.weight", "[8 32000]", dtype.F16},
	}
	if f.Version != 3 || len(f.KVs) != 18 || len(f.Tensors) != len(want) || f.Size != 1750560 {
		t.Fatalf("version %d, %d KVs, %d tensors, %d bytes", f.Version, len(f.KVs), len(f.Tensors), f.Size)
	}
	for i, w := range want {
		ti := &f.Tensors[i]
		if ti.Name != w.name || fmt.Sprint(ti.Dims) != w.ne || ti.Type != w.typ {
			t.Errorf("tensor %d: %s %v %s, want %s %s %s", i, ti.Name, ti.Dims, ti.Type, w.name, w.ne, w.typ)
		}
	}
	checkPacked(t, f)
	for key, v := range map[string]any{
		"general.architecture": "llama", "llama.embedding_length": uint32(8), "llama.block_count": uint32(1),
		"llama.attention.head_count": uint32(2), "llama.attention.head_count_kv": uint32(2),
	} {
		if kv, ok := f.Lookup(key); !ok || kv.Value != v {
			t.Errorf("%s = %v, want %v", key, kv, v)
		}
	}
	kv, _ := f.Lookup("tokenizer.ggml.tokens")
	toks, err := f.Array(data, kv, 0, 3)
	if err != nil || kv.Count != 32000 || fmt.Sprint(toks) != "[<unk> <s> </s>]" {
		t.Errorf("tokens: count %d, first %v, %v", kv.Count, toks, err)
	}
}

// The vocabulary files: counts are the published vocabulary sizes of these
// tokenizers (Falcon 65024, GPT-2 50257 with 50000 merges, Llama 32000,
// Phi-3 32064, BERT 30522, DeepSeek-Coder 32256).
func TestVocabFiles(t *testing.T) {
	cases := []struct {
		file, arch, model   string
		nkv, tokens, merges int
		first, last         string
		hasScores           bool
	}{
		{"ggml-vocab-bert-bge.gguf", "bert", "bert", 20, 30522, 0, "[PAD]", "～", false},
		{"ggml-vocab-deepseek-coder.gguf", "llama", "gpt2", 25, 32256, 31757, "!", "[PAD32255]", false},
		{"ggml-vocab-falcon.gguf", "falcon", "gpt2", 18, 65024, 64784, ">>TITLE<<", "Ġvictoria", false},
		{"ggml-vocab-gpt-2.gguf", "gpt2", "gpt2", 16, 50257, 50000, "!", "<|endoftext|>", false},
		{"ggml-vocab-llama-spm.gguf", "llama", "llama", 22, 32000, 0, "<unk>", "给", true},
		{"ggml-vocab-phi-3.gguf", "phi3", "llama", 26, 32064, 0, "<unk>", "[PAD32063]", true},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			f, data := parseShared(t, "fixtures/gguf/vocab/"+c.file)
			if f.Version != 3 || len(f.Tensors) != 0 || len(f.KVs) != c.nkv {
				t.Errorf("version %d, %d tensors, %d KVs; want 3, 0, %d", f.Version, len(f.Tensors), len(f.KVs), c.nkv)
			}
			str := func(k string) string {
				kv, ok := f.Lookup(k)
				if !ok {
					return "<missing>"
				}
				s, _ := kv.String()
				return s
			}
			if str("general.architecture") != c.arch || str("tokenizer.ggml.model") != c.model {
				t.Errorf("architecture %q model %q", str("general.architecture"), str("tokenizer.ggml.model"))
			}
			tok, _ := f.Lookup("tokenizer.ggml.tokens")
			if tok == nil || tok.ElemType != String || tok.Count != uint64(c.tokens) || !tok.Lazy {
				t.Fatalf("tokens: %+v", tok)
			}
			ends, err := f.Array(data, tok, 0, 1)
			last, err2 := f.Array(data, tok, c.tokens-1, 1)
			if err != nil || err2 != nil || ends[0] != c.first || last[0] != c.last {
				t.Errorf("first token %v, last %v (%v %v); want %q %q", ends, last, err, err2, c.first, c.last)
			}
			tt, _ := f.Lookup("tokenizer.ggml.token_type")
			if tt == nil || tt.ElemType != Int32 || tt.Count != uint64(c.tokens) {
				t.Errorf("token_type: %+v", tt)
			}
			mg, ok := f.Lookup("tokenizer.ggml.merges")
			if c.merges == 0 && ok || c.merges > 0 && (!ok || mg.Count != uint64(c.merges) || mg.ElemType != String) {
				t.Errorf("merges: %+v, want %d", mg, c.merges)
			}
			if sc, ok := f.Lookup("tokenizer.ggml.scores"); ok != c.hasScores || ok && (sc.ElemType != Float32 || sc.Count != uint64(c.tokens)) {
				t.Errorf("scores: %+v", sc)
			}
			// Decoding everything lazily must agree in count and end where
			// the walk ended.
			all, err := f.Array(data, tok, 0, c.tokens)
			if err != nil || len(all) != c.tokens || all[c.tokens-1] != c.last {
				t.Errorf("whole token array: %d elements, %v", len(all), err)
			}
		})
	}
}

type layout struct {
	DataStart int64 `json:"data_start"`
	NKV       int   `json:"n_kv"`
	NTensors  int   `json:"n_tensors"`
	Tensors   []struct {
		Name   string   `json:"name"`
		NE     []uint64 `json:"ne"`
		Offset uint64   `json:"offset"`
		Type   uint32   `json:"type"`
	} `json:"tensors"`
}

type manifestEntry struct {
	Name      string `json:"name"`
	ID        uint32 `json:"id"`
	GGUFFile  string `json:"gguf_file"`
	Layout    layout `json:"gguf_layout"`
	BlockSize int    `json:"block_size"`
	TypeSize  int    `json:"type_size"`
	Tensors   []struct {
		Name   string `json:"name"`
		NBytes int64  `json:"nbytes"`
	} `json:"tensors"`
}

func checkLayout(t *testing.T, path string, want layout, fork bool, nbytes map[string]int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(b, Options{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if f.DataOffset != want.DataStart || len(f.KVs) != want.NKV || len(f.Tensors) != want.NTensors || len(want.Tensors) != want.NTensors {
		t.Errorf("%s: data %d, %d KVs, %d tensors; manifest %d, %d, %d", filepath.Base(path), f.DataOffset, len(f.KVs), len(f.Tensors), want.DataStart, want.NKV, want.NTensors)
		return
	}
	for i, w := range want.Tensors {
		ti := &f.Tensors[i]
		id, _ := ti.Type.GGMLID()
		if ti.Name != w.Name || fmt.Sprint(ti.Dims) != fmt.Sprint(w.NE) || ti.Offset != w.Offset || id != w.Type {
			t.Errorf("%s: tensor %d: %s %v @%d type %d; manifest %s %v @%d type %d", filepath.Base(path), i, ti.Name, ti.Dims, ti.Offset, id, w.Name, w.NE, w.Offset, w.Type)
		}
		if fork {
			if ti.Type.Known() || ti.Bytes != -1 || ti.Type.Name() != fmt.Sprintf("type %d (unknown)", w.Type) {
				t.Errorf("%s: tensor %s: type %s known %v bytes %d, want an unknown type", filepath.Base(path), ti.Name, ti.Type.Name(), ti.Type.Known(), ti.Bytes)
			}
		} else if n, ok := nbytes[w.Name]; ok && ti.Bytes != n {
			t.Errorf("%s: tensor %s: %d bytes, manifest %d", filepath.Base(path), ti.Name, ti.Bytes, n)
		}
	}
}

func TestQuantReferenceLayouts(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "quant")
	var m struct {
		Types   []manifestEntry `json:"types"`
		Special struct {
			GGUFFile string `json:"gguf_file"`
			Layout   layout `json:"gguf_layout"`
		} `json:"special"`
	}
	if err := testref.ReadJSON(filepath.Join(dir, "manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Types) != 32 {
		t.Errorf("manifest lists %d types, want 32", len(m.Types))
	}
	for _, e := range m.Types {
		nb := map[string]int64{}
		for _, tn := range e.Tensors {
			nb[tn.Name] = tn.NBytes
		}
		if ty := dtype.FromGGML(e.ID); ty.BlockSize() != e.BlockSize || ty.BlockBytes() != e.TypeSize {
			t.Errorf("%s: dtype block %d/%d bytes, manifest %d/%d", e.Name, ty.BlockSize(), ty.BlockBytes(), e.BlockSize, e.TypeSize)
		}
		checkLayout(t, filepath.Join(dir, filepath.Base(e.GGUFFile)), e.Layout, false, nb)
	}
	checkLayout(t, filepath.Join(dir, filepath.Base(m.Special.GGUFFile)), m.Special.Layout, false, nil)
}

func TestForkTypeLayouts(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "fork-types")
	var m struct {
		Types []manifestEntry `json:"types"`
	}
	if err := testref.ReadJSON(filepath.Join(dir, "manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Types) == 0 {
		t.Fatal("no fork types in manifest")
	}
	for _, e := range m.Types {
		checkLayout(t, filepath.Join(dir, filepath.Base(e.GGUFFile)), e.Layout, true, nil)
	}
}

// TestZooGGUF checks every GGUF of the model zoo against the tensor types
// and shapes in expected/gguf_tensors.json.
func TestZooGGUF(t *testing.T) {
	zoo := filepath.Join(testref.SharedDir(t), "reference", "zoo")
	models, _ := filepath.Glob(filepath.Join(zoo, "*", "expected", "gguf_tensors.json"))
	if len(models) == 0 {
		t.Skip("no zoo gguf_tensors.json")
	}
	nfiles := 0
	for _, mf := range models {
		var m map[string]struct {
			Arch    string   `json:"general.architecture"`
			Files   []string `json:"files"`
			Tensors map[string]struct {
				NE     []uint64 `json:"ne"`
				TypeID uint32   `json:"type_id"`
			} `json:"tensors"`
		}
		if err := testref.ReadJSON(mf, &m); err != nil {
			t.Fatal(err)
		}
		gdir := filepath.Join(filepath.Dir(filepath.Dir(mf)), "gguf")
		for name, e := range m {
			found := map[string]bool{}
			for _, file := range e.Files {
				nfiles++
				b, err := os.ReadFile(filepath.Join(gdir, file))
				if err != nil {
					t.Fatal(err)
				}
				f, err := Parse(b, Options{})
				if err != nil {
					t.Errorf("%s: %v", file, err)
					continue
				}
				if kv, ok := f.Lookup("general.architecture"); ok {
					if s, _ := kv.String(); s != e.Arch {
						t.Errorf("%s: architecture %q, want %q", file, s, e.Arch)
					}
				}
				for i := range f.Tensors {
					ti := &f.Tensors[i]
					w, ok := e.Tensors[ti.Name]
					if !ok {
						continue
					}
					found[ti.Name] = true
					id, _ := ti.Type.GGMLID()
					if fmt.Sprint(ti.Dims) != fmt.Sprint(w.NE) || id != w.TypeID {
						t.Errorf("%s: %s %v type %d, want %v type %d", file, ti.Name, ti.Dims, id, w.NE, w.TypeID)
					}
				}
			}
			if len(found) != len(e.Tensors) {
				t.Errorf("%s: found %d of the %d listed tensors", name, len(found), len(e.Tensors))
			}
		}
	}
	if nfiles == 0 {
		t.Error("no zoo GGUF files checked")
	}
}
