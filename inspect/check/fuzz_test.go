package check

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/gguf"
	"github.com/qkvdev/qkv/inspect"
)

// fuzzLlama is a two-layer Llama GGUF (d_model 16, 2 query heads of 8, 1
// KV head; d_model 32 with quant) small enough for the mutator; quant
// stores the matrices as Q8_0 so that mutations reach block scales.
func fuzzLlama(quant bool) []byte {
	d := uint64(16)
	if quant {
		d = 32
	}
	u32 := func(k string, v uint32) gguf.KV { return gguf.KV{Key: k, Type: gguf.Uint32, Value: v} }
	seed := uint32(1)
	next := func() uint32 { seed = seed*1664525 + 1013904223; return seed >> 8 }
	mat := func(name string, in, out uint64) gguf.WriterTensor {
		if quant {
			b := make([]byte, out*in/32*34)
			for blk := 0; blk < len(b); blk += 34 {
				binary.LittleEndian.PutUint16(b[blk:], 0x2000+uint16(next()%0x400)) // small positive d
				for i := 2; i < 34; i++ {
					b[blk+i] = byte(next())
				}
			}
			return gguf.WriterTensor{Name: name, Dims: []uint64{in, out}, Type: dtype.Q8_0, Data: b}
		}
		b := make([]byte, 4*in*out)
		for i := uint64(0); i < in*out; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(next()%2001)/1000-1))
		}
		return gguf.WriterTensor{Name: name, Dims: []uint64{in, out}, Type: dtype.F32, Data: b}
	}
	var ts []gguf.WriterTensor
	for _, l := range []string{"0", "1"} {
		ts = append(ts, mat("blk."+l+".attn_q.weight", d, d), mat("blk."+l+".attn_k.weight", d, d/2),
			mat("blk."+l+".attn_v.weight", d, d/2), mat("blk."+l+".attn_output.weight", d, d))
	}
	w := &gguf.Writer{KVs: []gguf.KV{
		{Key: "general.architecture", Type: gguf.String, Value: "llama"},
		u32("llama.embedding_length", uint32(d)), u32("llama.block_count", 2),
		u32("llama.attention.head_count", 2), u32("llama.attention.head_count_kv", 1),
		u32("llama.rope.dimension_count", uint32(d/2)),
	}, Tensors: ts}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

var fuzzWorkflowLine = regexp.MustCompile(`^::(error|warning|notice)( [a-z]+=[^,:]*(,[a-z]+=[^,:]*)*)?::.*$`)

// FuzzRun checks mutated GGUF files with bounds and a baseline: Run must
// not panic, hang or fail, every message must be one line, and every output
// format must stay well-formed.
func FuzzRun(f *testing.F) {
	f.Add(fuzzLlama(false))
	f.Add(fuzzLlama(true))
	dir := f.TempDir()
	// The baseline is the unmutated F32 model's report.
	seedPath := filepath.Join(dir, "seed.gguf")
	if err := os.WriteFile(seedPath, fuzzLlama(false), 0o644); err != nil {
		f.Fatal(err)
	}
	ck, err := formats.Open(seedPath, formats.Options{})
	if err != nil {
		f.Fatal(err)
	}
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		f.Fatal(err)
	}
	base, err := inspect.Run(context.Background(), m, inspect.Options{Heads: true}, nil)
	if err != nil {
		f.Fatal(err)
	}
	ck.Close()
	rules, err := ParseRules([]byte(`{"bounds": {"q": {"fro": [0.1, 100], "effective_rank_ratio": [0.05, null]}, "o": {"spectral_norm": [null, 50]}},
		"geometry": {"layers": 2, "heads": 2}, "severity": {"rank_collapsed": "fail"}}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "model.gguf")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			in := Input{Path: p, Baseline: base}
			ck, err := formats.Open(p, formats.Options{})
			if err != nil {
				in.OpenErr = err
			} else {
				defer ck.Close()
				in.Checkpoint = ck
				in.Model, in.FindErr = formats.FindModel(ck, formats.FindOptions{})
			}
			res, err := Run(context.Background(), in, rules, Options{Workers: 1, ChunkBytes: 1 << 12})
			if err != nil {
				t.Errorf("Run: %v", err)
				return
			}
			checkWellFormed(t, res)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("check did not finish in 20 s")
		}
	})
}

func checkWellFormed(t *testing.T, res *Result) {
	if res.Passed != (len(res.Failures) == 0) {
		t.Errorf("passed %v with %d failures", res.Passed, len(res.Failures))
	}
	for _, p := range append(append([]Problem(nil), res.Failures...), res.Warnings...) {
		if strings.ContainsAny(p.Message, "\r\n") || p.Message == "" {
			t.Errorf("%s: message %q", p.Check, p.Message)
		}
		if _, ok := DefaultSeverity[p.Check]; !ok {
			t.Errorf("unknown check %q", p.Check)
		}
	}
	var buf bytes.Buffer
	if err := res.WriteGitHub(&buf); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if !fuzzWorkflowLine.MatchString(l) {
			t.Errorf("not a workflow command: %q", l)
		}
	}
	buf.Reset()
	if err := res.WriteJUnit(&buf); err != nil {
		t.Fatal(err)
	}
	var doc junitDoc
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Errorf("JUnit: %v", err)
	}
	buf.Reset()
	if err := res.WriteJSON(&buf); err != nil {
		t.Errorf("JSON: %v", err)
	}
}

// FuzzParseRules: any bytes either parse into rules whose severities are
// valid, or give an error; never a panic.
func FuzzParseRules(f *testing.F) {
	f.Add([]byte(readmeRules))
	f.Add([]byte(`{}`))
	f.Add([]byte("// c\n{\"severity\": {\"nan\": \"warn\"}, \"bounds\": {\"q\": {\"fro\": [null, 1]}}} // x"))
	f.Add([]byte(`{"allowed_dtypes": ["a\"//b"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRules(b)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "rules: ") {
				t.Errorf("error %q does not start with \"rules: \"", err)
			}
			return
		}
		for _, id := range AllChecks {
			if s := r.SeverityOf(id); s != Fail && s != Warn && s != Off {
				t.Errorf("%s: severity %q", id, s)
			}
		}
		if r.Thresholds.DeadHead <= 0 || r.DuplicateFail <= 0 || r.DriftTolerance <= 0 || r.ZeroRowsMin <= 0 {
			t.Errorf("defaults not filled: %+v", r)
		}
		if len(stripComments(b)) != len(b) {
			t.Error("stripComments changed the length")
		}
	})
}

// TestFuzzSeeds: the seeds are healthy models whose attention is checked,
// so that mutations start from a run that reaches every check.
func TestFuzzSeeds(t *testing.T) {
	for _, quant := range []bool{false, true} {
		p := filepath.Join(t.TempDir(), "seed.gguf")
		if err := os.WriteFile(p, fuzzLlama(quant), 0o644); err != nil {
			t.Fatal(err)
		}
		in := open(t, p)
		if in.OpenErr != nil || in.FindErr != nil {
			t.Fatalf("quant %v: open %v, find %v", quant, in.OpenErr, in.FindErr)
		}
		res := run(t, in, DefaultRules(), Options{})
		if !res.Passed || res.Layers != 2 || !contains(res.Checks, CheckDeadHead) {
			t.Errorf("quant %v: passed %v, %d layers, checks %v, failures:%s", quant, res.Passed, res.Layers, res.Checks, dump(res.Failures))
		}
	}
}
