#!/usr/bin/env python3
"""PyTorch CPU reference timing for attn's BenchmarkLayer4096.

The same computation as attn.Run on one layer of a 4096-wide model with 32
query heads and 8 KV heads (head_dim 128), RMSNorm pre-norm, full RoPE
(theta 10000, HF rotate_half), causal mask, T = 512, random float32 weights.
Measurement only: torch is not a dependency of qkv. Install Debian's
python3-torch to run it:  python3 attn/testdata/bench/layer4096.py
(THREADS=1 for one thread; the default is 2, the machine's cores).
"""
import os
import time

import torch

T, D, H, KV, HD = 512, 4096, 32, 8, 128
THETA, EPS = 10000.0, 1e-5


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def layer(x, w, wq, wk, wv, wo, cos, sin, mask):
    xn = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w
    q = (xn @ wq.T).view(T, H, HD).transpose(0, 1)
    k = (xn @ wk.T).view(T, KV, HD).transpose(0, 1)
    v = (xn @ wv.T).view(T, KV, HD).transpose(0, 1)
    q = q * cos + rotate_half(q) * sin
    k = k * cos + rotate_half(k) * sin
    k = k.repeat_interleave(H // KV, dim=0)
    v = v.repeat_interleave(H // KV, dim=0)
    s = (q @ k.transpose(1, 2)) / HD ** 0.5 + mask
    p = torch.softmax(s, dim=-1)
    ctx = (p @ v).transpose(0, 1).reshape(T, H * HD)
    return ctx @ wo.T, p


def main():
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(T, D, generator=g)
    w = 1 + 0.1 * torch.randn(D, generator=g)
    wq = torch.randn(H * HD, D, generator=g) * 0.02
    wk = torch.randn(KV * HD, D, generator=g) * 0.02
    wv = torch.randn(KV * HD, D, generator=g) * 0.02
    wo = torch.randn(D, H * HD, generator=g) * 0.02
    inv = 1.0 / (THETA ** (torch.arange(0, HD, 2).float() / HD))
    f = torch.outer(torch.arange(T).float(), inv)
    emb = torch.cat((f, f), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((T, T), float("-inf")).triu(1)
    with torch.no_grad():
        layer(x, w, wq, wk, wv, wo, cos, sin, mask)  # warm up
        times = []
        c0 = time.process_time()
        for _ in range(5):
            t0 = time.perf_counter()
            layer(x, w, wq, wk, wv, wo, cos, sin, mask)
            times.append(time.perf_counter() - t0)
        cpu = (time.process_time() - c0) / len(times)
    print("torch %s threads=%d  layer4096 T=%d: best %.1f ms, median %.1f ms, "
          "mean %.1f ms, cpu %.1f ms/op"
          % (torch.__version__, torch.get_num_threads(), T, min(times) * 1e3,
             sorted(times)[len(times) // 2] * 1e3, sum(times) / len(times) * 1e3,
             cpu * 1e3))


if __name__ == "__main__":
    main()
