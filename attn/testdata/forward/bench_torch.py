#!/usr/bin/python3
"""PyTorch side of attn's BenchmarkForward8B: the Llama forward pass of a
BF16 safetensors checkpoint through every block, in float32 on the CPU
(2 threads), reading one layer at a time from the memory-mapped file as a
float32 run of a BF16 checkpoint does (weights widened to float32).

    python3 bench_torch.py MODEL_DIR IDS.json

Prints one line: BENCH8B {"seconds", "cpu_seconds", "maxrss_mb", "out_rms"}
(seconds: the forward alone, from the token ids to the last block's output).
"""

import json
import os
import warnings
import resource
import struct
import sys
import time

import numpy as np
import torch


def main():
    folder, ids_path = sys.argv[1], sys.argv[2]
    torch.set_num_threads(2)
    warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    torch.set_grad_enabled(False)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    ids = json.load(open(ids_path))
    path = os.path.join(folder, "model.safetensors")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    base = 8 + n

    def bf16(b):
        # The stored bytes as torch.bfloat16, widened to float32 (what
        # .float() of a BF16 checkpoint does).
        return torch.from_numpy(np.frombuffer(b, dtype=np.int16)).view(torch.bfloat16).float()

    def tensor(name):
        info = header[name]
        a, b = info["data_offsets"]
        return bf16(raw[base + a : base + b]).reshape(info["shape"])

    def rows(name, idx):
        info = header[name]
        a, _ = info["data_offsets"]
        d = info["shape"][1]
        out = []
        for i in idx:
            s = base + a + 2 * d * i
            out.append(bf16(raw[s : s + 2 * d]))
        return torch.stack(out)

    d, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, eps, L = d // H, cfg["rms_norm_eps"], cfg["num_hidden_layers"]
    T = len(ids)

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    t0, c0 = time.time(), time.process_time()
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None]
    emb = torch.cat([ang, ang], -1)
    cos, sin = emb.cos(), emb.sin()

    def rot(x):
        h = x.shape[-1] // 2
        return torch.cat([-x[..., h:], x[..., :h]], -1)

    mask = torch.full((T, T), float("-inf")).triu(1)
    x = rows("model.embed_tokens.weight", ids)
    for i in range(L):
        p = "model.layers.%d." % i
        wq, wk, wv, wo = (tensor(p + "self_attn.%s_proj.weight" % k) for k in "qkvo")
        h = rms(x, tensor(p + "input_layernorm.weight"))
        q = (h @ wq.T).view(T, H, hd).transpose(0, 1)
        k = (h @ wk.T).view(T, KV, hd).transpose(0, 1)
        v = (h @ wv.T).view(T, KV, hd).transpose(0, 1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
        s = q @ k.transpose(1, 2) / hd ** 0.5 + mask
        ctx = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(T, H * hd)
        x = x + ctx @ wo.T
        del wq, wk, wv, wo
        wg, wu, wd = (tensor(p + "mlp.%s_proj.weight" % k) for k in ("gate", "up", "down"))
        h = rms(x, tensor(p + "post_attention_layernorm.weight"))
        x = x + (torch.nn.functional.silu(h @ wg.T) * (h @ wu.T)) @ wd.T
        del wg, wu, wd
    sec, cpu = time.time() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH8B " + json.dumps({"seconds": sec, "cpu_seconds": cpu, "maxrss_mb": rss, "out_rms": float(x.pow(2).mean().sqrt())}))


if __name__ == "__main__":
    main()
