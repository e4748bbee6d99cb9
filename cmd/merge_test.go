package cmd_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
)

func runMergeQKV(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cmd.Run(context.Background(), args, &cmd.Streams{In: strings.NewReader(""), Out: &out, Err: &errb, Width: 100})
	return code, out.String(), errb.String()
}

// writeParts writes the parts of an n-shard run of tiny-llama as
// `qkv inspect --json` makes its report (head statistics computed, shown
// only with heads) and returns their paths.
func writeParts(t *testing.T, n int, heads bool) []string {
	t.Helper()
	ck, err := formats.Open("../testdata/tiny-llama", formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fp, err := inspect.Fingerprint(m)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for i := 0; i < n; i++ {
		rep, err := inspect.Run(context.Background(), m, inspect.Options{Heads: true, Part: &inspect.Part{Shard: inspect.Shard{I: i, N: n}, Fingerprint: fp, Version: cmd.Version}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !heads {
			rep.DropHeads()
		}
		src, build := ck.Source(), cmd.Build() // the provenance qkv inspect writes
		rep.Source, rep.QKV = &src, &build
		var buf bytes.Buffer
		if err := rep.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "part"+string(rune('0'+i))+".json")
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

func TestMergeCommand(t *testing.T) {
	for _, heads := range []bool{false, true} {
		args := []string{"inspect", "../testdata/tiny-llama", "--json"}
		if heads {
			args = append(args, "--heads")
		}
		code, whole, errs := runMergeQKV(args...)
		if code != cmd.ExitOK {
			t.Fatalf("inspect: exit %d: %s", code, errs)
		}
		code, table, errs := runMergeQKV(args[:len(args)-1]...)
		if heads {
			code, table, errs = runMergeQKV("inspect", "../testdata/tiny-llama", "--heads")
		}
		if code != cmd.ExitOK {
			t.Fatalf("inspect: exit %d: %s", code, errs)
		}
		for _, n := range []int{1, 3} {
			parts := writeParts(t, n, heads)
			// Any order of the files.
			rev := append([]string{}, parts...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			code, got, errs := runMergeQKV(append([]string{"merge", "--json"}, rev...)...)
			if code != cmd.ExitOK || errs != "" {
				t.Fatalf("heads=%v N=%d: exit %d: %s", heads, n, code, errs)
			}
			if got != whole {
				t.Errorf("heads=%v N=%d: merged JSON differs from qkv inspect --json:\n%s\nwant\n%s", heads, n, got, whole)
			}
			code, gotTable, errs := runMergeQKV(append([]string{"merge"}, parts...)...)
			if code != cmd.ExitOK || gotTable != table {
				t.Errorf("heads=%v N=%d: exit %d (%s), table:\n%s\nwant\n%s", heads, n, code, errs, gotTable, table)
			}
			if !strings.Contains(gotTable, "outlier_norm") {
				t.Errorf("heads=%v N=%d: the merged table lacks layer 3's outlier_norm finding:\n%s", heads, n, gotTable)
			}
		}
	}
}

func TestMergeCommandRefuses(t *testing.T) {
	parts := writeParts(t, 3, false)
	other := writeParts(t, 3, true) // --heads: other settings
	dir := t.TempDir()
	whole := filepath.Join(dir, "whole.json")
	_, out, _ := runMergeQKV("inspect", "../testdata/tiny-llama", "--json")
	if err := os.WriteFile(whole, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.json")
	if err := os.WriteFile(garbage, []byte("{\"schema\": 3"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no parts", nil, cmd.ExitUsage, "merge takes the part files"},
		{"missing shard", []string{parts[0], parts[2]}, cmd.ExitInput, "1 of 3 shards is missing: 1"},
		{"twice", []string{parts[0], parts[1], parts[1], parts[2]}, cmd.ExitInput, parts[1] + " (part 3): shard 1 of 3 was given twice"},
		{"whole report", []string{parts[0], whole}, cmd.ExitInput, whole + " (part 2): is a whole report"},
		{"other settings", []string{parts[0], other[1], parts[2]}, cmd.ExitInput, other[1] + " (part 2): settings differs"},
		{"no such file", []string{parts[0], filepath.Join(dir, "nope.json")}, cmd.ExitInput, "nope.json: no such file"},
		{"not JSON", []string{garbage}, cmd.ExitInput, garbage + ": not a qkv inspect --json report or part"},
		{"a folder", []string{dir}, cmd.ExitInput, "not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runMergeQKV(append([]string{"merge"}, c.args...)...)
			if code != c.code || stdout != "" || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and %q", code, stdout, stderr, c.code, c.want)
			}
		})
	}
}

// TestInspectShard: `qkv inspect --shard I/N` writes parts (JSON, with or
// without --json) that `qkv merge` joins into exactly `qkv inspect --json`;
// the shard also comes from a Kubernetes Indexed Job or a Slurm array
// (named on stderr), --shard none runs whole whatever they say, and a
// shard that cannot be used is a usage error naming the flag or variable.
func TestInspectShard(t *testing.T) {
	for _, v := range []string{"JOB_COMPLETION_INDEX", "JOB_COMPLETIONS", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
		"SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP"} {
		t.Setenv(v, "")
	}
	tiny := "../testdata/tiny-llama"
	code, whole, errs := runMergeQKV("inspect", tiny, "--json", "--heads")
	if code != cmd.ExitOK {
		t.Fatalf("inspect: exit %d: %s", code, errs)
	}
	dir := t.TempDir()
	for _, n := range []int{2, 3} {
		var parts []string
		for i := n - 1; i >= 0; i-- {
			args := []string{"inspect", tiny, "--heads", "--shard", fmt.Sprintf("%d/%d", i, n)}
			if i%2 == 0 {
				args = append(args, "--json")
			}
			code, part, errs := runMergeQKV(args...)
			if code != cmd.ExitOK || !strings.Contains(part, `"schema": "qkv.inspect.partial/v1"`) || errs != "" {
				t.Fatalf("%v: exit %d, %s", args, code, errs)
			}
			p := filepath.Join(dir, fmt.Sprintf("part-%d-%d.json", n, i))
			if err := os.WriteFile(p, []byte(part), 0o644); err != nil {
				t.Fatal(err)
			}
			parts = append(parts, p)
		}
		code, merged, errs := runMergeQKV(append([]string{"merge", "--json"}, parts...)...)
		if code != cmd.ExitOK || merged != whole {
			t.Errorf("N=%d: merge exit %d (%s), merged report equals the whole run's: %v", n, code, errs, merged == whole)
		}
	}
	// From the environment.
	t.Setenv("JOB_COMPLETION_INDEX", "1")
	t.Setenv("JOB_COMPLETIONS", "2")
	code, part, errs := runMergeQKV("inspect", tiny)
	if code != cmd.ExitOK || !strings.Contains(part, `"shard": 1`) || !strings.Contains(errs, "shard 1/2, from the Kubernetes Indexed Job (JOB_COMPLETION_INDEX)") {
		t.Errorf("Indexed Job: exit %d, stderr %q", code, errs)
	}
	if code, out, errs := runMergeQKV("inspect", tiny, "--shard", "none", "--json"); code != cmd.ExitOK || strings.Contains(out, "partial") || errs != "" {
		t.Errorf("--shard none: exit %d, %s", code, errs)
	}
	t.Setenv("JOB_COMPLETIONS", "")
	if code, _, errs := runMergeQKV("inspect", tiny); code != cmd.ExitUsage || !strings.HasPrefix(errs, "qkv: JOB_COMPLETIONS: ") {
		t.Errorf("Indexed Job without its count: exit %d, %q", code, errs)
	}
	t.Setenv("JOB_COMPLETION_INDEX", "")
	for _, bad := range []string{"2/2", "1", "a/b", "-1/3"} {
		if code, _, errs := runMergeQKV("inspect", tiny, "--shard", bad); code != cmd.ExitUsage || !strings.HasPrefix(errs, "qkv: --shard: ") {
			t.Errorf("--shard %s: exit %d, %q", bad, code, errs)
		}
	}
}
