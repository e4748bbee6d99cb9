package attn

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// The modern architectures have no forward reference in ../shared; their
// expected tensors come from testdata/forward/reference.py, an independent
// float64 forward written from transformers' modeling code (see
// testdata/forward/README.md). manifest.json names each model's folder, the
// sha256 of its files when the reference was made, and its token ids.

type modernManifest struct {
	Models []struct {
		Name      string            `json:"name"`
		Folder    string            `json:"folder"`
		TokenIDs  []int             `json:"token_ids"`
		Overrides map[string]any    `json:"overrides"`
		SHA256    map[string]string `json:"sha256"`
	} `json:"models"`
}

// modernGGUFs are GGUF forms whose forward must equal a reference: the
// GGUF of the same weights, under llama.cpp's reading of the file (gemma3's
// GGUF carries no query_pre_attn_scalar and no layer pattern; llama.cpp's
// qwen3moe renormalises the top-k weights).
var modernGGUFs = map[string][]string{
	"qwen3":             {"shared:reference/zoo-modern/qwen3/gguf/qwen3-f32.gguf", "shared:reference/zoo-modern/qwen3/gguf/qwen3-f16.gguf"},
	"gemma3-gguf-rules": {"shared:reference/zoo-modern/gemma3/gguf/gemma3-f32.gguf"},
	"deepseek_v3":       {"shared:reference/zoo-modern/deepseek_v3/gguf/deepseek_v3-f32.gguf"},
	"olmo2":             {"shared:reference/zoo-modern/olmo2/gguf/olmo2-f32.gguf"},
	"gpt_oss":           {"shared:reference/zoo-modern/gpt_oss/gguf/gpt_oss-f32.gguf"},
	"mixtral":           {"repo:testdata/arch/mixtral/mixtral.gguf"},
	"qwen3_moe-norm":    {"repo:testdata/arch/qwen3_moe/qwen3_moe.gguf"},
	"gemma":             {"repo:testdata/arch/gemma/gemma.gguf"},
	"gemma2-gguf-rules": {"repo:testdata/arch/gemma2/gemma2.gguf"},
}

// modernQuantized are reported (with a loose bound) against the float reference.
var modernQuantized = map[string][]string{
	"qwen3":       {"Q8_0", "Q4_K_M"},
	"deepseek_v3": {"f16", "Q8_0", "Q4_K_M"},
	"olmo2":       {"f16", "Q8_0", "Q4_K_M"},
	"gpt_oss":     {"f16", "Q8_0", "Q4_K_M"},
}

func resolveFolder(t *testing.T, spec string) string {
	kind, rel, _ := strings.Cut(spec, ":")
	if kind == "shared" {
		return filepath.Join(testref.SharedDir(t), filepath.FromSlash(rel))
	}
	return filepath.Join(testref.RepoRoot(), filepath.FromSlash(rel))
}

func fileSHA(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestForwardModern(t *testing.T) {
	var man modernManifest
	if err := testref.ReadJSON(filepath.Join("testdata", "forward", "manifest.json"), &man); err != nil {
		t.Fatal(err)
	}
	if len(man.Models) < 15 {
		t.Fatalf("manifest lists %d models", len(man.Models))
	}
	for _, mm := range man.Models {
		t.Run(mm.Name, func(t *testing.T) {
			dir := resolveFolder(t, mm.Folder)
			for f, want := range mm.SHA256 {
				if got := fileSHA(t, filepath.Join(dir, f)); got != want {
					t.Fatalf("%s/%s changed since testdata/forward was made (sha256 %s, was %s): rerun attn/testdata/forward/reference.py", mm.Folder, f, got, want)
				}
			}
			want, err := testref.ReadSafetensors(filepath.Join("testdata", "forward", mm.Name+".safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			if len(mm.Overrides) == 0 {
				got, _ := runForward(t, dir, mm.TokenIDs)
				w := compareForward(t, mm.Name+" hf", got, want, 1)
				t.Logf("%s hf worst:%s", mm.Name, worstString(w))
			}
			for _, g := range modernGGUFs[mm.Name] {
				path := resolveFolder(t, g)
				k := 1.0
				if strings.Contains(g, "f16") {
					k = 0 // reported, checked below against the f16 bound
				}
				got, _ := runForward(t, path, mm.TokenIDs)
				if k > 0 {
					w := compareForward(t, mm.Name+" "+filepath.Base(path), got, want, k)
					t.Logf("%s worst:%s", filepath.Base(path), worstString(w))
					continue
				}
				last := "logits"
				rf := relFro(got[last], want[last].F32())
				t.Logf("%s logits relative Frobenius error %.2g", filepath.Base(path), rf)
				if !(rf <= quantBound(path)) {
					t.Errorf("%s: logits %.3g away from the reference", path, rf)
				}
			}
			for _, q := range modernQuantized[mm.Name] {
				path := resolveFolder(t, "shared:reference/zoo-modern/"+mm.Name+"/gguf/"+mm.Name+"-"+q+".gguf")
				got, _ := runForward(t, path, mm.TokenIDs)
				worst := map[string]float64{}
				for _, name := range testref.Names(want) {
					if name == "tokens" {
						continue
					}
					e, err := tensorError(name, got[name], want[name].F32())
					if err != nil {
						t.Fatal(err)
					}
					kind, _, _ := strings.Cut(name, ".")
					worst[kind] = math.Max(worst[kind], e)
				}
				rf := relFro(got["logits"], want["logits"].F32())
				t.Logf("%s worst (max abs / RMS):%s; logits relative Frobenius error %.2g", filepath.Base(path), worstString(worst), rf)
				if !(rf <= quantBound(path)) {
					t.Errorf("%s: logits %.3g away from the float reference", path, rf)
				}
			}
		})
	}
}

// TestForwardModernLayer0 checks the forward's first layer against the
// zoo-modern attention references (an independent computation: the
// "full" case feeds the embeddings to every layer, so layer 0 is the real
// forward's layer 0), and so also the reference script's layer 0.
func TestForwardModernLayer0(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "zoo-modern")
	for _, name := range []string{"qwen3", "gemma3", "deepseek_v3", "olmo2", "gpt_oss"} {
		ref, err := testref.ReadSafetensors(filepath.Join(dir, name, "expected", "attn.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		script, err := testref.ReadSafetensors(filepath.Join("testdata", "forward", name+".safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		var ids []int
		for _, v := range ref["full.tokens"].F32() {
			ids = append(ids, int(v))
		}
		got, _ := runForward(t, filepath.Join(dir, name, "hf"), ids)
		for _, c := range []struct{ ref, ours string }{{"full.layers.0.probs", "probs.0"}, {"full.layers.0.out", "attn_out.0"}, {"full.x", "hidden.0"}} {
			want := ref[c.ref].F32()
			dGo, dScript := maxAbsDiff(got[c.ours], want), maxAbsDiff(script[c.ours].F32(), want)
			if dGo > 1e-5 || dScript > 1e-5 {
				t.Errorf("%s %s: forward differs from the zoo-modern reference by %.3g, the script by %.3g", name, c.ref, dGo, dScript)
			}
		}
	}
}
