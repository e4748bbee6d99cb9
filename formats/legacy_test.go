package formats

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/x448/float16"
)

// TestLegacyFlatRun: a 2023 GGUF v2 whose Q8_0 ffn_down has rows of 44
// elements (not whole blocks) stored as one flat run of blocks is listed
// with a note, decoded whole by the flat-run rule (computed here from the
// block bytes), decoded row by row from the blocks around each row, and does not stop the
// attention layers from being found and decoded.
func TestLegacyFlatRun(t *testing.T) {
	path := filepath.Join("..", "testdata", "gguf", "legacy-q8_0-flat-run.gguf")
	c, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ffn := c.Tensor("blk.0.ffn_down.weight")
	if ffn == nil || ffn.Note == "" || !strings.Contains(ffn.Note, "flat run") {
		t.Fatalf("ffn_down not listed with a note: %+v", ffn)
	}
	if q := c.Tensor("blk.0.attn_q.weight"); q.Note != "" {
		t.Errorf("attn_q has a note %q", q.Note)
	}
	// The flat-run rule: element i is block i/32's float16 scale × its int8 quant i%32.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := raw[ffn.Offset : ffn.Offset+ffn.Bytes]
	want := make([]float32, ffn.Elements())
	for i := range want {
		blk := b[i/32*34:]
		d := float16.Frombits(binary.LittleEndian.Uint16(blk)).Float32()
		want[i] = d * float32(int8(blk[2+i%32]))
	}
	got, err := c.DecodeNew(ffn)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("element %d = %v, want %v", i, got[i], want[i])
		}
	}
	// Rows straddle blocks: each is decoded from the blocks around it.
	for _, r := range [][2]int64{{0, 1}, {1, 2}, {5, 9}, {31, 32}, {0, 32}} {
		rows := make([]float32, (r[1]-r[0])*44)
		if err := c.DecodeRows(ffn, r[0], r[1], rows); err != nil {
			t.Fatalf("rows %v: %v", r, err)
		}
		for i, v := range rows {
			if math.Float32bits(v) != math.Float32bits(want[r[0]*44+int64(i)]) {
				t.Fatalf("rows %v: element %d = %v, want %v", r, i, v, want[r[0]*44+int64(i)])
			}
		}
	}
	m, err := FindModel(c, FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.LoadLayer(0)
	if err != nil || l.Q.Rows != 32 || l.K.Rows != 16 {
		t.Fatalf("layer 0: %v", err)
	}
}
