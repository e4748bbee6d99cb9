// Package buildinfo says which qkv wrote a report: the JSON "qkv" block
// every qkv.*/v1 document carries, from the version stamped at build time
// and what the Go toolchain recorded (module version, VCS commit and time).
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
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

// What a release build stamps, each with
// -ldflags "-X github.com/qkvdev/qkv/internal/buildinfo.NAME=VALUE" (they
// must stay uninitialised for -X to set them): version, commit (the VCS
// revision) and date (the commit's time, RFC 3339). What is not stamped
// comes from what the Go toolchain recorded (a build inside a git checkout
// records the commit, its time and whether the tree was modified, unless
// -buildvcs=false).
var version, commit, date string

var (
	once     sync.Once
	recorded Info
)

// Read returns the build's Info. stamped is a version set at build time
// ("" when none was); it wins over everything.
func Read(stamped string) Info {
	once.Do(func() {
		recorded = fromBuildInfo()
		if commit != "" {
			recorded.Commit, recorded.Modified = commit, false
			if version == "" && !released(recorded.Version) {
				recorded.Version = "dev-" + short(commit)
			}
		}
		if date != "" {
			recorded.Date = date
		}
		if version != "" {
			recorded.Version = version
		}
	})
	in := recorded
	if stamped != "" {
		in.Version = stamped
	}
	return in
}

// released reports a module version (not "dev…").
func released(v string) bool { return v != "" && v != "dev" && !strings.HasPrefix(v, "dev-") }

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// Line is the one-line form `qkv --version` prints after "qkv ":
// "v0.1.0 (commit 0123456789ab, 2026-12-06T21:00:00Z, go1.26.8)".
func (in Info) Line() string {
	var extra []string
	if in.Commit != "" {
		c := "commit " + short(in.Commit)
		if in.Modified {
			c += " (modified)"
		}
		extra = append(extra, c)
	}
	if in.Date != "" {
		extra = append(extra, in.Date)
	}
	extra = append(extra, in.Go)
	return in.Version + " (" + strings.Join(extra, ", ") + ")"
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
		in.Version = "dev-" + short(in.Commit)
		if in.Modified {
			in.Version += "-dirty"
		}
	}
	return in
}
