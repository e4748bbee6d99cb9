package cmd_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/source/hubtest"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestDocsRemoteSameOutput: ls, meta, layers, tokenize and diff print the
// same text for a zoo model read from its folder and through the Hub (a
// local test server) — but for diff's lines naming its inputs ("A: PATH",
// "B: PATH") — and the same JSON once "source" ("source_a", "source_b") and
// "io" are set aside.
func TestDocsRemoteSameOutput(t *testing.T) {
	zoo := filepath.Join(testref.SharedDir(t), "reference", "zoo", "llama")
	local := filepath.Join(zoo, "hf")
	h := hubtest.New(t)
	h.AddRepo(t, "org/llama", local)
	verifyEnv(t, h.URL)
	q8 := filepath.Join(zoo, "gguf", "llama-Q8_0.gguf")
	for _, c := range []struct{ local, remote []string }{
		{[]string{"ls", local}, []string{"ls", "hf://org/llama"}},
		{[]string{"meta", local}, []string{"meta", "hf://org/llama"}},
		{[]string{"layers", local}, []string{"layers", "hf://org/llama"}},
		{[]string{"tokenize", local, "Hello world"}, []string{"tokenize", "hf://org/llama", "Hello world"}},
		{[]string{"diff", q8, local}, []string{"diff", q8, "hf://org/llama"}},
	} {
		for _, width := range []int{80, 160} {
			_, lt, _ := runQKV(width, c.local...)
			code, rt, errs := runQKV(width, c.remote...)
			if code != 0 {
				t.Errorf("qkv %s: exit %d: %s", strings.Join(c.remote, " "), code, errs)
				continue
			}
			if c.local[0] == "diff" {
				lt, rt = withoutInputLines(lt), withoutInputLines(rt)
			}
			if lt != rt {
				t.Errorf("qkv %s at %d columns: the text differs from the local read:\n%s", strings.Join(c.remote, " "), width, lineDiff(lt, rt))
			}
		}
		_, lj, _ := runQKV(80, append(c.local, "--json")...)
		_, rj, _ := runQKV(80, append(c.remote, "--json")...)
		var a, b map[string]any
		if err := json.Unmarshal([]byte(lj), &a); err != nil {
			t.Fatalf("qkv %s --json: %v", strings.Join(c.local, " "), err)
		}
		if err := json.Unmarshal([]byte(rj), &b); err != nil {
			t.Fatalf("qkv %s --json: %v", strings.Join(c.remote, " "), err)
		}
		for _, k := range []string{"source", "source_a", "source_b", "io"} {
			delete(a, k)
			delete(b, k)
		}
		if !reflect.DeepEqual(a, b) {
			la, _ := json.MarshalIndent(a, "", " ")
			lb, _ := json.MarshalIndent(b, "", " ")
			t.Errorf("qkv %s --json differs from the local read beyond source and io:\n%s", strings.Join(c.remote, " "), lineDiff(string(la), string(lb)))
		}
	}
}

// withoutInputLines drops diff's "A: PATH" and "B: PATH" lines.
func withoutInputLines(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "A: ") && !strings.HasPrefix(l, "B: ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
