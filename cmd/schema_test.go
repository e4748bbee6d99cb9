package cmd_test

// Every --json document of every command, on every zoo model (the Hugging
// Face forms and every GGUF of ../shared/reference/zoo and zoo-modern) and
// on the project's own fixtures, validates against the JSON Schema its
// "schema" field names (internal/schema). A command that refuses an input
// (exit status 2 or 3, a message on stderr) writes no document and is not
// counted; every schema this file drives must have been validated at least
// once, and every model must have given some documents.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/schema"
	"github.com/qkvdev/qkv/internal/testref"
)

// schemaModel is one input of the schema test.
type schemaModel struct {
	name string // for the test's name
	path string
	gguf bool
	// zooGGUF: a GGUF of the zoo (the variants of each command are run on
	// the Hugging Face form of its model).
	zooGGUF bool
	// other is a second checkpoint of the same model, for diff ("" none).
	other string
}

// zooModels lists every zoo model's hf/ (and hf-sharded/) folder and GGUF
// file (for a split GGUF, its first part), each hf/ paired with the first
// GGUF of its folder for diff, and each GGUF with hf/.
func zooModels(t *testing.T) []schemaModel {
	shared := testref.SharedDir(t)
	var out []schemaModel
	for _, zoo := range []string{"zoo", "zoo-modern"} {
		dirs, err := filepath.Glob(filepath.Join(shared, "reference", zoo, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range dirs {
			if st, err := os.Stat(dir); err != nil || !st.IsDir() {
				continue
			}
			base := zoo + "/" + filepath.Base(dir)
			ggufs, _ := filepath.Glob(filepath.Join(dir, "gguf", "*.gguf"))
			sort.Strings(ggufs)
			var keep []string
			for _, g := range ggufs {
				if strings.Contains(g, "-split-") && !strings.Contains(g, "-00001-of-") {
					continue
				}
				keep = append(keep, g)
			}
			hf := filepath.Join(dir, "hf")
			if _, err := os.Stat(hf); err == nil {
				m := schemaModel{name: base + "/hf", path: hf}
				if len(keep) > 0 {
					m.other = keep[0]
				}
				out = append(out, m)
			}
			if hs := filepath.Join(dir, "hf-sharded"); dirExists(hs) {
				out = append(out, schemaModel{name: base + "/hf-sharded", path: hs, other: hf})
			}
			for _, g := range keep {
				m := schemaModel{name: base + "/" + filepath.Base(g), path: g, gguf: true, zooGGUF: true}
				if dirExists(hf) {
					m.other = hf
				}
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no zoo models found")
	}
	return out
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// fixtureModels are the project's own fixtures that commands read.
func fixtureModels() []schemaModel {
	td := filepath.Join("..", "testdata")
	out := []schemaModel{
		{name: "testdata/tiny-llama", path: filepath.Join(td, "tiny-llama"), other: filepath.Join(td, "tiny-llama-sharded")},
		{name: "testdata/tiny-llama-sharded", path: filepath.Join(td, "tiny-llama-sharded")},
	}
	ggufs, _ := filepath.Glob(filepath.Join(td, "gguf", "*.gguf"))
	for _, g := range ggufs {
		out = append(out, schemaModel{name: "testdata/gguf/" + filepath.Base(g), path: g, gguf: true, other: filepath.Join(td, "tiny-llama")})
	}
	for _, pattern := range []string{"arch/*/hf", "arch/*/*.gguf", "lora/*-peft"} {
		dirs, _ := filepath.Glob(filepath.Join(td, pattern))
		for _, d := range dirs {
			out = append(out, schemaModel{name: "testdata/" + filepath.ToSlash(strings.TrimPrefix(d, td+string(filepath.Separator))), path: d})
		}
	}
	return out
}

// schemaRuns are the command lines run on each model, in order: {} is the
// model, {2} the second checkpoint (diff; skipped without one), {tensor}
// the first tensor ls listed, {tmp} a scratch folder; a last argument
// ">FILE" saves stdout there (the parts merge joins). Every command runs
// on every model; the variants of a command (more flags, more of the
// document) run on the Hugging Face forms and the fixtures, where the
// GGUF forms would only repeat them at the cost of the test's time.
var schemaRuns = []struct {
	args     []string
	variants bool // a variant: not on the zoo's GGUFs
}{
	{[]string{"ls", "{}", "--json"}, false},
	{[]string{"meta", "{}", "--json"}, false},
	{[]string{"meta", "{}", "--json", "--full"}, true},
	{[]string{"layers", "{}", "--json"}, false},
	{[]string{"inspect", "{}", "--json", "--heads"}, false},
	{[]string{"inspect", "{}", "--json", "--spectrum"}, true},
	{[]string{"inspect", "{}", "--json", "--fast", "--heads"}, true},
	{[]string{"check", "{}", "--json"}, false},
	{[]string{"attn", "{}", "--json"}, false},
	{[]string{"attn", "{}", "--json", "--all", "--patterns"}, true},
	{[]string{"attn", "{}", "--json", "--random", "5", "--layer", "0"}, true},
	{[]string{"attn", "{}", "--json", "--random-repeat", "3", "--logits"}, true},
	{[]string{"diff", "{}", "{2}", "--json"}, false},
	{[]string{"diff", "{}", "{}", "--json", "--fail-above", "rel_fro=0.01", "--fail-below", "snr_db=40"}, true},
	{[]string{"tokenize", "{}", "--json", "--", "Hello, world! The capital of France is"}, false},
	{[]string{"verify", "{}", "--json"}, false},
	{[]string{"verify", "{}", "--write-manifest", "-"}, true},
	{[]string{"circuits", "{}", "--json"}, false},
	{[]string{"cat", "{}", "{tensor}", "--json", "--rows", "2"}, false},
	{[]string{"inspect", "{}", "--json", "--shard", "0/2", ">{tmp}/p0.json"}, true},
	{[]string{"inspect", "{}", "--json", "--shard", "1/2", ">{tmp}/p1.json"}, true},
	{[]string{"merge", "{tmp}/p0.json", "{tmp}/p1.json", "--json"}, true},
	{[]string{"report", "{}", "-o", "{tmp}/report.html", "--json", "--text", "Hello world"}, true},
}

func TestSchemaEveryCommandOnEveryModel(t *testing.T) {
	if err := schema.Load(); err != nil {
		t.Fatal(err)
	}
	models := append(zooModels(t), fixtureModels()...)
	known := registered()
	if code, out, errs := runQKV(80, "version", "--json"); code != 0 {
		t.Errorf("qkv version --json: exit %d: %s", code, errs)
	} else if err := schema.Validate([]byte(out)); err != nil {
		t.Errorf("qkv version --json: %v", err)
	}
	var mu sync.Mutex
	counts := map[string]int{}   // schema id -> documents validated
	perModel := map[string]int{} // model -> documents validated
	ran := map[string]bool{}     // models whose subtest ran (-run may select some)
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			mu.Lock()
			ran[m.name] = true
			mu.Unlock()
			t.Parallel()
			tmp, tensor := t.TempDir(), ""
			for _, sr := range schemaRuns {
				run := sr.args
				if !known[run[0]] || (sr.variants && m.zooGGUF) {
					continue
				}
				args, ok := expand(run, m, tmp, tensor)
				if !ok {
					continue
				}
				var save string
				if last := args[len(args)-1]; strings.HasPrefix(last, ">") {
					save, args = last[1:], args[:len(args)-1]
				}
				code, out, errs := runQKV(80, args...)
				if save != "" && code == 0 {
					if err := os.WriteFile(save, []byte(out), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if run[0] == "ls" && code == 0 && tensor == "" {
					tensor = firstTensor(out)
				}
				line := "qkv " + strings.Join(args, " ")
				if code == 3 {
					// Refused: no document (attn on an encoder, a tokenizer
					// qkv does not implement, …). A refusal must say why.
					if out != "" || errs == "" {
						t.Errorf("%s: exit %d with stdout %.200q and stderr %.200q", line, code, out, errs)
					}
					continue
				}
				if code != 0 && code != 1 {
					t.Errorf("%s: exit %d: %s", line, code, errs)
					continue
				}
				if err := schema.Validate([]byte(out)); err != nil {
					t.Errorf("%s: %v", line, err)
					continue
				}
				id := schemaID(out)
				mu.Lock()
				counts[id]++
				perModel[m.name]++
				mu.Unlock()
			}
		})
	}
	t.Cleanup(func() {
		if len(ran) < len(models) {
			return // a -run selection: the totals below are for whole runs
		}
		for _, id := range []string{"qkv.ls/v1", "qkv.meta/v1", "qkv.layers/v1", "qkv.inspect/v1", "qkv.inspect.partial/v1",
			"qkv.check/v1", "qkv.attn/v1", "qkv.diff/v1", "qkv.tokenize/v1", "qkv.verify/v1", "qkv.manifest/v1", "qkv.cat/v1"} {
			if counts[id] == 0 {
				t.Errorf("no %s document was validated", id)
			}
		}
		for _, c := range []struct{ cmd, id string }{{"circuits", "qkv.circuits/v1"}, {"report", "qkv.report/v1"}} {
			if known[c.cmd] && counts[c.id] == 0 {
				t.Errorf("no %s document was validated", c.id)
			}
		}
		for _, m := range models {
			if perModel[m.name] == 0 {
				t.Errorf("%s: no command gave a document", m.name)
			}
		}
		var ids []string
		for id := range counts {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var parts []string
		for _, id := range ids {
			parts = append(parts, id+" "+strconv.Itoa(counts[id]))
		}
		t.Logf("validated documents over %d models: %s", len(models), strings.Join(parts, ", "))
	})
}

// expand fills a command line's placeholders for m; false when it does
// not apply (diff without a second checkpoint).
func expand(run []string, m schemaModel, tmp, tensor string) ([]string, bool) {
	args := make([]string, len(run))
	for i, a := range run {
		a = strings.ReplaceAll(a, "{tmp}", tmp)
		switch a {
		case "{}":
			args[i] = m.path
		case "{2}":
			if m.other == "" {
				return nil, false
			}
			args[i] = m.other
		case "{tensor}":
			if tensor == "" {
				return nil, false
			}
			args[i] = tensor
		default:
			args[i] = a
		}
	}
	return args, true
}

// firstTensor is the name of the first tensor of a qkv.ls/v1 document.
func firstTensor(doc string) string {
	var ls struct {
		Tensors []struct{ Name string } `json:"tensors"`
	}
	if json.Unmarshal([]byte(doc), &ls) != nil || len(ls.Tensors) == 0 {
		return ""
	}
	return ls.Tensors[0].Name
}

// registered lists the commands qkv has (circuits, for one, comes with
// another change).
func registered() map[string]bool {
	root := cmd.NewRoot(&cmd.Streams{})
	out := map[string]bool{}
	for _, c := range root.Commands() {
		out[c.Name()] = true
	}
	return out
}

// schemaID reads the "schema" field of a document Validate accepted.
func schemaID(doc string) string {
	i := strings.Index(doc, `"schema": "`)
	if i < 0 {
		return ""
	}
	rest := doc[i+len(`"schema": "`):]
	return rest[:strings.IndexByte(rest, '"')]
}
