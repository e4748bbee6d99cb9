// Package buildinfo says which qkv wrote a report: the JSON "qkv" block
// every qkv.*/v1 document carries, from the version stamped at build time
// and what the Go toolchain recorded (module version, VCS commit and time).
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Info identifies the qkv build.
type Info struct {
	// Version is the stamped version (-ldflags -X), else the module
	// version, else "dev-COMMIT" or "dev".
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from, when known.
	Commit string `json:"commit,omitempty"`
	// Date is the commit's time (RFC 3339), when known.
	Date string `json:"date,omitempty"`
	// Modified: built from a working tree with uncommitted changes.
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

var (
	once     sync.Once
	recorded Info
)

// Read returns the build's Info. stamped is the version set at build time
// ("" when none was).
func Read(stamped string) Info {
	once.Do(func() { recorded = fromBuildInfo() })
	in := recorded
	if stamped != "" {
		in.Version = stamped
	}
	return in
}

func fromBuildInfo() Info {
	in := Info{Version: "dev", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.time":
			in.Date = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	switch v := bi.Main.Version; {
	case v != "" && v != "(devel)":
		in.Version = v
	case in.Commit != "":
		short := in.Commit
		if len(short) > 12 {
			short = short[:12]
		}
		if in.Modified {
			short += "-dirty"
		}
		in.Version = "dev-" + short
	}
	return in
}
