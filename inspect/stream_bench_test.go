//go:build linux

// The streaming benchmark measures peak RSS through Linux's /proc and rusage.

package inspect

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qkvdev/qkv/formats"
)

// TinyLlama-1.1B's geometry.
const (
	benchDModel  = 2048
	benchHeads   = 32
	benchKVHeads = 4
	benchHeadDim = 64
	benchFFN     = 5632
	benchVocab   = 32000
)

// benchTensor is one tensor of a generated model: random BF16 values of
// standard deviation std, ones (norm weights, std < 0), or zeros left as a
// hole in the file (std = 0).
type benchTensor struct {
	name  string
	shape []int64
	std   float64
}

// writeBenchModel writes a Llama model of TinyLlama-1.1B's shapes with the
// given number of layers, in BF16, as dir/model.safetensors + config.json.
// The attention projections (all that inspect reads) are Gaussian; norm
// weights are ones; the embeddings, LM head and MLP weights are zeros left
// as holes in a sparse file, so that a 4×-deeper model takes 1.7 GB of disk
// rather than 8.
func writeBenchModel(dir string, layers int) (int64, error) {
	d, kv := int64(benchDModel), int64(benchKVHeads*benchHeadDim)
	ts := []benchTensor{
		{"model.embed_tokens.weight", []int64{benchVocab, d}, 0},
		{"lm_head.weight", []int64{benchVocab, d}, 0},
		{"model.norm.weight", []int64{d}, -1},
	}
	for i := 0; i < layers; i++ {
		p := fmt.Sprintf("model.layers.%d.", i)
		ts = append(ts,
			benchTensor{p + "self_attn.q_proj.weight", []int64{d, d}, 0.02},
			benchTensor{p + "self_attn.k_proj.weight", []int64{kv, d}, 0.02},
			benchTensor{p + "self_attn.v_proj.weight", []int64{kv, d}, 0.02},
			benchTensor{p + "self_attn.o_proj.weight", []int64{d, d}, 0.02},
			benchTensor{p + "mlp.gate_proj.weight", []int64{benchFFN, d}, 0},
			benchTensor{p + "mlp.up_proj.weight", []int64{benchFFN, d}, 0},
			benchTensor{p + "mlp.down_proj.weight", []int64{d, benchFFN}, 0},
			benchTensor{p + "input_layernorm.weight", []int64{d}, -1},
			benchTensor{p + "post_attention_layernorm.weight", []int64{d}, -1},
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
		benchDModel, benchFFN, benchHeads, benchKVHeads, layers, benchVocab)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		return 0, err
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var lb [8]byte
	binary.LittleEndian.PutUint64(lb[:], uint64(len(hb)))
	if _, err := f.Write(append(lb[:], hb...)); err != nil {
		return 0, err
	}
	r := rand.New(rand.NewPCG(20261206, uint64(layers)))
	w := bufio.NewWriterSize(f, 1<<20)
	for _, t := range ts {
		n := int64(1)
		for _, s := range t.shape {
			n *= s
		}
		if t.std == 0 {
			if err := w.Flush(); err != nil {
				return 0, err
			}
			if _, err := f.Seek(2*n, io.SeekCurrent); err != nil {
				return 0, err
			}
			continue
		}
		var b [2]byte
		for k := int64(0); k < n; k++ {
			v := float32(1)
			if t.std > 0 {
				v = float32(t.std * r.NormFloat64())
			}
			binary.LittleEndian.PutUint16(b[:], uint16(math.Float32bits(v)>>16))
			w.Write(b[:])
		}
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	size := int64(8+len(hb)) + off
	return size, f.Truncate(size)
}

// TestStreamChild is the child process of BenchmarkStreamingRSS: it
// inspects the model named by QKV_STREAM_CHILD as `qkv inspect` does (head
// statistics computed for the findings, layers emitted and dropped) and
// prints a summary.
func TestStreamChild(t *testing.T) {
	path := os.Getenv("QKV_STREAM_CHILD")
	if path == "" {
		t.Skip("child process of BenchmarkStreamingRSS")
	}
	ck, err := formats.Open(path, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	workers, _ := strconv.Atoi(os.Getenv("QKV_STREAM_WORKERS"))
	// As `qkv inspect` without --heads: head statistics for the findings,
	// not kept in the report.
	opts := Options{Heads: true, DropHeads: true, Fast: os.Getenv("QKV_STREAM_MODE") == "fast", Workers: workers}
	t0 := time.Now()
	emitted := 0
	total := len(m.LayerIndices())
	var hwm []string // peak RSS so far after each quarter of the layers
	rep, err := Run(context.Background(), m, opts, func(LayerReport) error {
		emitted++
		if emitted*4%total < 4 {
			hwm = append(hwm, fmt.Sprintf("%d:%.0f", emitted, vmHWM()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("CHILD layers=%d emitted=%d findings=%d json=%d peak_MiB_after_layer=%s seconds=%.2f\n", len(rep.Layers), emitted, len(rep.Findings), len(b),
		strings.Join(hwm, ","), time.Since(t0).Seconds())
}

// vmHWM is this process's peak resident set so far, in MiB (Linux), or NaN.
func vmHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return math.NaN()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb / 1024
		}
	}
	return math.NaN()
}

// BenchmarkStreamingRSS shows that inspect's memory is bounded by the work
// in flight (workers × one layer's matrices), not by the model's depth: it
// generates TinyLlama-1.1B-shaped BF16 models (d_model 2048, 32 heads,
// 4 KV heads) of 22 and 88 layers in a temporary folder ($QKV_BENCH_TMP or
// the system's), inspects each in a child process, and reports the child's
// peak RSS (getrusage ru_maxrss) in full and fast mode; then deletes the
// models. Run it alone:
//
//	go test -run '^$' -bench StreamingRSS -benchtime 1x -timeout 120m ./inspect
func BenchmarkStreamingRSS(b *testing.B) {
	if testing.Short() {
		b.Skip("generates 2 GB of models")
	}
	base, err := os.MkdirTemp(os.Getenv("QKV_BENCH_TMP"), "qkv-stream-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(base)
	var st syscall.Statfs_t
	if err := syscall.Statfs(base, &st); err == nil {
		if free := int64(st.Bavail) * st.Bsize; free < 4<<30 {
			b.Skipf("%s has %.1f GB free; the models need about 2.1 GB (set QKV_BENCH_TMP)", base, float64(free)/1e9)
		}
	}
	workers := 2
	modes := []string{"fast", "full"}
	if m := os.Getenv("QKV_STREAM_MODES"); m != "" {
		modes = strings.Split(m, ",")
	}
	type result struct {
		layers  int
		mode    string
		rssMB   float64
		seconds float64
		line    string
	}
	var res []result
	for i := 0; i < b.N; i++ {
		res = res[:0]
		for _, layers := range []int{22, 88} {
			dir := filepath.Join(base, fmt.Sprintf("tinyllama-%d", layers))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			size, err := writeBenchModel(dir, layers)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("generated %d layers: %.2f GB file in %v", layers, float64(size)/1e9, time.Since(t0).Round(time.Second))
			for _, mode := range modes {
				c := exec.Command(os.Args[0], "-test.run=^TestStreamChild$", "-test.v")
				c.Env = append(os.Environ(), "QKV_STREAM_CHILD="+dir, "QKV_STREAM_MODE="+mode, fmt.Sprintf("QKV_STREAM_WORKERS=%d", workers))
				out, err := c.CombinedOutput()
				if err != nil {
					b.Fatalf("child: %v\n%s", err, out)
				}
				ru, _ := c.ProcessState.SysUsage().(*syscall.Rusage)
				rss := 0.0
				if ru != nil {
					rss = float64(ru.Maxrss) / 1024 // KiB on Linux
				}
				line := ""
				for _, l := range strings.Split(string(out), "\n") {
					if strings.HasPrefix(l, "CHILD ") {
						line = strings.TrimPrefix(l, "CHILD ")
					}
				}
				secs := 0.0
				if k := strings.Index(line, "seconds="); k >= 0 {
					secs, _ = strconv.ParseFloat(line[k+8:], 64)
				}
				res = append(res, result{layers, mode, rss, secs, line})
			}
			os.RemoveAll(dir)
		}
	}
	// One layer's matrices in float32: the unit the bound is counted in.
	layerMB := float64(4*(2*benchDModel*benchDModel+2*benchKVHeads*benchHeadDim*benchDModel)) / (1 << 20)
	b.Logf("GOMAXPROCS %d, %d workers; one layer's decoded matrices: %.1f MiB (all 22 layers: %.0f MiB, all 88: %.0f MiB)",
		runtime.GOMAXPROCS(0), workers, layerMB, 22*layerMB, 88*layerMB)
	for _, mode := range modes {
		var r22, r88 result
		for _, r := range res {
			if r.mode == mode && r.layers == 22 {
				r22 = r
			}
			if r.mode == mode && r.layers == 88 {
				r88 = r
			}
		}
		b.Logf("%s: 22 layers peak RSS %.0f MiB (%.1f s), 88 layers %.0f MiB (%.1f s): ratio %.3f", mode, r22.rssMB, r22.seconds, r88.rssMB, r88.seconds, r88.rssMB/r22.rssMB)
		b.Logf("%s: child 22: %s; child 88: %s", mode, r22.line, r88.line)
		b.ReportMetric(r22.rssMB, mode+"-22L-MiB")
		b.ReportMetric(r88.rssMB, mode+"-88L-MiB")
		b.ReportMetric(r88.rssMB/r22.rssMB, mode+"-ratio")
	}
}
