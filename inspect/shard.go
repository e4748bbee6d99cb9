package inspect

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/qkvdev/qkv/formats"
)

// SchemaPartial names the JSON document of one part of a sharded run. It
// differs from Schema so that a reader expecting a whole report (a check
// baseline, a script) refuses a part instead of reading a subset of the
// layers as the model.
const SchemaPartial = "qkv.inspect.partial/v1"

// AssignContiguous names the layer assignment of Shard.Layers.
const AssignContiguous = "contiguous"

// Shard is part I of N of a sharded run (0 ≤ I < N).
type Shard struct {
	I int `json:"i"`
	N int `json:"n"`
}

// String is "I/N", the form --shard takes.
func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.I, s.N) }

// Valid reports whether 0 ≤ I < N.
func (s Shard) Valid() error {
	if s.N < 1 {
		return fmt.Errorf("shard count %d: there must be at least one shard", s.N)
	}
	if s.I < 0 || s.I >= s.N {
		return fmt.Errorf("shard %d of %d: the index must be from 0 to %d", s.I, s.N, s.N-1)
	}
	return nil
}

// Layers returns the layers of shard I among all (the run's layers, in
// order): the contiguous block all[⌊I·L/N⌋ : ⌊(I+1)·L/N⌋] for L layers.
// Blocks differ in size by at most one layer and shards with I < N are
// disjoint and cover all; with N > L some shards are empty. Contiguous
// blocks rather than round-robin: the attention layers of a model have one
// shape (so equal counts are equal work), and a block reads one stretch of
// the checkpoint's files, which keeps a shard's page cache, HTTP ranges and
// safetensors shards local.
func (s Shard) Layers(all []int) []int {
	if s.Valid() != nil {
		return nil
	}
	l := len(all)
	lo, hi := s.I*l/s.N, (s.I+1)*l/s.N
	return slices.Clone(all[lo:hi])
}

// ParseShard reads "I/N".
func ParseShard(v string) (Shard, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(v), "/")
	if !ok {
		return Shard{}, fmt.Errorf("%q is not I/N (for example 0/4: the first of four shards)", v)
	}
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("%q is not I/N with whole numbers I and N (for example 0/4)", v)
	}
	s := Shard{I: i, N: n}
	if err := s.Valid(); err != nil {
		return Shard{}, fmt.Errorf("%q: %v", v, err)
	}
	return s, nil
}

// Environment variables ShardFromEnv reads.
const (
	EnvK8sIndex     = "JOB_COMPLETION_INDEX" // set by Kubernetes in an Indexed Job's pods
	EnvK8sCount     = "JOB_COMPLETIONS"      // not set by Kubernetes: the manifest sets it to spec.completions
	EnvSlurmID      = "SLURM_ARRAY_TASK_ID"
	EnvSlurmCount   = "SLURM_ARRAY_TASK_COUNT"
	EnvSlurmMin     = "SLURM_ARRAY_TASK_MIN"
	EnvSlurmMax     = "SLURM_ARRAY_TASK_MAX"
	EnvSlurmStep    = "SLURM_ARRAY_TASK_STEP"
	SourceFlag      = "--shard"
	SourceK8s       = "kubernetes"
	SourceSlurm     = "slurm"
	SourceUnsharded = ""
)

// ShardError is a shard setting that cannot be used; Var names the flag or
// environment variable at fault.
type ShardError struct {
	Var string
	Err error
}

func (e *ShardError) Error() string { return e.Var + ": " + e.Err.Error() }
func (e *ShardError) Unwrap() error { return e.Err }

// ShardNone is the explicit value that turns sharding off whatever the
// environment says (a Slurm array or Indexed Job whose tasks inspect
// different models, each whole).
const ShardNone = "none"

// ShardFromEnv decides which shard this process runs. An explicit value
// (the --shard flag, "I/N"; a GitHub Actions matrix passes it; ShardNone
// for an unsharded run whatever the environment says) wins; else a
// Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with JOB_COMPLETIONS set by
// the manifest to spec.completions, since Kubernetes does not export it);
// else a Slurm job array (SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_MIN,
// _MAX and _STEP, or with SLURM_ARRAY_TASK_COUNT for an array numbered from
// 0). With none of them the run is not sharded: ok is false, source "".
// getenv is os.Getenv in a program. Errors name the variable at fault.
func ShardFromEnv(explicit string, getenv func(string) string) (s Shard, source string, ok bool, err error) {
	if strings.TrimSpace(explicit) == ShardNone {
		return Shard{I: 0, N: 1}, SourceFlag, false, nil
	}
	if explicit != "" {
		s, err := ParseShard(explicit)
		if err != nil {
			return Shard{}, SourceFlag, false, &ShardError{Var: SourceFlag, Err: err}
		}
		return s, SourceFlag, true, nil
	}
	k8s, slurm := getenv(EnvK8sIndex) != "", getenv(EnvSlurmID) != ""
	switch {
	case k8s && slurm:
		return Shard{}, "", false, &ShardError{Var: EnvK8sIndex, Err: fmt.Errorf("both %s (Kubernetes) and %s (Slurm) are set: give --shard I/N or --shard none", EnvK8sIndex, EnvSlurmID)}
	case !k8s && strings.TrimSpace(getenv(EnvK8sCount)) != "":
		return Shard{}, "", false, &ShardError{Var: EnvK8sIndex, Err: fmt.Errorf("%s is set but %s is not: the Job needs completionMode: Indexed (or give --shard I/N, or --shard none)", EnvK8sCount, EnvK8sIndex)}
	case k8s:
		s, err := k8sShard(getenv)
		return s, SourceK8s, err == nil, err
	case slurm:
		s, err := slurmShard(getenv)
		return s, SourceSlurm, err == nil, err
	}
	return Shard{I: 0, N: 1}, SourceUnsharded, false, nil
}

// envInt reads a whole number ≥ 0 from the environment; present is false
// when the variable is unset or empty.
func envInt(getenv func(string) string, name string) (v int, present bool, err error) {
	raw := strings.TrimSpace(getenv(name))
	if raw == "" {
		return 0, false, nil
	}
	v, err = strconv.Atoi(raw)
	if err != nil || v < 0 {
		return 0, true, &ShardError{Var: name, Err: fmt.Errorf("%q is not a whole number ≥ 0", raw)}
	}
	return v, true, nil
}

func k8sShard(getenv func(string) string) (Shard, error) {
	i, _, err := envInt(getenv, EnvK8sIndex)
	if err != nil {
		return Shard{}, err
	}
	n, ok, err := envInt(getenv, EnvK8sCount)
	if err != nil {
		return Shard{}, err
	}
	if !ok {
		return Shard{}, &ShardError{Var: EnvK8sCount, Err: fmt.Errorf("%s is set (a Kubernetes Indexed Job) but %s is not: set it in the pod template to the Job's spec.completions, or give --shard I/N (or --shard none for a whole report)", EnvK8sIndex, EnvK8sCount)}
	}
	if n < 1 || i >= n {
		return Shard{}, &ShardError{Var: EnvK8sIndex, Err: fmt.Errorf("index %d is not below %s=%d", i, EnvK8sCount, n)}
	}
	return Shard{I: i, N: n}, nil
}

func slurmShard(getenv func(string) string) (Shard, error) {
	id, _, err := envInt(getenv, EnvSlurmID)
	if err != nil {
		return Shard{}, err
	}
	var vals [4]int
	var have [4]bool
	for k, name := range []string{EnvSlurmMin, EnvSlurmMax, EnvSlurmStep, EnvSlurmCount} {
		if vals[k], have[k], err = envInt(getenv, name); err != nil {
			return Shard{}, err
		}
	}
	lo, hi, step, count := vals[0], vals[1], vals[2], vals[3]
	if !have[2] {
		step = 1
	}
	if step < 1 {
		return Shard{}, &ShardError{Var: EnvSlurmStep, Err: fmt.Errorf("step %d: must be at least 1", step)}
	}
	switch {
	case have[0] && have[1]:
		if hi < lo || (hi-lo)%step != 0 {
			return Shard{}, &ShardError{Var: EnvSlurmMax, Err: fmt.Errorf("%s=%d, %s=%d and step %d do not make an evenly spaced array", EnvSlurmMin, lo, EnvSlurmMax, hi, step)}
		}
		n := (hi-lo)/step + 1
		if have[3] && count != n {
			// A list (--array=1,4,9) or a range with holes: task ids do
			// not map to shard numbers without gaps.
			return Shard{}, &ShardError{Var: EnvSlurmCount, Err: fmt.Errorf("%d tasks, but %s..%s step %d spans %d: the array is not one evenly spaced range (use --array=0-%d, or give --shard I/N, or --shard none for a whole report)", count, EnvSlurmMin, EnvSlurmMax, step, n, count-1)}
		}
		if id < lo || id > hi || (id-lo)%step != 0 {
			return Shard{}, &ShardError{Var: EnvSlurmID, Err: fmt.Errorf("task %d is not in the array %d-%d:%d", id, lo, hi, step)}
		}
		return Shard{I: (id - lo) / step, N: n}, nil
	case have[3]:
		if step != 1 || count < 1 || id >= count {
			return Shard{}, &ShardError{Var: EnvSlurmID, Err: fmt.Errorf("task %d with %s=%d: without %s/%s the array must be numbered 0..%d", id, EnvSlurmCount, count, EnvSlurmMin, EnvSlurmMax, max(count-1, 0))}
		}
		return Shard{I: id, N: count}, nil
	}
	return Shard{}, &ShardError{Var: EnvSlurmCount, Err: fmt.Errorf("%s is set but neither %s nor %s and %s are: run inside an sbatch --array job, or give --shard I/N (or --shard none for a whole report)", EnvSlurmID, EnvSlurmCount, EnvSlurmMin, EnvSlurmMax)}
}

// Part asks Run for one shard of a sharded run; the result is a partial
// report that Merge joins with the other parts.
type Part struct {
	Shard Shard
	// Fingerprint identifies the model (Fingerprint); required, so that
	// Merge can refuse parts of different checkpoints.
	Fingerprint string
	// Version is the program's version; Merge refuses parts of different
	// versions (their numerics may differ).
	Version string
}

// Partial is what a partial report records beyond a whole one: which shard
// it is and everything Merge checks before joining parts.
type Partial struct {
	Shard      int    `json:"shard"`
	Shards     int    `json:"shards"`
	Assignment string `json:"assignment"`
	// Layers are this part's layer indices; AllLayers every layer of the
	// run in order (the selection, e.g. --layers, included).
	Layers      []int    `json:"layers"`
	AllLayers   []int    `json:"all_layers"`
	Fingerprint string   `json:"fingerprint"`
	Version     string   `json:"version"`
	Numerics    Numerics `json:"numerics"`
	// Sparks carries the sparkline summaries of the spectra (which a whole
	// report holds outside its JSON) so that a merged report renders as the
	// unsharded one does. WriteJSON fills it.
	Sparks []Spark `json:"sparks,omitempty"`
}

// Spark is one matrix's (or head block's) sparkline summary.
type Spark struct {
	Layer  int     `json:"layer"`
	Matrix string  `json:"matrix"`
	Head   *int    `json:"head,omitempty"`
	Values []Float `json:"values"`
}

// Numerics names what decides the last bits of the statistics besides the
// weights and the settings: the CPU architecture (the compiler fuses
// multiply-adds on some) and the matrix kernel (assembly with fused
// multiply-adds, or portable Go). The number of CPUs does not: every sum
// in internal/linalg is split into a fixed number of parts, so spectra are
// bit for bit the same at any GOMAXPROCS. Parts computed under different
// numerics would merge into a report that no single run gives, so Merge
// refuses them.
type Numerics struct {
	Arch   string `json:"arch"`
	Kernel string `json:"kernel"`
	// Procs is the CPU count recorded by parts of earlier versions, whose
	// eigensolver split its sums into that many parts; 0 (and absent from
	// JSON) since the split is fixed. Read back, it keeps such parts of
	// different CPU counts from merging.
	Procs int `json:"procs,omitempty"`
}

// CurrentNumerics describes this process.
func CurrentNumerics() Numerics {
	k := "go"
	if haveFMA {
		k = "avx2-fma"
	}
	return Numerics{Arch: runtime.GOARCH, Kernel: k}
}

func (n Numerics) String() string {
	if n.Procs > 0 {
		return fmt.Sprintf("%s with the %s kernel and %d CPUs (a part of an earlier version, whose results depended on the CPU count)", n.Arch, n.Kernel, n.Procs)
	}
	return fmt.Sprintf("%s with the %s kernel", n.Arch, n.Kernel)
}

// fingerprintWindow is the size of each sampled window of a tensor's bytes.
const fingerprintWindow = 4096

// Fingerprint identifies a model for merging the parts of a sharded run: a
// SHA-256 over its format, configuration (config.json, adapter_config.json),
// every tensor's name, element type, shape and size, and four windows of
// 4 KiB (start, ⅓, ⅔, end) of the stored bytes of every tensor the attention
// layers use. It costs a few pages per attention tensor, never the model's
// size; every shard computes the same value. It tells apart checkpoints
// that differ in layout, configuration or any sampled byte — a fine-tune
// or a requantization changes all of them — but not two checkpoints whose
// attention tensors differ only outside the sampled windows. File paths are
// not part of it, so nodes may mount the model in different places.
func Fingerprint(m *formats.Model) (string, error) {
	if m == nil || m.Checkpoint == nil {
		return "", errors.New("fingerprint: no model")
	}
	ck := m.Checkpoint
	h := sha256.New()
	put := func(s string) { // length-prefixed, so that fields cannot run together
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	put("qkv.fingerprint/v1")
	put(string(ck.Format))
	for _, c := range []map[string]any{ck.Config, ck.AdapterConfig} {
		b, err := json.Marshal(c) // map keys sorted: canonical
		if err != nil {
			return "", fmt.Errorf("fingerprint: configuration: %v", err)
		}
		put(string(b))
	}
	all := slices.Clone(ck.Tensors)
	slices.SortFunc(all, func(a, b *formats.Tensor) int { return strings.Compare(a.Name, b.Name) })
	for _, t := range all {
		put(t.Name)
		put(t.Type.Name())
		put(fmt.Sprint(t.Shape, t.Bytes))
	}
	used := attentionTensors(m)
	slices.SortFunc(used, func(a, b *formats.Tensor) int { return strings.Compare(a.Name, b.Name) })
	for _, t := range used {
		put(t.Name)
		if t.Bytes < 0 {
			continue
		}
		if err := ck.ReadRaw(t, func(b []byte) error { sampleWindows(h, b); return nil }); err != nil {
			return "", fmt.Errorf("fingerprint: %w", err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// sampleWindows hashes four windows of b: its start, ⅓, ⅔ and end.
func sampleWindows(h hash.Hash, b []byte) {
	w := min(fingerprintWindow, len(b))
	span := len(b) - w
	for _, at := range []int{0, span / 3, 2 * span / 3, span} {
		h.Write(b[at : at+w])
	}
}

// attentionTensors lists, once each, every tensor the layers of m read.
func attentionTensors(m *formats.Model) []*formats.Tensor {
	seen := map[*formats.Tensor]bool{}
	var out []*formats.Tensor
	add := func(ts ...*formats.Tensor) {
		for _, t := range ts {
			if t != nil && !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	for i := range m.Layers {
		ls := &m.Layers[i]
		for _, p := range formats.Projections {
			ps := ls.Proj(p)
			if ps == nil {
				continue
			}
			add(ps.Tensor, ps.Bias)
			add(ps.Factors...)
			if ps.LoRA != nil {
				add(ps.LoRA.A, ps.LoRA.B)
			}
		}
		add(ls.NormWeight, ls.NormBias, ls.QNorm, ls.KNorm, ls.Sinks)
		if x := ls.MLA; x != nil {
			add(x.QA, x.QANorm, x.QB, x.KVA, x.KVANorm, x.KVB, x.KB, x.VB)
		}
	}
	return out
}
