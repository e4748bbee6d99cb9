package source

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// hubRepo is a Hub model repository resolved at one commit.
type hubRepo struct {
	ID       string              `json:"id"`
	Revision string              `json:"revision"`
	Commit   string              `json:"commit"`
	Files    map[string]FileInfo `json:"files"` // every file, by its path in the repository
}

// apiModelInfo is the part of GET /api/models/{repo}/revision/{rev}?blobs=true
// that is used.
type apiModelInfo struct {
	ID       string `json:"id"`
	SHA      string `json:"sha"`
	Siblings []struct {
		RFilename string `json:"rfilename"`
		Size      *int64 `json:"size"`
		BlobID    string `json:"blobId"`
		LFS       *struct {
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		} `json:"lfs"`
	} `json:"siblings"`
}

const (
	// maxAPIBytes bounds the Hub's answer about a repository (a listing of
	// tens of thousands of files is a few MB).
	maxAPIBytes = 32 << 20
	// maxRepoFiles bounds the files of a repository.
	maxRepoFiles = 200000
)

// hubInfo asks the Hub which commit rev is and which files it holds.
func (c *Client) hubInfo(ctx context.Context, repo, rev string) (*hubRepo, error) {
	u, err := url.Parse(c.opts.Endpoint + "/api/models/" + repo + "/revision/" + url.PathEscape(rev) + "?blobs=true")
	if err != nil {
		return nil, err
	}
	what := "hf://" + repo + "@" + rev
	b, err := c.getSmall(ctx, u, what, maxAPIBytes)
	if err != nil {
		return nil, err
	}
	var info apiModelInfo
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&info); err != nil {
		return nil, fmt.Errorf("%s: the Hub's answer is not the expected JSON: %v", what, err)
	}
	if !isHex(info.SHA, 40) {
		return nil, fmt.Errorf("%s: the Hub's answer has no commit id (sha %q)", what, cleanHeader(info.SHA))
	}
	if len(info.Siblings) > maxRepoFiles {
		return nil, fmt.Errorf("%s: the repository lists %d files, more than the %d allowed", what, len(info.Siblings), maxRepoFiles)
	}
	r := &hubRepo{ID: repo, Revision: rev, Commit: info.SHA, Files: map[string]FileInfo{}}
	for _, s := range info.Siblings {
		if err := validRepoPath(s.RFilename); err != nil {
			return nil, fmt.Errorf("%s: the Hub lists a file %q: %v", what, cleanHeader(s.RFilename), err)
		}
		fi := FileInfo{Name: s.RFilename, Size: -1}
		if s.Size != nil {
			fi.Size = *s.Size
		}
		if s.LFS != nil {
			fi.Size = s.LFS.Size
			if !isHex(s.LFS.SHA256, 64) {
				return nil, fmt.Errorf("%s: %s: the Hub's LFS id %q is not a SHA-256", what, s.RFilename, cleanHeader(s.LFS.SHA256))
			}
			fi.SHA256 = s.LFS.SHA256
		} else if isHex(s.BlobID, 40) {
			fi.GitOID = s.BlobID
		}
		if fi.Size < 0 {
			return nil, fmt.Errorf("%s: the Hub gives no size for %s (an old Hub or mirror without ?blobs=true)", what, s.RFilename)
		}
		if _, dup := r.Files[fi.Name]; dup {
			return nil, fmt.Errorf("%s: the Hub lists %s twice", what, s.RFilename)
		}
		r.Files[fi.Name] = fi
	}
	return r, nil
}

func hubMetaKey(endpoint, repo, rev string) string {
	return "hubrev\x00" + endpoint + "\x00" + repo + "\x00" + rev
}

// hubRepoCached resolves a repository, from qkv's cache when offline or
// when rev is a commit id (which cannot move), else from the Hub (and then
// remembers the answer for offline use).
func (c *Client) hubRepoCached(ctx context.Context, repo, rev string) (*hubRepo, error) {
	if c.cache != nil && (c.opts.Offline || isHex(rev, 40)) {
		var r hubRepo
		if c.cache.loadMeta(hubMetaKey(c.opts.Endpoint, repo, rev), &r) && r.valid(repo) {
			return &r, nil
		}
	}
	if c.opts.Offline {
		return nil, fmt.Errorf("%w", ErrOffline)
	}
	r, err := c.hubInfo(ctx, repo, rev)
	if err != nil {
		return nil, err
	}
	if c.cache != nil {
		c.cache.saveMeta(hubMetaKey(c.opts.Endpoint, repo, rev), r)
		c.cache.saveMeta(hubMetaKey(c.opts.Endpoint, repo, r.Commit), r)
	}
	return r, nil
}

// valid checks a repository read back from the cache as if it came from
// the Hub.
func (r *hubRepo) valid(repo string) bool {
	if r.ID != repo || !isHex(r.Commit, 40) || len(r.Files) > maxRepoFiles {
		return false
	}
	for p, fi := range r.Files {
		if p != fi.Name || validRepoPath(p) != nil || fi.Size < 0 || (fi.SHA256 != "" && !isHex(fi.SHA256, 64)) {
			return false
		}
	}
	return true
}

// hubDir is a folder of a Hub repository at a commit.
type hubDir struct {
	c      *Client
	ctx    context.Context
	repo   *hubRepo
	prefix string // "" or "sub/folder/"
}

func (d *hubDir) Name() string {
	return "hf://" + d.repo.ID + "@" + d.repo.Revision + strings.TrimSuffix("/"+d.prefix, "/")
}

func (d *hubDir) Path(name string) string { return d.Name() + "/" + name }

func (d *hubDir) List() ([]FileInfo, error) {
	var out []FileInfo
	for p, fi := range d.repo.Files {
		rest, ok := strings.CutPrefix(p, d.prefix)
		if !ok || strings.Contains(rest, "/") || !CheckpointFile(rest) {
			continue
		}
		fi.Name = rest
		out = append(out, fi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ListAll is like List but also returns the files a checkpoint does not
// need (pytorch_model.bin, ONNX and TensorFlow weights, …), for messages
// about folders that hold no checkpoint qkv reads.
func ListAll(d Dir) ([]FileInfo, error) {
	hd, ok := d.(*hubDir)
	if !ok {
		return d.List()
	}
	var out []FileInfo
	for p, fi := range hd.repo.Files {
		rest, ok := strings.CutPrefix(p, hd.prefix)
		if !ok || strings.Contains(rest, "/") {
			continue
		}
		fi.Name = rest
		out = append(out, fi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (d *hubDir) Stat(name string) (FileInfo, error) {
	fi, ok := d.repo.Files[d.prefix+name]
	if !ok || validRepoPath(d.prefix+name) != nil {
		return FileInfo{}, &Error{Name: d.Path(name), Err: &notExist{fmt.Sprintf("no such file in the repository at commit %s", d.repo.Commit[:12])}}
	}
	fi.Name = name
	return fi, nil
}

func (d *hubDir) Open(name string) (Source, error) {
	fi, err := d.Stat(name)
	if err != nil {
		return nil, err
	}
	p := d.prefix + name
	u, err := url.Parse(d.c.opts.Endpoint + "/" + d.repo.ID + "/resolve/" + d.repo.Commit + "/" + escapePath(p))
	if err != nil {
		return nil, err
	}
	return &remoteFile{c: d.c, ctx: d.ctx, name: d.Path(name), u: u, size: fi.Size,
		key: "hub\x00" + d.c.opts.Endpoint + "\x00" + d.repo.ID + "\x00" + d.repo.Commit + "\x00" + p}, nil
}

func (d *hubDir) ReadFile(name string, limit int64) ([]byte, error) {
	return readWhole(d, name, limit)
}

// readWhole reads a small file through Open, refusing more than limit bytes.
func readWhole(d Dir, name string, limit int64) ([]byte, error) {
	fi, err := d.Stat(name)
	if err != nil {
		return nil, err
	}
	if fi.Size > limit {
		return nil, errorf(d.Path(name), "%d bytes is more than the %d this file may have", fi.Size, limit)
	}
	src, err := d.Open(name)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return src.Bytes(0, src.Size())
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
