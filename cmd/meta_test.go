package cmd_test

// Agreement tests for `qkv meta --json` (issue 2): GGUF key/values (keys,
// types, counts, values, record offsets, the first array items and whole
// arrays with --full) equal what internal/testref's independent reader
// finds; safetensors __metadata__ and config.json equal the files' JSON.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// metaJSON mirrors the qkv.meta/v1 document.
type metaJSON struct {
	Schema string `json:"schema"`
	Format string `json:"format"`
	GGUF   *struct {
		Version     uint32 `json:"version"`
		Endianness  string `json:"endianness"`
		Alignment   uint64 `json:"alignment"`
		TensorCount int    `json:"tensor_count"`
		KVCount     int    `json:"kv_count"`
		DataOffset  int64  `json:"data_offset"`
		Files       int    `json:"files"`
	} `json:"gguf"`
	Metadata []struct {
		Key       string `json:"key"`
		Type      string `json:"type"`
		Count     uint64 `json:"count"`
		Value     any    `json:"value"`
		Truncated bool   `json:"truncated"`
		NonFinite bool   `json:"non_finite"`
		Offset    int64  `json:"offset"`
	} `json:"metadata"`
	Config        map[string]any `json:"config"`
	ConfigPath    string         `json:"config_path"`
	AdapterConfig map[string]any `json:"adapter_config"`
}

// metaPreview is how many array items meta shows without --full.
const metaPreview = 8

// refTypeName is the type meta prints for a GGUF value.
func refTypeName(kv *testref.GGUFKV) string {
	if kv.Type == testref.GGUFArray {
		return "array[" + testref.GGUFValueTypeNames[kv.ElemType] + "]"
	}
	return testref.GGUFValueTypeNames[kv.Type]
}

// sameJSONValue compares a value decoded from meta's JSON (numbers as
// json.Number) with one read by testref; NaN and ±Inf must be null. It
// reports whether want holds a non-finite float.
func sameJSONValue(got, want any) (ok, nonFinite bool) {
	num := func() (string, bool) {
		n, isNum := got.(json.Number)
		return string(n), isNum
	}
	switch w := want.(type) {
	case string, bool:
		return got == want, false
	case uint8, uint16, uint32, uint64, int8, int16, int32, int64:
		s, isNum := num()
		return isNum && s == fmt.Sprint(w), false
	case float32:
		if math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) {
			return got == nil, true
		}
		s, isNum := num()
		f, err := strconv.ParseFloat(s, 32)
		return isNum && err == nil && float32(f) == w && math.Signbit(f) == math.Signbit(float64(w)), false
	case float64:
		if math.IsNaN(w) || math.IsInf(w, 0) {
			return got == nil, true
		}
		s, isNum := num()
		f, err := strconv.ParseFloat(s, 64)
		return isNum && err == nil && f == w && math.Signbit(f) == math.Signbit(w), false
	case []any:
		g, isArr := got.([]any)
		if !isArr || len(g) != len(w) {
			return false, false
		}
		okAll, bad := true, false
		for i := range w {
			o, b := sameJSONValue(g[i], w[i])
			okAll, bad = okAll && o, bad || b
		}
		return okAll, bad
	}
	return false, false
}

// checkMetaGGUF runs `qkv meta --json arg` on a GGUF and compares it with
// testref's reading of the first part (which holds a split set's metadata).
func checkMetaGGUF(t *testing.T, arg string) {
	t.Helper()
	want := refListGGUF(t, arg)
	g := want.Files[0].GGUF
	var got metaJSON
	runJSONInto(t, &got, "meta", "--json", arg)
	if got.Schema != "qkv.meta/v1" || got.Format != "gguf" || got.GGUF == nil {
		t.Fatalf("meta %s: schema %q format %q gguf %v", arg, got.Schema, got.Format, got.GGUF)
	}
	end := "little"
	if g.BigEndian {
		end = "big"
	}
	h := got.GGUF
	if h.Version != g.Version || h.Endianness != end || h.Alignment != g.Alignment || h.TensorCount != len(want.Tensors) ||
		h.KVCount != len(g.KVs) || h.DataOffset != g.DataOffset || h.Files != len(want.Files) {
		t.Errorf("meta %s: gguf %+v, want version %d %s alignment %d, %d tensors, %d kvs, data at %d, %d files", arg, *h,
			g.Version, end, g.Alignment, len(want.Tensors), len(g.KVs), g.DataOffset, len(want.Files))
	}
	if len(got.Metadata) != len(g.KVs) {
		t.Fatalf("meta %s: %d pairs, want %d", arg, len(got.Metadata), len(g.KVs))
	}
	for i := range g.KVs {
		kv, e := &g.KVs[i], got.Metadata[i]
		if e.Key != kv.Key || e.Type != refTypeName(kv) || e.Count != kv.Count || e.Offset != kv.Offset {
			t.Errorf("meta %s: pair %d = %s %s count %d at %d, want %s %s count %d at %d", arg, i,
				e.Key, e.Type, e.Count, e.Offset, kv.Key, refTypeName(kv), kv.Count, kv.Offset)
			continue
		}
		if wantTrunc := kv.Type == testref.GGUFArray && kv.Count > metaPreview; e.Truncated != wantTrunc {
			t.Errorf("meta %s: %s truncated=%v, want %v", arg, kv.Key, e.Truncated, wantTrunc)
		}
		ok, nonFinite := sameJSONValue(e.Value, kv.Value)
		if !ok {
			t.Errorf("meta %s: %s = %#v, want %#v", arg, kv.Key, e.Value, kv.Value)
		}
		if e.NonFinite != nonFinite {
			t.Errorf("meta %s: %s non_finite=%v, want %v", arg, kv.Key, e.NonFinite, nonFinite)
		}
	}
}

// checkMetaFull compares every item of every array longer than the
// preview (`meta --key K --full --json`) with testref's.
func checkMetaFull(t *testing.T, path string) {
	t.Helper()
	g, err := testref.ReadGGUF(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range g.KVs {
		kv := &g.KVs[i]
		if kv.Type != testref.GGUFArray || kv.Count <= metaPreview {
			continue
		}
		var got metaJSON
		runJSONInto(t, &got, "meta", "--json", "--full", "--key", kv.Key, path)
		if len(got.Metadata) != 1 || got.Metadata[0].Key != kv.Key || got.Metadata[0].Truncated {
			t.Errorf("meta --key %s --full %s: %d entries", kv.Key, path, len(got.Metadata))
			continue
		}
		if ok, _ := sameJSONValue(got.Metadata[0].Value, kv.Value); !ok {
			g, _ := got.Metadata[0].Value.([]any)
			t.Errorf("meta --key %s --full %s: %d items differ from the %d testref read", kv.Key, path, len(g), kv.Count)
		}
	}
}

// checkMetaSafetensors compares __metadata__ and config.json.
func checkMetaSafetensors(t *testing.T, c lsCase) {
	t.Helper()
	want := refListSafetensors(t, c.files...)
	var got metaJSON
	runJSONInto(t, &got, "meta", "--json", c.arg)
	if got.Schema != "qkv.meta/v1" || got.Format != "safetensors" || got.GGUF != nil {
		t.Errorf("meta %s: schema %q format %q", c.arg, got.Schema, got.Format)
	}
	// Keys from every shard; the first shard's value wins.
	wantMeta := map[string]string{}
	for _, f := range want.Files {
		for k, v := range f.STMeta {
			if _, ok := wantMeta[k]; !ok {
				wantMeta[k] = v
			}
		}
	}
	gotMeta := map[string]string{}
	for _, e := range got.Metadata {
		s, _ := e.Value.(string)
		if e.Type != "string" || e.Count != 1 {
			t.Errorf("meta %s: %s is %s count %d, want string 1", c.arg, e.Key, e.Type, e.Count)
		}
		gotMeta[e.Key] = s
	}
	if !reflect.DeepEqual(gotMeta, wantMeta) && !(len(gotMeta) == 0 && len(wantMeta) == 0) {
		t.Errorf("meta %s: __metadata__ %v, want %v", c.arg, gotMeta, wantMeta)
	}
	for _, x := range []struct {
		name string
		got  map[string]any
	}{{"config.json", got.Config}, {"adapter_config.json", got.AdapterConfig}} {
		p := filepath.Join(filepath.Dir(c.files[0]), x.name)
		b, err := os.ReadFile(p)
		if err != nil {
			if x.got != nil {
				t.Errorf("meta %s: %s %v, but there is no such file", c.arg, x.name, x.got)
			}
			continue
		}
		var want map[string]any
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(x.got, want) {
			t.Errorf("meta %s: %s differs from %s", c.arg, x.name, p)
		}
		if x.name == "config.json" && !sameFile(got.ConfigPath, p) {
			t.Errorf("meta %s: config_path %s, want %s", c.arg, got.ConfigPath, p)
		}
	}
}

func checkMetaCase(t *testing.T, c lsCase) {
	if strings.HasSuffix(c.files[0], ".gguf") {
		checkMetaGGUF(t, c.arg)
		return
	}
	checkMetaSafetensors(t, c)
}

func TestMetaAgreesShared(t *testing.T) {
	shared := testref.SharedDir(t)
	for _, sub := range []string{"fixtures", "reference"} {
		for _, c := range checkpointCases(t, filepath.Join(shared, sub)) {
			rel, _ := filepath.Rel(shared, c.arg)
			t.Run(rel, func(t *testing.T) { checkMetaCase(t, c) })
		}
	}
	// Whole arrays: tokenizer vocabularies up to 65024 entries, scores,
	// token types and merges.
	for _, p := range []string{"gguf/vocab/ggml-vocab-falcon.gguf", "gguf/vocab/ggml-vocab-phi-3.gguf",
		"gguf/vocab/ggml-vocab-bert-bge.gguf", "gguf/stories260k-v1-f32/tinyllamas-stories-260k-f32.gguf",
		"gguf/llama2-tiny-random/llama-2-tiny-random.gguf"} {
		t.Run("full/"+p, func(t *testing.T) { checkMetaFull(t, filepath.Join(shared, "fixtures", p)) })
	}
}

func TestMetaAgreesTestdata(t *testing.T) {
	root := testref.RepoRoot()
	for _, c := range checkpointCases(t, filepath.Join(root, "testdata")) {
		rel, _ := filepath.Rel(root, c.arg)
		t.Run(rel, func(t *testing.T) { checkMetaCase(t, c) })
	}
	for _, p := range []string{"tiny-llama-v1-f32.gguf", "tiny-llama-be-f16.gguf", "tiny-llama-split-00001-of-00003.gguf"} {
		t.Run("full/"+p, func(t *testing.T) { checkMetaFull(t, filepath.Join(root, "testdata", "gguf", p)) })
	}
}

// TestMetaVerifyFacts: values gguf-py printed in stories260k's VERIFY.txt.
func TestMetaVerifyFacts(t *testing.T) {
	shared := testref.SharedDir(t)
	var got metaJSON
	runJSONInto(t, &got, "meta", "--json", filepath.Join(shared, "fixtures/gguf/stories260k-v3-f32/stories260K.gguf"))
	vals := map[string]any{}
	for _, e := range got.Metadata {
		vals[e.Key] = e.Value
	}
	if got.GGUF == nil || got.GGUF.KVCount != 19 || got.GGUF.TensorCount != 48 || got.GGUF.Version != 3 {
		t.Errorf("header %+v, VERIFY.txt says v3, 19 kvs, 48 tensors", got.GGUF)
	}
	for k, v := range map[string]string{
		"llama.attention.head_count": "8", "llama.attention.head_count_kv": "4", "llama.block_count": "5",
		"llama.embedding_length": "64", "tokenizer.ggml.seperator_token_id": "4294967295",
	} {
		if n, _ := vals[k].(json.Number); string(n) != v {
			t.Errorf("%s = %v, VERIFY.txt says %s", k, vals[k], v)
		}
	}
	eps, _ := vals["llama.attention.layer_norm_rms_epsilon"].(json.Number)
	if f, err := strconv.ParseFloat(string(eps), 32); err != nil || float32(f) != float32(9.999999747378752e-06) {
		t.Errorf("eps = %v, VERIFY.txt says 9.999999747378752e-06 (float32)", eps)
	}
	toks, _ := vals["tokenizer.ggml.tokens"].([]any)
	if len(toks) < 6 || !reflect.DeepEqual(toks[:6], []any{"<unk>", "<s>", "</s>", "<0x00>", "<0x01>", "<0x02>"}) {
		t.Errorf("tokens %v", toks)
	}
}

// TestMetaKeyMissing: --key with an absent key fails with exit 3.
func TestMetaKeyMissing(t *testing.T) {
	code, out, errs := runQKV(80, "meta", "--key", "no.such.key", filepath.Join(testref.RepoRoot(), "testdata/gguf/tiny-llama-v3-f32.gguf"))
	if code != 3 || out != "" || !strings.Contains(errs, "no.such.key") {
		t.Errorf("exit %d stdout %q stderr %q", code, out, errs)
	}
}

// TestMetaKeyHint: an unknown --key names the keys it looks like, or says
// that it is config.json's.
func TestMetaKeyHint(t *testing.T) {
	for _, c := range []struct{ path, key, want string }{
		{"../testdata/gguf/tiny-llama-v3-f32.gguf", "general.nam", `no metadata key "general.nam"; did you mean "general.name"?`},
		{"../testdata/gguf/tiny-llama-v3-f32.gguf", "llama.block_cont", `did you mean "llama.block_count"?`},
		{"../testdata/tiny-llama", "hidden_size", `no metadata key "hidden_size" (it is a key of config.json, shown by qkv meta without --key)`},
		{"../testdata/tiny-llama", "zzz", `no metadata key "zzz" (qkv meta lists them)`},
	} {
		code, out, errs := runQKV(80, "meta", c.path, "--key", c.key)
		if code != 3 || out != "" || !strings.Contains(errs, c.want) {
			t.Errorf("meta %s --key %s: exit %d, stdout %q, stderr %q; want 3 and %q", c.path, c.key, code, out, errs, c.want)
		}
	}
}
