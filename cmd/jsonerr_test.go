package cmd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/testref"
)

// The JSON files named on the command line (rules, baseline, manifest,
// merge parts) that do not parse are told in the user's terms — the key
// path and JSON types, the byte offset — never in encoding/json's Go
// struct and type names; each exits as its kind of file always did.

// jsonErrFile writes content to dir/name and returns the path.
func jsonErrFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantOneLine asserts the exit status, nothing on stdout, and stderr's first
// line exactly.
func wantOneLine(t *testing.T, args []string, code int, stdout, stderr string, wantCode int, want string) {
	t.Helper()
	first, _, _ := strings.Cut(stderr, "\n")
	if code != wantCode || stdout != "" || first != want {
		t.Errorf("qkv %s: exit %d, stdout %q, stderr %q\nwant exit %d and %q", strings.Join(args, " "), code, stdout, stderr, wantCode, want)
	}
}

func TestCheckJSONErrors(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tiny := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	jsonErrFile(t, dir, "r.json", `{"thresholds": {"dead_head": "x"}}`)
	jsonErrFile(t, dir, "g.json", "garbage\n")
	jsonErrFile(t, dir, "typo.json", "// rules\n{\"geometry\": {\"layer\": 3}}")
	jsonErrFile(t, dir, "short.json", `{"geometry": {"layers": 3`)
	jsonErrFile(t, dir, "m.json", `{"schema": "qkv.manifest/v1", "files": []}`)
	_, part, _ := run("check", tiny, "--shard", "0/2")
	jsonErrFile(t, dir, "cp0.json", part)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		// A rules file is a usage error (README: exit 2).
		{[]string{"--rules", "r.json"}, cmd.ExitUsage, "qkv: --rules r.json: rules: thresholds.dead_head must be a number, not a string"},
		{[]string{"--rules", "g.json"}, cmd.ExitUsage, "qkv: --rules g.json: rules: not valid JSON at byte 0: a value cannot start with 'g'"},
		{[]string{"--rules", "typo.json"}, cmd.ExitUsage, `qkv: --rules typo.json: rules: unknown key "layer" (did you mean "layers"?)`},
		{[]string{"--rules", "short.json"}, cmd.ExitUsage, "qkv: --rules short.json: rules: the JSON ends early"},
		// A baseline is an input (exit 3).
		{[]string{"--baseline", "g.json"}, cmd.ExitInput, "qkv: --baseline g.json: not a qkv inspect --json report: not valid JSON at byte 0: a value cannot start with 'g'"},
		{[]string{"--baseline", "m.json"}, cmd.ExitInput, `qkv: --baseline m.json: not a qkv inspect --json report: its schema is "qkv.manifest/v1", not qkv.inspect/v1`},
		{[]string{"--baseline", "cp0.json"}, cmd.ExitInput, "qkv: --baseline cp0.json: a qkv check --shard part, not a qkv inspect --json report"},
	} {
		args := append([]string{"check", tiny}, c.args...)
		code, out, errs := run(args...)
		wantOneLine(t, args, code, out, errs, c.code, c.want)
	}
}

func TestVerifyJSONErrors(t *testing.T) {
	verifyEnv(t, "")
	src := verifyCopy(t)
	dir := t.TempDir()
	t.Chdir(dir)
	jsonErrFile(t, dir, "m.json", `{"schema": "qkv.manifest/v1", "files": [{"path": "config.json", "size": "666", "sha256": ""}]}`)
	jsonErrFile(t, dir, "g.json", "garbage")
	jsonErrFile(t, dir, "k.json", `{"schema": "qkv.manifest/v1", "file": []}`)
	for _, c := range []struct{ manifest, want string }{
		{"m.json", "qkv: --manifest m.json: not a qkv manifest: files.size must be an integer, not a string"},
		{"g.json", "qkv: --manifest g.json: not a qkv manifest: not valid JSON at byte 0: a value cannot start with 'g'"},
		{"k.json", `qkv: --manifest k.json: not a qkv manifest: unknown key "file" (did you mean "files"?)`},
	} {
		args := []string{"verify", src, "--manifest", c.manifest}
		code, out, errs := runQKV(80, args...)
		wantOneLine(t, args, code, out, errs, cmd.ExitInput, c.want)
	}
}

func TestMergeJSONErrors(t *testing.T) {
	dir := t.TempDir()
	inspectParts := writeParts(t, 2, false)
	tiny := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	t.Chdir(dir)
	for i, p := range inspectParts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		jsonErrFile(t, dir, []string{"ip0.json", "ip1.json"}[i], string(b))
	}
	for _, i := range []string{"0", "1"} {
		code, part, errs := run("check", tiny, "--shard", i+"/2")
		if code != cmd.ExitOK {
			t.Fatalf("check --shard %s/2: exit %d: %s", i, code, errs)
		}
		jsonErrFile(t, dir, "cp"+i+".json", part)
	}
	jsonErrFile(t, dir, "g.json", "garbage")
	jsonErrFile(t, dir, "extra.json", strings.Replace(readString(t, filepath.Join(dir, "cp1.json")), "{", `{"fingerprnt": "",`, 1))
	for _, c := range []struct {
		parts []string
		want  string
	}{
		{[]string{"cp0.json", "ip1.json"}, "qkv: ip1.json: a qkv inspect --shard part, but cp0.json is a qkv check --shard part: qkv merge joins the parts of one kind"},
		{[]string{"ip0.json", "cp1.json"}, "qkv: cp1.json: a qkv check --shard part, but ip0.json is a qkv inspect --shard part: qkv merge joins the parts of one kind"},
		{[]string{"cp0.json", "extra.json"}, `qkv: extra.json: not a qkv check --shard part: unknown key "fingerprnt" (did you mean "fingerprint"?)`},
		{[]string{"cp0.json", "g.json"}, "qkv: g.json: not a qkv check --shard part: not valid JSON at byte 0: a value cannot start with 'g'"},
		{[]string{"g.json", "ip1.json"}, "qkv: g.json: not a qkv inspect --json report or part: not valid JSON at byte 0: a value cannot start with 'g'"},
	} {
		args := append([]string{"merge"}, c.parts...)
		code, out, errs := run(args...)
		wantOneLine(t, args, code, out, errs, cmd.ExitInput, c.want)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
