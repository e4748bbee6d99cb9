package cmd_test

// Text output is linear in rows (issue 11): `ls` and `meta` on headers of
// 10,000 and 100,000 tensors (and metadata keys). The benchmark reports
// the cost per 10,000 rows at each size; a linear renderer gives the same
// figure at both sizes, the old quadratic one ten times more at 100,000.
//
//	go test ./cmd -run XXX -bench Rows -benchtime 3x
//
// Target: well under a second per 10,000 rows at 100,000 rows (the
// machine's other load included); the slope ratio (100k / 10k per-row
// cost) near 1. Wall time suffers from other load on a shared machine;
// cpu-ms/10k-rows (the process's CPU time) does not.
//
// Measured (2 shared cores): before, ls 1,183 ms/10k rows at 10,000 and
// 13,200 at 100,000 (132 s in all), meta 852 and 7,846 (machine lightly
// loaded); after, under a load average of 18, ls 475 and 524 ms/10k rows
// wall (5.2 s in all), 109 and 136 cpu-ms; meta 574 and 604 wall, 132 and
// 152 cpu-ms; ls --json 144 and 159 cpu-ms. Most of what remains is
// parsing the header's JSON.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/qkvdev/qkv/cmd"
)

// writeManyTensors writes a safetensors file of n F32 tensors of one value
// each and n __metadata__ entries.
func writeManyTensors(tb testing.TB, dir string, n int) string {
	tb.Helper()
	var h strings.Builder
	h.WriteString(`{"__metadata__":{`)
	for i := 0; i < n; i++ {
		if i > 0 {
			h.WriteByte(',')
		}
		fmt.Fprintf(&h, `"meta.key.%07d":"value %d"`, i, i)
	}
	h.WriteString("}")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&h, `,"model.layers.%d.block.weight.%07d":{"dtype":"F32","shape":[1],"data_offsets":[%d,%d]}`, i/100, i, 4*i, 4*i+4)
	}
	h.WriteString("}")
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(h.Len()))
	b = append(b, h.String()...)
	b = append(b, make([]byte, 4*n)...)
	p := filepath.Join(dir, fmt.Sprintf("many-%d.safetensors", n))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func runDiscard(tb testing.TB, args ...string) {
	s := &cmd.Streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard, Width: 120}
	if code := cmd.Run(context.Background(), args, s); code != 0 {
		tb.Fatalf("qkv %v: exit %d", args, code)
	}
}

func BenchmarkRows(b *testing.B) {
	dir := b.TempDir()
	for _, n := range []int{10_000, 100_000} {
		path := writeManyTensors(b, dir, n)
		for _, sub := range [][]string{{"ls"}, {"meta"}, {"ls", "--json"}} {
			b.Run(fmt.Sprintf("%s/%d", strings.Join(sub, ""), n), func(b *testing.B) {
				args := append(append([]string{}, sub...), path)
				cpu0 := cpuTime()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					runDiscard(b, args...)
				}
				per := time.Since(start) / time.Duration(b.N)
				cpu := (cpuTime() - cpu0) / time.Duration(b.N)
				b.ReportMetric(float64(per.Nanoseconds())/1e6/float64(n/10_000), "ms/10k-rows")
				// CPU time (all threads, GC included) is what a busy
				// machine does not inflate.
				b.ReportMetric(float64(cpu.Nanoseconds())/1e6/float64(n/10_000), "cpu-ms/10k-rows")
			})
		}
	}
}

// TestRowsLinear asserts that ls and meta allocate in proportion to the rows
// they print: bytes allocated for 20,000 rows within 3× of ten times those
// for 2,000 rows (the quadratic renderer allocated ~10× more per row at the
// larger size). Counts, not wall time, so a busy machine cannot fail it.
func TestRowsLinear(t *testing.T) {
	dir := t.TempDir()
	small, large := writeManyTensors(t, dir, 2_000), writeManyTensors(t, dir, 20_000)
	alloc := func(args ...string) uint64 {
		runtime.GC()
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		runDiscard(t, args...)
		runtime.ReadMemStats(&b)
		return b.TotalAlloc - a.TotalAlloc
	}
	for _, sub := range []string{"ls", "meta"} {
		as, al := alloc(sub, small), alloc(sub, large)
		ratio := float64(al) / float64(as)
		t.Logf("%s: %d bytes allocated for 2,000 rows, %d for 20,000 (×%.1f)", sub, as, al, ratio)
		if ratio > 30 {
			t.Errorf("%s allocates %.1f× more for 10× the rows: rendering is not linear", sub, ratio)
		}
	}
}
