package source

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkVerify hashes four 32 MiB files with Verify (2 at once) and,
// side by side, with the anchor: one sequential sha256 io.Copy per file,
// the fastest a single reader can go. Compare MB/s.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	buf := make([]byte, 32<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range buf {
		buf[i] = byte(r.Uint32())
	}
	var names []string
	for i := 0; i < 4; i++ {
		n := fmt.Sprintf("model-%05d-of-00004.safetensors", i+1)
		if err := os.WriteFile(filepath.Join(dir, n), buf, 0o644); err != nil {
			b.Fatal(err)
		}
		names = append(names, n)
	}
	total := int64(len(buf)) * 4
	b.Run("qkv", func(b *testing.B) {
		b.SetBytes(total)
		for i := 0; i < b.N; i++ {
			res, err := Verify(context.Background(), NewLocalDir(dir), VerifyOptions{Parallel: 2})
			if err != nil || res.Bytes != total {
				b.Fatal(err)
			}
		}
	})
	b.Run("anchor-sequential", func(b *testing.B) {
		b.SetBytes(total)
		for i := 0; i < b.N; i++ {
			for _, n := range names {
				f, err := os.Open(filepath.Join(dir, n))
				if err != nil {
					b.Fatal(err)
				}
				h := sha256.New()
				io.Copy(h, f)
				f.Close()
			}
		}
	})
}
