package dtype

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// The tests read the lookup tables directly (fp16, the i-quant grids), so
// they are built before any test runs; TestTablesLazy checks, in a child
// process that skips this, that start-up builds none of them.
func TestMain(m *testing.M) {
	if os.Getenv("QKV_DTYPE_LAZY_CHILD") == "1" {
		os.Exit(lazyChild())
	}
	loadTables()
	os.Exit(m.Run())
}

// lazyChild checks that no table exists until the first Decode, and that
// the first Decode builds them all. It returns the exit status.
func lazyChild() int {
	if halfTable != nil || int8Table[255] != 0 || f8e4m3Table[1] != 0 || mxfp4Hi[0x10] != 0 || tq1Trits[0][255] != 0 || iq2xxsGrid[0][0] != 0 {
		fmt.Println("lookup tables were built at start-up")
		return 1
	}
	dst := make([]float32, 1)
	if err := Decode(FromSafetensors("F16"), dst, []byte{0x00, 0x3c}); err != nil || dst[0] != 1 {
		fmt.Println("F16 decode after a lazy start:", dst, err)
		return 1
	}
	if halfTable == nil || int8Table[255] != -1 || iq2xxsGrid[0][0] == 0 || tq1Trits[0][255] == 0 {
		fmt.Println("the first Decode did not build every table")
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
	c.Env = append(os.Environ(), "QKV_DTYPE_LAZY_CHILD=1")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}
