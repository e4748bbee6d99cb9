package cmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// runTokenizeCmd runs the tokenize command built by its constructor.
func runTokenizeCmd(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	s := &Streams{In: strings.NewReader(stdin), Out: &out, Err: &errb, Width: 80}
	c := NewCmdTokenize(s, nil)
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&errb)
	c.SilenceUsage, c.SilenceErrors = true, true
	code := ExitOK
	if err := c.Execute(); err != nil {
		code = exitCode(err)
		errb.WriteString(err.Error())
	}
	return out.String(), errb.String(), code
}

func TestTokenizeStories(t *testing.T) {
	shared := testref.SharedDir(t)
	model := filepath.Join(shared, "fixtures/gguf/stories260k-v3-f32/stories260K.gguf")

	// Hand-derived from the vocabulary (see formats/tokenizer's tests).
	out, errOut, code := runTokenizeCmd(t, "", model, "Once upon a time")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"ids: 1 403 407 261 378", "▁Once", "▁upon", "BOS added", "<s>"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out, errOut, code = runTokenizeCmd(t, "", "--json", "--no-special", model, "--", "Once upon a time")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Schema   string   `json:"schema"`
		Model    string   `json:"model"`
		IDs      []int    `json:"ids"`
		Pieces   []string `json:"pieces"`
		AddedBOS bool     `json:"added_bos"`
		BOS      *int     `json:"bos"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Schema != "qkv.tokenize/v1" || rep.Model != "llama" || rep.AddedBOS || rep.BOS == nil || *rep.BOS != 1 {
		t.Errorf("report %+v", rep)
	}
	if want := []int{403, 407, 261, 378}; !equalIntSlices(rep.IDs, want) {
		t.Errorf("ids %v, want %v", rep.IDs, want)
	}
	if want := []string{"▁Once", "▁upon", "▁a", "▁time"}; strings.Join(rep.Pieces, "|") != strings.Join(want, "|") {
		t.Errorf("pieces %q, want %q", rep.Pieces, want)
	}

	// TEXT "-" reads standard input; special-token text is parsed by default.
	out, _, code = runTokenizeCmd(t, "<s>Lily", model, "-")
	if code != ExitOK || !strings.Contains(out, "ids: 1 1 317") {
		t.Errorf("stdin: exit %d\n%s", code, out)
	}
	out, _, _ = runTokenizeCmd(t, "<s>Lily", "--no-special", model, "-")
	if strings.Contains(out, "ids: 1 ") {
		t.Errorf("--no-special parsed <s>:\n%s", out)
	}
}

func TestTokenizeErrors(t *testing.T) {
	dir := t.TempDir()
	unigram := filepath.Join(dir, "tokenizer.json")
	os.WriteFile(unigram, []byte(`{"model": {"type": "Unigram", "vocab": [["<unk>", 0.0]]}}`), 0o644)
	_, errOut, code := runTokenizeCmd(t, "", unigram, "x")
	if code != ExitInput || !strings.Contains(errOut, "Unigram") {
		t.Errorf("Unigram: exit %d, %q", code, errOut)
	}
	_, _, code = runTokenizeCmd(t, "", unigram)
	if code != ExitUsage {
		t.Errorf("missing TEXT: exit %d, want %d", code, ExitUsage)
	}
	_, _, code = runTokenizeCmd(t, "", filepath.Join(dir, "nothing-here.gguf"), "x")
	if code != ExitInput {
		t.Errorf("missing file: exit %d", code)
	}
}

// Pieces from the file reach the terminal with control characters escaped.
func TestTokenizeSanitises(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokenizer.json")
	doc := `{"model": {"type": "WordLevel", "unk_token": "\u001b[31mred", "vocab": {"\u001b[31mred": 0, "a\\b": 1, "z\u200bw": 2}},
		"pre_tokenizer": {"type": "WhitespaceSplit"}}`
	os.WriteFile(path, []byte(doc), 0o644)
	out, errOut, code := runTokenizeCmd(t, "", path, `nothing a\b z`+"\u200b"+`w`)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.ContainsRune(out, 0x1b) || strings.ContainsRune(out, 0x200b) {
		t.Errorf("raw control characters in output:\n%q", out)
	}
	for _, want := range []string{`\x1b[31mred`, `a\\b`, `z\u200bw`, "ids: 0 1 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func equalIntSlices(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
