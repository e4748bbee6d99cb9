#!/usr/bin/python3
"""Reference singular values of LoRA updates, computed with numpy from the
adapter file alone (a measuring tool: numpy is not a dependency of qkv).

For every module of an adapter (PEFT lora_A [r, in] / lora_B [out, r], or
MLX lora_a [in, r] / lora_b [r, out], transposed to PEFT's orientation) it
writes, for scale 1:
  sv_exact         numpy.linalg.svd of the float64 product B·A (the first
                   r values; the rest are zero up to float64 noise)
  sv_materialised  the first r + 8 singular values of B·A rounded to
                   float32 (as qkv's extract writes ΔW), by a float64 SVD
  tail_max         the largest of its remaining values (float32 noise)
  effective_rank_exact, effective_rank_materialised (exp of the entropy of
                   sv / Σ sv over all min(out, in) values)
A fused QKV update is split into its q, k and v rows (entries MODULE.q,
MODULE.k, MODULE.v, with the rows of B·A they take) by the documented rule
of its base architecture: GPT-2's c_attn in thirds; BLOOM's
query_key_value per head, [q_h; k_h; v_h] blocks of head_dim rows, with
n_head from the base model's config.json (--base-config).
Usage: numpy_lora_sv.py ADAPTER.safetensors OUT.json [--base-config CONFIG.json]
"""
import json, struct, sys
import numpy as np

path, out = sys.argv[1], sys.argv[2]
base_cfg = None
if len(sys.argv) > 4 and sys.argv[3] == "--base-config":
    with open(sys.argv[4]) as f:
        base_cfg = json.load(f)
with open(path, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    base = 8 + n
    data = f.read()
dt = {"F32": np.float32, "F16": np.float16, "BF16": None, "F64": np.float64}

def tensor(name):
    h = header[name]
    t = dt[h["dtype"]]
    s, e = h["data_offsets"]
    return np.frombuffer(data[s:e], dtype=t).reshape(h["shape"]).astype(np.float64)

def eff(sv):
    p = sv / sv.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))

mods = {}
for name in header:
    if name == "__metadata__":
        continue
    for suf, which, mlx in ((".lora_a", "a", True), (".lora_b", "b", True), (".lora_A.weight", "a", False), (".lora_B.weight", "b", False)):
        if name.endswith(suf):
            mods.setdefault(name[: -len(suf)], {})[which] = (name, mlx)
def split(mod, n):
    """The (suffix, rows) of a fused module's projections; [("", all)] else."""
    if mod.endswith(".c_attn"):
        t = n // 3
        return [(".q", list(range(0, t))), (".k", list(range(t, 2 * t))), (".v", list(range(2 * t, 3 * t)))]
    if mod.endswith(".query_key_value"):
        nh = base_cfg["n_head"]
        hd = n // (3 * nh)
        return [(suf, [3 * h * hd + kind * hd + i for h in range(nh) for i in range(hd)])
                for kind, suf in enumerate((".q", ".k", ".v"))]
    return [("", list(range(n)))]

res = {}
for mod in sorted(mods):
    (an, mlx), (bn, _) = mods[mod]["a"], mods[mod]["b"]
    a, b = tensor(an), tensor(bn)
    if mlx:
        a, b = a.T, b.T
    r = a.shape[0]
    for suf, rows in split(mod, b.shape[0]):
        prod = b[rows] @ a
        s64 = np.linalg.svd(prod, compute_uv=False)
        s32 = np.linalg.svd(prod.astype(np.float32).astype(np.float64), compute_uv=False)
        k = min(r, *prod.shape)
        entry = {"a": an, "b": bn, "mlx": mlx, "rank": r, "shape": list(prod.shape),
                 "sv_exact": s64[:k].tolist(), "sv_materialised": s32[: k + 8].tolist(),
                 "tail_max": float(s32[k:].max()) if len(s32) > k else 0.0,
                 "effective_rank_exact": eff(s64[:k]), "effective_rank_materialised": eff(s32)}
        if suf:
            entry["rows"] = rows
        res[mod + suf] = entry
        print(f"{mod}{suf}: {prod.shape} rank {r}: sv {s64[0]:.6g}..{s64[k-1]:.6g}, float32 tail max {entry['tail_max']:.3g}, "
              f"max rel diff float32 vs exact {np.max(np.abs(s32[:k] - s64[:k]) / s64[:k]):.2g}", flush=True)
with open(out, "w") as f:
    json.dump({"source": path.split("/")[-1], "numpy": np.__version__, "scale": 1, "modules": res}, f, indent=1)
