package inspect

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// TestShardLayers: for every L and N the shards are contiguous, in order,
// disjoint, cover every layer, and differ in size by at most one.
func TestShardLayers(t *testing.T) {
	for l := 0; l <= 40; l++ {
		all := make([]int, l)
		for i := range all {
			all[i] = 100 + 3*i // indices need not be 0..L-1
		}
		for n := 1; n <= 12; n++ {
			var joined []int
			lo, hi := l, 0
			for i := 0; i < n; i++ {
				got := Shard{I: i, N: n}.Layers(all)
				joined = append(joined, got...)
				lo, hi = min(lo, len(got)), max(hi, len(got))
			}
			if fmt.Sprint(joined) != fmt.Sprint(all) {
				t.Fatalf("L=%d N=%d: shards join to %v", l, n, joined)
			}
			if hi-lo > 1 {
				t.Errorf("L=%d N=%d: shard sizes from %d to %d", l, n, lo, hi)
			}
		}
	}
	// The documented example: 22 layers in 4 shards.
	all := make([]int, 22)
	for i := range all {
		all[i] = i
	}
	var sizes []int
	for i := 0; i < 4; i++ {
		sizes = append(sizes, len(Shard{I: i, N: 4}.Layers(all)))
	}
	if fmt.Sprint(sizes) != "[5 6 5 6]" {
		t.Errorf("22 layers in 4 shards: sizes %v", sizes)
	}
	if got := (Shard{I: 2, N: 2}).Layers(all); got != nil {
		t.Errorf("invalid shard gave layers %v", got)
	}
}

func TestParseShard(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Shard
		err  string
	}{
		{"0/1", Shard{0, 1}, ""},
		{"3/4", Shard{3, 4}, ""},
		{" 2 / 7 ", Shard{2, 7}, ""},
		{"4/4", Shard{}, "from 0 to 3"},
		{"-1/4", Shard{}, "from 0 to 3"},
		{"0/0", Shard{}, "at least one shard"},
		{"1", Shard{}, "not I/N"},
		{"a/b", Shard{}, "whole numbers"},
		{"1/2/3", Shard{}, "whole numbers"},
		{"", Shard{}, "not I/N"},
	} {
		got, err := ParseShard(c.in)
		if c.err == "" {
			if err != nil || got != c.want {
				t.Errorf("%q: %v, %v; want %v", c.in, got, err, c.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: error %v, want one with %q", c.in, err, c.err)
		}
	}
}

func TestShardFromEnv(t *testing.T) {
	for _, c := range []struct {
		name     string
		flag     string
		env      map[string]string
		want     Shard
		source   string
		sharded  bool
		errVar   string // the variable the error must name
		errMatch string
	}{
		{name: "nothing", want: Shard{0, 1}, source: ""},
		{name: "flag", flag: "1/3", want: Shard{1, 3}, source: "--shard", sharded: true},
		{name: "flag wins", flag: "0/2", env: map[string]string{"JOB_COMPLETION_INDEX": "5", "JOB_COMPLETIONS": "8"}, want: Shard{0, 2}, source: "--shard", sharded: true},
		{name: "bad flag", flag: "2/2", errVar: "--shard", errMatch: "from 0 to 1"},
		{name: "none", flag: "none", env: map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}, want: Shard{0, 1}, source: "--shard"},
		{name: "none without env", flag: "none", want: Shard{0, 1}, source: "--shard"},
		{name: "k8s", env: map[string]string{"JOB_COMPLETION_INDEX": "5", "JOB_COMPLETIONS": "8"}, want: Shard{5, 8}, source: "kubernetes", sharded: true},
		{name: "k8s count without index", env: map[string]string{"JOB_COMPLETIONS": "8"}, errVar: "JOB_COMPLETION_INDEX", errMatch: "completionMode: Indexed"},
		{name: "k8s without count", env: map[string]string{"JOB_COMPLETION_INDEX": "0"}, errVar: "JOB_COMPLETIONS", errMatch: "spec.completions"},
		{name: "k8s index too big", env: map[string]string{"JOB_COMPLETION_INDEX": "8", "JOB_COMPLETIONS": "8"}, errVar: "JOB_COMPLETION_INDEX", errMatch: "not below"},
		{name: "k8s not a number", env: map[string]string{"JOB_COMPLETION_INDEX": "x", "JOB_COMPLETIONS": "8"}, errVar: "JOB_COMPLETION_INDEX", errMatch: `"x"`},
		{name: "k8s zero count", env: map[string]string{"JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "0"}, errVar: "JOB_COMPLETION_INDEX"},
		{name: "k8s negative count", env: map[string]string{"JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "-2"}, errVar: "JOB_COMPLETIONS"},
		{name: "slurm count", env: map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}, want: Shard{2, 4}, source: "slurm", sharded: true},
		{name: "slurm min max", env: map[string]string{"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_MAX": "15", "SLURM_ARRAY_TASK_COUNT": "6"}, want: Shard{2, 6}, source: "slurm", sharded: true},
		{name: "slurm step", env: map[string]string{"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "12", "SLURM_ARRAY_TASK_STEP": "4"}, want: Shard{2, 4}, source: "slurm", sharded: true},
		{name: "slurm list", env: map[string]string{"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "9", "SLURM_ARRAY_TASK_COUNT": "3"}, errVar: "SLURM_ARRAY_TASK_COUNT", errMatch: "not one evenly spaced range"},
		{name: "slurm off step", env: map[string]string{"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "8", "SLURM_ARRAY_TASK_STEP": "2"}, errVar: "SLURM_ARRAY_TASK_ID", errMatch: "not in the array"},
		{name: "slurm count only, id too big", env: map[string]string{"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"}, errVar: "SLURM_ARRAY_TASK_ID", errMatch: "numbered 0..3"},
		{name: "slurm nothing else", env: map[string]string{"SLURM_ARRAY_TASK_ID": "1"}, errVar: "SLURM_ARRAY_TASK_COUNT", errMatch: "sbatch --array"},
		{name: "slurm bad min", env: map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "one", "SLURM_ARRAY_TASK_MAX": "3"}, errVar: "SLURM_ARRAY_TASK_MIN"},
		{name: "slurm max below min", env: map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_MAX": "1"}, errVar: "SLURM_ARRAY_TASK_MAX"},
		{name: "slurm zero step", env: map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_MAX": "3", "SLURM_ARRAY_TASK_STEP": "0"}, errVar: "SLURM_ARRAY_TASK_STEP"},
		{name: "both", env: map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2", "JOB_COMPLETION_INDEX": "0", "JOB_COMPLETIONS": "2"}, errVar: "JOB_COMPLETION_INDEX", errMatch: "both"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, source, sharded, err := ShardFromEnv(c.flag, func(k string) string { return c.env[k] })
			if c.errVar != "" {
				var se *ShardError
				if !errors.As(err, &se) || se.Var != c.errVar || !strings.HasPrefix(err.Error(), c.errVar+": ") || !strings.Contains(err.Error(), c.errMatch) {
					t.Fatalf("error %v, want one naming %s with %q", err, c.errVar, c.errMatch)
				}
				return
			}
			if err != nil || s != c.want || source != c.source || sharded != c.sharded {
				t.Errorf("got %v %q %v %v, want %v %q %v", s, source, sharded, err, c.want, c.source, c.sharded)
			}
		})
	}
}

// copyDir copies the files of a folder (not sub-folders) into a new one.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func fingerprintOf(t *testing.T, path string) string {
	t.Helper()
	fp, err := Fingerprint(openModel(t, path))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(fp, "sha256:") || len(fp) != 7+64 {
		t.Fatalf("fingerprint %q", fp)
	}
	return fp
}

func TestFingerprint(t *testing.T) {
	tiny := filepath.Join("..", "testdata", "tiny-llama")
	base := fingerprintOf(t, tiny)
	// Another path to the same files: the same model.
	if fp := fingerprintOf(t, copyDir(t, tiny)); fp != base {
		t.Errorf("a copy in another folder has fingerprint %s, the original %s", fp, base)
	}
	// A byte in a sampled window of an attention tensor, and one in a
	// tensor attention does not read (the layout is the same): only the
	// first changes the fingerprint, since inspect reads only the first.
	m := openModel(t, tiny)
	q := m.Layers[2].Q.Tensor
	norm := m.Checkpoint.Tensor("model.norm.weight")
	if norm == nil {
		t.Fatal("tiny-llama has no model.norm.weight")
	}
	for _, c := range []struct {
		name   string
		at     int64
		differ bool
	}{
		{"attention start", q.Offset, true},
		{"attention end", q.Offset + q.Bytes - 1, true},
		{"attention middle", q.Offset + q.Bytes/3 + 7, true},
		{"final norm", norm.Offset, false},
	} {
		dir := copyDir(t, tiny)
		path := filepath.Join(dir, "model.safetensors")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[c.at] ^= 0x40
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if fp := fingerprintOf(t, dir); (fp != base) != c.differ {
			t.Errorf("%s: fingerprint changed %v, want %v", c.name, fp != base, c.differ)
		}
	}
	// A configuration change.
	dir := copyDir(t, tiny)
	cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	cfg = []byte(strings.Replace(string(cfg), `"rope_theta": 10000`, `"rope_theta": 500000`, 1))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if fingerprintOf(t, dir) == base {
		t.Errorf("a changed rope_theta kept the fingerprint")
	}
	// The zoo's models differ from each other and from their GGUF forms,
	// except where the weights are the same bytes: a split GGUF (opened
	// through any part) and the single file it was split from.
	shared := testref.SharedDir(t)
	seen := map[string]string{}
	paths, _ := filepath.Glob(filepath.Join(shared, "reference", "zoo", "llama", "gguf", "*.gguf"))
	paths = append(paths, mergeModels(t)...)
	split := ""
	for _, p := range paths {
		if strings.Contains(p, "llama-f32") {
			fp := fingerprintOf(t, p)
			if split != "" && fp != split {
				t.Errorf("%s: fingerprint %s, another form of the same F32 weights %s", p, fp, split)
			}
			if split == "" {
				split = fp
				seen[fp] = p
			}
			continue
		}
		fp := fingerprintOf(t, p)
		if other, ok := seen[fp]; ok {
			t.Errorf("%s and %s have one fingerprint", p, other)
		}
		seen[fp] = p
	}
	if len(seen) < 19 {
		t.Errorf("only %d fingerprints", len(seen))
	}
}
