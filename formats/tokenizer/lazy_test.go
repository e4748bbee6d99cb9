package tokenizer

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// The tests call the package's helpers directly, so the tables are built
// before any test runs; TestTablesLazy checks, in a child process that
// skips this, that start-up builds none of them.
func TestMain(m *testing.M) {
	if os.Getenv("QKV_TOKENIZER_LAZY_CHILD") == "1" {
		os.Exit(lazyChild())
	}
	loadTables()
	os.Exit(m.Run())
}

func lazyChild() int {
	if latin1Class['a'] != 0 || composeMap != nil || runeToByte != nil || preSpecs != nil || knownRegexes != nil {
		fmt.Println("tokenizer tables were built at start-up")
		return 1
	}
	if len(PreTokenizers()) == 0 || latin1Class['a'] == 0 || composeMap == nil || runeToByte == nil || knownRegexes == nil {
		fmt.Println("the first use did not build every table")
		return 1
	}
	return 0
}

func TestTablesLazy(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	c := exec.Command(exe, "-test.run=^$")
	c.Env = append(os.Environ(), "QKV_TOKENIZER_LAZY_CHILD=1")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}
