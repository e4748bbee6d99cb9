package check

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/inspect"
	"github.com/qkvdev/qkv/internal/testref"
)

// forPassModels runs fn on checkpoints with plain, permuted (GGUF RoPE
// order), fused, transposed, latent-attention and adapter projections, and
// planted zero rows; those of ../shared in a subtest that skips without it.
func forPassModels(t *testing.T, fn func(t *testing.T, path string)) {
	root := testref.RepoRoot()
	for _, rel := range []string{"tiny-llama", "gguf/tiny-llama-v3-f32.gguf", "gguf/tiny-llama-f16.gguf", "lora/gpt2-c_attn-peft", "lora/mlx-alpha-era"} {
		p := filepath.Join(root, "testdata", filepath.FromSlash(rel))
		t.Run(rel, func(t *testing.T) { fn(t, p) })
	}
	t.Run("shared", func(t *testing.T) {
		shared := testref.SharedDir(t)
		for _, rel := range []string{"zoo/gpt2/hf", "zoo/falcon/hf", "zoo/llama/gguf/llama-Q4_K_M.gguf", "zoo-modern/deepseek_v3/hf",
			"zoo-modern/gpt_oss/gguf/gpt_oss-Q8_0.gguf", "zoo-modern/qwen3/hf"} {
			p := filepath.Join(shared, "reference", filepath.FromSlash(rel))
			t.Run(rel, func(t *testing.T) { fn(t, p) })
		}
	})
}

// TestOnePass: the pass decodes every attention weight once — plain,
// permuted (GGUF's RoPE order), fused, transposed and latent-attention
// factors alike — counting its values from the decoded layer, and those
// counts, stored rows put back in place, are exactly those a scan of the
// stored tensor gives.
func TestOnePass(t *testing.T) {
	forPassModels(t, func(t *testing.T, p string) {
		in := open(t, p)
		if in.OpenErr != nil || in.FindErr != nil {
			t.Fatalf("open: %v, find: %v", in.OpenErr, in.FindErr)
		}
		rules := DefaultRules()
		f, err := gather(context.Background(), in, &rules, Options{})
		if err != nil {
			t.Fatal(err)
		}
		// The same checkpoint scanned alone: no model, so every tensor
		// is decoded by the scan.
		alone, err := gather(context.Background(), Input{Path: p, Checkpoint: in.Checkpoint}, &rules, Options{})
		if err != nil {
			t.Fatal(err)
		}
		want, bias := map[string]bool{}, map[string]bool{}
		for i := range in.Model.Layers {
			ls := &in.Model.Layers[i]
			for _, pr := range formats.Projections {
				ps := ls.Proj(pr)
				if ps == nil {
					continue
				}
				if ps.Tensor != nil && ps.LoRA == nil && ps.Effective == "" {
					want[ps.Tensor.Name] = true
				}
				if ps.Bias != nil {
					bias[ps.Bias.Name] = true
				}
			}
			if ml := ls.MLA; ml != nil {
				for _, t := range []*formats.Tensor{ml.QA, ml.QB, ml.KVA, ml.KVB} {
					if t != nil {
						want[t.Name] = true
					}
				}
			}
		}
		via := 0
		for i, tf := range f.Tensors {
			if !bias[tf.Name] && tf.viaLayer != want[tf.Name] {
				t.Errorf("%s: counted with its layer %v, want %v", tf.Name, tf.viaLayer, want[tf.Name])
			}
			if tf.viaLayer {
				via++
			}
			a := tf
			b := alone.Tensors[i]
			a.viaLayer = false
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s: counts %+v, the scan's %+v", tf.Name, a, b)
			}
		}
		t.Logf("%d of %d tensors counted with their layer", via, len(f.Tensors))
	})
}

// TestHeadsFit: headsFit says a model's matrices split into head blocks
// exactly when inspect's per-head analysis succeeds, so that the pass
// runs inspect once, with heads or without.
func TestHeadsFit(t *testing.T) {
	forPassModels(t, func(t *testing.T, p string) {
		in := open(t, p)
		if in.Model == nil || in.Model.HeadsKnown() != nil {
			t.Skip("head counts unknown")
		}
		fit := headsFit(in.Model)
		_, err := inspect.Run(context.Background(), in.Model, inspect.Options{Heads: true, Fast: true}, nil)
		if (fit == nil) != (err == nil) {
			t.Errorf("headsFit %v, inspect with heads %v", fit, err)
		}
	})
}
