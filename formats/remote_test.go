package formats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/qkvdev/qkv/formats/source"
	"github.com/qkvdev/qkv/formats/source/hubtest"
	"github.com/qkvdev/qkv/internal/testref"
)

// Checkpoints read through the Hub emulator (formats/source/hubtest) must be
// the checkpoints read locally: the same tensors at the same offsets, the
// same metadata, the same decoded values, the same errors; and reading one
// must cost only the requests the header and the tensors asked for need.

// hubClient is a client of the emulator with its own range cache (cache ""
// for a fresh one), no Hugging Face cache and fast retries.
func hubClient(t *testing.T, h *hubtest.Hub, cache string, mod func(*source.Options)) *source.Client {
	t.Helper()
	if cache == "" {
		cache = t.TempDir()
	}
	o := source.Options{CacheDir: cache, HFCacheDir: "-", RetryBase: time.Millisecond,
		MaxRetryAfter: 5 * time.Millisecond, IdleTimeout: 5 * time.Second}
	if h != nil {
		o.Endpoint = h.URL
	}
	if mod != nil {
		mod(&o)
	}
	c, err := source.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func openWith(t *testing.T, cl *source.Client, in string) *Checkpoint {
	t.Helper()
	c, err := Open(in, Options{Source: cl})
	if err != nil {
		t.Fatalf("Open(%s): %v", in, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// zooRemoteInputs serves a zoo model's folder as repository zoo/ARCH and
// returns its local checkpoints and the matching remote inputs.
func zooRemoteInputs(t *testing.T, h *hubtest.Hub, dir string) (local, remote []string) {
	arch := filepath.Base(dir)
	h.AddRepo(t, "zoo/"+arch, dir)
	for _, sub := range []string{"hf", "hf-sharded"} {
		if _, err := os.Stat(filepath.Join(dir, sub)); err == nil {
			local = append(local, filepath.Join(dir, sub))
			remote = append(remote, "hf://zoo/"+arch+"/"+sub)
		}
	}
	ggufs, _ := filepath.Glob(filepath.Join(dir, "gguf", "*.gguf"))
	sort.Strings(ggufs)
	for _, g := range ggufs {
		local = append(local, g)
		remote = append(remote, "hf://zoo/"+arch+"/gguf/"+filepath.Base(g))
	}
	return local, remote
}

func zooDirs(t *testing.T) []string {
	shared := testref.SharedDir(t)
	var dirs []string
	for _, set := range []string{"zoo", "zoo-modern"} {
		entries, _ := os.ReadDir(filepath.Join(shared, "reference", set))
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(shared, "reference", set, e.Name()))
			}
		}
	}
	if len(dirs) == 0 {
		t.Skip("no zoo models in ../shared/reference")
	}
	return dirs
}

// sameCheckpoint compares everything Open reads and every tensor's decoded
// values.
func sameCheckpoint(t *testing.T, label string, a, b *Checkpoint) {
	t.Helper()
	if a.Format != b.Format || len(a.Files) != len(b.Files) || len(a.Tensors) != len(b.Tensors) {
		t.Fatalf("%s: %s with %d files and %d tensors, remotely %s, %d, %d", label,
			a.Format, len(a.Files), len(a.Tensors), b.Format, len(b.Files), len(b.Tensors))
	}
	if !reflect.DeepEqual(a.Config, b.Config) || !reflect.DeepEqual(a.AdapterConfig, b.AdapterConfig) {
		t.Errorf("%s: config.json or adapter_config.json differ", label)
	}
	if (a.ConfigPath == "") != (b.ConfigPath == "") {
		t.Errorf("%s: config path %q, remotely %q", label, a.ConfigPath, b.ConfigPath)
	}
	for i, fa := range a.Files {
		fb := b.Files[i]
		if fa.Size != fb.Size || filepath.Base(fa.Path) != filepath.Base(fb.Path) {
			t.Errorf("%s: file %d is %s (%d bytes), remotely %s (%d)", label, i, fa.Path, fa.Size, fb.Path, fb.Size)
		}
		if (fa.GGUF == nil) != (fb.GGUF == nil) || (fa.Safetensors == nil) != (fb.Safetensors == nil) {
			t.Fatalf("%s: file %d parsed as another format", label, i)
		}
		if sa, sb := fa.Safetensors, fb.Safetensors; sa != nil && !reflect.DeepEqual(sa, sb) {
			t.Errorf("%s: safetensors header of %s differs", label, fa.Path)
		}
		if ga, gb := fa.GGUF, fb.GGUF; ga != nil {
			if ga.Version != gb.Version || ga.BigEndian != gb.BigEndian || ga.Alignment != gb.Alignment ||
				ga.DataOffset != gb.DataOffset || ga.Size != gb.Size || len(ga.KVs) != len(gb.KVs) ||
				!reflect.DeepEqual(ga.Tensors, gb.Tensors) {
				t.Fatalf("%s: GGUF header of %s differs", label, fa.Path)
			}
			for k := range ga.KVs {
				ka, kb := &ga.KVs[k], &gb.KVs[k]
				if !reflect.DeepEqual(*ka, *kb) {
					t.Fatalf("%s: GGUF key %q differs", label, ka.Key)
				}
			}
		}
	}
	if g := a.GGUF(); g != nil {
		for k := range g.KVs {
			kv := &g.KVs[k]
			if !kv.Lazy {
				continue
			}
			for _, r := range [][2]int{{0, int(min(kv.Count, 3))}, {int(kv.Count) - 1, 1}} {
				va, ea := a.MetaArray(kv, r[0], r[1])
				vb, eb := b.MetaArray(&b.GGUF().KVs[k], r[0], r[1])
				if ea != nil || eb != nil || !reflect.DeepEqual(va, vb) {
					t.Errorf("%s: %s[%d:+%d]: %v %v / %v %v", label, kv.Key, r[0], r[1], va, ea, vb, eb)
				}
			}
		}
	}
	for i, ta := range a.Tensors {
		tb := b.Tensors[i]
		if ta.Name != tb.Name || ta.Type != tb.Type || !reflect.DeepEqual(ta.Shape, tb.Shape) || ta.Bytes != tb.Bytes ||
			ta.File != tb.File || ta.Offset != tb.Offset || ta.Note != tb.Note {
			t.Fatalf("%s: tensor %d: %+v, remotely %+v", label, i, *ta, *tb)
		}
		va, ea := a.DecodeNew(ta)
		vb, eb := b.DecodeNew(tb)
		if (ea == nil) != (eb == nil) {
			t.Fatalf("%s: %s decodes %v, remotely %v", label, ta.Name, ea, eb)
		}
		for k := range va {
			if math.Float32bits(va[k]) != math.Float32bits(vb[k]) {
				t.Fatalf("%s: %s value %d: %g, remotely %g", label, ta.Name, k, va[k], vb[k])
			}
		}
	}
}

// TestRemoteZoo: every zoo model, read through the emulator by repository
// path, is the model read locally, and finds the same layers.
func TestRemoteZoo(t *testing.T) {
	h := hubtest.New(t)
	cl := hubClient(t, h, "", nil)
	n := 0
	for _, dir := range zooDirs(t) {
		local, remote := zooRemoteInputs(t, h, dir)
		for i := range local {
			a := openWith(t, nil, local[i])
			b := openWith(t, cl, remote[i])
			if !b.Remote() || b.Target.Kind != source.KindHub {
				t.Fatalf("%s: kind %v", remote[i], b.Target.Kind)
			}
			sameCheckpoint(t, remote[i], a, b)
			ma, errA := FindModel(a, FindOptions{})
			mb, errB := FindModel(b, FindOptions{})
			if (errA == nil) != (errB == nil) {
				t.Fatalf("%s: FindModel %v, remotely %v", remote[i], errA, errB)
			}
			if errA == nil && (!reflect.DeepEqual(ma.LayerIndices(), mb.LayerIndices()) || !reflect.DeepEqual(ma.Geo, mb.Geo)) {
				t.Errorf("%s: layers or geometry differ", remote[i])
			}
			a.Close()
			n++
		}
	}
	t.Logf("%d zoo checkpoints identical locally and through the emulator; %+v", n, cl.IO())
}

// TestRemoteForms: a URL of one file (a split GGUF's siblings found by
// name), a bare repository id, a file inside a repository and a revision
// pinned to the commit open the same checkpoint.
func TestRemoteForms(t *testing.T) {
	root := testref.RepoRoot()
	h := hubtest.New(t)
	cl := hubClient(t, h, "", nil)
	sharded := filepath.Join(root, "testdata", "tiny-llama-sharded")
	repo := h.AddRepo(t, "org/tiny-sharded", sharded)
	local := openWith(t, nil, sharded)
	for _, in := range []string{"org/tiny-sharded", "hf://org/tiny-sharded", "hf://org/tiny-sharded@" + repo.Commit,
		"hf://org/tiny-sharded/model.safetensors.index.json", h.URL + "/org/tiny-sharded/resolve/main/model.safetensors.index.json"} {
		sameCheckpoint(t, in, local, openWith(t, cl, in))
	}
	gg := filepath.Join(root, "testdata", "gguf")
	entries, _ := os.ReadDir(gg)
	for _, e := range entries { // all first: a split set's parts are siblings
		if b, err := os.ReadFile(filepath.Join(gg, e.Name())); err == nil {
			h.AddURLFile(e.Name(), b)
		}
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".gguf") {
			continue
		}
		u := h.CDN + "/files/" + e.Name()
		rc := openWith(t, cl, u)
		if rc.Target.Kind != source.KindURL {
			t.Errorf("%s: kind %v", u, rc.Target.Kind)
		}
		sameCheckpoint(t, u, openWith(t, nil, filepath.Join(gg, e.Name())), rc)
	}
	// A split GGUF by URL: its parts are its URL's siblings.
	shared := testref.SharedDir(t)
	parts, _ := filepath.Glob(filepath.Join(shared, "reference", "zoo", "llama", "gguf", "llama-f32-split-*.gguf"))
	if len(parts) != 3 {
		t.Fatalf("split parts: %v", parts)
	}
	var urls []string
	for _, p := range parts {
		b, _ := os.ReadFile(p)
		urls = append(urls, h.AddURLFile(filepath.Base(p), b))
	}
	sameCheckpoint(t, urls[1], openWith(t, nil, parts[1]), openWith(t, cl, urls[1]))
}

// isLFSRead is a range read of an LFS file from the emulator's CDN.
func isLFSRead(r hubtest.Request) bool {
	return r.Host == hubtest.HostCDN && r.Method == "GET"
}

// TestRemoteRequests counts requests: a sharded model opens with the
// repository listing, config.json, the index and one header read per
// shard; a GGUF with one read; loading one layer fetches exactly its
// tensors' bytes.
func TestRemoteRequests(t *testing.T) {
	shared := testref.SharedDir(t)
	h := hubtest.New(t)
	for _, arch := range []string{"llama", "gpt2", "gpt_neox"} {
		h.AddRepo(t, "zoo/"+arch, filepath.Join(shared, "reference", "zoo", arch))
	}
	for _, tc := range []struct {
		in     string
		shards int
		small  int // small files read from the Hub: index, config.json
	}{
		{"hf://zoo/llama/hf-sharded", 2, 2},
		{"hf://zoo/llama/hf", 1, 1},
		{"hf://zoo/llama/gguf/llama-Q4_K_M.gguf", 1, 0},
		{"hf://zoo/llama/gguf/llama-f32-split-00002-of-00003.gguf", 3, 0},
		// Fused QKV: GPT-2's Conv1D c_attn and GPT-NeoX's per-head
		// interleaved query_key_value are each fetched once for q, k and v.
		{"hf://zoo/gpt2/hf", 1, 1},
		{"hf://zoo/gpt_neox/hf", 1, 1},
	} {
		t.Run(tc.in, func(t *testing.T) {
			// No range cache: a tensor read twice would be fetched twice.
			cl := hubClient(t, h, "", func(o *source.Options) { o.NoCache = true })
			h.ResetLog()
			c := openWith(t, cl, tc.in)
			api := h.Count(func(r hubtest.Request) bool { return strings.HasPrefix(r.Path, "/api/") })
			small := h.Count(func(r hubtest.Request) bool {
				return r.Host == hubtest.HostHub && r.Method == "GET" && r.Status != 302 && !strings.HasPrefix(r.Path, "/api/")
			})
			redirects := h.Count(func(r hubtest.Request) bool { return r.Status == 302 })
			reads := h.Count(isLFSRead)
			all := h.Count(nil)
			t.Logf("open: %d requests (%d API, %d small files, %d redirects, %d header reads), %d bytes", all, api, small, redirects, reads, h.BytesServed())
			// One header read per shard, at most one more each for a long
			// header; the Hub redirects each shard's first read to the CDN.
			if api != 1 || small != tc.small || reads < tc.shards || reads > 2*tc.shards || redirects != tc.shards || all != api+small+redirects+reads {
				t.Errorf("open: %d API, %d small, %d redirects, %d reads of %d files (%d requests in all)", api, small, redirects, reads, tc.shards, all)
			}
			if io := c.IO(); io.Requests != int64(all) || io.BytesFetched != h.BytesServed() {
				t.Errorf("IO() %+v, the emulator saw %d requests and %d bytes", io, all, h.BytesServed())
			}

			m, err := FindModel(c, FindOptions{})
			if err != nil {
				t.Fatal(err)
			}
			n := m.LayerIndices()[1]
			want, ranges := layerTensorBytes(c, m.Layer(n))
			h.ResetLog()
			if _, err := m.LoadLayer(n); err != nil {
				t.Fatal(err)
			}
			// Tensors inside the first read of the header (small models) are
			// not fetched again.
			got := h.BytesServed()
			if got > want {
				t.Errorf("LoadLayer(%d) fetched %d bytes, its tensors hold %d", n, got, want)
			}
			for _, r := range h.Requests() {
				var a, z int64
				if _, err := fmt.Sscanf(r.Range, "bytes=%d-%d", &a, &z); isLFSRead(r) && (err != nil || !inside(ranges, a, z+1)) {
					t.Errorf("LoadLayer(%d) read %s, which is not inside one of its tensors", n, r.Range)
				}
			}
			t.Logf("LoadLayer(%d): %d requests, %d bytes (its tensors: %d bytes)", n, h.Count(nil), got, want)

			// Read again through a client with a range cache: the second
			// time nothing is fetched.
			cached := openWith(t, hubClient(t, h, "", nil), tc.in)
			mc, err := FindModel(cached, FindOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mc.LoadLayer(n); err != nil {
				t.Fatal(err)
			}
			h.ResetLog()
			before := cached.IO()
			if _, err := mc.LoadLayer(n); err != nil {
				t.Fatal(err)
			}
			if h.Count(nil) != 0 || cached.IO().BytesFromCache-before.BytesFromCache != got {
				t.Errorf("LoadLayer again: %d requests, %d bytes from the cache", h.Count(nil), cached.IO().BytesFromCache-before.BytesFromCache)
			}
		})
	}
}

// inside reports whether [a, z) lies inside one of the ranges.
func inside(ranges [][2]int64, a, z int64) bool {
	for _, r := range ranges {
		if a >= r[0] && z <= r[1] {
			return true
		}
	}
	return false
}

// layerTensorBytes is the bytes of a layer's tensors and their byte ranges.
func layerTensorBytes(c *Checkpoint, ls *LayerSource) (int64, [][2]int64) {
	seen := map[*Tensor]bool{}
	var ts []*Tensor
	add := func(t *Tensor) {
		if t != nil && !seen[t] {
			seen[t] = true
			ts = append(ts, t)
		}
	}
	for _, p := range []*ProjSource{ls.Q, ls.K, ls.V, ls.O} {
		if p != nil {
			add(p.Tensor)
			add(p.Bias)
			for _, f := range p.Factors {
				add(f)
			}
		}
	}
	for _, t := range []*Tensor{ls.NormWeight, ls.NormBias, ls.QNorm, ls.KNorm, ls.Sinks} {
		add(t)
	}
	var n int64
	var ranges [][2]int64
	for _, t := range ts {
		n += t.Bytes
		ranges = append(ranges, [2]int64{t.Offset, t.Offset + t.Bytes})
	}
	return n, ranges
}

// TestRemoteFaults: each fault of the emulator ends in the same checkpoint
// after a retry, or — when it persists — in a one-line *Error (exit status
// 3), never in a wrong result.
func TestRemoteFaults(t *testing.T) {
	root := testref.RepoRoot()
	dir := filepath.Join(root, "testdata", "tiny-llama-sharded")
	local := openWith(t, nil, dir)
	lm, err := FindModel(local, FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantLayer, err := lm.LoadLayer(1)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []struct {
		name string
		kind hubtest.FaultKind
		host string
	}{
		{"429", hubtest.TooManyRequests, ""}, {"500", hubtest.ServerError, ""}, {"reset", hubtest.ResetMidBody, hubtest.HostCDN},
		{"short body", hubtest.ShortBody, hubtest.HostCDN}, {"wrong range", hubtest.WrongRange, hubtest.HostCDN},
		{"expired URL", hubtest.ExpiredURL, hubtest.HostCDN}, {"stall", hubtest.Stall, hubtest.HostCDN},
	}
	for _, k := range kinds {
		for _, persist := range []bool{false, true} {
			for _, during := range []string{"open", "load"} {
				name := fmt.Sprintf("%s/%s/persist=%v", k.name, during, persist)
				t.Run(name, func(t *testing.T) {
					h := hubtest.New(t)
					h.AddRepo(t, "org/m", dir)
					cl := hubClient(t, h, "", func(o *source.Options) { o.Attempts, o.IdleTimeout = 3, 300*time.Millisecond })
					times := 1
					if persist {
						times = 1000
					}
					fault := hubtest.Fault{Kind: k.kind, Host: k.host, Path: ".safetensors", Times: times, Delay: 2 * time.Second}
					if k.host == hubtest.HostCDN {
						fault.Path = "/lfs/"
					}
					if during == "load" {
						// Tensor reads go straight to the CDN.
						fault.Host, fault.Path = hubtest.HostCDN, "/lfs/"
					} else {
						h.Inject(fault)
					}
					c, err := Open("hf://org/m", Options{Source: cl})
					if err == nil {
						defer c.Close()
						var m *Model
						if m, err = FindModel(c, FindOptions{}); err != nil {
							t.Fatal(err)
						}
						if during == "load" {
							h.Inject(fault)
						}
						var l *Layer
						if l, err = m.LoadLayer(1); err == nil {
							if !reflect.DeepEqual(l, wantLayer) {
								t.Fatal("the layer read through faults differs from the local one")
							}
						}
					}
					checkFaultOutcome(t, err, persist)
				})
			}
		}
	}
	// A file that changes on the server between the header and the tensors.
	h := hubtest.New(t)
	h.AddRepo(t, "org/m", dir)
	cl := hubClient(t, h, "", nil)
	c := openWith(t, cl, "hf://org/m")
	m, err := FindModel(c, FindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.Inject(hubtest.Fault{Kind: hubtest.ChangeETag, Path: "model-0000"})
	_, err = m.LoadLayer(1)
	checkFaultOutcome(t, err, true)
	if !errors.Is(err, source.ErrChanged) {
		t.Errorf("changed ETag: %v", err)
	}
}

func checkFaultOutcome(t *testing.T, err error, persist bool) {
	t.Helper()
	if !persist {
		if err != nil {
			t.Fatalf("a single fault was not retried: %v", err)
		}
		return
	}
	var fe *Error
	if err == nil {
		t.Fatal("a persistent fault gave no error")
	}
	if !errors.As(err, &fe) || strings.ContainsAny(err.Error(), "\r\n") {
		t.Fatalf("a persistent fault gave %T %q, want a one-line *formats.Error", err, err)
	}
	t.Logf("%v", err)
}

// TestRemoteOffline: with the network forbidden, a repository in the
// Hugging Face cache opens from it, and one read before opens from qkv's
// range cache; one never read fails naming what is missing.
func TestRemoteOffline(t *testing.T) {
	root := testref.RepoRoot()
	dir := filepath.Join(root, "testdata", "tiny-llama-sharded")
	local := openWith(t, nil, dir)
	hf, commit := hubtest.WriteHFCache(t, t.TempDir(), "org/tiny", dir)
	off := hubClient(t, nil, "", func(o *source.Options) { o.HFCacheDir, o.Offline, o.Endpoint = hf, true, "https://hub.invalid" })
	c := openWith(t, off, "org/tiny")
	if c.Target.Kind != source.KindHFCache || c.Target.Commit != commit || c.Remote() {
		t.Errorf("kind %v commit %s", c.Target.Kind, c.Target.Commit)
	}
	sameCheckpoint(t, "hf-cache", local, c)
	if io := c.IO(); io.Requests != 0 {
		t.Errorf("offline: %d requests", io.Requests)
	}

	// qkv's range cache, filled by an online run.
	h := hubtest.New(t)
	h.AddRepo(t, "org/m", dir)
	cache := t.TempDir()
	on := hubClient(t, h, cache, nil)
	oc := openWith(t, on, "hf://org/m")
	sameCheckpoint(t, "online", local, oc) // reads every tensor
	h.ResetLog()
	offc := hubClient(t, h, cache, func(o *source.Options) { o.Offline = true })
	c2 := openWith(t, offc, "hf://org/m")
	sameCheckpoint(t, "offline from qkv's cache", local, c2)
	if h.Count(nil) != 0 {
		t.Errorf("offline: %d requests reached the emulator", h.Count(nil))
	}
	if _, err := Open("hf://org/never-read", Options{Source: offc}); err == nil || !errors.Is(err, source.ErrOffline) {
		t.Errorf("offline, never read: %v", err)
	} else {
		checkFaultOutcome(t, err, true)
	}
}

// TestRemoteHostile: every file and folder of the hostile corpus, served by
// the emulator, gives what it gives locally — the same error after the
// file's name, or the same checkpoint — for Open, FindModel and a decode.
func TestRemoteHostile(t *testing.T) {
	root := testref.RepoRoot()
	corpus := filepath.Join(root, "testdata", "hostile")
	b, err := os.ReadFile(filepath.Join(corpus, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases map[string]json.RawMessage
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	h := hubtest.New(t)
	h.AddRepo(t, "corpus/hostile", corpus)
	cl := hubClient(t, h, "", nil)
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	sort.Strings(names)
	localPrefix, remotePrefix := corpus+string(filepath.Separator), "hf://corpus/hostile@main/"
	norm := func(err error) string {
		if err == nil {
			return "ok"
		}
		s := strings.ReplaceAll(err.Error(), localPrefix, remotePrefix)
		return strings.ReplaceAll(s, "hf://corpus/hostile/", remotePrefix) // FindModel names the input as given
	}
	for _, name := range names {
		a, errA := Open(filepath.Join(corpus, name), Options{})
		bk, errB := Open("hf://corpus/hostile/"+name, Options{Source: cl})
		if norm(errA) != norm(errB) {
			t.Errorf("%s:\n local  %s\n remote %s", name, norm(errA), norm(errB))
			continue
		}
		if errA != nil {
			var fe *Error
			if !errors.As(errB, &fe) {
				t.Errorf("%s: remote error is %T", name, errB)
			}
			continue
		}
		sameCheckpoint(t, name, a, bk)
		_, errA = FindModel(a, FindOptions{})
		_, errB = FindModel(bk, FindOptions{})
		if norm(errA) != norm(errB) {
			t.Errorf("%s: FindModel:\n local  %s\n remote %s", name, norm(errA), norm(errB))
		}
		a.Close()
		bk.Close()
	}
}

// TestRemoteGGUFGrowth: a GGUF header longer than the first read (a big
// vocabulary) is read in a growing window, each step fetching only new
// bytes; its lazy arrays decode from the bytes read, without a request.
func TestRemoteGGUFGrowth(t *testing.T) {
	shared := testref.SharedDir(t)
	p := filepath.Join(shared, "fixtures", "gguf", "vocab", "ggml-vocab-falcon.gguf")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	h := hubtest.New(t)
	u := h.AddURLFile(filepath.Base(p), b)
	cl := hubClient(t, h, "", func(o *source.Options) { o.NoCache = true })
	c := openWith(t, cl, u)
	sameCheckpoint(t, u, openWith(t, nil, p), c)
	reads := h.Count(isLFSRead)
	if h.BytesServed() > int64(len(b)) {
		t.Errorf("%d bytes served for a %d-byte file", h.BytesServed(), len(b))
	}
	t.Logf("GGUF of %d bytes (header %d): %d reads, %d bytes", len(b), c.GGUF().DataOffset, reads, h.BytesServed())
	h.ResetLog()
	kv, ok := c.GGUF().Lookup("tokenizer.ggml.tokens")
	if !ok || !kv.Lazy {
		t.Fatal("no lazy token array")
	}
	if _, err := c.MetaArray(kv, int(kv.Count)-10, 10); err != nil || h.Count(nil) != 0 {
		t.Errorf("MetaArray: %v, %d requests", err, h.Count(nil))
	}
}

// TestCheckpointReadFile: a file beside the weights reads the same locally
// and from the Hub; an absent one is fs.ErrNotExist.
func TestCheckpointReadFile(t *testing.T) {
	dir := filepath.Join(testref.RepoRoot(), "testdata", "tiny-llama")
	h := hubtest.New(t)
	h.AddRepo(t, "org/tiny", dir)
	want, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Checkpoint{openWith(t, nil, dir), openWith(t, hubClient(t, h, "", nil), "hf://org/tiny")} {
		b, p, err := c.ReadFile("config.json", 1<<20)
		if err != nil || !bytes.Equal(b, want) || !strings.HasSuffix(p, "config.json") {
			t.Errorf("%s: %v", p, err)
		}
		if _, _, err := c.ReadFile("tokenizer.json", 1<<20); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("absent file: %v", err)
		}
		if _, _, err := c.ReadFile("config.json", 10); err == nil {
			t.Error("a file over the limit was read")
		}
	}
}
