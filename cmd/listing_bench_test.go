package cmd_test

// Listing costs the header's size, not the model's (issue 2): two GGUF
// files with the same header — the same 32000-token vocabulary, the same
// 146 tensor names and types — one with 2 MB of tensor data and one with
// 2 GB (a sparse hole, so the benchmark needs no disk space), must list in
// the same time.
//
//	go test ./cmd -run XXX -bench 'List' -benchtime 200x

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/qkvdev/qkv/cmd"
	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/dtype"
	"github.com/qkvdev/qkv/formats/gguf"
)

// writeListingGGUF writes a Llama-shaped GGUF whose 16 layers hold seven
// d×d F16 matrices and two F32 norms each, with a 32000-token vocabulary.
// Only the header is written; the data section is a hole made by
// extending the file. d=3072 gives 2.1 GB of data, d=96 2.1 MB (the
// header itself, mostly the vocabulary, is 0.7 MB).
func writeListingGGUF(tb testing.TB, dir string, d uint64) string {
	tb.Helper()
	tokens := make([]string, 32000)
	scores := make([]float32, len(tokens))
	for i := range tokens {
		tokens[i] = fmt.Sprintf("▁tok%05d", i)
		scores[i] = -float32(i)
	}
	w := gguf.Writer{KVs: []gguf.KV{
		{Key: "general.architecture", Type: gguf.String, Value: "llama"},
		{Key: "general.name", Type: gguf.String, Value: "listing benchmark"},
		{Key: "llama.block_count", Type: gguf.Uint32, Value: uint32(16)},
		{Key: "llama.embedding_length", Type: gguf.Uint32, Value: uint32(d)},
		{Key: "llama.attention.head_count", Type: gguf.Uint32, Value: uint32(8)},
		{Key: "tokenizer.ggml.model", Type: gguf.String, Value: "llama"},
		{Key: "tokenizer.ggml.tokens", Type: gguf.Array, ElemType: gguf.String, Value: tokens},
		{Key: "tokenizer.ggml.scores", Type: gguf.Array, ElemType: gguf.Float32, Value: scores},
	}}
	var offset uint64
	add := func(name string, dims []uint64, t dtype.Type) {
		n := uint64(1)
		for _, x := range dims {
			n *= x
		}
		size, err := t.ByteSize(int64(n))
		if err != nil {
			tb.Fatal(err)
		}
		off := offset
		w.Tensors = append(w.Tensors, gguf.WriterTensor{Name: name, Dims: dims, Type: t, OffsetOverride: &off})
		offset += (uint64(size) + 31) / 32 * 32
	}
	for l := 0; l < 16; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", []uint64{d}, dtype.F32)
		for _, m := range []string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"} {
			add(p+m+".weight", []uint64{d, d}, dtype.F16)
		}
		add(p+"ffn_norm.weight", []uint64{d}, dtype.F32)
	}
	add("output_norm.weight", []uint64{d}, dtype.F32)
	add("token_embd.weight", []uint64{d, 1}, dtype.F32)
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("bench-%d.gguf", d))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		tb.Fatal(err)
	}
	// The writer padded the header to the alignment: the data starts here.
	if err := os.Truncate(path, int64(buf.Len())+int64(offset)); err != nil {
		tb.Fatal(err)
	}
	return path
}

// listOnce opens the file, walks every tensor as ls does, and closes it.
func listOnce(tb testing.TB, path string) {
	ck, err := formats.Open(path, formats.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	var total int64
	for _, t := range ck.Tensors {
		total += t.Bytes + t.Elements() + int64(len(t.Name)+len(t.Type.Name()))
	}
	if total <= 0 || len(ck.Tensors) != 146 {
		tb.Fatalf("%d tensors", len(ck.Tensors))
	}
	ck.Close()
}

func lsJSONOnce(tb testing.TB, path string) {
	s := &cmd.Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard, Width: 80}
	if code := cmd.Run(context.Background(), []string{"ls", "--json", path}, s); code != 0 {
		tb.Fatalf("qkv ls --json: exit %d", code)
	}
}

func benchListing(b *testing.B, d uint64) {
	path := writeListingGGUF(b, b.TempDir(), d)
	st, _ := os.Stat(path)
	b.Logf("%s: %.1f MB", filepath.Base(path), float64(st.Size())/1e6)
	b.Run("open", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			listOnce(b, path)
		}
	})
	b.Run("ls-json", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			lsJSONOnce(b, path)
		}
	})
}

func BenchmarkListSmall(b *testing.B)     { benchListing(b, 96) }
func BenchmarkListSparse2GB(b *testing.B) { benchListing(b, 3072) }

// TestListingIgnoresDataSize: the 2 GB file lists no slower than the 2 MB
// one (median of repeated runs, with a generous margin for a busy machine).
func TestListingIgnoresDataSize(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	dir := t.TempDir()
	small, big := writeListingGGUF(t, dir, 96), writeListingGGUF(t, dir, 3072)
	if st, _ := os.Stat(big); st.Size() < 2e9 {
		t.Fatalf("big file is %d bytes", st.Size())
	}
	median := func(path string) time.Duration {
		var ds []time.Duration
		for i := 0; i < 15; i++ {
			start := time.Now()
			listOnce(t, path)
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	listOnce(t, small) // warm the page cache for both headers
	listOnce(t, big)
	ms, mb := median(small), median(big)
	t.Logf("median open+list: 2 MB file %v, 2 GB file %v", ms, mb)
	if mb > 2*ms+5*time.Millisecond {
		t.Errorf("listing the 2 GB file took %v, the 2 MB file %v: listing must not depend on the data size", mb, ms)
	}
}
