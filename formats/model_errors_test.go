package formats

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/qkvdev/qkv/internal/testref"
)

// TestFindModelBadConfig: configs that disagree with the tensors give
// *Errors that say what to pass, never a panic or a huge allocation.
func TestFindModelBadConfig(t *testing.T) {
	zoo := filepath.Join(testref.SharedDir(t), "reference", "zoo")
	tests := []struct {
		model, config string
		want          []string
	}{
		{"gpt_neox", `{"model_type": "gpt_neox", "hidden_size": 64, "num_attention_heads": 3, "num_hidden_layers": 2}`, []string{"--n-heads", "3 heads"}},
		{"gpt_neox", `{"model_type": "gpt_neox", "hidden_size": 64, "num_attention_heads": 1e12, "num_hidden_layers": 2}`, []string{"heads"}},
		{"gpt_neox", `{"model_type": "gpt_neox", "hidden_size": 64, "num_attention_heads": "four"}`, []string{"--n-heads"}},
		{"gpt_neox", `{"model_type": "mystery", "hidden_size": 64, "num_attention_heads": 4}`, []string{"mystery", "split rule", "--map"}},
		{"llama", `{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 8, "num_key_value_heads": 3}`, []string{"n_kv_heads 3"}},
		{"llama", `{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 8, "head_dim": 16, "num_key_value_heads": 2}`, []string{"head_dim 16", "--head-dim"}},
		{"falcon", `{"model_type": "falcon", "hidden_size": 64, "num_attention_heads": 4, "num_kv_heads": 4, "multi_query": false}`, []string{"fused QKV"}},
	}
	for _, tc := range tests {
		t.Run(tc.model+" "+tc.config, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Symlink(filepath.Join(zoo, tc.model, "hf", "model.safetensors"), filepath.Join(dir, "model.safetensors")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(tc.config), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = FindModel(c, FindOptions{})
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("want *Error, got %v", err)
			}
			for _, s := range tc.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q: %v", s, err)
				}
			}
		})
	}
}

// TestLoadLayerConcurrent loads every layer from several goroutines and
// compares with a sequential load.
func TestLoadLayerConcurrent(t *testing.T) {
	path := filepath.Join(testref.SharedDir(t), "reference", "zoo", "llama", "gguf", "llama-Q8_0.gguf")
	m := openModel(t, path, FindOptions{})
	want := map[int]*Layer{}
	for _, i := range m.LayerIndices() {
		l, err := m.LoadLayer(i)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = l
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, i := range m.LayerIndices() {
				l, err := m.LoadLayer(i)
				if err != nil {
					errs <- err.Error()
					return
				}
				for _, p := range Projections {
					a, b := l.Matrix(p).Data, want[i].Matrix(p).Data
					for k := range a {
						if a[k] != b[k] {
							errs <- "concurrent load differs"
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if _, err := m.LoadLayer(7); err == nil || !strings.Contains(err.Error(), "0..1") {
		t.Errorf("missing layer: %v", err)
	}
}

// TestVocabOnlyGGUF: a GGUF without tensors is an *Error, not a panic.
func TestVocabOnlyGGUF(t *testing.T) {
	path := filepath.Join(testref.SharedDir(t), "fixtures", "gguf", "vocab", "ggml-vocab-llama-spm.gguf")
	c, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = FindModel(c, FindOptions{})
	var fe *Error
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "no tensors") {
		t.Errorf("got %v", err)
	}
}

// TestConfigWithoutModelType: the "architectures" class name stands in for
// a missing model_type.
func TestConfigWithoutModelType(t *testing.T) {
	zoo := filepath.Join(testref.SharedDir(t), "reference", "zoo")
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(zoo, "gpt2", "hf", "model.safetensors"), filepath.Join(dir, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures": ["GPT2LMHeadModel"], "n_embd": 64, "n_head": 4, "n_layer": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	m := openModel(t, dir, FindOptions{})
	want, err := testref.ReadSafetensors(filepath.Join(zoo, "gpt2", "expected", "projections.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.LoadLayer(1)
	if err != nil {
		t.Fatal(err)
	}
	compareExact(t, "layers.1.k", l.K.Data, want["layers.1.k"])
	compareExact(t, "layers.1.o", l.O.Data, want["layers.1.o"])
}
