package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	in := Read("")
	if in.Go != runtime.Version() {
		t.Errorf("go %q, want %q", in.Go, runtime.Version())
	}
	if in.Version == "" || (in.Commit != "" && !strings.HasPrefix(in.Version, "dev-") && in.Version != "dev" && !strings.HasPrefix(in.Version, "v")) {
		t.Errorf("version %q with commit %q", in.Version, in.Commit)
	}
	if got := Read("v1.2.3"); got.Version != "v1.2.3" || got.Commit != in.Commit {
		t.Errorf("stamped: %+v", got)
	}
}
