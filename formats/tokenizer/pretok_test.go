package tokenizer

import (
	"encoding/json"
	"os"
	"testing"
)

// TestPreTokenizersAgainstRegex compares every hand-written splitter with
// the original regular expressions run by Python's regex module
// (testdata/gen_pretok.py wrote testdata/pretok_splits.json).
func TestPreTokenizersAgainstRegex(t *testing.T) {
	raw, err := os.ReadFile("testdata/pretok_splits.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			Pre   string   `json:"pre"`
			Text  string   `json:"text"`
			Words []string `json:"words"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	fails := map[string]int{}
	total := map[string]int{}
	for _, c := range ref.Cases {
		spec, ok := preSpecs[c.Pre]
		if !ok {
			t.Fatalf("no pre-tokenizer %q", c.Pre)
		}
		got := spec.stages().split(c.Text, nil)
		total[c.Pre]++
		if !equalStrings(got, c.Words) {
			fails[c.Pre]++
			if fails[c.Pre] <= 3 {
				t.Errorf("%s %q:\n got %q\nwant %q", c.Pre, c.Text, got, c.Words)
			}
		}
	}
	for pre, n := range total {
		if fails[pre] > 0 {
			t.Errorf("%s: %d of %d texts split differently", pre, fails[pre], n)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
