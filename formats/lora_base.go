package formats

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/qkvdev/qkv/internal/infile"
)

// adapterBase returns what is known of an adapter's base model: the
// geometry from its config.json — beside the adapter, at opts.Base, or in
// the local Hugging Face cache under base_model_name_or_path — or, without
// one, the architecture family the base model's name suggests; then
// opts' head counts override.
func adapterBase(c *Checkpoint, info *AdapterInfo, opts FindOptions, dModel int) (Geometry, *Arch, error) {
	arch := guessArch(info.BaseModel)
	g := Geometry{Arch: arch, DModel: dModel, Causal: arch != "" && arch != "bert", Norm: NormNone}
	var base *Arch
	if e := LookupArch(arch, false); e != nil {
		a := *e
		base = &a
	}
	conf, confPath, err := baseConfig(c, info, opts)
	if err != nil {
		return g, nil, err
	}
	if conf != nil {
		mt, cc := hfModelType(conf)
		a := genericArch
		if e := LookupArch(mt, false); e != nil {
			a = *e
		}
		gs, err := hfGeometry(cc, mt, &a, "")
		if err != nil {
			return g, nil, &Error{File: confPath, Offset: -1, Err: err}
		}
		if gs.geo.DModel != 0 && dModel != 0 && gs.geo.DModel != dModel {
			return g, nil, &Error{File: c.Path, Offset: -1, Err: fmt.Errorf("the LoRA factors are %d wide but the base model's hidden_size is %d (%s)", dModel, gs.geo.DModel, confPath)}
		}
		g = gs.geo
		if g.DModel == 0 {
			g.DModel = dModel
		}
		base = nil
		if a.Name != "" {
			base = &a
		}
		info.BaseConfig = confPath
	}
	if opts.NHeads > 0 {
		g.NHeads = opts.NHeads
		g.NKVHeads = 0
	}
	if opts.NKVHeads > 0 {
		g.NKVHeads = opts.NKVHeads
	}
	if opts.HeadDim > 0 {
		g.HeadDim = opts.HeadDim
	}
	return g, base, nil
}

// baseConfig finds the base model's config.json: beside the adapter, at
// opts.Base (a folder or the file), or in the Hugging Face cache.
func baseConfig(c *Checkpoint, info *AdapterInfo, opts FindOptions) (cfg, string, error) {
	if c.Config != nil {
		return cfg(c.Config), c.ConfigPath, nil
	}
	var path string
	switch {
	case opts.Base != "":
		path = opts.Base
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			path = filepath.Join(path, "config.json")
		}
	case info.BaseModel != "":
		path = hubConfig(info.BaseModel)
		if path == "" {
			return nil, "", nil
		}
	default:
		return nil, "", nil
	}
	if err := regularFile(path); err != nil {
		return nil, "", err
	}
	b, err := readLimited(path, maxConfigBytes)
	if err != nil {
		return nil, "", &Error{File: path, Offset: -1, Err: infile.ReadCause(err)}
	}
	m, err := parseJSONObject(b)
	if err != nil {
		return nil, "", fileError(path, err)
	}
	return cfg(m), path, nil
}

// hubConfig returns the config.json of a model in the local Hugging Face
// cache (HF_HUB_CACHE, HF_HOME/hub or ~/.cache/huggingface/hub): the
// snapshot refs/main names, else the only snapshot; "" when there is none.
func hubConfig(name string) string {
	if strings.Count(name, "/") > 1 || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return "" // a local path or nonsense, not a hub id
	}
	cache := os.Getenv("HF_HUB_CACHE")
	if cache == "" {
		if home := os.Getenv("HF_HOME"); home != "" {
			cache = filepath.Join(home, "hub")
		} else if h, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(h, ".cache", "huggingface", "hub")
		}
	}
	if cache == "" {
		return ""
	}
	repo := filepath.Join(cache, "models--"+strings.ReplaceAll(name, "/", "--"))
	snap := ""
	if ref, err := readLimited(filepath.Join(repo, "refs", "main"), 256); err == nil {
		if h := strings.TrimSpace(string(ref)); h != "" && !strings.ContainsAny(h, "/\\.") {
			snap = filepath.Join(repo, "snapshots", h)
		}
	}
	if snap == "" {
		entries, err := os.ReadDir(filepath.Join(repo, "snapshots"))
		if err != nil || len(entries) != 1 {
			return ""
		}
		snap = filepath.Join(repo, "snapshots", entries[0].Name())
	}
	p := filepath.Join(snap, "config.json")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// splitFusedLoRA splits the update of a fused QKV module by the base
// architecture's rule: GPT-2's c_attn (and any q|k|v layout with as many KV
// heads as heads) by thirds, per-head and grouped layouts (BLOOM, GPT-NeoX,
// Falcon) with the base model's head counts.
func splitFusedLoRA(c *Checkpoint, ls *LayerSource, p *loraPair, src *LoRASource, out, in int, g *Geometry, base *Arch) error {
	fail := func(format string, args ...any) error {
		return &Error{File: c.Path, Tensor: p.b.Name, Offset: -1, Err: fmt.Errorf(format, args...)}
	}
	if base == nil {
		return fail("this LoRA adapter updates a fused QKV module (%s); splitting it needs the base model's architecture: give --base PATH (the base model's folder or config.json), or put the base model named in adapter_config.json in the Hugging Face cache", p.m.leaf)
	}
	kind := base.Fused
	thirds := kind == FusedContig && (base.Conv1D || (g.NHeads > 0 && g.NKVHeads == g.NHeads))
	var q, k, v []int
	var err error
	switch {
	case thirds:
		if out%3 != 0 {
			return fail("the fused update has %d rows, not three equal blocks", out)
		}
		third := out / 3
		q, k, v = seqRows(0, third), seqRows(third, third), seqRows(2*third, third)
	case kind == fusedUnknown:
		return fail("this LoRA adapter updates a fused QKV module of a %s model, whose split rule qkv does not know", base.Name)
	default:
		nh, nkv := g.NHeads, g.NKVHeads
		if nkv == 0 {
			nkv = nh
		}
		if nh == 0 || out%(nh+2*nkv) != 0 {
			return fail("splitting this fused %s update (%d rows, %s) needs the base model's head counts: give --n-heads N (and --n-kv-heads N), or --base PATH with the base model's config.json", base.Name, out, kind)
		}
		if q, k, v, err = fusedRows(kind, nh, nkv, out/(nh+2*nkv)); err != nil {
			return fail("%v", err)
		}
	}
	for _, x := range []struct {
		p    Projection
		rows []int
	}{{ProjQ, q}, {ProjK, k}, {ProjV, v}} {
		if ls.Proj(x.p) != nil {
			return fail("layer %d has two LoRA updates for %s", p.m.layer, x.p)
		}
		ls.setProj(x.p, &ProjSource{Out: len(x.rows), In: in, Rows: x.rows, Fused: true,
			Split: fmt.Sprintf("%s rule (%s): %s", base.Name, kind, rowRuns(x.rows)), LoRA: src})
	}
	return nil
}

func seqRows(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}
