package source

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qkvdev/qkv/formats/source/hubtest"
	"github.com/qkvdev/qkv/internal/testref"
)

// openShardHeaders does what listing a sharded checkpoint does: the
// config, the index, and every shard's header in parallel.
func openShardHeaders(t *testing.T, d Dir) map[string][]byte {
	t.Helper()
	if _, err := d.ReadFile("config.json", 1<<20); err != nil {
		t.Fatal(err)
	}
	b, err := d.ReadFile("model.safetensors.index.json", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	var shards []string
	seen := map[string]bool{}
	for _, s := range idx.WeightMap {
		if !seen[s] {
			seen[s] = true
			shards = append(shards, s)
		}
	}
	out := make([][]byte, len(shards))
	err = ForEach(len(shards), 8, func(i int) error {
		src, err := d.Open(shards[i])
		if err != nil {
			return err
		}
		defer src.Close()
		out[i], err = SafetensorsPrefix(src, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	for i, s := range shards {
		m[s] = out[i]
	}
	return m
}

func TestHubShardedRequestCounts(t *testing.T) {
	dir := repoDir("testdata", "tiny-llama-sharded")
	h := hubtest.New(t)
	h.AddRepo(t, "qkv-test/tiny-llama-sharded", dir)
	cache := t.TempDir()
	c := newTestClient(t, h, cache, nil)

	tg, err := c.Resolve(context.Background(), "hf://qkv-test/tiny-llama-sharded")
	if err != nil {
		t.Fatal(err)
	}
	if tg.Kind != KindHub || tg.File != "" || !isHex(tg.Commit, 40) {
		t.Fatalf("target %+v", tg)
	}
	if got := tg.Display(); got != "hf://qkv-test/tiny-llama-sharded@main" {
		t.Errorf("Display = %q", got)
	}
	heads := openShardHeaders(t, tg.Dir)
	for name, prefix := range heads {
		local := readFile(t, filepath.Join(dir, name))
		n := int64(binary.LittleEndian.Uint64(local))
		if int64(len(prefix)) < 8+n || !bytes.Equal(prefix, local[:len(prefix)]) {
			t.Errorf("%s: prefix of %d bytes does not hold the %d-byte header or differs", name, len(prefix), n)
		}
	}
	shards := int64(len(heads))
	// One API call, config and index from the Hub, and per shard one
	// resolve (a redirect) and one range read from the CDN.
	if got := h.Count(isAPI); got != 1 {
		t.Errorf("API requests = %d, want 1", got)
	}
	if got := h.Count(func(r hubtest.Request) bool { return isCDN(r) && isRange(r) }); int64(got) != shards {
		t.Errorf("CDN range reads = %d, want one per shard (%d)", got, shards)
	}
	if got := h.Count(isHub); int64(got) != 1+2+shards {
		t.Errorf("Hub requests = %d, want %d (API, config, index, one redirect per shard)", got, 1+2+shards)
	}
	for _, r := range h.Requests() {
		if isCDN(r) && r.Auth != "" {
			t.Errorf("the CDN got an Authorization header: %+v", r)
		}
	}
	io1 := c.IO()
	if io1.Requests != int64(h.Count(nil)) || io1.BytesFetched != h.BytesServed() || io1.BytesFromCache != 0 {
		t.Errorf("IO %+v, emulator saw %d requests and %d bytes", io1, h.Count(nil), h.BytesServed())
	}
	t.Logf("ls of a %d-shard model: %d requests (%d API, %d Hub, %d CDN), %d bytes", shards, io1.Requests,
		h.Count(isAPI), h.Count(isHub), h.Count(isCDN), io1.BytesFetched)

	// A second run with the same cache: the API call again (main may have
	// moved), nothing else.
	h.ResetLog()
	c2 := newTestClient(t, h, cache, nil)
	tg2, err := c2.Resolve(context.Background(), "hf://qkv-test/tiny-llama-sharded")
	if err != nil {
		t.Fatal(err)
	}
	openShardHeaders(t, tg2.Dir)
	if got := h.Count(nil); got != 1 {
		t.Errorf("second run: %d requests, want 1 (the API call): %+v", got, h.Requests())
	}
	if io := c2.IO(); io.BytesFromCache == 0 || io.CacheHits != 2+shards {
		t.Errorf("second run IO %+v: want %d cache hits", io, 2+shards)
	}

	// Offline, from qkv's cache: no request at all.
	h.ResetLog()
	c3 := newTestClient(t, h, cache, func(o *Options) { o.Offline = true })
	tg3, err := c3.Resolve(context.Background(), "qkv-test/tiny-llama-sharded")
	if err != nil {
		t.Fatal(err)
	}
	openShardHeaders(t, tg3.Dir)
	if got := h.Count(nil); got != 0 {
		t.Errorf("offline run: %d requests", got)
	}
	// A range never read is not there: a one-line error naming the file.
	src, err := tg3.Dir.Open("model-00002-of-00002.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Bytes(src.Size()-16, 16)
	oneLineErr(t, err)
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "model-00002-of-00002.safetensors") {
		t.Errorf("offline miss: %v", err)
	}
}

// A header longer than the first read costs exactly one more read.
func TestHubLongSafetensorsHeader(t *testing.T) {
	var hdr bytes.Buffer
	hdr.WriteString(`{"__metadata__":{"pad":"`)
	hdr.WriteString(strings.Repeat("x", 150<<10))
	hdr.WriteString(`"},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`)
	file := make([]byte, 8, 8+hdr.Len()+16)
	binary.LittleEndian.PutUint64(file, uint64(hdr.Len()))
	file = append(file, hdr.Bytes()...)
	file = append(file, make([]byte, 16)...)
	h := hubtest.New(t)
	h.AddRepoFiles("qkv-test/long", map[string][]byte{"model.safetensors": file})
	c := newTestClient(t, h, "", nil)
	tg, err := c.Resolve(context.Background(), "hf://qkv-test/long/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if tg.File != "model.safetensors" {
		t.Fatalf("File = %q", tg.File)
	}
	src, err := tg.Dir.Open(tg.File)
	if err != nil {
		t.Fatal(err)
	}
	p, err := SafetensorsPrefix(src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p, file[:8+hdr.Len()]) {
		t.Fatalf("prefix of %d bytes, want the %d-byte header", len(p), 8+hdr.Len())
	}
	if got := h.Count(func(r hubtest.Request) bool { return isCDN(r) && isRange(r) }); got != 2 {
		t.Errorf("CDN range reads = %d, want 2 (the first 100 KB, then the rest of the header)", got)
	}
	if got := h.Count(func(r hubtest.Request) bool { return isHub(r) && strings.Contains(r.Path, "/resolve/") }); got != 1 {
		t.Errorf("resolve requests = %d, want 1 (the CDN URL is reused)", got)
	}
	// Tensor bytes: one read of exactly the tensor.
	h.ResetLog()
	mustBytes(t, src, file, int64(8+hdr.Len()), 16)
	if rs := h.Requests(); len(rs) != 1 || rs[0].Bytes != 16 {
		t.Errorf("tensor read: %+v", rs)
	}
}

func TestResolveHubPaths(t *testing.T) {
	h := hubtest.New(t)
	h.AddRepoFiles("org/repo", map[string][]byte{
		"config.json":               []byte(`{}`),
		"README.md":                 []byte("hi"),
		"sub/model.safetensors":     []byte("12345678"),
		"sub/x-00001-of-00002.gguf": []byte("GGUF"),
	})
	c := newTestClient(t, h, "", nil)
	for _, tc := range []struct {
		in, file, display string
		list              []string
		err               string
	}{
		{in: "hf://org/repo", display: "hf://org/repo@main", list: []string{"config.json"}},
		{in: "org/repo@main", display: "hf://org/repo@main", list: []string{"config.json"}},
		{in: "hf://org/repo/sub", display: "hf://org/repo@main/sub", list: []string{"model.safetensors", "x-00001-of-00002.gguf"}},
		{in: "hf://org/repo/sub/model.safetensors", file: "model.safetensors", display: "hf://org/repo@main/sub/model.safetensors"},
		{in: h.URL + "/org/repo/resolve/main/sub/model.safetensors", file: "model.safetensors"},
		{in: h.URL + "/org/repo/blob/main/config.json", file: "config.json"},
		{in: "hf://org/repo/nope.gguf", err: "no file or folder nope.gguf"},
		{in: "hf://org/missing", err: "RepoNotFound"},
		{in: "hf://org/repo@v9", err: "RevisionNotFound"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			tg, err := c.Resolve(context.Background(), tc.in)
			if tc.err != "" {
				oneLineErr(t, err)
				if !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %q does not say %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tg.File != tc.file {
				t.Errorf("File = %q, want %q", tg.File, tc.file)
			}
			if tc.display != "" && tg.Display() != tc.display {
				t.Errorf("Display = %q, want %q", tg.Display(), tc.display)
			}
			if tc.list != nil {
				l, _ := tg.Dir.List()
				var names []string
				for _, fi := range l {
					names = append(names, fi.Name)
				}
				if fmt.Sprint(names) != fmt.Sprint(tc.list) {
					t.Errorf("List = %v, want %v", names, tc.list)
				}
			}
		})
	}
	// A bare id that is neither a path nor a repository says both.
	_, err := c.Resolve(context.Background(), "org/missing")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no such file or folder, and no such repository") {
		t.Errorf("bare missing: %v", err)
	}
}

func TestTokenOnlyToEndpointHost(t *testing.T) {
	dir := repoDir("testdata", "tiny-llama-sharded")
	h := hubtest.New(t)
	h.Token = "hf_secret"
	h.AddRepo(t, "org/private", dir)
	h.SetPrivate("org/private")

	// Without the token: a one-line error saying what to do.
	c := newTestClient(t, h, "", nil)
	_, err := c.Resolve(context.Background(), "hf://org/private")
	oneLineErr(t, err)
	if !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Errorf("no token: %v", err)
	}

	c = newTestClient(t, h, "", func(o *Options) { o.Token = "hf_secret" })
	tg, err := c.Resolve(context.Background(), "hf://org/private")
	if err != nil {
		t.Fatal(err)
	}
	openShardHeaders(t, tg.Dir)
	var hubAuth, cdn int
	for _, r := range h.Requests() {
		switch {
		case isCDN(r):
			cdn++
			if r.Auth != "" {
				t.Errorf("the token reached the CDN: %+v", r)
			}
		case r.Auth == "Bearer hf_secret":
			hubAuth++
		}
	}
	if cdn == 0 || hubAuth == 0 {
		t.Errorf("CDN requests %d, authenticated Hub requests %d", cdn, hubAuth)
	}
}

func TestHTTPSOnly(t *testing.T) {
	c := newTestClient(t, nil, "", func(o *Options) { o.Transport = failTransport{t} })
	for _, in := range []string{"http://example.com/model.gguf", "ftp://example.com/x.gguf"} {
		if !IsRemote(in) && !strings.HasPrefix(in, "ftp") {
			t.Errorf("IsRemote(%q) = false", in)
		}
	}
	_, err := c.Resolve(context.Background(), "http://example.com/model.gguf")
	oneLineErr(t, err)
	if !strings.Contains(err.Error(), "refusing plain http://") {
		t.Errorf("http: %v", err)
	}
	if _, err := New(Options{Endpoint: "http://mirror.example.com"}); err == nil {
		t.Error("an http endpoint on another host was accepted")
	}
	if _, err := New(Options{Endpoint: "http://mirror.example.com", AllowHTTP: true}); err != nil {
		t.Errorf("AllowHTTP: %v", err)
	}
	// A redirect from loopback to plain http elsewhere is refused.
	h := hubtest.New(t)
	url := h.AddURLFile("x.gguf", []byte("GGUF...."))
	c2 := newTestClient(t, h, "", func(o *Options) { o.Transport = redirectTransport{} })
	_, err = c2.Resolve(context.Background(), url)
	if err == nil || !strings.Contains(err.Error(), "refusing plain http://") {
		t.Errorf("redirect to http: %v", err)
	}
}

// Every file of the zoo's Hugging Face folders and of the GGUF fixtures,
// read through the emulator, is byte-identical to the local file.
func TestZooThroughHub(t *testing.T) {
	shared := testref.SharedDir(t)
	h := hubtest.New(t)
	c := newTestClient(t, h, "", nil)
	dirs, _ := filepath.Glob(filepath.Join(shared, "reference", "zoo", "*", "hf*"))
	ggufDirs, _ := filepath.Glob(filepath.Join(shared, "fixtures", "gguf", "*"))
	if len(dirs) == 0 {
		t.Fatal("no zoo folders")
	}
	for i, dir := range append(dirs, ggufDirs...) {
		id := fmt.Sprintf("zoo/m%d", i)
		h.AddRepo(t, id, dir)
		tg, err := c.Resolve(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		files, _ := tg.Dir.List()
		if len(files) == 0 {
			t.Errorf("%s: nothing listed", dir)
		}
		for _, fi := range files {
			truth := readFile(t, filepath.Join(dir, fi.Name))
			src, err := tg.Dir.Open(fi.Name)
			if err != nil {
				t.Fatal(err)
			}
			if src.Size() != int64(len(truth)) {
				t.Errorf("%s/%s: size %d, want %d", dir, fi.Name, src.Size(), len(truth))
				continue
			}
			mustBytes(t, src, truth, 0, src.Size())
		}
	}
	// The zoo's sharded llama: one index, one header read per shard.
	h.ResetLog()
	h.AddRepo(t, "zoo/llama-sharded", filepath.Join(shared, "reference", "zoo", "llama", "hf-sharded"))
	c = newTestClient(t, h, "", nil)
	tg, err := c.Resolve(context.Background(), "zoo/llama-sharded")
	if err != nil {
		t.Fatal(err)
	}
	heads := openShardHeaders(t, tg.Dir)
	if got, want := h.Count(func(r hubtest.Request) bool { return isCDN(r) && isRange(r) }), len(heads); got != want {
		t.Errorf("zoo llama: %d CDN range reads for %d shards", got, want)
	}
	if got := h.Count(func(r hubtest.Request) bool { return isHub(r) && strings.HasSuffix(r.Path, ".index.json") }); got != 1 {
		t.Errorf("zoo llama: %d index reads", got)
	}
}

// Sniffing the first bytes and then reading the header fetches no byte
// twice, even without the disk cache: reads from the start are kept.
func TestSniffThenHeaderOneRead(t *testing.T) {
	dir := repoDir("testdata", "tiny-llama-sharded")
	h := hubtest.New(t)
	h.AddRepo(t, "org/m", dir)
	c := newTestClient(t, h, "", func(o *Options) { o.NoCache = true })
	tg, err := c.Resolve(context.Background(), "hf://org/m/model-00001-of-00002.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	src, err := tg.Dir.Open(tg.File)
	if err != nil {
		t.Fatal(err)
	}
	truth := readFile(t, filepath.Join(dir, tg.File))
	mustBytes(t, src, truth, 0, 9)
	p, err := SafetensorsPrefix(src, 0)
	if err != nil || !bytes.Equal(p, truth[:len(p)]) {
		t.Fatal(err)
	}
	mustBytes(t, src, truth, 3, 40)
	if got := h.Count(func(r hubtest.Request) bool { return isCDN(r) && isRange(r) }); got != 2 {
		t.Errorf("%d range reads, want 2 (9 bytes, then the rest of the first 100 KB)", got)
	}
	var cdnBytes int64
	for _, r := range h.Requests() {
		if isCDN(r) {
			cdnBytes += r.Bytes
		}
	}
	if cdnBytes != int64(len(p)) {
		t.Errorf("%d bytes fetched for a %d-byte prefix: some were fetched twice", cdnBytes, len(p))
	}
}

// A host that does not exist is not retried.
func TestNoSuchHostNotRetried(t *testing.T) {
	c := newTestClient(t, nil, "", func(o *Options) { o.Endpoint = "https://qkv-no-such-host.invalid" })
	_, err := c.Resolve(context.Background(), "hf://org/m")
	oneLineErr(t, err)
	if strings.Contains(err.Error(), "no such host") && c.IO().Retries != 0 {
		t.Errorf("%d retries for a host that does not exist", c.IO().Retries)
	}
}

// Tensor bytes are fetched per tensor, only what is asked: reading one
// layer's attention projections of the zoo's sharded llama costs the
// headers and those tensors' bytes, nothing more.
func TestPerTensorReads(t *testing.T) {
	shared := testref.SharedDir(t)
	dir := filepath.Join(shared, "reference", "zoo", "llama", "hf-sharded")
	h := hubtest.New(t)
	h.AddRepo(t, "zoo/llama", dir)
	c := newTestClient(t, h, "", nil)
	tg, err := c.Resolve(context.Background(), "zoo/llama")
	if err != nil {
		t.Fatal(err)
	}
	heads := openShardHeaders(t, tg.Dir)
	var headerBytes int64
	type loc struct {
		shard      string
		begin, end int64
	}
	want := map[string]loc{}
	for shard, p := range heads {
		headerBytes += int64(len(p))
		n := int64(binary.LittleEndian.Uint64(p))
		var hdr map[string]json.RawMessage
		if err := json.Unmarshal(p[8:8+n], &hdr); err != nil {
			t.Fatal(err)
		}
		for name, raw := range hdr {
			if !strings.HasPrefix(name, "model.layers.1.self_attn.") {
				continue
			}
			var e struct {
				DataOffsets [2]int64 `json:"data_offsets"`
			}
			json.Unmarshal(raw, &e)
			want[name] = loc{shard, 8 + n + e.DataOffsets[0], 8 + n + e.DataOffsets[1]}
		}
	}
	if len(want) < 4 {
		t.Fatalf("layer 1 has %d attention tensors", len(want))
	}
	base := h.BytesServed() - headerBytes // the API answer, config and index
	var tensorBytes int64
	for _, l := range want {
		src, err := tg.Dir.Open(l.shard)
		if err != nil {
			t.Fatal(err)
		}
		truth := readFile(t, filepath.Join(dir, l.shard))
		mustBytes(t, src, truth, l.begin, l.end-l.begin)
		tensorBytes += l.end - l.begin
	}
	fetched := h.BytesServed() - base
	if fetched > headerBytes+tensorBytes {
		t.Errorf("fetched %d bytes for %d of headers and %d of layer 1's attention tensors", fetched, headerBytes, tensorBytes)
	}
	t.Logf("layer 1 attention: %d header bytes + %d tensor bytes; fetched %d", headerBytes, tensorBytes, fetched)
}
