package formats

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/safetensors"
	"github.com/qkvdev/qkv/internal/testref"
)

func openForward(t *testing.T, path string) *Model {
	t.Helper()
	c, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m, err := FindModel(c, FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestForwardSpecs checks the forward settings each architecture's rule
// gives, from Hugging Face and GGUF files alike (the numbers these
// settings produce are checked against references in package attn).
func TestForwardSpecs(t *testing.T) {
	shared := testref.SharedDir(t)
	zoo := func(arch, file string) string { return filepath.Join(shared, "reference", "zoo", arch, file) }
	modern := func(arch, file string) string { return filepath.Join(shared, "reference", "zoo-modern", arch, file) }
	tests := []struct {
		paths      []string
		placement  string
		act        string
		parallel   bool
		sharedNorm bool
		head       string
		moe        string // MoESpec.Scoring, "" for none
	}{
		{[]string{zoo("llama", "hf"), zoo("llama", "gguf/llama-f32.gguf")}, PlacementPre, ActSiLU, false, false, LMHeadSeparate, ""},
		{[]string{zoo("qwen2", "hf"), zoo("qwen2", "gguf/qwen2-f32.gguf")}, PlacementPre, ActSiLU, false, false, LMHeadTied, ""},
		{[]string{zoo("gpt2", "hf"), zoo("gpt2", "gguf/gpt2-f32.gguf")}, PlacementPre, ActGELUTanh, false, false, LMHeadTied, ""},
		{[]string{zoo("phi3", "hf"), zoo("phi3", "gguf/phi3-f32.gguf")}, PlacementPre, ActSiLU, false, false, LMHeadSeparate, ""},
		{[]string{zoo("gpt_neox", "hf"), zoo("gpt_neox", "gguf/gpt_neox-f32.gguf")}, PlacementPre, ActGELU, true, false, LMHeadSeparate, ""},
		{[]string{zoo("falcon", "hf"), zoo("falcon", "gguf/falcon-f32.gguf")}, PlacementPre, ActGELU, true, true, LMHeadTied, ""},
		{[]string{zoo("bloom", "hf"), zoo("bloom", "gguf/bloom-f32.gguf")}, PlacementPre, ActBloomGELU, false, false, LMHeadTied, ""},
		{[]string{zoo("bert", "hf"), zoo("bert", "gguf/bert-f32.gguf")}, PlacementPost, ActGELU, false, false, LMHeadNone, ""},
		{[]string{modern("gemma3", "hf"), modern("gemma3", "gguf/gemma3-f32.gguf")}, PlacementSandwich, ActGELUTanh, false, false, LMHeadTied, ""},
		{[]string{modern("olmo2", "hf"), modern("olmo2", "gguf/olmo2-f32.gguf")}, PlacementSubPost, ActSiLU, false, false, LMHeadSeparate, ""},
		{[]string{modern("gpt_oss", "hf"), modern("gpt_oss", "gguf/gpt_oss-f32.gguf")}, PlacementPre, ActSwiGLUOAI, false, false, LMHeadSeparate, "softmax"},
		{[]string{modern("deepseek_v3", "hf"), modern("deepseek_v3", "gguf/deepseek_v3-f32.gguf")}, PlacementPre, ActSiLU, false, false, LMHeadSeparate, ""},
		{[]string{filepath.Join(testref.RepoRoot(), "testdata/arch/mixtral/hf"), filepath.Join(testref.RepoRoot(), "testdata/arch/mixtral/mixtral.gguf")}, PlacementPre, ActSiLU, false, false, LMHeadSeparate, "softmax"},
	}
	for _, tc := range tests {
		for _, p := range tc.paths {
			m := openForward(t, p)
			s, err := m.ForwardSpec()
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if len(s.Unsupported) > 0 {
				t.Errorf("%s: unsupported %v", p, s.Unsupported)
			}
			if s.Placement != tc.placement || s.Activation != tc.act || s.ParallelResidual != tc.parallel || s.SharedNorm != tc.sharedNorm || s.LMHead != tc.head {
				t.Errorf("%s: placement %s activation %s parallel %v shared norm %v head %s; want %s %s %v %v %s",
					p, s.Placement, s.Activation, s.ParallelResidual, s.SharedNorm, s.LMHead, tc.placement, tc.act, tc.parallel, tc.sharedNorm, tc.head)
			}
			if got := ""; s.MoE != nil {
				got = s.MoE.Scoring
				if got != tc.moe {
					t.Errorf("%s: MoE scoring %q, want %q", p, got, tc.moe)
				}
			} else if tc.moe != "" {
				t.Errorf("%s: no MoE spec", p)
			}
			if s.NormEps <= 0 {
				t.Errorf("%s: norm eps %g", p, s.NormEps)
			}
			b, err := m.LoadBlock(0)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if (b.MLP == nil) == (b.MoE == nil) {
				t.Errorf("%s: block 0 has MLP %v and MoE %v", p, b.MLP != nil, b.MoE != nil)
			}
		}
	}
}

// TestForwardMoELoading checks a MoE block's pieces: the router, the shared
// expert, and experts decoded on demand, in the same orientation from the
// Hugging Face per-expert tensors and the GGUF stacked ones.
func TestForwardMoELoading(t *testing.T) {
	root := testref.RepoRoot()
	hf := openForward(t, filepath.Join(root, "testdata/arch/mixtral/hf"))
	gg := openForward(t, filepath.Join(root, "testdata/arch/mixtral/mixtral.gguf"))
	bh, err := hf.LoadBlock(1)
	if err != nil {
		t.Fatal(err)
	}
	bg, err := gg.LoadBlock(1)
	if err != nil {
		t.Fatal(err)
	}
	if bh.MoE == nil || bg.MoE == nil || bh.MoE.Experts() != 2 || bg.MoE.Experts() != 2 {
		t.Fatal("mixtral layer 1 is not a 2-expert MoE in both forms")
	}
	for e := 0; e < 2; e++ {
		a, err := bh.MoE.Expert(e)
		if err != nil {
			t.Fatal(err)
		}
		b, err := bg.MoE.Expert(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range []struct {
			name string
			a, b Matrix
		}{{"gate", a.Gate, b.Gate}, {"up", a.Up, b.Up}, {"down", a.Down, b.Down}} {
			if x.a.Rows != x.b.Rows || x.a.Cols != x.b.Cols || len(x.a.Data) == 0 {
				t.Fatalf("expert %d %s: [%d, %d] vs [%d, %d]", e, x.name, x.a.Rows, x.a.Cols, x.b.Rows, x.b.Cols)
			}
			for i := range x.a.Data {
				if x.a.Data[i] != x.b.Data[i] {
					t.Fatalf("expert %d %s differs at %d", e, x.name, i)
				}
			}
		}
	}
	if _, err := bh.MoE.Expert(2); err == nil {
		t.Error("expert 2 of 2 did not fail")
	}
}

// copyModel copies a Hugging Face folder into a temporary one, changing
// config.json by edit and adding extra tensors.
func copyModel(t *testing.T, src string, edit func(map[string]any), extra ...safetensors.WriteTensor) string {
	t.Helper()
	dir := t.TempDir()
	var conf map[string]any
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(conf)
	}
	b, _ = json.Marshal(conf)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ts, err := testref.ReadSafetensors(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var out []safetensors.WriteTensor
	for _, name := range testref.Names(ts) {
		x := ts[name]
		shape := make([]int64, len(x.Shape))
		for i, d := range x.Shape {
			shape[i] = int64(d)
		}
		out = append(out, safetensors.F32Tensor(name, shape, x.F32()))
	}
	out = append(out, extra...)
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := safetensors.Write(f, out, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestForwardRefusals: what the forward does not model is named, never
// computed.
func TestForwardRefusals(t *testing.T) {
	root := testref.RepoRoot()
	mistral := filepath.Join(root, "testdata/arch/mistral/hf")
	tests := []struct {
		name string
		path func() string
		want string // a substring of one unsupported item's name
	}{
		{"unknown activation", func() string {
			return copyModel(t, mistral, func(c map[string]any) { c["hidden_act"] = "gelu_fast" })
		}, "hidden_act"},
		{"tensor outside the block's layout", func() string {
			return copyModel(t, mistral, nil, safetensors.F32Tensor("model.layers.1.mlp.extra_proj.weight", []int64{4}, make([]float32, 4)))
		}, "model.layers.1.mlp.extra_proj.weight"},
		{"logit scale", func() string {
			return copyModel(t, mistral, func(c map[string]any) { c["logit_scale"] = 0.5 })
		}, "logit_scale"},
		{"final logit softcap where the architecture has none", func() string {
			return copyModel(t, mistral, func(c map[string]any) { c["final_logit_softcapping"] = 30.0 })
		}, "final_logit_softcapping"},
		{"architecture without a verified block", func() string {
			return copyModel(t, mistral, func(c map[string]any) {
				c["model_type"] = "granite"
				c["architectures"] = []string{"GraniteForCausalLM"}
			})
		}, "granite"},
		{"OPT-350m's embedding projection", func() string {
			return copyModel(t, filepath.Join(root, "attn/testdata/forward/opt"), func(c map[string]any) { c["word_embed_proj_dim"] = 16 })
		}, "word_embed_proj_dim"},
		{"a model-level tensor beside the layers", func() string {
			return copyModel(t, filepath.Join(root, "attn/testdata/forward/opt"), nil, safetensors.F32Tensor("model.decoder.project_out.weight", []int64{32, 32}, make([]float32, 32*32)))
		}, "model.decoder.project_out.weight"},
		{"LM head bias", func() string {
			return copyModel(t, mistral, nil, safetensors.F32Tensor("lm_head.bias", []int64{32}, make([]float32, 32)))
		}, "lm_head.bias"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := openForward(t, tc.path())
			s, err := m.ForwardSpec()
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, u := range s.Unsupported {
				if strings.Contains(u.Name, tc.want) || strings.Contains(u.Message, tc.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no unsupported item names %q: %+v", tc.want, s.Unsupported)
			}
			if _, err := m.LoadBlock(0); err == nil {
				t.Error("LoadBlock ran on a model the forward does not model")
			}
		})
	}
	// A MoE GGUF that does not say how many experts each token uses.
	m := openForward(t, filepath.Join(root, "testdata/arch/deepseek_v2/deepseek_v2.gguf"))
	if _, err := m.ForwardSpec(); err == nil || !strings.Contains(err.Error(), "expert_used_count") {
		t.Errorf("deepseek_v2.gguf without expert_used_count: %v", err)
	}
}
