package cmd_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The gate benchmark (issue 15): qkv check, extract and inspect against
// numpy on generated models of TinyLlama-1.1B's shapes, 22 and 88 layers
// deep, measured side by side in one run. See the README ("Benchmarks").
//
//	go test -run '^$' -bench Gate -benchtime 1x -timeout 120m ./cmd
//
// QKV_BENCH_TMP names the folder for the models (about 10 GB; deleted
// afterwards); QKV_BENCH_PYTHON the Python with numpy (default
// /usr/bin/python3); QKV_BENCH_LAYERS the depths (default 22,88).

// TinyLlama-1.1B's geometry.
const (
	gateDModel  = 2048
	gateHeads   = 32
	gateKVHeads = 4
	gateHeadDim = 64
	gateFFN     = 5632
	gateVocab   = 32000
)

// gateNormal maps 16 random bits to a BF16 value of a normal distribution
// of standard deviation 0.02 (its quantile at the bits' rank), so that a
// model of billions of values is generated at the disk's speed.
var gateNormal = func() (t [1 << 16]uint16) {
	for i := range t {
		p := (float64(i) + 0.5) / (1 << 16)
		v := float32(0.02 * math.Sqrt2 * math.Erfinv(2*p-1))
		t[i] = uint16(math.Float32bits(v) >> 16)
	}
	return t
}()

// writeGateModel writes a Llama model of TinyLlama-1.1B's shapes with the
// given number of layers as dir/model.safetensors (BF16) and config.json.
// Every weight holds Gaussian values (check reads every tensor, extract and
// inspect the attention projections: nothing a command reads is a hole);
// norm weights are ones. It returns the file's size.
func writeGateModel(dir string, layers int) (int64, error) {
	type tensor struct {
		name  string
		shape []int64
		ones  bool
	}
	d, kv := int64(gateDModel), int64(gateKVHeads*gateHeadDim)
	ts := []tensor{
		{"model.embed_tokens.weight", []int64{gateVocab, d}, false},
		{"lm_head.weight", []int64{gateVocab, d}, false},
		{"model.norm.weight", []int64{d}, true},
	}
	for i := 0; i < layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		ts = append(ts,
			tensor{p + "self_attn.q_proj.weight", []int64{d, d}, false},
			tensor{p + "self_attn.k_proj.weight", []int64{kv, d}, false},
			tensor{p + "self_attn.v_proj.weight", []int64{kv, d}, false},
			tensor{p + "self_attn.o_proj.weight", []int64{d, d}, false},
			tensor{p + "mlp.gate_proj.weight", []int64{gateFFN, d}, false},
			tensor{p + "mlp.up_proj.weight", []int64{gateFFN, d}, false},
			tensor{p + "mlp.down_proj.weight", []int64{d, gateFFN}, false},
			tensor{p + "input_layernorm.weight", []int64{d}, true},
			tensor{p + "post_attention_layernorm.weight", []int64{d}, true},
		)
	}
	sort.Slice(ts, func(a, b int) bool { return ts[a].name < ts[b].name })
	hdr := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var off int64
	for _, t := range ts {
		n := int64(2)
		for _, s := range t.shape {
			n *= s
		}
		hdr[t.name] = map[string]any{"dtype": "BF16", "shape": t.shape, "data_offsets": []int64{off, off + n}}
		off += n
	}
	hb, err := json.Marshal(hdr)
	if err != nil {
		return 0, err
	}
	for len(hb)%8 != 0 {
		hb = append(hb, ' ')
	}
	cfg := fmt.Sprintf(`{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": %d, "intermediate_size": %d,
 "num_attention_heads": %d, "num_key_value_heads": %d, "num_hidden_layers": %d, "vocab_size": %d, "rms_norm_eps": 1e-05,
 "rope_theta": 10000.0, "max_position_embeddings": 2048, "hidden_act": "silu", "tie_word_embeddings": false, "torch_dtype": "bfloat16"}`,
		gateDModel, gateFFN, gateHeads, gateKVHeads, layers, gateVocab)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		return 0, err
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 4<<20)
	var lb [8]byte
	binary.LittleEndian.PutUint64(lb[:], uint64(len(hb)))
	w.Write(lb[:])
	w.Write(hb)
	r := rand.New(rand.NewPCG(20261206, uint64(layers)))
	one := uint16(math.Float32bits(1) >> 16)
	buf := make([]byte, 1<<20)
	for _, t := range ts {
		n := int64(2)
		for _, s := range t.shape {
			n *= s
		}
		for n > 0 {
			k := min(n, int64(len(buf)))
			for i := int64(0); i < k; i += 8 {
				u := r.Uint64()
				for j := int64(0); j < 4 && i+2*j < k; j++ {
					v := one
					if !t.ones {
						v = gateNormal[uint16(u>>(16*j))]
					}
					binary.LittleEndian.PutUint16(buf[i+2*j:], v)
				}
			}
			if _, err := w.Write(buf[:k]); err != nil {
				return 0, err
			}
			n -= k
		}
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return int64(8+len(hb)) + off, nil
}

// TestGateGenerate writes a benchmark model for trying commands by hand:
// QKV_GATE_GENERATE=DIR:LAYERS.
func TestGateGenerate(t *testing.T) {
	spec := os.Getenv("QKV_GATE_GENERATE")
	if spec == "" {
		t.Skip("set QKV_GATE_GENERATE=DIR:LAYERS to generate a benchmark model")
	}
	dir, ls, _ := strings.Cut(spec, ":")
	layers, err := strconv.Atoi(ls)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	size, err := writeGateModel(dir, layers)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d layers, %.2f GB", dir, layers, float64(size)/1e9)
}

// measured is one child process's cost.
type measured struct {
	wall, cpu float64 // seconds
	rssMiB    float64 // peak resident set
}

// runChild runs a command and returns its wall time, CPU time (user +
// system) and peak RSS. The child's standard output goes to out (nil:
// discarded).
func runChild(name string, args []string, env []string) (measured, string, error) {
	c := exec.Command(name, args...)
	c.Env = append(os.Environ(), env...)
	var so, se strings.Builder
	c.Stdout, c.Stderr = &so, &se
	t0 := time.Now()
	err := c.Run()
	m := measured{wall: time.Since(t0).Seconds()}
	if cpu, rss, ok := childUsage(c.ProcessState); ok {
		m.cpu = cpu.Seconds()
		m.rssMiB = float64(rss) / (1 << 20)
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 && strings.Contains(name, "qkv") {
			err = nil // check exits 1 when it finds problems
		} else {
			return m, so.String(), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, se.String())
		}
	}
	return m, so.String(), nil
}

// BenchmarkGate measures, on a 22-layer (1.1B) and an 88-layer (4B)
// generated model, side by side: qkv check against the numpy scan, qkv
// extract against the numpy streaming writer, and the peak RSS of check,
// extract and inspect --fast in both depths.
func BenchmarkGate(b *testing.B) {
	if testing.Short() {
		b.Skip("generates 10 GB of models")
	}
	python := os.Getenv("QKV_BENCH_PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	if out, err := exec.Command(python, "-c", "import numpy").CombinedOutput(); err != nil {
		b.Skipf("%s has no numpy: %v %s", python, err, out)
	}
	base, err := os.MkdirTemp(os.Getenv("QKV_BENCH_TMP"), "qkv-gate-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(base)
	if free, ok := diskFree(base); ok && free < 14<<30 {
		b.Skipf("%s has %.1f GB free; the models and outputs need about 12 GB (set QKV_BENCH_TMP)", base, float64(free)/1e9)
	}
	qkv := filepath.Join(base, "qkv")
	if out, err := exec.Command("go", "build", "-o", qkv, "github.com/qkvdev/qkv").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	scripts, err := filepath.Abs(filepath.Join("testdata", "bench"))
	if err != nil {
		b.Fatal(err)
	}
	depths := []int{22, 88}
	if s := os.Getenv("QKV_BENCH_LAYERS"); s != "" {
		depths = depths[:0]
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatal(err)
			}
			depths = append(depths, n)
		}
	}
	type run struct {
		name string
		m    measured
	}
	results := map[int][]run{}
	for i := 0; i < b.N; i++ {
		for _, layers := range depths {
			dir := filepath.Join(base, fmt.Sprintf("tinyllama-%d", layers))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			size, err := writeGateModel(dir, layers)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("generated %d layers: %.2f GB in %v", layers, float64(size)/1e9, time.Since(t0).Round(time.Second))
			model := filepath.Join(dir, "model.safetensors")
			out := filepath.Join(base, "out.safetensors")
			// Warm the page cache once so that every command reads from
			// memory, as each would on its second run.
			if _, _, err := runChild(python, []string{filepath.Join(scripts, "numpy_scan.py"), model}, nil); err != nil {
				b.Fatal(err)
			}
			jobs := []struct {
				name string
				prog string
				args []string
			}{
				{"numpy-scan", python, []string{filepath.Join(scripts, "numpy_scan.py"), model}},
				{"qkv-check", qkv, []string{"check", dir, "--format", "json"}},
				{"numpy-extract", python, []string{filepath.Join(scripts, "numpy_extract.py"), model, out}},
				{"qkv-extract", qkv, []string{"extract", dir, "-o", out}},
				{"qkv-inspect-fast", qkv, []string{"inspect", dir, "--fast", "--json"}},
			}
			if os.Getenv("QKV_BENCH_INSPECT_FULL") != "" {
				jobs = append(jobs, struct {
					name string
					prog string
					args []string
				}{"qkv-inspect", qkv, []string{"inspect", dir, "--json"}})
			}
			// Each pair (ours, numpy's) runs alternately, twice, and the
			// faster run of each counts: the machine is shared.
			for rep := 0; rep < 2; rep++ {
				for _, j := range jobs {
					m, _, err := runChild(j.prog, j.args, nil)
					if err != nil {
						b.Fatal(err)
					}
					os.Remove(out)
					results[layers] = append(results[layers], run{j.name, m})
				}
			}
			os.RemoveAll(dir)
		}
	}
	best := func(layers int, name string) measured {
		var m measured
		for _, r := range results[layers] {
			if r.name == name && (m.wall == 0 || r.m.cpu < m.cpu) {
				m = r.m
			}
		}
		return m
	}
	b.Logf("GOMAXPROCS %d; best of two runs each, CPU = user + system time of the child", runtime.GOMAXPROCS(0))
	for _, layers := range depths {
		for _, name := range []string{"numpy-scan", "qkv-check", "numpy-extract", "qkv-extract", "qkv-inspect-fast", "qkv-inspect"} {
			if m := best(layers, name); m.wall > 0 {
				b.Logf("%2d layers %-17s wall %6.2f s  CPU %6.2f s  peak RSS %7.1f MiB", layers, name, m.wall, m.cpu, m.rssMiB)
			}
		}
		sc, nc := best(layers, "qkv-check"), best(layers, "numpy-scan")
		se, ne := best(layers, "qkv-extract"), best(layers, "numpy-extract")
		b.Logf("%2d layers: check/numpy-scan wall %.2f× CPU %.2f×; extract/numpy-extract wall %.2f× CPU %.2f×",
			layers, sc.wall/nc.wall, sc.cpu/nc.cpu, se.wall/ne.wall, se.cpu/ne.cpu)
		b.ReportMetric(sc.wall/nc.wall, fmt.Sprintf("check/numpy-%dL", layers))
		b.ReportMetric(se.wall/ne.wall, fmt.Sprintf("extract/numpy-%dL", layers))
	}
	if len(depths) == 2 {
		lo, hi := depths[0], depths[1]
		for _, name := range []string{"qkv-extract", "qkv-check", "qkv-inspect-fast", "qkv-inspect"} {
			a, c := best(lo, name), best(hi, name)
			if a.wall > 0 && c.wall > 0 {
				b.Logf("%s peak RSS: %d layers %.1f MiB, %d layers %.1f MiB: ratio %.3f", name, lo, a.rssMiB, hi, c.rssMiB, c.rssMiB/a.rssMiB)
				b.ReportMetric(c.rssMiB/a.rssMiB, name+"-RSS-ratio")
			}
		}
	}
}
