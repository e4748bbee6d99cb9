package cmd_test

// extract and export say on stderr what they wrote: the path, the tensors
// and the size of the file (as report does); nothing with -o -.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/internal/termui"
)

func TestExtractExportSayWhatTheyWrote(t *testing.T) {
	tiny := filepath.Join("..", "testdata", "tiny-llama")
	dir := t.TempDir()
	for _, c := range []struct {
		cmd     string
		tensors string
	}{
		{"extract", "16 tensors"}, // 4 layers × W_Q, W_K, W_V, W_O
		{"export", "39 tensors"},  // every tensor of the checkpoint
	} {
		out := filepath.Join(dir, c.cmd+".safetensors")
		code, stdout, errs := runQKV(80, c.cmd, tiny, "-o", out)
		if code != 0 || stdout != "" {
			t.Fatalf("qkv %s: exit %d, stdout %q, stderr %q", c.cmd, code, stdout, errs)
		}
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		want := "Wrote " + out + " (" + c.tensors + ", " + termui.Bytes(st.Size()) + ")\n"
		if errs != want {
			t.Errorf("qkv %s: stderr %q, want %q", c.cmd, errs, want)
		}
		code, stdout, errs = runQKV(80, c.cmd, tiny, "-o", "-")
		if code != 0 || int64(len(stdout)) != st.Size() || strings.Contains(errs, "Wrote") {
			t.Errorf("qkv %s -o -: exit %d, %d bytes on stdout (want %d), stderr %q", c.cmd, code, len(stdout), st.Size(), errs)
		}
	}
}
