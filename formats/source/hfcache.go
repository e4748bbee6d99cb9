package source

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The Hugging Face cache (huggingface_hub's layout):
//
//	HF_HUB_CACHE/models--ORG--NAME/
//	  refs/REVISION             the commit id the revision pointed to
//	  snapshots/COMMIT/PATH     symbolic links to ../../blobs/ID
//	  blobs/ID                  the bytes; ID is the SHA-256 (LFS files) or git blob id

func hfRepoDir(cache, repo string) string {
	return filepath.Join(cache, "models--"+strings.ReplaceAll(repo, "/", "--"))
}

// hfSnapshot finds the snapshot folder of repo at rev in the Hugging Face
// cache. When there is none it says what is missing.
func (c *Client) hfSnapshot(repo, rev string) (dir, commit, missing string) {
	cache := c.opts.HFCacheDir
	if cache == "" || cache == "-" {
		return "", "", "no Hugging Face cache (HF_HUB_CACHE)"
	}
	root := hfRepoDir(cache, repo)
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return "", "", fmt.Sprintf("%s does not hold %s", cache, filepath.Base(root))
	}
	commit = rev
	if !isHex(rev, 40) {
		ref := filepath.Join(root, "refs", filepath.FromSlash(rev))
		b, err := readSmallFile(ref, 1024)
		if err != nil {
			return "", "", fmt.Sprintf("%s has no refs/%s", root, rev)
		}
		commit = strings.TrimSpace(string(b))
		if !isHex(commit, 40) {
			return "", "", fmt.Sprintf("%s is not a commit id", ref)
		}
	}
	snap := filepath.Join(root, "snapshots", commit)
	if st, err := os.Stat(snap); err != nil || !st.IsDir() {
		return "", "", fmt.Sprintf("%s has no snapshot %s", root, commit)
	}
	return snap, commit, ""
}

var splitGGUF = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(.*)-(\d{5})-of-(\d{5})\.gguf$`) })

// maxIndexBytes bounds a safetensors index read to check a snapshot.
const maxIndexBytes = 64 << 20

// missingFiles lists what a checkpoint needs that d lacks: the file named
// (with all parts of a split GGUF, or every shard of an index), or for a
// folder its weights (every shard its index names, or at least one
// *.safetensors or *.gguf). Nil when nothing is missing.
func missingFiles(d Dir, file string) []string {
	has := func(name string) bool {
		fi, err := d.Stat(name)
		return err == nil && fi.Mode&os.ModeDir == 0
	}
	if file != "" {
		if !has(file) {
			return []string{file}
		}
		var miss []string
		base, dir := path.Base(file), path.Dir(file)
		if m := splitGGUF().FindStringSubmatch(base); m != nil {
			n, _ := strconv.Atoi(m[3])
			for i := 1; i <= n && i <= 10000; i++ {
				part := path.Join(dir, fmt.Sprintf("%s-%05d-of-%05d.gguf", m[1], i, n))
				if !has(part) {
					miss = append(miss, part)
				}
			}
		}
		if strings.HasSuffix(base, ".safetensors.index.json") {
			miss = append(miss, missingShards(d, file)...)
		}
		return miss
	}
	const index = "model.safetensors.index.json"
	if has(index) {
		return missingShards(d, index)
	}
	files, _ := d.List()
	for _, fi := range files {
		if strings.HasSuffix(fi.Name, ".safetensors") || strings.HasSuffix(fi.Name, ".gguf") {
			return nil
		}
	}
	return []string{"the model's weights (*.safetensors or *.gguf)"}
}

// missingShards lists the shards an index names that d lacks.
func missingShards(d Dir, index string) []string {
	b, err := d.ReadFile(index, maxIndexBytes)
	if err != nil {
		return []string{index}
	}
	var idx struct {
		WeightMap map[string]any `json:"weight_map"`
	}
	if json.Unmarshal(b, &idx) != nil {
		return nil // formats says what is wrong with it
	}
	dir := path.Dir(index)
	seen := map[string]bool{}
	var miss []string
	for _, v := range idx.WeightMap {
		s, ok := v.(string)
		if !ok || seen[s] || validRepoPath(s) != nil || strings.Contains(s, "/") {
			continue
		}
		seen[s] = true
		if fi, err := d.Stat(path.Join(dir, s)); err != nil || fi.Mode&os.ModeDir != 0 {
			miss = append(miss, path.Join(dir, s))
		}
	}
	sort.Strings(miss)
	return miss
}
