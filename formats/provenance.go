package formats

import (
	"path/filepath"
	"strings"

	"github.com/qkvdev/qkv/formats/source"
)

// SourceInfo says which checkpoint a report describes: the JSON "source"
// block every qkv.*/v1 document carries. Paths are relative to the
// checkpoint's folder, so the same model read locally, from the Hugging Face
// cache or through the Hub gives the same files.
type SourceInfo struct {
	// Input is the path, repository id or URL as the user gave it.
	Input string `json:"input"`
	// Kind is where it resolved: "local", "hf-cache", "hub" or "url".
	Kind string `json:"kind"`
	// Repo, Revision and Commit are set for Hub inputs.
	Repo     string `json:"repo,omitempty"`
	Revision string `json:"revision,omitempty"`
	Commit   string `json:"commit,omitempty"`
	// URL is set for URL inputs (query removed).
	URL    string       `json:"url,omitempty"`
	Format string       `json:"format"`
	Files  []SourceFile `json:"files"`
}

// SourceFile is one file of the checkpoint.
type SourceFile struct {
	Name string `json:"name"` // relative to the checkpoint's folder
	Size int64  `json:"size"`
}

// Source returns the checkpoint's SourceInfo.
func (c *Checkpoint) Source() SourceInfo {
	s := SourceInfo{Input: c.Path, Kind: "local", Format: string(c.Format), Files: []SourceFile{}}
	if t := c.Target; t != nil {
		s.Input, s.Kind = t.Input, t.Kind.String()
		if t.Kind == source.KindHub || t.Kind == source.KindHFCache {
			s.Repo, s.Revision, s.Commit = t.Repo, t.Revision, t.Commit
		}
		s.URL = t.URL
	}
	for _, f := range c.Files {
		name := filepath.ToSlash(f.Path)
		if dir := strings.TrimSuffix(filepath.ToSlash(c.Dir), "/"); dir != "" && dir != "." {
			name = strings.TrimPrefix(name, dir+"/")
		}
		name = strings.TrimPrefix(name, "./")
		s.Files = append(s.Files, SourceFile{Name: name, Size: f.Size})
	}
	return s
}
