package dtype

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// block returns n zero blocks of t with patch applied to the first one.
func block(t Type, n int, patch func(b []byte)) []byte {
	b := make([]byte, n*t.BlockBytes())
	if patch != nil {
		patch(b)
	}
	return b
}

func put16(off int, v uint16) func([]byte) {
	return func(b []byte) { binary.LittleEndian.PutUint16(b[off:], v) }
}

func TestNonFiniteScales(t *testing.T) {
	const nan16, inf16, ninf16, max16 = 0x7e00, 0x7c00, 0xfc00, 0x7bff
	tests := []struct {
		name  string
		typ   Type
		src   []byte
		want  int64
		error string // substring; "" for no error
	}{
		{"F32 has no scales", F32, make([]byte, 16), 0, ""},
		{"F16 NaN values are not scales", F16, []byte{0, 0x7e, 0, 0x7c}, 0, ""},
		{"Q4_0 d NaN", FromGGML(2), block(FromGGML(2), 3, put16(0, nan16)), 1, ""},
		{"Q4_0 max finite d", FromGGML(2), block(FromGGML(2), 3, put16(0, max16)), 0, ""},
		{"Q4_1 m Inf", FromGGML(3), block(FromGGML(3), 2, put16(2, inf16)), 1, ""},
		{"Q4_1 codes are not scales", FromGGML(3), block(FromGGML(3), 1, func(b []byte) {
			for i := 4; i < 20; i++ {
				b[i] = 0xff
			}
		}), 0, ""},
		{"Q5_0 d -Inf", FromGGML(6), block(FromGGML(6), 2, put16(0, ninf16)), 1, ""},
		{"Q5_1 m NaN", FromGGML(7), block(FromGGML(7), 2, put16(2, nan16)), 1, ""},
		{"Q8_0 d Inf", Q8_0, block(Q8_0, 4, put16(0, inf16)), 1, ""},
		{"Q8_0 d and the next block", Q8_0, block(Q8_0, 4, func(b []byte) {
			put16(0, nan16)(b)
			put16(34, inf16)(b)
			put16(68, max16)(b)
		}), 2, ""},
		{"Q8_1 s Inf (only dot products read it)", FromGGML(9), block(FromGGML(9), 2, put16(2, inf16)), 1, ""},
		{"Q2_K d NaN", FromGGML(10), block(FromGGML(10), 2, put16(80, nan16)), 1, ""},
		{"Q2_K dmin Inf", FromGGML(10), block(FromGGML(10), 2, put16(82, inf16)), 1, ""},
		{"Q2_K scale bytes are not scales", FromGGML(10), block(FromGGML(10), 1, func(b []byte) {
			for i := range 16 {
				b[i] = 0xff
			}
		}), 0, ""},
		{"Q3_K d Inf", FromGGML(11), block(FromGGML(11), 2, put16(108, inf16)), 1, ""},
		{"Q4_K d and dmin both bad: one block", Q4_K, block(Q4_K, 2, func(b []byte) {
			put16(0, ninf16)(b)
			put16(2, nan16)(b)
		}), 1, ""},
		{"Q4_K dmin Inf", Q4_K, block(Q4_K, 2, put16(2, inf16)), 1, ""},
		{"Q5_K dmin NaN", FromGGML(13), block(FromGGML(13), 2, put16(2, nan16)), 1, ""},
		{"Q6_K d NaN", FromGGML(14), block(FromGGML(14), 2, put16(208, nan16)), 1, ""},
		{"Q6_K int8 scales are not scales", FromGGML(14), block(FromGGML(14), 1, func(b []byte) {
			for i := 192; i < 208; i++ {
				b[i] = 0xff
			}
		}), 0, ""},
		{"Q8_K float32 d Inf", FromGGML(15), block(FromGGML(15), 2, func(b []byte) {
			binary.LittleEndian.PutUint32(b, math.Float32bits(float32(math.Inf(1))))
		}), 1, ""},
		{"Q8_K float32 d NaN", FromGGML(15), block(FromGGML(15), 2, func(b []byte) {
			binary.LittleEndian.PutUint32(b, 0x7fc00000)
		}), 1, ""},
		{"Q8_K float32 d 0x7c00 0x7c00 is finite", FromGGML(15), block(FromGGML(15), 1, func(b []byte) {
			binary.LittleEndian.PutUint32(b, 0x7c007c00) // Inf as two fp16, a finite float32
		}), 0, ""},
		{"Q8_K bsums are not scales", FromGGML(15), block(FromGGML(15), 1, func(b []byte) {
			for i := 260; i < 292; i++ {
				b[i] = 0xff
			}
		}), 0, ""},
		{"IQ2_XXS d NaN", FromGGML(16), block(FromGGML(16), 2, put16(0, nan16)), 1, ""},
		{"IQ2_XS d Inf", FromGGML(17), block(FromGGML(17), 2, put16(0, inf16)), 1, ""},
		{"IQ3_XXS d Inf", FromGGML(18), block(FromGGML(18), 2, put16(0, inf16)), 1, ""},
		{"IQ1_S d NaN", FromGGML(19), block(FromGGML(19), 2, put16(0, nan16)), 1, ""},
		{"IQ4_NL d Inf", FromGGML(20), block(FromGGML(20), 2, put16(0, inf16)), 1, ""},
		{"IQ3_S d NaN", FromGGML(21), block(FromGGML(21), 2, put16(0, nan16)), 1, ""},
		{"IQ2_S d NaN", FromGGML(22), block(FromGGML(22), 2, put16(0, nan16)), 1, ""},
		{"IQ4_XS d Inf", FromGGML(23), block(FromGGML(23), 2, put16(0, inf16)), 1, ""},
		// IQ1_M's d = 0x7c00 is the top nibbles 0, 0, 0xc, 0x7 of scales[0..3].
		{"IQ1_M d Inf from four nibbles", FromGGML(29), block(FromGGML(29), 2, func(b []byte) {
			put16(48+4, 0xc000)(b)
			put16(48+6, 0x7000)(b)
		}), 1, ""},
		{"IQ1_M sub-block scales are not d", FromGGML(29), block(FromGGML(29), 1, func(b []byte) {
			for k := range 4 {
				put16(48+2*k, 0x0fff)(b)
			}
		}), 0, ""},
		{"IQ1_M three nibbles are not enough", FromGGML(29), block(FromGGML(29), 1, func(b []byte) {
			put16(48+6, 0x7000)(b) // d = 0x7000, finite
		}), 0, ""},
		{"TQ1_0 d Inf", FromGGML(34), block(FromGGML(34), 2, put16(52, inf16)), 1, ""},
		{"TQ2_0 d NaN", FromGGML(35), block(FromGGML(35), 2, put16(64, nan16)), 1, ""},
		{"MXFP4 e = 0xFF is finite in ggml", FromGGML(39), block(FromGGML(39), 2, func(b []byte) { b[0] = 0xff }), 0, ""},
		{"Q4_2 (removed) d NaN", FromGGML(4), block(FromGGML(4), 2, put16(0, nan16)), 1, ""},
		{"Q4_3 (removed) m Inf", FromGGML(5), block(FromGGML(5), 2, put16(2, inf16)), 1, ""},
		{"empty", Q8_0, nil, 0, ""},
		{"partial block", Q8_0, make([]byte, 34+5), 0, "5 bytes left over at offset 34"},
		{"repacked type", FromGGML(31), make([]byte, 72), 0, "not known"},
		{"unknown GGML id", FromGGML(1000), make([]byte, 8), 0, "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NonFiniteScales(tc.typ, tc.src)
			if tc.error != "" {
				if err == nil || !strings.Contains(err.Error(), tc.error) {
					t.Fatalf("error %v, want one containing %q", err, tc.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("%d blocks, want %d", got, tc.want)
			}
		})
	}
}

// TestNonFiniteScalesAgreeWithDecode fills blocks of every decodable
// quantized type with random bytes (biased towards all-ones exponents) and
// checks NonFiniteScales against what the decoders (verified bit-exactly
// against ggml in reference_test.go) produce: a block whose values include
// NaN or Inf must have a non-finite scale, and a block with a non-finite
// scale decodes to some NaN or Inf. This catches a scale field the table
// misses (first) or misplaces (second).
func TestNonFiniteScalesAgreeWithDecode(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	specials := []byte{0x7c, 0x7e, 0xfc, 0xff, 0x7f, 0x80}
	for _, typ := range All() {
		if !typ.Quantized() || !typ.Decodable() {
			continue
		}
		t.Run(typ.Name(), func(t *testing.T) {
			bs, bb := typ.BlockSize(), typ.BlockBytes()
			src := make([]byte, bb)
			dst := make([]float32, bs)
			var flagged, clean int
			for range 3000 {
				for i := range src {
					if rng.IntN(5) == 0 {
						src[i] = specials[rng.IntN(len(specials))]
					} else {
						src[i] = byte(rng.Uint32())
					}
				}
				n, err := NonFiniteScales(typ, src)
				if err != nil {
					t.Fatal(err)
				}
				if err := Decode(typ, dst, src); err != nil {
					t.Fatal(err)
				}
				bad := 0
				for _, v := range dst {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						bad++
					}
				}
				if n == 1 {
					flagged++
				} else {
					clean++
				}
				switch typ.Name() {
				case "MXFP4":
					// Never counted: 0xFF is a finite scale in ggml, and
					// 12 * 2^127 overflowing is not a bad scale.
					if n != 0 {
						t.Fatalf("MXFP4 block counted: % x", src)
					}
					continue
				case "Q8_K":
					// A huge finite float32 d times a code can overflow.
					if d := math.Float32frombits(binary.LittleEndian.Uint32(src)); n == 0 && bad > 0 && math.Abs(float64(d))*128 < math.MaxFloat32 {
						t.Fatalf("Q8_K block with finite d %g decodes to %d non-finite values", d, bad)
					}
				default:
					if bad > 0 && n == 0 {
						t.Fatalf("block decodes to %d NaN/Inf values but no scale was counted: % x", bad, src)
					}
				}
				// Q8_1's s is not read by the decoder.
				if n == 1 && bad == 0 && typ.Name() != "Q8_1" {
					t.Fatalf("block counted but decodes to finite values: % x", src)
				}
			}
			if typ.Name() != "MXFP4" && (flagged < 20 || clean < 20) {
				t.Errorf("random blocks gave %d flagged and %d clean: too few of one kind to test", flagged, clean)
			}
		})
	}
}

// TestNonFiniteScalesSpecial reads the patched blocks of reference/quant's
// special.gguf: the manifest says which scale fields of which block were
// overwritten with what bits, so the count expected per block follows from
// the manifest alone.
func TestNonFiniteScalesSpecial(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "quant")
	var m struct {
		Special struct {
			GGUFFile string `json:"gguf_file"`
			Layout   struct {
				DataStart int64 `json:"data_start"`
				Tensors   []struct {
					Name   string  `json:"name"`
					NE     []int64 `json:"ne"`
					Offset int64   `json:"offset"`
					Type   uint32  `json:"type"`
				} `json:"tensors"`
			} `json:"gguf_layout"`
			Tensors []struct {
				Name   string `json:"name"`
				Blocks []struct {
					Block int            `json:"block"`
					Patch map[string]any `json:"patch"`
					What  string         `json:"what"`
				} `json:"blocks"`
			} `json:"tensors"`
		} `json:"special"`
	}
	if err := testref.ReadJSON(filepath.Join(dir, "manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(dir, m.Special.GGUFFile))
	if err != nil {
		t.Fatal(err)
	}
	tested := 0
	for _, desc := range m.Special.Tensors {
		if len(desc.Blocks) == 0 {
			continue
		}
		t.Run(desc.Name, func(t *testing.T) {
			var typ Type
			var raw []byte
			for _, ti := range m.Special.Layout.Tensors {
				if ti.Name != desc.Name {
					continue
				}
				typ = FromGGML(ti.Type)
				n := int64(1)
				for _, d := range ti.NE {
					n *= d
				}
				size, err := typ.ByteSize(n)
				if err != nil {
					t.Fatal(err)
				}
				start := m.Special.Layout.DataStart + ti.Offset
				if start < 0 || start+size > int64(len(file)) {
					t.Fatalf("bytes [%d, %d) past the end of the file", start, start+size)
				}
				raw = file[start : start+size]
			}
			if raw == nil {
				t.Fatal("not in gguf_layout")
			}
			bb := typ.BlockBytes()
			var want int64
			for _, blk := range desc.Blocks {
				bad := false
				for field, v := range blk.Patch {
					s, ok := v.(string)
					if (field != "d" && field != "dmin") || !ok {
						continue // MXFP4's "e" (never NaN in ggml), Q8_0's qs_extremes
					}
					bits, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 16)
					if err != nil {
						t.Fatalf("block %d: patch %s=%q: %v", blk.Block, field, s, err)
					}
					bad = bad || bits&0x7c00 == 0x7c00
				}
				one := int64(0)
				if bad {
					one = 1
				}
				want += one
				if (blk.Block+1)*bb > len(raw) {
					t.Fatalf("block %d past the tensor's %d bytes", blk.Block, len(raw))
				}
				got, err := NonFiniteScales(typ, raw[blk.Block*bb:(blk.Block+1)*bb])
				if err != nil {
					t.Fatal(err)
				}
				if got != one {
					t.Errorf("block %d (%s): counted %d, want %d", blk.Block, blk.What, got, one)
				}
			}
			got, err := NonFiniteScales(typ, raw)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("whole tensor: %d blocks, want %d", got, want)
			}
			tested++
		})
	}
	if tested != 3 {
		t.Errorf("tested %d tensors with patched blocks, want 3 (Q8_0, Q4_K, MXFP4)", tested)
	}
}
