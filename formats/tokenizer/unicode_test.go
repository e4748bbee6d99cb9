package tokenizer

import (
	"encoding/json"
	"os"
	"testing"
)

// TestNormalizationForms compares NFC/NFD/NFKC/NFKD with Python's
// unicodedata (testdata/gen_normalization.py).
func TestNormalizationForms(t *testing.T) {
	raw, err := os.ReadFile("testdata/normalization.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Unicode string              `json:"unicode"`
		Cases   []map[string]string `json:"cases"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if ref.Unicode != unicodeDataVersion {
		t.Fatalf("reference is Unicode %s, tables are %s", ref.Unicode, unicodeDataVersion)
	}
	for _, c := range ref.Cases {
		for _, f := range []string{"NFC", "NFD", "NFKC", "NFKD"} {
			if got := normalize(c["s"], f); got != c[f] {
				t.Errorf("%s(%q) = %q, want %q", f, c["s"], got, c[f])
			}
		}
	}
}
