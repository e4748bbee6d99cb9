package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

// The CLI-wide conventions of issue 17: colour decided by --color,
// NO_COLOR, CLICOLOR_FORCE, CLICOLOR and TERM; --version with the build's
// commit and date; completion of flag values, tensor names and metadata
// keys from the headers; the provenance blocks of every JSON document.

func runIn(s *Streams, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	s.In, s.Out, s.Err = strings.NewReader(""), &out, &errb
	if s.Width == 0 {
		s.Width = 80
	}
	code := Run(context.Background(), args, s)
	return code, out.String(), errb.String()
}

func TestColorAuto(t *testing.T) {
	for _, c := range []struct {
		tty  bool
		env  map[string]string
		want bool
	}{
		{true, nil, true},
		{false, nil, false},
		{true, map[string]string{"NO_COLOR": "1"}, false},
		{true, map[string]string{"NO_COLOR": ""}, true}, // set but empty: no-color.org says it does not count
		{true, map[string]string{"TERM": "dumb"}, false},
		{false, map[string]string{"CLICOLOR_FORCE": "1"}, true},
		{false, map[string]string{"CLICOLOR_FORCE": "0"}, false},
		{true, map[string]string{"CLICOLOR_FORCE": "1", "NO_COLOR": "1"}, false},
		{true, map[string]string{"TERM": "dumb", "CLICOLOR_FORCE": "yes"}, true},
		{true, map[string]string{"CLICOLOR": "0"}, false},
	} {
		if got := colorAuto(c.tty, func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("tty=%v env=%v: styled %v, want %v", c.tty, c.env, got, c.want)
		}
	}
}

var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

func TestColorFlag(t *testing.T) {
	model := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	_, plain, _ := runIn(&Streams{}, "ls", model)
	if ansiEscape.MatchString(plain) {
		t.Fatal("styled without a terminal")
	}
	code, forced, errs := runIn(&Streams{}, "ls", model, "--color", "always")
	if code != 0 || !ansiEscape.MatchString(forced) {
		t.Errorf("--color always: exit %d, no escapes: %s%s", code, forced, errs)
	}
	_, never, _ := runIn(&Streams{Styled: true}, "--color=never", "ls", model)
	if never != plain {
		t.Errorf("--color never on a terminal differs from plain output:\n%s", never)
	}
	if code, _, errs := runIn(&Streams{}, "ls", model, "--color", "rainbow"); code != ExitUsage || !strings.Contains(errs, "--color must be auto, always or never") {
		t.Errorf("--color rainbow: exit %d %s", code, errs)
	}
}

func TestVersion(t *testing.T) {
	_, out, _ := runIn(&Streams{}, "--version")
	in := Build()
	if !strings.HasPrefix(out, "qkv "+in.Version+" (") || !strings.Contains(out, in.Go) || strings.Count(out, "\n") != 1 {
		t.Errorf("--version: %q", out)
	}
	if in.Commit != "" && !strings.Contains(out, "commit "+in.Commit[:min(12, len(in.Commit))]) {
		t.Errorf("--version does not name the commit %s: %q", in.Commit, out)
	}
	_, out2, _ := runIn(&Streams{}, "version")
	if out2 != out {
		t.Errorf("qkv version %q, qkv --version %q", out2, out)
	}
	var doc struct {
		Schema, Version string
		QKV             struct{ Version, Go string }
	}
	_, js, _ := runIn(&Streams{}, "version", "--json")
	if err := json.Unmarshal([]byte(js), &doc); err != nil || doc.Schema != "qkv.version/v1" || doc.Version != in.Version || doc.QKV.Go != in.Go {
		t.Errorf("version --json: %v %s", err, js)
	}
}

// complete runs cobra's completion request and returns the candidates.
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	code, out, errs := runIn(&Streams{}, append([]string{"__complete"}, args...)...)
	if code != 0 {
		t.Fatalf("__complete %v: exit %d %s", args, code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], ":") {
		t.Fatalf("__complete %v: no directive: %q", args, out)
	}
	return lines[:len(lines)-1]
}

func TestCompletion(t *testing.T) {
	root := testref.RepoRoot()
	st := filepath.Join(root, "testdata", "tiny-llama")
	gg := filepath.Join(root, "testdata", "gguf", "tiny-llama-v3-f32.gguf")
	ck, err := formats.Open(gg, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	var wantTensors []string
	for _, tn := range ck.Tensors {
		if strings.HasPrefix(tn.Name, "blk.1.") {
			wantTensors = append(wantTensors, tn.Name)
		}
	}
	var wantKeys []string
	for _, kv := range ck.GGUF().KVs {
		if strings.HasPrefix(kv.Key, "general.") {
			wantKeys = append(wantKeys, kv.Key)
		}
	}
	if len(wantTensors) < 4 || len(wantKeys) < 2 {
		t.Fatalf("fixture: %d tensors, %d keys", len(wantTensors), len(wantKeys))
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"cat", gg, "blk.1."}, wantTensors},
		{[]string{"cat", st, "model.layers.3.self_attn.q"}, []string{"model.layers.3.self_attn.q_proj.weight"}},
		{[]string{"meta", gg, "--key", "general."}, wantKeys},
		{[]string{"ls", st, "--color", ""}, colorValues},
		{[]string{"extract", st, "--matrices", ""}, []string{"q", "k", "v", "o", "q,k", "q,k,v,o"}},
		{[]string{"inspect", st, "--layers", "1,"}, []string{"1,0", "1,1", "1,2", "1,3"}},
		{[]string{"cat", "/no/such/model", ""}, nil},
	} {
		got := complete(t, c.args...)
		if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("complete %v:\n got %q\nwant %q", c.args, got, c.want)
		}
	}
}

// TestProvenance: every report's blocks — source and qkv always, io only
// for a remote input.
func TestProvenance(t *testing.T) {
	ck, err := formats.Open(filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama-sharded"), formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	type doc struct {
		Schema string `json:"schema"`
		Provenance
		N int `json:"n"`
	}
	b, _ := json.Marshal(doc{Schema: "qkv.test/v1", Provenance: newProvenance(ck), N: 1})
	s := string(b)
	if !strings.HasPrefix(s, `{"schema":"qkv.test/v1","source":{"input":`) || !strings.Contains(s, `"qkv":{"version":`) ||
		strings.Contains(s, `"io"`) || !strings.Contains(s, `"name":"model-00001-of-00002.safetensors"`) {
		t.Errorf("%s", s)
	}
	b, _ = json.Marshal(newPairProvenance(ck, ck))
	if s := string(b); !strings.HasPrefix(s, `{"source_a":{`) || !strings.Contains(s, `"source_b":{`) || strings.Contains(s, `"io"`) {
		t.Errorf("%s", s)
	}
}
