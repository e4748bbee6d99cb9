package cmd_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/formats/source/hubtest"
	"github.com/qkvdev/qkv/internal/schema"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestAttnRefusesBeforeWriting: what the run would refuse — logits from an
// encoder without an LM head, a token id outside the vocabulary, a head
// that does not exist — is refused before any report or file is written,
// although the reports stream layer by layer.
func TestAttnRefusesBeforeWriting(t *testing.T) {
	shared := testref.SharedDir(t)
	bert := filepath.Join(shared, "reference", "zoo", "bert", "hf")
	llama := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"attn", bert, "--all", "--json", "--random-repeat", "3", "--logits"}, cmd.ExitInput, "no LM head"},
		{[]string{"attn", bert, "--all", "--random-repeat", "3", "--logits"}, cmd.ExitInput, "no LM head"},
		{[]string{"attn", llama, "--all", "--json", "--tokens", "1,2,999"}, cmd.ExitUsage, "--tokens: id 999 is outside the vocabulary"},
		{[]string{"attn", llama, "--all", "--tokens", "1,-2", "--input-mode", "raw"}, cmd.ExitUsage, "--tokens: id -2"},
		{[]string{"attn", llama, "--all", "--json", "--random", "4", "--heads", "0,8"}, cmd.ExitUsage, "head 8 out of range"},
	} {
		out := filepath.Join(t.TempDir(), "o.safetensors")
		args := append(c.args, "--out", out)
		code, stdout, errs := run(args...)
		if code != c.code || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d naming %q", c.args[2:], code, errs, c.code, c.msg)
		}
		if stdout != "" {
			t.Errorf("%v: wrote %.200q before refusing", c.args[2:], stdout)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: --out written before refusing", c.args[2:])
		}
	}
}

// TestAttnJSONStreamed: the streamed documents validate against the
// schema, carry the checkpoint and the build, the KV head of every query
// head as integers (and each head's kv_head), and, with --logits, the
// predictions; one layer's document equals the same layer's part of --all.
func TestAttnJSONStreamed(t *testing.T) {
	model := filepath.Join(testref.SharedDir(t), "fixtures", "gguf", "stories260k-v3-f32")
	code, all, errs := run("attn", model, "--all", "--json", "--text", "Lily and Tom went to the park.", "--logits")
	if code != cmd.ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if err := schema.Validate([]byte(all)); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Source struct {
			Format string `json:"format"`
			Files  []struct {
				Name string `json:"name"`
			} `json:"files"`
		} `json:"source"`
		QKV struct {
			Version string `json:"version"`
		} `json:"qkv"`
		Settings struct {
			NHeads        int   `json:"n_heads"`
			NKVHeads      int   `json:"n_kv_heads"`
			KVHeadForHead []int `json:"kv_head_for_head"`
		} `json:"settings"`
		Layers []struct {
			Index int               `json:"index"`
			Heads []json.RawMessage `json:"heads"`
		} `json:"layers"`
		Forward struct {
			Predictions []struct {
				Prob float64 `json:"prob"`
			} `json:"predictions"`
		} `json:"forward"`
	}
	if err := json.Unmarshal([]byte(all), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Source.Format != "gguf" || len(doc.Source.Files) != 1 || doc.Source.Files[0].Name != "stories260K.gguf" || doc.QKV.Version == "" {
		t.Errorf("source %+v, qkv %+v", doc.Source, doc.QKV)
	}
	s := doc.Settings
	if len(s.KVHeadForHead) != s.NHeads || s.NHeads != 8 || s.NKVHeads != 4 {
		t.Fatalf("kv_head_for_head %v for %d heads, %d kv heads", s.KVHeadForHead, s.NHeads, s.NKVHeads)
	}
	for h, kv := range s.KVHeadForHead {
		if kv != h/2 {
			t.Errorf("kv_head_for_head[%d] = %d, want %d", h, kv, h/2)
		}
	}
	if len(doc.Layers) != 5 || len(doc.Forward.Predictions) != 10 || doc.Forward.Predictions[0].Prob < 0.5 {
		t.Fatalf("%d layers, predictions %+v", len(doc.Layers), doc.Forward.Predictions)
	}
	for _, l := range doc.Layers {
		for h, raw := range l.Heads {
			var head struct {
				Head   int `json:"head"`
				KVHead int `json:"kv_head"`
			}
			if err := json.Unmarshal(raw, &head); err != nil || head.Head != h || head.KVHead != h/2 {
				t.Errorf("layer %d head %d: %s", l.Index, h, raw)
			}
		}
	}
	// Layer 3 alone: its part of the document is the same bytes.
	code, one, errs := run("attn", model, "--layer", "3", "--json", "--text", "Lily and Tom went to the park.")
	if code != cmd.ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var a, b struct {
		Layers []json.RawMessage `json:"layers"`
	}
	if json.Unmarshal([]byte(all), &a) != nil || json.Unmarshal([]byte(one), &b) != nil || len(b.Layers) != 1 {
		t.Fatal("documents do not decode")
	}
	if string(a.Layers[3]) != string(b.Layers[0]) {
		t.Errorf("layer 3 alone differs from layer 3 of --all:\n%s\n%s", b.Layers[0], a.Layers[3])
	}
}

// TestAttnRemoteSameReport: a model read through the Hub (its emulator)
// gives the same text report as the local copy, and the same JSON once
// source and io — which say where it was read from — are removed; the
// remote document carries the reads in io, last.
func TestAttnRemoteSameReport(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "zoo-modern", "qwen3", "hf")
	h := hubtest.New(t)
	h.AddRepo(t, "org/qwen3", dir)
	verifyEnv(t, h.URL)
	for _, args := range [][]string{
		{"--all", "--text", "The capital of France is", "--logits"},
		{"--all", "--random", "5", "--seed", "3"},
		{"--layer", "1", "--random-repeat", "4", "--json"},
		{"--all", "--tokens", "1,2,3,4", "--json", "--logits"},
	} {
		code, local, errs := run(append([]string{"attn", dir}, args...)...)
		if code != cmd.ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		code, remote, errs := run(append([]string{"attn", "hf://org/qwen3"}, args...)...)
		if code != cmd.ExitOK {
			t.Fatalf("%v remote: exit %d: %s", args, code, errs)
		}
		if !strings.Contains(strings.Join(args, " "), "--json") {
			if local != remote {
				t.Errorf("%v: the remote report differs:\n%s", args, lineDiff(local, remote))
			}
			continue
		}
		var a, b map[string]json.RawMessage
		if json.Unmarshal([]byte(local), &a) != nil || json.Unmarshal([]byte(remote), &b) != nil {
			t.Fatalf("%v: documents do not decode", args)
		}
		if _, ok := b["io"]; !ok || a["io"] != nil {
			t.Errorf("%v: io block: local %s, remote %s", args, a["io"], b["io"])
		}
		if keys := topKeys(t, remote); keys[len(keys)-1] != "io" {
			t.Errorf("%v: io is not the last block: %v", args, keys)
		}
		for _, m := range []map[string]json.RawMessage{a, b} {
			delete(m, "source")
			delete(m, "io")
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("%v: the remote document differs beyond source and io", args)
		}
	}
}

// topKeys lists a JSON object's keys in the order written.
func topKeys(t *testing.T, doc string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}
