package tokenizer

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/qkvdev/qkv/formats"
	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/formats/source/hubtest"
	"github.com/qkvdev/qkv/internal/testref"
)

// TestFromCheckpointRemote: a safetensors checkpoint read from the Hub
// (the hubtest emulator) has the tokenizer of its local folder —
// tokenizer.model of a zoo model, tokenizer.json (and the
// tokenizer_config.json check) of the GPT-2 fixture — read through the
// checkpoint, not the local disk; a repository without either says so.
func TestFromCheckpointRemote(t *testing.T) {
	shared := testref.SharedDir(t)
	h := hubtest.New(t)
	cl, err := source.New(source.Options{Endpoint: h.URL, CacheDir: t.TempDir(), HFCacheDir: "-", RetryBase: time.Millisecond, MaxRetryAfter: 5 * time.Millisecond, IdleTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	zoo := filepath.Join(shared, "reference", "zoo", "llama", "hf")
	gpt2 := filepath.Join(shared, "fixtures", "safetensors", "gpt2-tiny-random")
	h.AddRepo(t, "zoo/llama", zoo)
	h.AddRepo(t, "fixtures/gpt2-tiny-random", gpt2)
	weights, err := os.ReadFile(filepath.Join(zoo, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	h.AddRepoFiles("zoo/no-tokenizer", map[string][]byte{"model.safetensors": weights})

	texts := []string{"Hello world", " the cat was here", "<|endoftext|> naïve café 123"}
	for _, c := range []struct {
		local, remote, file string
	}{{zoo, "hf://zoo/llama", "tokenizer.model"}, {gpt2, "hf://fixtures/gpt2-tiny-random", "tokenizer.json"}} {
		lc, err := formats.Open(c.local, formats.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer lc.Close()
		rc, err := formats.Open(c.remote, formats.Options{Source: cl})
		if err != nil {
			t.Fatalf("%s: %v", c.remote, err)
		}
		defer rc.Close()
		want, err := FromCheckpoint(lc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := FromCheckpoint(rc)
		if err != nil {
			t.Fatalf("%s: %v", c.remote, err)
		}
		if !strings.HasPrefix(got.Info.Path, "hf://") || !strings.HasSuffix(got.Info.Path, c.file) {
			t.Errorf("%s: read from %q, want the repository's %s", c.remote, got.Info.Path, c.file)
		}
		wi, gi := want.Info, got.Info
		wi.Path, gi.Path = "", ""
		if !reflect.DeepEqual(wi, gi) {
			t.Errorf("%s: info %+v, locally %+v", c.remote, gi, wi)
		}
		for _, s := range texts {
			for _, o := range []EncodeOptions{{}, {AddSpecial: true, ParseSpecial: true}} {
				a, errA := want.Encode(s, o)
				b, errB := got.Encode(s, o)
				if !reflect.DeepEqual(a, b) || (errA == nil) != (errB == nil) {
					t.Errorf("%s: %q %+v: %v (%v), locally %v (%v)", c.remote, s, o, b, errB, a, errA)
				}
			}
		}
	}
	rc, err := formats.Open("hf://zoo/no-tokenizer", formats.Options{Source: cl})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := FromCheckpoint(rc); err == nil || !strings.Contains(err.Error(), "no tokenizer") || !strings.Contains(err.Error(), "hf://zoo/no-tokenizer") {
		t.Errorf("a repository without tokenizer files: %v", err)
	}
}
