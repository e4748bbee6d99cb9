package tokenizer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/qkvdev/qkv/formats"
)

// FromCheckpoint returns the tokenizer an opened checkpoint carries: a
// GGUF's tokenizer.ggml.* metadata, or for safetensors the tokenizer.json
// (else the SentencePiece tokenizer.model) beside the weights, read through
// the checkpoint (Checkpoint.ReadFile) wherever they are: a local folder,
// the Hugging Face cache or the Hub. tokenizer_config.json, when present,
// is read beside it for the BOS/EOS check.
func FromCheckpoint(c *formats.Checkpoint) (*Tokenizer, error) {
	loadTables()
	if gf := c.GGUF(); gf != nil {
		t, err := FromGGUFArrays(gf, c.MetaArray)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Files[0].Path, err)
		}
		t.Info.Path = c.Files[0].Path
		return t, nil
	}
	data, p, err := c.ReadFile("tokenizer.json", MaxJSONBytes)
	switch {
	case err == nil:
		t, err := FromJSON(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		t.Info.Path = p
		if cfg, _, err := c.ReadFile("tokenizer_config.json", maxConfigBytes); err == nil {
			t.checkConfigData(cfg)
		}
		return t, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	data, p, err = c.ReadFile("tokenizer.model", MaxModelBytes)
	switch {
	case err == nil:
		t, err := FromSentencePieceBytes(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		t.Info.Path = p
		return t, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	return nil, fmt.Errorf("%s: no tokenizer: the folder has neither tokenizer.json nor tokenizer.model", c.Dir)
}

// FromDir reads the tokenizer files of a Hugging Face model folder:
// tokenizer.json, else tokenizer.model.
func FromDir(dir string) (*Tokenizer, error) {
	loadTables()
	js := filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(js); err == nil {
		return FromFile(js)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	sp := filepath.Join(dir, "tokenizer.model")
	if _, err := os.Stat(sp); err == nil {
		return FromSentencePiece(sp)
	}
	return nil, fmt.Errorf("%s: no tokenizer: the folder has neither tokenizer.json nor tokenizer.model", dir)
}

// Open reads a tokenizer from a path: a tokenizer.json or tokenizer.model
// file, a GGUF file, or a checkpoint folder or file that formats.Open
// accepts.
func Open(path string) (*Tokenizer, error) {
	loadTables()
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		switch {
		case filepath.Ext(path) == ".json" && filepath.Base(path) != "model.safetensors.index.json":
			return FromFile(path)
		case filepath.Ext(path) == ".model":
			return FromSentencePiece(path)
		}
	} else if _, err := os.Stat(filepath.Join(path, "tokenizer.json")); err == nil {
		return FromFile(filepath.Join(path, "tokenizer.json"))
	}
	c, err := formats.Open(path, formats.Options{})
	if err != nil {
		if st.IsDir() {
			// A folder with only tokenizer files is fine.
			if t, err2 := FromDir(path); err2 == nil {
				return t, nil
			}
		}
		return nil, err
	}
	defer c.Close()
	return FromCheckpoint(c)
}
