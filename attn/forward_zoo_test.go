package attn

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/internal/testref"
)

// forwardRun is what a forward pass produced, by the tensor names of
// ../shared/reference/zoo/FORWARD.md: hidden.L (L = 0..N), attn_in.L,
// probs.L, attn_out.L, mlp_out.L, final_norm, logits.
type forwardRun map[string][]float32

// runForward opens path and runs the whole forward on tokens.
func runForward(t *testing.T, path string, tokens []int) (forwardRun, *ForwardResult) {
	t.Helper()
	ck, err := formats.Open(path, formats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := formats.FindModel(ck, formats.FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ForwardSupported(m)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := forwardRun{}
	layers := make([]int, spec.Layers)
	for i := range layers {
		layers[i] = i
	}
	opt := ForwardOptions{Layers: layers, Logits: spec.LMHead != formats.LMHeadNone, AllBlocks: true}
	opt.OnBlock = func(r *BlockRecord) error {
		i := r.Index
		out[fmt.Sprintf("hidden.%d", i)] = r.Hidden.Data
		out[fmt.Sprintf("attn_in.%d", i)] = r.AttnIn.Data
		out[fmt.Sprintf("attn_out.%d", i)] = r.Attn.Out.Data
		out[fmt.Sprintf("mlp_out.%d", i)] = r.MLPOut.Data
		var probs []float32
		for _, head := range r.Attn.Probs {
			for _, row := range head {
				probs = append(probs, row...)
			}
		}
		out[fmt.Sprintf("probs.%d", i)] = probs
		return nil
	}
	res, err := Forward(m, tokens, opt)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out[fmt.Sprintf("hidden.%d", spec.Layers)] = res.Last.Data
	if opt.Logits {
		if !res.FinalNorm.Empty() {
			out["final_norm"] = res.FinalNorm.Data
		}
		out["logits"] = res.Logits.Data
	}
	return out, res
}

// tensorError is max|got − want| / RMS(want) (probabilities: max|got − want|).
func tensorError(name string, got, want []float32) (float64, error) {
	if len(got) != len(want) {
		return 0, fmt.Errorf("%s: %d values, want %d", name, len(got), len(want))
	}
	var maxd, ss float64
	for i, w := range want {
		d := math.Abs(float64(got[i]) - float64(w))
		if !(d <= maxd) {
			maxd = d
		}
		ss += float64(w) * float64(w)
	}
	if strings.HasPrefix(name, "probs.") {
		return maxd, nil
	}
	rms := math.Sqrt(ss / float64(len(want)))
	if rms == 0 {
		return maxd, nil
	}
	return maxd / rms, nil
}

// compareForward checks every expected tensor with FORWARD.md's
// tolerances scaled by k (1 for float32 weights), and returns the worst
// error per tensor kind.
func compareForward(t *testing.T, label string, got forwardRun, want map[string]testref.Tensor, k float64) map[string]float64 {
	t.Helper()
	worst := map[string]float64{}
	for _, name := range testref.Names(want) {
		if name == "tokens" {
			continue
		}
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: the forward produced no %s", label, name)
			continue
		}
		e, err := tensorError(name, g, want[name].F32())
		if err != nil {
			t.Errorf("%s: %v", label, err)
			continue
		}
		tol := 1e-4
		if strings.HasPrefix(name, "probs.") {
			tol = 1e-5
		}
		if !(e <= tol*k) {
			t.Errorf("%s: %s differs by %.3g (tolerance %.3g)", label, name, e, tol*k)
		}
		kind := name
		if i := strings.IndexByte(name, '.'); i > 0 {
			kind = name[:i]
		}
		worst[kind] = math.Max(worst[kind], e)
	}
	return worst
}

func worstString(w map[string]float64) string {
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s %.2g", k, w[k])
	}
	return b.String()
}

// TestForwardZoo runs the real forward pass of every zoo model from its
// Hugging Face checkpoint and its f32 GGUF and compares every tensor of
// expected/forward.safetensors (../shared/reference/zoo/FORWARD.md).
func TestForwardZoo(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "zoo")
	for _, arch := range []string{"llama", "qwen2", "gpt2", "phi3", "gpt_neox", "falcon", "bloom", "bert"} {
		t.Run(arch, func(t *testing.T) {
			md := filepath.Join(dir, arch)
			want, err := testref.ReadSafetensors(filepath.Join(md, "expected", "forward.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			var tokens []int
			for _, v := range want["tokens"].F32() {
				tokens = append(tokens, int(v))
			}
			for _, src := range []string{"hf", filepath.Join("gguf", arch+"-f32.gguf")} {
				got, _ := runForward(t, filepath.Join(md, src), tokens)
				w := compareForward(t, arch+" "+src, got, want, 1)
				t.Logf("%s %s worst:%s", arch, src, worstString(w))
			}
		})
	}
}

// TestForwardZooQuantized runs the quantized GGUFs of the zoo and reports
// how far their forward lands from the float reference; the bound is loose
// (a tenth of the logits' RMS), the figures are what the README quotes.
func TestForwardZooQuantized(t *testing.T) {
	dir := filepath.Join(testref.SharedDir(t), "reference", "zoo")
	for _, arch := range []string{"llama", "qwen2", "gpt2", "phi3", "gpt_neox", "falcon", "bloom", "bert"} {
		md := filepath.Join(dir, arch)
		want, err := testref.ReadSafetensors(filepath.Join(md, "expected", "forward.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		var tokens []int
		for _, v := range want["tokens"].F32() {
			tokens = append(tokens, int(v))
		}
		files, _ := filepath.Glob(filepath.Join(md, "gguf", "*.gguf"))
		for _, f := range files {
			base := filepath.Base(f)
			if strings.HasSuffix(base, "-f32.gguf") || strings.Contains(base, "-0000") {
				continue
			}
			if _, err := os.Stat(f); err != nil {
				continue
			}
			got, _ := runForward(t, f, tokens)
			worst := map[string]float64{}
			for _, name := range testref.Names(want) {
				if name == "tokens" || got[name] == nil {
					continue
				}
				e, err := tensorError(name, got[name], want[name].F32())
				if err != nil {
					t.Fatal(err)
				}
				kind := name[:max(0, strings.IndexByte(name, '.'))]
				if kind == "" {
					kind = name
				}
				worst[kind] = math.Max(worst[kind], e)
			}
			last := "logits"
			if want[last].Shape == nil {
				last = fmt.Sprintf("hidden.%d", countPrefix(want, "hidden.")-1)
			}
			rf := relFro(got[last], want[last].F32())
			t.Logf("%s worst (max abs / RMS):%s; %s relative Frobenius error %.2g", base, worstString(worst), last, rf)
			if bound := quantBound(base); !(rf <= bound) {
				t.Errorf("%s: %s is %.3g away from the float reference (relative Frobenius), more than %.3g", base, last, rf, bound)
			}
		}
	}
}

// quantBound is a generous bound on the relative Frobenius error of the
// final tensor for a GGUF's element type, far above what was measured
// (the test guards against a forward that breaks on quantized weights).
func quantBound(file string) float64 {
	switch {
	case strings.Contains(file, "f16"), strings.Contains(file, "bf16"):
		return 0.01
	case strings.Contains(file, "Q8_0"):
		return 0.1
	case strings.Contains(file, "Q6_K"):
		return 0.2
	}
	return 0.5
}

func countPrefix(m map[string]testref.Tensor, p string) int {
	n := 0
	for k := range m {
		if strings.HasPrefix(k, p) {
			n++
		}
	}
	return n
}
