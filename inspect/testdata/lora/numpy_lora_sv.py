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
Usage: numpy_lora_sv.py ADAPTER.safetensors OUT.json
"""
import json, struct, sys
import numpy as np

path, out = sys.argv[1], sys.argv[2]
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
res = {}
for mod in sorted(mods):
    (an, mlx), (bn, _) = mods[mod]["a"], mods[mod]["b"]
    a, b = tensor(an), tensor(bn)
    if mlx:
        a, b = a.T, b.T
    r = a.shape[0]
    prod = b @ a
    s64 = np.linalg.svd(prod, compute_uv=False)
    s32 = np.linalg.svd(prod.astype(np.float32).astype(np.float64), compute_uv=False)
    res[mod] = {"a": an, "b": bn, "mlx": mlx, "rank": r, "shape": list(prod.shape),
                "sv_exact": s64[:r].tolist(), "sv_materialised": s32[: r + 8].tolist(),
                "tail_max": float(s32[r:].max()) if len(s32) > r else 0.0,
                "effective_rank_exact": eff(s64[:r]), "effective_rank_materialised": eff(s32)}
    print(f"{mod}: {prod.shape} rank {r}: sv {s64[0]:.6g}..{s64[r-1]:.6g}, float32 tail max {res[mod]['tail_max']:.3g}, "
          f"max rel diff float32 vs exact {np.max(np.abs(s32[:r] - s64[:r]) / s64[:r]):.2g}", flush=True)
with open(out, "w") as f:
    json.dump({"source": path.split("/")[-1], "numpy": np.__version__, "scale": 1, "modules": res}, f, indent=1)
