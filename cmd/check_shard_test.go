package cmd_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/internal/schema"
	"github.com/qkvdev/qkv/internal/testref"
)

// checkShardModels are the checkpoints the sharded check is compared on:
// testdata's tiny-llama (planted dead, duplicated and outlier heads and
// zero rows: findings that span layers among them), a copy with NaN in
// one layer and an all-zero tensor, and with ../shared every zoo model.
func checkShardModels(t *testing.T) []string {
	root := testref.RepoRoot()
	tiny := filepath.Join(root, "testdata", "tiny-llama")
	broken := checkCopyModel(t, tiny)
	checkPatchTensor(t, filepath.Join(broken, "model.safetensors"), "model.layers.2.self_attn.k_proj.weight", func(b []byte) {
		copy(b[4*70:], []byte{0, 0, 0xc0, 0x7f}) // a NaN
	})
	checkPatchTensor(t, filepath.Join(broken, "model.safetensors"), "model.layers.0.mlp.up_proj.weight", func(b []byte) { clear(b) })
	paths := []string{tiny, broken, filepath.Join(root, "testdata", "gguf", "tiny-llama-v3-f32.gguf"), filepath.Join(root, "testdata", "lora", "gpt2-c_attn-peft")}
	if _, err := os.Stat(filepath.Join(root, "..", "shared")); err == nil {
		shared := testref.SharedDir(t)
		for _, g := range []string{"reference/zoo/*/hf", "reference/zoo-modern/*/hf", "reference/zoo/llama/gguf/llama-Q4_K_M.gguf", "reference/zoo-modern/deepseek_v3/gguf/deepseek_v3-Q8_0.gguf"} {
			m, _ := filepath.Glob(filepath.Join(shared, g))
			paths = append(paths, m...)
		}
	}
	return paths
}

// TestCheckShardsMerge: `qkv check --shard I/N` for every I, merged by `qkv
// merge`, gives byte for byte the unsharded `qkv check --format json` (and
// the same text, and exit status), for N = 1, 2, 3 and 7 — more shards
// than layers included — on every model of checkShardModels.
func TestCheckShardsMerge(t *testing.T) {
	for _, model := range checkShardModels(t) {
		name, _ := filepath.Rel(filepath.Dir(filepath.Dir(model)), model)
		t.Run(name, func(t *testing.T) {
			wantCode, want, errs := run("check", model, "--format", "json")
			if wantCode != cmd.ExitOK && wantCode != cmd.ExitFindings {
				t.Fatalf("check: exit %d: %s", wantCode, errs)
			}
			_, wantText, _ := run("check", model)
			dir := t.TempDir()
			for _, n := range []int{1, 2, 3, 7} {
				var parts []string
				for i := 0; i < n; i++ {
					code, out, errs := run("check", model, "--shard", fmt.Sprintf("%d/%d", i, n))
					if code != cmd.ExitOK {
						t.Fatalf("shard %d/%d: exit %d: %s", i, n, code, errs)
					}
					p := filepath.Join(dir, fmt.Sprintf("part-%d-%d.json", n, i))
					if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
						t.Fatal(err)
					}
					parts = append(parts, p)
				}
				// Parts in any order.
				parts[0], parts[n-1] = parts[n-1], parts[0]
				code, got, errs := run(append([]string{"merge", "--format", "json"}, parts...)...)
				if code != wantCode || got != want {
					t.Fatalf("N=%d: merge exit %d (want %d) %s\n%s", n, code, wantCode, errs, lineDiff(want, got))
				}
				if _, text, _ := run(append([]string{"merge"}, parts...)...); text != wantText {
					t.Errorf("N=%d: merged text differs:\n%s", n, lineDiff(wantText, text))
				}
			}
		})
	}
}

// TestCheckShardsBaseline: drift is recomputed by the merge from the same
// --baseline file, and the merge refuses without it, with another file,
// with a missing or doubled shard and with parts of another model.
func TestCheckShardsBaseline(t *testing.T) {
	tiny := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	code, rep, errs := run("inspect", "--json", tiny)
	if code != 0 {
		t.Fatalf("inspect: %d %s", code, errs)
	}
	base := checkTempFile(t, "base.json", rep)
	changed := checkCopyModel(t, tiny)
	checkPatchTensor(t, filepath.Join(changed, "model.safetensors"), "model.layers.2.self_attn.v_proj.weight", func(b []byte) {
		for i := 0; i < len(b); i += 4 * 7 {
			b[i+3] ^= 0x80 // flip signs: the spectrum moves
		}
	})
	wantCode, want, _ := run("check", changed, "--baseline", base, "--format", "json")
	if wantCode != cmd.ExitFindings || !strings.Contains(want, `"drift"`) {
		t.Fatalf("check with baseline: exit %d\n%s", wantCode, want)
	}
	dir := t.TempDir()
	var parts []string
	for i := 0; i < 3; i++ {
		code, out, errs := run("check", changed, "--baseline", base, "--shard", fmt.Sprintf("%d/3", i))
		if code != 0 {
			t.Fatalf("shard %d: %d %s", i, code, errs)
		}
		p := filepath.Join(dir, fmt.Sprintf("p%d.json", i))
		os.WriteFile(p, []byte(out), 0o644)
		parts = append(parts, p)
	}
	if code, got, errs := run(append([]string{"merge", "--format", "json", "--baseline", base}, parts...)...); code != wantCode || got != want {
		t.Fatalf("merge with baseline: exit %d %s\n%s", code, errs, lineDiff(want, got))
	}
	other := checkTempFile(t, "other.json", strings.Replace(rep, `"layers"`, ` "layers"`, 1))
	_, otherPart, _ := run("check", filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama-sharded"), "--shard", "1/3", "--baseline", base)
	op := checkTempFile(t, "other-part.json", otherPart)
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{parts, "give the same file with --baseline"},
		{append([]string{"--baseline", other}, parts...), "is not the file the parts were checked against"},
		{parts[:2], "1 of 3 shards is missing: 2"},
		{[]string{"--baseline", base, parts[0], parts[1], parts[1]}, "given twice"},
		{[]string{"--baseline", base, parts[0], op, parts[2]}, "is of a different checkpoint"},
	} {
		code, _, errs := run(append([]string{"merge"}, c.args...)...)
		if code != cmd.ExitInput || !strings.Contains(errs, c.msg) {
			t.Errorf("merge %v: exit %d, stderr %q; want 3 and %q", c.args, code, errs, c.msg)
		}
	}
}

// TestCheckPartSchema: parts and the merged result validate against their
// schemas (qkv.check.partial/v1, qkv.check/v1).
func TestCheckPartSchema(t *testing.T) {
	for _, model := range checkShardModels(t)[:4] {
		var parts []string
		for i := 0; i < 2; i++ {
			_, out, _ := run("check", model, "--shard", fmt.Sprintf("%d/2", i))
			if err := schema.ValidateAs("qkv.check.partial/v1", []byte(out)); err != nil {
				t.Errorf("%s part %d: %v", model, i, err)
			}
			parts = append(parts, checkTempFile(t, fmt.Sprintf("p%d.json", i), out))
		}
		_, merged, _ := run(append([]string{"merge", "--json"}, parts...)...)
		if err := schema.ValidateAs("qkv.check/v1", []byte(merged)); err != nil {
			t.Errorf("%s merged: %v", model, err)
		}
	}
}
