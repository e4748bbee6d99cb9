package formats

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkOpenManyTensors opens a safetensors file whose header lists n
// tensors (with -bench OpenManyTensors -benchmem; the 10^6 file is 175 MB).
func BenchmarkOpenManyTensors(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		p := filepath.Join(b.TempDir(), "many.safetensors")
		var h strings.Builder
		h.WriteString(`{"__metadata__":{"format":"pt"}`)
		for i := 0; i < n; i++ {
			fmt.Fprintf(&h, `,"model.layers.%d.self_attn.q_proj.weight":{"dtype":"F32","shape":[4,4],"data_offsets":[%d,%d]}`, i, i*64, (i+1)*64)
		}
		h.WriteString("}")
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		f.Write(binary.LittleEndian.AppendUint64(nil, uint64(h.Len())))
		f.WriteString(h.String())
		f.Truncate(int64(8 + h.Len() + n*64))
		f.Close()
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, err := Open(p, Options{MaxHeaderBytes: 1 << 30})
				if err != nil {
					b.Fatal(err)
				}
				if len(c.Tensors) != n {
					b.Fatalf("%d tensors", len(c.Tensors))
				}
				c.Close()
			}
		})
	}
}
