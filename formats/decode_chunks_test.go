package formats

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// TestDecodeChunks: decoding in pieces of any size gives exactly the values
// of one whole decode, in order, with pieces of whole blocks.
func TestDecodeChunks(t *testing.T) {
	root := testref.RepoRoot()
	paths, _ := filepath.Glob(filepath.Join(root, "testdata", "dtypes", "*.safetensors"))
	paths = append(paths, filepath.Join(root, "testdata", "gguf", "tiny-llama-be-f16.gguf"), filepath.Join(root, "testdata", "tiny-llama"))
	t.Run("testdata", func(t *testing.T) { decodeInPieces(t, paths) })
	t.Run("quant", func(t *testing.T) {
		q, _ := filepath.Glob(filepath.Join(testref.SharedDir(t), "reference", "quant", "*.gguf"))
		decodeInPieces(t, q)
	})
}

func decodeInPieces(t *testing.T, paths []string) {
	checked := 0
	for _, p := range paths {
		ck, err := Open(p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range ck.Tensors {
			if !tn.Type.Decodable() || (ck.BigEndian() && tn.Type.Quantized()) {
				continue
			}
			want, err := ck.DecodeNew(tn)
			if err != nil {
				t.Fatal(err)
			}
			for _, piece := range []int{1, 7, 256, 1 << 20} {
				var got []float32
				bs := int64(max(tn.Type.BlockSize(), 1))
				err := ck.DecodeChunks(tn, piece, func(first int64, vals []float32) error {
					if first != int64(len(got)) || int64(len(vals))%bs != 0 || (len(vals) > piece && int64(len(vals)) != bs) {
						t.Fatalf("%s %s: piece at %d of %d values (decoded so far %d, block %d, max %d)", p, tn.Name, first, len(vals), len(got), bs, piece)
					}
					got = append(got, vals...)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("%s %s: %d values, want %d", p, tn.Name, len(got), len(want))
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s %s piece %d: value %d = %g, want %g", p, tn.Name, piece, i, got[i], want[i])
					}
				}
			}
			checked++
		}
		ck.Close()
	}
	t.Logf("%d tensors decoded in pieces", checked)
}
