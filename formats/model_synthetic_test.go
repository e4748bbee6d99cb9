package formats

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/qkvdev/qkv/formats/safetensors"
)

// code labels a fused row: kind 1 = q, 2 = k, 3 = v; head; dim within head.
func code(kind, head, dim int) float32 { return float32(kind*100 + head*10 + dim) }

func writeModel(t *testing.T, config string, ts []safetensors.WriteTensor) string {
	t.Helper()
	dir := t.TempDir()
	writeST(t, filepath.Join(dir, "model.safetensors"), ts)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// labelled returns rows×cols data whose row r holds label(r) in every column.
func labelled(rows, cols int, label func(r int) float32) []float32 {
	out := make([]float32, rows*cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			out[r*cols+c] = label(r)
		}
	}
	return out
}

// TestFusedLayoutsSynthetic writes fused QKV tensors laid out by each
// architecture's published rule, row by row, and checks that every
// extracted row is the one the rule puts there.
func TestFusedLayoutsSynthetic(t *testing.T) {
	const d = 8
	tests := []struct {
		name, config, prefix string
		nh, nkv, hd          int
		// layout lists the fused rows in stored order as (kind, head, dim).
		layout func(nh, nkv, hd int) [][3]int
	}{
		{"falcon new_decoder_architecture", `{"model_type": "falcon", "hidden_size": 8, "num_attention_heads": 4, "num_kv_heads": 2, "new_decoder_architecture": true, "num_hidden_layers": 1}`,
			"transformer.h.0.self_attention.", 4, 2, 2,
			func(nh, nkv, hd int) (l [][3]int) {
				g := nh / nkv
				for j := 0; j < nkv; j++ { // HF view [n_kv, g+2, hd]
					for q := 0; q < g; q++ {
						for x := 0; x < hd; x++ {
							l = append(l, [3]int{1, j*g + q, x})
						}
					}
					for x := 0; x < hd; x++ {
						l = append(l, [3]int{2, j, x})
					}
					for x := 0; x < hd; x++ {
						l = append(l, [3]int{3, j, x})
					}
				}
				return
			}},
		{"falcon classic (not multi-query)", `{"model_type": "falcon", "hidden_size": 8, "num_attention_heads": 4, "multi_query": false, "num_hidden_layers": 1}`,
			"transformer.h.0.self_attention.", 4, 4, 2,
			func(nh, nkv, hd int) (l [][3]int) {
				for h := 0; h < nh; h++ { // HF view [n_heads, 3, hd]
					for kind := 1; kind <= 3; kind++ {
						for x := 0; x < hd; x++ {
							l = append(l, [3]int{kind, h, x})
						}
					}
				}
				return
			}},
		{"falcon multi-query", `{"model_type": "falcon", "hidden_size": 8, "num_attention_heads": 4, "num_kv_heads": 4, "num_hidden_layers": 1}`,
			"transformer.h.0.self_attention.", 4, 1, 2,
			func(nh, nkv, hd int) (l [][3]int) {
				for h := 0; h < nh; h++ { // HF view [n_heads + 2, hd]
					for x := 0; x < hd; x++ {
						l = append(l, [3]int{1, h, x})
					}
				}
				for kind := 2; kind <= 3; kind++ {
					for x := 0; x < hd; x++ {
						l = append(l, [3]int{kind, 0, x})
					}
				}
				return
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			layout := tc.layout(tc.nh, tc.nkv, tc.hd)
			fused := labelled(len(layout), d, func(r int) float32 { return code(layout[r][0], layout[r][1], layout[r][2]) })
			dir := writeModel(t, tc.config, []safetensors.WriteTensor{
				safetensors.F32Tensor(tc.prefix+"query_key_value.weight", []int64{int64(len(layout)), d}, fused),
				safetensors.F32Tensor(tc.prefix+"dense.weight", []int64{d, int64(tc.nh * tc.hd)}, make([]float32, d*tc.nh*tc.hd)),
				safetensors.F32Tensor("transformer.h.0.input_layernorm.weight", []int64{d}, make([]float32, d)),
				safetensors.F32Tensor("transformer.h.0.input_layernorm.bias", []int64{d}, make([]float32, d)),
			})
			m := openModel(t, dir, FindOptions{})
			g := m.Geometry()
			if g.NHeads != tc.nh || g.NKVHeads != tc.nkv || g.HeadDim != tc.hd || g.Norm != NormLayerNorm {
				t.Fatalf("geometry %+v", g)
			}
			l, err := m.LoadLayer(0)
			if err != nil {
				t.Fatal(err)
			}
			for kind, p := range map[int]Projection{1: ProjQ, 2: ProjK, 3: ProjV} {
				mat := l.Matrix(p)
				heads := tc.nkv
				if p == ProjQ {
					heads = tc.nh
				}
				if mat.Rows != heads*tc.hd {
					t.Fatalf("%s: %d rows", p, mat.Rows)
				}
				for h := 0; h < heads; h++ {
					for x := 0; x < tc.hd; x++ {
						if got, want := mat.At(h*tc.hd+x, 3), code(kind, h, x); got != want {
							t.Errorf("%s row %d = %v, want %v", p, h*tc.hd+x, got, want)
						}
					}
				}
			}
		})
	}
}

// TestEncoderDecoderStacks: a BART model with both stacks lists the
// encoder's layers first, then the decoder's, each with its own tensors.
func TestEncoderDecoderStacks(t *testing.T) {
	var ts []safetensors.WriteTensor
	for si, stack := range []string{"model.encoder.", "model.decoder."} {
		for _, leaf := range []string{"q_proj", "k_proj", "v_proj", "out_proj"} {
			pre := stack + "layers.0.self_attn." + leaf
			ts = append(ts, safetensors.F32Tensor(pre+".weight", []int64{4, 4}, labelled(4, 4, func(int) float32 { return float32(si + 1) })))
			ts = append(ts, safetensors.F32Tensor(pre+".bias", []int64{4}, make([]float32, 4)))
		}
	}
	ts = append(ts, safetensors.F32Tensor("model.decoder.layers.0.encoder_attn.q_proj.weight", []int64{4, 4}, make([]float32, 16)))
	ts = append(ts, safetensors.F32Tensor("model.shared.weight", []int64{10, 4}, make([]float32, 40)))
	dir := writeModel(t, `{"model_type": "bart", "d_model": 4, "encoder_attention_heads": 2, "decoder_attention_heads": 2, "encoder_layers": 1, "decoder_layers": 1, "vocab_size": 10}`, ts)
	m := openModel(t, dir, FindOptions{})
	if ix := m.LayerIndices(); len(ix) != 2 || ix[0] != 0 || ix[1] != 1 {
		t.Fatalf("layers %v", ix)
	}
	if m.Layers[0].Stack != "model.encoder." || m.Layers[1].Stack != "model.decoder." || len(m.Layers[1].CrossAttention) != 1 {
		t.Errorf("stacks %q %q, cross %v", m.Layers[0].Stack, m.Layers[1].Stack, m.Layers[1].CrossAttention)
	}
	if g := m.Geometry(); g.NLayers != 2 || g.NHeads != 2 || g.HeadDim != 2 {
		t.Errorf("geometry %+v", g)
	}
	for i, want := range []float32{1, 2} {
		l, err := m.LoadLayer(i)
		if err != nil {
			t.Fatal(err)
		}
		if l.Q.At(0, 0) != want || l.OBias == nil {
			t.Errorf("layer %d: q[0,0] = %v, want %v", i, l.Q.At(0, 0), want)
		}
	}
	if _, err := m.Embeddings([]int{9}); err != nil {
		t.Errorf("embeddings from model.shared: %v", err)
	}
}
