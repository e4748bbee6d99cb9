#!/usr/bin/python3
"""Independent float64 forward passes for attn's forward tests.

Written from transformers' modeling code (Llama, Mistral, Mixtral, Qwen2/3,
Qwen3-MoE, Gemma 1/2/3, OLMo 2, GPT-OSS, DeepSeek V2/V3: decoder layers,
norms, attention with RoPE and its scalings, Q/K norms, sliding windows,
softcaps, sinks, latent attention, MLPs and mixture-of-experts routing), in
numpy float64, with no code from qkv. It reads each model's config.json and
model.safetensors and writes, per model, <name>.safetensors holding the
tensors of ../shared/reference/zoo/FORWARD.md:

    tokens [T] I32, hidden.{L} (L = 0..N) [T, d], attn_in.{L} [T, d],
    probs.{L} [H, T, T], attn_out.{L} [T, d], mlp_out.{L} [T, d],
    final_norm [T, d], logits [T, vocab]

all F32 (the float64 values rounded once). manifest.json lists every model:
its source folder, the sha256 of its files, the token ids, and any variant
setting. It also writes the tiny DeepSeek V3 mixture-of-experts model
(deepseek_v3_moe/) that no other fixture provides: group-limited routing,
score correction, shared experts.

Run from the repository root:  python3 attn/testdata/forward/reference.py
(needs ../shared beside the repository and Debian's python3-numpy).
"""

import hashlib
import json
import math
import os
import struct
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OUT = os.path.join(ROOT, "attn", "testdata", "forward")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

# ---------------------------------------------------------------- files


def bf16_to_f64(raw):
    u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
    return u.view("<f4").astype(np.float64)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[base + a : base + b]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif dt == "BF16":
            arr = bf16_to_f64(raw)
        elif dt == "I32":
            arr = np.frombuffer(raw, dtype="<i4").astype(np.float64)
        else:
            raise ValueError("%s: dtype %s" % (name, dt))
        out[name] = arr.reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    names = sorted(tensors)
    header = {}
    blobs = []
    off = 0
    for n in names:
        a = tensors[n]
        if a.dtype == np.int32:
            b = a.astype("<i4").tobytes()
            dt = "I32"
        else:
            b = a.astype("<f4").tobytes()
            dt = "F32"
        header[n] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


# ---------------------------------------------------------------- pieces


def rms_norm(x, w, eps, offset=0.0):
    var = np.mean(x * x, axis=-1, keepdims=True)
    return x / np.sqrt(var + eps) * (w + offset)


def silu(x):
    return x / (1.0 + np.exp(-x))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


ACT = {"silu": silu, "swish": silu, "gelu_pytorch_tanh": gelu_tanh, "gelu_new": gelu_tanh}


def softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


# RoPE inverse frequencies, transformers' ROPE_INIT_FUNCTIONS (float64).


def inv_freq_default(dim, base):
    return 1.0 / base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)


def rope_params(cfg, dim, base, scaling):
    """inv_freq and attention factor for one rope block."""
    inv = inv_freq_default(dim, base)
    if not scaling:
        return inv, 1.0
    t = scaling.get("rope_type", scaling.get("type", "default"))
    if t == "default":
        return inv, 1.0
    factor = scaling.get("factor", 1.0)
    if t == "linear":
        return inv / factor, 1.0
    if t == "llama3":
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        low_wl, high_wl = old / low, old / high
        wl = 2 * math.pi / inv
        inv_l = np.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - low) / (high - low)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        medium = ~(wl < high_wl) & ~(wl > low_wl)
        return np.where(medium, smoothed, inv_l), 1.0
    if t == "yarn":
        def get_mscale(scale, mscale=1.0):
            return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0

        af = scaling.get("attention_factor")
        ms, msa = scaling.get("mscale"), scaling.get("mscale_all_dim")
        if af is None:
            af = get_mscale(factor, ms) / get_mscale(factor, msa) if ms and msa else get_mscale(factor)
        bf, bs = scaling.get("beta_fast", 32.0), scaling.get("beta_slow", 1.0)
        omax = scaling.get("original_max_position_embeddings", cfg.get("max_position_embeddings"))
        trunc = scaling.get("truncate", True)

        def corr_dim(rot):
            return (dim * math.log(omax / (rot * 2 * math.pi))) / (2 * math.log(base))

        lo, hi = corr_dim(bf), corr_dim(bs)
        if trunc:
            lo, hi = math.floor(lo), math.ceil(hi)
        lo, hi = max(lo, 0), min(hi, dim - 1)
        if lo == hi:
            hi += 0.001
        ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - lo) / (hi - lo), 0, 1)
        extrap = 1 - ramp
        pos = base ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
        inv = (1 / (factor * pos)) * (1 - extrap) + (1 / pos) * extrap
        return inv, af
    raise ValueError("rope type %s" % t)


def cos_sin(inv, T, af):
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
    emb = np.concatenate([ang, ang], axis=-1)
    return np.cos(emb) * af, np.sin(emb) * af


def apply_rope(x, cos, sin):
    """x [H, T, rot] half-split (rotate_half)."""
    return x * cos[None] + rotate_half(x) * sin[None]


def attend(q, k, v, scale, mask, softcap=None, sinks=None):
    """q [H, T, d], k/v [H, T, d] (GQA already expanded); mask [T, T] bool."""
    s = np.einsum("htd,hsd->hts", q, k) * scale
    if softcap:
        s = np.tanh(s / softcap) * softcap
    s = np.where(mask[None], s, -np.inf)
    if sinks is not None:
        col = np.broadcast_to(sinks[:, None, None], (s.shape[0], s.shape[1], 1))
        c = np.concatenate([s, col], axis=-1)
        p = softmax(c)[..., :-1]
    else:
        p = softmax(s)
    return p, np.einsum("hts,hsd->htd", p, v)


def causal_mask(T, window=None):
    i = np.arange(T)[:, None]
    j = np.arange(T)[None, :]
    m = j <= i
    if window:
        m &= j > i - window
    return m


# ---------------------------------------------------------------- one model


class Model:
    def __init__(self, folder, overrides=None):
        with open(os.path.join(folder, "config.json")) as f:
            self.cfg = json.load(f)
        self.cfg.update(overrides or {})
        self.w = read_safetensors(os.path.join(folder, "model.safetensors"))
        c = self.cfg
        self.mt = c["model_type"]
        self.d = c["hidden_size"]
        self.L = c["num_hidden_layers"]
        self.H = c["num_attention_heads"]
        self.KV = c.get("num_key_value_heads") or self.H
        self.hd = c.get("head_dim") or self.d // self.H
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.gemma = self.mt in ("gemma", "gemma2", "gemma3_text")
        self.off = 1.0 if self.gemma else 0.0

    def t(self, name):
        return self.w[name]

    def has(self, name):
        return name in self.w

    def norm(self, x, name):
        return rms_norm(x, self.t(name), self.eps, self.off)

    def lin(self, x, p, bias=True):
        y = x @ self.t(p + ".weight").T
        if bias and self.has(p + ".bias"):
            y = y + self.t(p + ".bias")
        return y

    # --- per-layer attention settings
    def layer_type(self, i):
        c = self.cfg
        if c.get("layer_types"):
            return c["layer_types"][i]
        if self.mt == "gemma2":
            return "sliding_attention" if i % 2 == 0 else "full_attention"
        if self.mt == "gemma3_text":
            p = c.get("sliding_window_pattern", 6)
            return "full_attention" if (i + 1) % p == 0 else "sliding_attention"
        if self.mt in ("mistral", "mixtral") and c.get("sliding_window"):
            return "sliding_attention"
        return "full_attention"

    def rope_for(self, i, dim):
        c = self.cfg
        base = c.get("rope_theta", 10000.0)
        scaling = c.get("rope_scaling")
        if self.mt == "gemma3_text" and self.layer_type(i) == "sliding_attention":
            base, scaling = c.get("rope_local_base_freq", 10000.0), None
        return rope_params(c, dim, base, scaling)

    def scale(self):
        if self.mt in ("gemma2", "gemma3_text"):
            return self.cfg["query_pre_attn_scalar"] ** -0.5
        return self.hd ** -0.5

    # --- attention
    def attention(self, i, x):
        c, T = self.cfg, x.shape[0]
        p = "model.layers.%d.self_attn." % i
        lt = self.layer_type(i)
        window = c.get("sliding_window") if lt == "sliding_attention" else None
        mask = causal_mask(T, window)
        if self.mt in ("deepseek_v2", "deepseek_v3"):
            return self.mla(i, x, mask)
        H, KV, hd = self.H, self.KV, self.hd
        q = self.lin(x, p + "q_proj")
        k = self.lin(x, p + "k_proj")
        v = self.lin(x, p + "v_proj")
        if self.mt == "olmo2":
            q = rms_norm(q, self.t(p + "q_norm.weight"), self.eps)
            k = rms_norm(k, self.t(p + "k_norm.weight"), self.eps)
        q = q.reshape(T, H, hd).transpose(1, 0, 2)
        k = k.reshape(T, KV, hd).transpose(1, 0, 2)
        v = v.reshape(T, KV, hd).transpose(1, 0, 2)
        if self.mt in ("qwen3", "qwen3_moe", "gemma3_text"):
            q = rms_norm(q, self.t(p + "q_norm.weight"), self.eps, self.off)
            k = rms_norm(k, self.t(p + "k_norm.weight"), self.eps, self.off)
        inv, af = self.rope_for(i, hd)
        cos, sin = cos_sin(inv, T, af)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        g = H // KV
        k, v = np.repeat(k, g, axis=0), np.repeat(v, g, axis=0)
        softcap = c.get("attn_logit_softcapping") if self.mt in ("gemma2", "gemma3_text") else None
        sinks = self.t(p + "sinks") if self.mt == "gpt_oss" else None
        probs, ctx = attend(q, k, v, self.scale(), mask, softcap, sinks)
        ctx = ctx.transpose(1, 0, 2).reshape(T, H * hd)
        return probs, self.lin(ctx, p + "o_proj")

    def mla(self, i, x, mask):
        c, T, H = self.cfg, x.shape[0], self.H
        p = "model.layers.%d.self_attn." % i
        nope, rope, vd, kvr = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"]
        qk = nope + rope
        if c.get("q_lora_rank"):
            q = self.lin(rms_norm(self.lin(x, p + "q_a_proj"), self.t(p + "q_a_layernorm.weight"), 1e-6), p + "q_b_proj")
        else:
            q = self.lin(x, p + "q_proj")
        q = q.reshape(T, H, qk).transpose(1, 0, 2)
        q_pass, q_rot = q[..., :nope], q[..., nope:]
        ckv = self.lin(x, p + "kv_a_proj_with_mqa")
        k_pass, k_rot = ckv[:, :kvr], ckv[:, kvr:]
        kv = self.lin(rms_norm(k_pass, self.t(p + "kv_a_layernorm.weight"), 1e-6), p + "kv_b_proj")
        kv = kv.reshape(T, H, nope + vd).transpose(1, 0, 2)
        k_pass, v = kv[..., :nope], kv[..., nope:]
        k_rot = k_rot[None]  # [1, T, rope]
        inv, af = rope_params(c, rope, c.get("rope_theta", 10000.0), c.get("rope_scaling"))
        if self.mt == "deepseek_v2":
            # view_as_complex on consecutive pairs: (2i, 2i+1) rotate by angle i.
            ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
            cs, sn = np.cos(ang) * af, np.sin(ang) * af

            def rot(t):
                a, b = t[..., 0::2], t[..., 1::2]
                out = np.empty_like(t)
                out[..., 0::2] = a * cs - b * sn
                out[..., 1::2] = a * sn + b * cs
                return out

            q_rot, k_rot = rot(q_rot), rot(k_rot)
        else:
            cos, sin = cos_sin(inv, T, af)

            def deint(t):
                s = t.shape
                return t.reshape(*s[:-1], s[-1] // 2, 2).swapaxes(-1, -2).reshape(s)

            if c.get("rope_interleave", True):
                q_rot, k_rot = deint(q_rot), deint(k_rot)
            q_rot, k_rot = apply_rope(q_rot, cos, sin), apply_rope(k_rot, cos, sin)
        k_rot = np.broadcast_to(k_rot, (H,) + k_rot.shape[1:])
        qs = np.concatenate([q_pass, q_rot], axis=-1)
        ks = np.concatenate([k_pass, k_rot], axis=-1)
        scale = qk ** -0.5
        sc = c.get("rope_scaling")
        if sc and sc.get("rope_type", sc.get("type")) not in (None, "default") and sc.get("mscale_all_dim"):
            m = 0.1 * sc["mscale_all_dim"] * math.log(sc["factor"]) + 1.0
            scale *= m * m
        probs, ctx = attend(qs, ks, v, scale, mask)
        ctx = ctx.transpose(1, 0, 2).reshape(T, H * vd)
        return probs, self.lin(ctx, p + "o_proj")

    # --- MLPs
    def dense(self, x, p, act):
        return self.lin(act(self.lin(x, p + "gate_proj")) * self.lin(x, p + "up_proj"), p + "down_proj")

    def mlp(self, i, x):
        c, mt = self.cfg, self.mt
        act = ACT[c.get("hidden_activation") or c.get("hidden_act", "silu")] if self.gemma else ACT[c.get("hidden_act", "silu")]
        p = "model.layers.%d." % i
        if mt == "mixtral":
            return self.moe_softmax(x, p + "block_sparse_moe.", "w1", "w3", "w2", True, act)
        if mt == "qwen3_moe" and self.has(p + "mlp.gate.weight"):
            return self.moe_softmax(x, p + "mlp.", "gate_proj", "up_proj", "down_proj", c.get("norm_topk_prob", False), act)
        if mt == "gpt_oss":
            return self.moe_oss(x, p + "mlp.")
        if mt in ("deepseek_v2", "deepseek_v3") and self.has(p + "mlp.gate.weight"):
            return self.moe_deepseek(x, p + "mlp.", act)
        return self.dense(x, p + "mlp.", act)

    def moe_softmax(self, x, p, g, u, dn, norm, act):
        """Mixtral / Qwen3-MoE: softmax over all experts, top-k, optional renormalisation."""
        c = self.cfg
        k = c["num_experts_per_tok"]
        probs = softmax(x @ self.t(p + "gate.weight").T)
        out = np.zeros_like(x)
        for t in range(x.shape[0]):
            idx = np.argsort(-probs[t], kind="stable")[:k]
            wts = probs[t, idx]
            if norm:
                wts = wts / wts.sum()
            for e, wt in zip(idx, wts):
                q = p + "experts.%d." % e
                h = act(self.lin(x[t], q + g)) * self.lin(x[t], q + u)
                out[t] += wt * self.lin(h, q + dn)
        return out

    def moe_oss(self, x, p):
        """GPT-OSS: top-k of the router logits, softmax over them; clamped SwiGLU experts."""
        c = self.cfg
        k = c.get("num_experts_per_tok") or c["experts_per_token"]
        limit, alpha = c.get("swiglu_limit", 7.0), 1.702
        logits = self.lin(x, p + "router")
        gu, gub = self.t(p + "experts.gate_up_proj"), self.t(p + "experts.gate_up_proj_bias")
        dw, db = self.t(p + "experts.down_proj"), self.t(p + "experts.down_proj_bias")
        out = np.zeros_like(x)
        for t in range(x.shape[0]):
            idx = np.argsort(-logits[t], kind="stable")[:k]
            wts = softmax(logits[t, idx])
            for e, wt in zip(idx, wts):
                h = x[t] @ gu[e] + gub[e]
                gate, up = h[0::2], h[1::2]
                gate = np.minimum(gate, limit)
                up = np.clip(up, -limit, limit)
                glu = gate / (1 + np.exp(-gate * alpha))
                out[t] += wt * (((up + 1) * glu) @ dw[e] + db[e])
        return out

    def moe_deepseek(self, x, p, act):
        """DeepSeek V2 (softmax, greedy or group max) and V3 (sigmoid + correction bias, group top-2 sum)."""
        c = self.cfg
        k, n = c["num_experts_per_tok"], c["n_routed_experts"]
        logits = x @ self.t(p + "gate.weight").T
        out = np.zeros_like(x)
        v3 = self.mt == "deepseek_v3"
        for t in range(x.shape[0]):
            if v3:
                scores = 1 / (1 + np.exp(-logits[t]))
                sel = scores + self.t(p + "gate.e_score_correction_bias")
                ng, tg = c.get("n_group", 8), c.get("topk_group", 4)
                gs = np.array([np.sum(np.sort(g)[::-1][:2]) for g in sel.reshape(ng, n // ng)])
                norm, scale = c.get("norm_topk_prob", True), c.get("routed_scaling_factor", 2.5)
            else:
                scores = softmax(logits[t])
                sel = scores
                if c.get("topk_method", "greedy") == "group_limited_greedy":
                    ng, tg = c["n_group"], c["topk_group"]
                    gs = sel.reshape(ng, n // ng).max(axis=-1)
                else:
                    ng, tg, gs = 1, 1, np.zeros(1)
                norm, scale = False, c.get("routed_scaling_factor", 1.0)
            keep = np.argsort(-gs, kind="stable")[:tg]
            gmask = np.zeros(ng, bool)
            gmask[keep] = True
            masked = np.where(np.repeat(gmask, n // ng), sel, 0.0)
            idx = np.argsort(-masked, kind="stable")[:k]
            wts = scores[idx]
            if norm:
                wts = wts / (wts.sum() + 1e-20)
            wts = wts * scale
            for e, wt in zip(idx, wts):
                out[t] += wt * self.dense(x[t], p + "experts.%d." % e, act)
        sh = p + "shared_experts."
        if self.has(sh + "down_proj.weight"):
            out = out + self.dense(x, sh, act)
        return out

    # --- the whole model
    def forward(self, ids):
        c, mt = self.cfg, self.mt
        x = self.t("model.embed_tokens.weight")[ids]
        if self.gemma:
            x = x * math.sqrt(self.d)
        res = {"tokens": np.array(ids, dtype=np.int32)}
        for i in range(self.L):
            p = "model.layers.%d." % i
            res["hidden.%d" % i] = x
            ain = x if mt == "olmo2" else self.norm(x, p + "input_layernorm.weight")
            res["attn_in.%d" % i] = ain
            probs, ao = self.attention(i, ain)
            res["probs.%d" % i], res["attn_out.%d" % i] = probs, ao
            if mt == "olmo2":
                h = x + self.norm(ao, p + "post_attention_layernorm.weight")
                mo = self.mlp(i, h)
                x = h + self.norm(mo, p + "post_feedforward_layernorm.weight")
            elif mt in ("gemma2", "gemma3_text"):
                h = x + self.norm(ao, p + "post_attention_layernorm.weight")
                mo = self.mlp(i, self.norm(h, p + "pre_feedforward_layernorm.weight"))
                x = h + self.norm(mo, p + "post_feedforward_layernorm.weight")
            else:
                h = x + ao
                mo = self.mlp(i, self.norm(h, p + "post_attention_layernorm.weight"))
                x = h + mo
            res["mlp_out.%d" % i] = mo
        res["hidden.%d" % self.L] = x
        fn = self.norm(x, "model.norm.weight")
        res["final_norm"] = fn
        tied = c.get("tie_word_embeddings", self.gemma)
        head = self.t("model.embed_tokens.weight") if tied or not self.has("lm_head.weight") else self.t("lm_head.weight")
        logits = fn @ head.T
        cap = c.get("final_logit_softcapping") if mt in ("gemma2", "gemma3_text") else None
        if cap:
            logits = np.tanh(logits / cap) * cap
        res["logits"] = logits
        return res


# ---------------------------------------------------------------- the DeepSeek V3 MoE model


def make_deepseek_v3_moe(folder):
    """A tiny DeepseekV3ForCausalLM with a dense layer and two MoE layers:
    8 routed experts in 4 groups (2 kept), top-3, nonzero score correction,
    one shared expert, q_lora_rank, rope_interleave."""
    rng = np.random.default_rng(20261206)
    d, H, nope, rope, vd, qr, kvr, ff, mff, E, vocab = 32, 4, 8, 4, 8, 16, 16, 64, 16, 8, 64
    cfg = {
        "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": d,
        "num_hidden_layers": 3, "num_attention_heads": H, "num_key_value_heads": H, "vocab_size": vocab,
        "intermediate_size": ff, "moe_intermediate_size": mff, "n_routed_experts": E, "n_shared_experts": 1,
        "num_experts_per_tok": 3, "n_group": 4, "topk_group": 2, "norm_topk_prob": True,
        "routed_scaling_factor": 2.5, "first_k_dense_replace": 1, "q_lora_rank": qr, "kv_lora_rank": kvr,
        "qk_nope_head_dim": nope, "qk_rope_head_dim": rope, "v_head_dim": vd, "head_dim": rope,
        "rope_interleave": True, "rope_theta": 10000.0, "rope_scaling": None, "rms_norm_eps": 1e-6,
        "hidden_act": "silu", "max_position_embeddings": 128, "tie_word_embeddings": False,
        "attention_bias": False, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
        "transformers_version": "4.51.3",
    }
    w = {}

    def mat(name, o, i, std):
        w[name] = (rng.standard_normal((o, i)) * std).astype(np.float32)

    def vec(name, n, mean=1.0, std=0.1):
        w[name] = (mean + rng.standard_normal(n) * std).astype(np.float32)

    mat("model.embed_tokens.weight", vocab, d, 1.0)
    mat("lm_head.weight", vocab, d, 0.2)
    vec("model.norm.weight", d)
    for i in range(3):
        p = "model.layers.%d." % i
        vec(p + "input_layernorm.weight", d)
        vec(p + "post_attention_layernorm.weight", d)
        a = p + "self_attn."
        mat(a + "q_a_proj.weight", qr, d, 0.2)
        vec(a + "q_a_layernorm.weight", qr)
        mat(a + "q_b_proj.weight", H * (nope + rope), qr, 0.3)
        mat(a + "kv_a_proj_with_mqa.weight", kvr + rope, d, 0.2)
        vec(a + "kv_a_layernorm.weight", kvr)
        mat(a + "kv_b_proj.weight", H * (nope + vd), kvr, 0.3)
        mat(a + "o_proj.weight", d, H * vd, 0.2)
        if i == 0:
            for n, (o, ii) in {"gate_proj": (ff, d), "up_proj": (ff, d), "down_proj": (d, ff)}.items():
                mat(p + "mlp." + n + ".weight", o, ii, 0.2)
            continue
        mat(p + "mlp.gate.weight", E, d, 0.5)
        w[p + "mlp.gate.e_score_correction_bias"] = (rng.standard_normal(E) * 0.1).astype(np.float32)
        for e in range(E):
            for n, (o, ii) in {"gate_proj": (mff, d), "up_proj": (mff, d), "down_proj": (d, mff)}.items():
                mat(p + "mlp.experts.%d.%s.weight" % (e, n), o, ii, 0.3)
        for n, (o, ii) in {"gate_proj": (mff, d), "up_proj": (mff, d), "down_proj": (d, mff)}.items():
            mat(p + "mlp.shared_experts." + n + ".weight", o, ii, 0.3)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(folder, "model.safetensors"), {k: v.astype(np.float64) for k, v in w.items()})


# ---------------------------------------------------------------- OPT, GPT-BigCode, GPT-J


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_new(x):
    return gelu_tanh(x)


def relu(x):
    return np.maximum(x, 0)


def write_model(folder, cfg, w):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(folder, "model.safetensors"), {k: v.astype(np.float64) for k, v in w.items()})


class Gen:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.w = {}

    def mat(self, name, o, i, std=0.2):
        self.w[name] = (self.rng.standard_normal((o, i)) * std).astype(np.float32)

    def vec(self, name, n, mean=0.0, std=0.1):
        self.w[name] = (mean + self.rng.standard_normal(n) * std).astype(np.float32)

    def ln(self, name, n):
        self.vec(name + ".weight", n, 1.0)
        self.vec(name + ".bias", n)

    def linear(self, name, o, i, bias=True, std=0.2):
        self.mat(name + ".weight", o, i, std)
        if bias:
            self.vec(name + ".bias", o)


def make_opt(folder):
    """OPTForCausalLM (do_layer_norm_before, learned positions offset 2, relu, tied head)."""
    d, H, L, ff, V, P = 32, 4, 2, 64, 64, 32
    g = Gen(61)
    g.mat("model.decoder.embed_tokens.weight", V, d, 1.0)
    g.mat("model.decoder.embed_positions.weight", P + 2, d, 0.5)
    g.ln("model.decoder.final_layer_norm", d)
    for i in range(L):
        p = "model.decoder.layers.%d." % i
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            g.linear(p + "self_attn." + n, d, d)
        g.ln(p + "self_attn_layer_norm", d)
        g.linear(p + "fc1", ff, d)
        g.linear(p + "fc2", d, ff)
        g.ln(p + "final_layer_norm", d)
    cfg = {"architectures": ["OPTForCausalLM"], "model_type": "opt", "hidden_size": d, "num_attention_heads": H,
           "num_hidden_layers": L, "ffn_dim": ff, "vocab_size": V, "max_position_embeddings": P,
           "do_layer_norm_before": True, "word_embed_proj_dim": d, "activation_function": "relu",
           "enable_bias": True, "layer_norm_elementwise_affine": True, "tie_word_embeddings": True,
           "pad_token_id": 1, "bos_token_id": 2, "eos_token_id": 2, "torch_dtype": "float32", "transformers_version": "4.51.3"}
    write_model(folder, cfg, g.w)


def make_bigcode(folder):
    """GPTBigCodeForCausalLM (multi-query c_attn as nn.Linear, learned positions, gelu_pytorch_tanh, tied head)."""
    d, H, L, ff, V, P = 32, 4, 2, 64, 64, 32
    hd = d // H
    g = Gen(62)
    g.mat("transformer.wte.weight", V, d, 1.0)
    g.mat("transformer.wpe.weight", P, d, 0.5)
    g.ln("transformer.ln_f", d)
    for i in range(L):
        p = "transformer.h.%d." % i
        g.ln(p + "ln_1", d)
        g.linear(p + "attn.c_attn", d + 2 * hd, d)
        g.linear(p + "attn.c_proj", d, d)
        g.ln(p + "ln_2", d)
        g.linear(p + "mlp.c_fc", ff, d)
        g.linear(p + "mlp.c_proj", d, ff)
    cfg = {"architectures": ["GPTBigCodeForCausalLM"], "model_type": "gpt_bigcode", "n_embd": d, "n_head": H,
           "n_layer": L, "n_inner": ff, "vocab_size": V, "n_positions": P, "multi_query": True,
           "activation_function": "gelu_pytorch_tanh", "layer_norm_epsilon": 1e-5, "scale_attn_weights": True,
           "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "float32", "transformers_version": "4.51.3"}
    write_model(folder, cfg, g.w)


def make_gptj(folder):
    """GPTJForCausalLM (parallel block on one ln_1, partial rotary on interleaved pairs, gelu_new, LM head with a bias)."""
    d, H, L, ff, V, rd = 32, 4, 2, 128, 64, 4
    g = Gen(63)
    g.mat("transformer.wte.weight", V, d, 1.0)
    g.ln("transformer.ln_f", d)
    for i in range(L):
        p = "transformer.h.%d." % i
        g.ln(p + "ln_1", d)
        for n in ("q_proj", "k_proj", "v_proj", "out_proj"):
            g.linear(p + "attn." + n, d, d, bias=False)
        g.linear(p + "mlp.fc_in", ff, d)
        g.linear(p + "mlp.fc_out", d, ff)
    g.linear("lm_head", V, d)
    cfg = {"architectures": ["GPTJForCausalLM"], "model_type": "gptj", "n_embd": d, "n_head": H, "n_layer": L,
           "n_inner": None, "rotary_dim": rd, "vocab_size": V, "n_positions": 64, "activation_function": "gelu_new",
           "layer_norm_epsilon": 1e-5, "tie_word_embeddings": False, "bos_token_id": 0, "eos_token_id": 0,
           "torch_dtype": "float32", "transformers_version": "4.51.3"}
    write_model(folder, cfg, g.w)


class Classic:
    """OPT, GPT-BigCode and GPT-J, after their modeling code."""

    def __init__(self, folder, overrides=None):
        with open(os.path.join(folder, "config.json")) as f:
            self.cfg = json.load(f)
        self.cfg.update(overrides or {})
        self.w = read_safetensors(os.path.join(folder, "model.safetensors"))
        self.mt = self.cfg["model_type"]

    def lin(self, x, p):
        y = x @ self.w[p + ".weight"].T
        return y + self.w[p + ".bias"] if p + ".bias" in self.w else y

    def ln(self, x, p, eps):
        return layer_norm(x, self.w[p + ".weight"], self.w[p + ".bias"], eps)

    def forward(self, ids):
        c, mt, T = self.cfg, self.mt, len(ids)
        res = {"tokens": np.array(ids, dtype=np.int32)}
        if mt == "opt":
            d, H, L, eps = c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"], 1e-5
            pre, act = "model.decoder.", relu
            x = self.w[pre + "embed_tokens.weight"][ids] + self.w[pre + "embed_positions.weight"][np.arange(T) + 2]
        else:
            d, H, L, eps = c["n_embd"], c["n_head"], c["n_layer"], c["layer_norm_epsilon"]
            pre, act = "transformer.", gelu_tanh
            x = self.w[pre + "wte.weight"][ids]
            if mt == "gpt_bigcode":
                x = x + self.w[pre + "wpe.weight"][np.arange(T)]
        hd = d // H
        mask = causal_mask(T)
        for i in range(L):
            res["hidden.%d" % i] = x
            if mt == "opt":
                p = pre + "layers.%d." % i
                a_in = self.ln(x, p + "self_attn_layer_norm", eps)
                q, k, v = (self.lin(a_in, p + "self_attn.%s_proj" % n) for n in "qkv")
                KV = H
            elif mt == "gpt_bigcode":
                p = pre + "h.%d." % i
                a_in = self.ln(x, p + "ln_1", eps)
                qkv = self.lin(a_in, p + "attn.c_attn")
                q, k, v = qkv[:, :d], qkv[:, d : d + hd], qkv[:, d + hd :]
                KV = 1
            else:
                p = pre + "h.%d." % i
                a_in = self.ln(x, p + "ln_1", eps)
                q, k, v = (self.lin(a_in, p + "attn.%s_proj" % n) for n in "qkv")
                KV = H
            res["attn_in.%d" % i] = a_in
            q = q.reshape(T, H, hd).transpose(1, 0, 2)
            k = k.reshape(T, KV, hd).transpose(1, 0, 2)
            v = v.reshape(T, KV, hd).transpose(1, 0, 2)
            if mt == "gptj":
                rd = c["rotary_dim"]
                inv = inv_freq_default(rd, 10000.0)
                ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
                cs, sn = np.cos(ang), np.sin(ang)

                def rot(t):
                    t = t.copy()
                    a, b = t[..., 0:rd:2].copy(), t[..., 1:rd:2].copy()
                    t[..., 0:rd:2] = a * cs - b * sn
                    t[..., 1:rd:2] = b * cs + a * sn
                    return t

                q, k = rot(q), rot(k)
            k, v = np.repeat(k, H // KV, axis=0), np.repeat(v, H // KV, axis=0)
            probs, ctx = attend(q, k, v, hd ** -0.5, mask)
            ctx = ctx.transpose(1, 0, 2).reshape(T, d)
            if mt == "opt":
                ao = self.lin(ctx, p + "self_attn.out_proj")
                h = x + ao
                mo = self.lin(act(self.lin(self.ln(h, p + "final_layer_norm", eps), p + "fc1")), p + "fc2")
                x = h + mo
            elif mt == "gpt_bigcode":
                ao = self.lin(ctx, p + "attn.c_proj")
                h = x + ao
                mo = self.lin(act(self.lin(self.ln(h, p + "ln_2", eps), p + "mlp.c_fc")), p + "mlp.c_proj")
                x = h + mo
            else:
                ao = self.lin(ctx, p + "attn.out_proj")
                mo = self.lin(act(self.lin(a_in, p + "mlp.fc_in")), p + "mlp.fc_out")
                x = x + ao + mo
            res["probs.%d" % i], res["attn_out.%d" % i], res["mlp_out.%d" % i] = probs, ao, mo
        res["hidden.%d" % L] = x
        fn = self.ln(x, pre + ("final_layer_norm" if mt == "opt" else "ln_f"), eps)
        res["final_norm"] = fn
        if mt == "gptj":
            res["logits"] = self.lin(fn, "lm_head")
        else:
            emb = self.w[pre + ("embed_tokens.weight" if mt == "opt" else "wte.weight")]
            res["logits"] = fn @ emb.T
        return res


# ---------------------------------------------------------------- the list

ZOO_IDS = [1, 9, 77, 157, 73, 30, 156, 49]
SMALL_IDS = [1, 9, 7, 15, 3, 30, 12, 5]

MODELS = [
    # name, folder (relative: "shared:" under ../shared, "repo:" in the repository), ids, config overrides, note
    ("qwen3", "shared:reference/zoo-modern/qwen3/hf", ZOO_IDS, None, ""),
    ("gemma3", "shared:reference/zoo-modern/gemma3/hf", ZOO_IDS, None, ""),
    ("gemma3-gguf-rules", "shared:reference/zoo-modern/gemma3/hf", ZOO_IDS,
     {"query_pre_attn_scalar": 32, "layer_types": None, "sliding_window_pattern": 6},
     "what llama.cpp's rules make of the gemma3 GGUF, which carries no query_pre_attn_scalar and no layer pattern: scale 1/sqrt(head_dim), sliding-window period 6"),
    ("deepseek_v3", "shared:reference/zoo-modern/deepseek_v3/hf", ZOO_IDS, None, "both layers dense (first_k_dense_replace 2)"),
    ("olmo2", "shared:reference/zoo-modern/olmo2/hf", ZOO_IDS, None, ""),
    ("gpt_oss", "shared:reference/zoo-modern/gpt_oss/hf", ZOO_IDS, None, "mixture of experts, YaRN, sinks, sliding layer 0"),
    ("llama-rope-scaling", "shared:reference/zoo-modern/llama-rope-scaling/hf", ZOO_IDS, None, "Llama 3.1 rope scaling"),
    ("qwen3-tiny-ferrl", "shared:fixtures/safetensors/qwen3-tiny-ferrl", SMALL_IDS, None, "written by transformers 5.11"),
    ("llama31-rope-tiny-ferrl", "shared:fixtures/safetensors/llama31-rope-tiny-ferrl", SMALL_IDS, None, "written by transformers 5.11"),
    ("gemma3-tiny-mlx-dllm", "shared:fixtures/safetensors/gemma3-tiny-mlx-dllm", [2, 9, 7, 15, 3, 30, 12, 5, 40, 21], None,
     "6 layers, sliding pattern 3, window 4 < T"),
    ("mistral", "repo:testdata/arch/mistral/hf", SMALL_IDS, None, "sliding window 3 on every layer"),
    ("mixtral", "repo:testdata/arch/mixtral/hf", SMALL_IDS, None, ""),
    ("qwen3_moe", "repo:testdata/arch/qwen3_moe/hf", SMALL_IDS, None, "norm_topk_prob false"),
    ("qwen3_moe-norm", "repo:testdata/arch/qwen3_moe/hf", SMALL_IDS, {"norm_topk_prob": True},
     "norm_topk_prob true: what llama.cpp's qwen3moe (and so a GGUF) does"),
    ("gemma", "repo:testdata/arch/gemma/hf", SMALL_IDS, None, ""),
    ("gemma2", "repo:testdata/arch/gemma2/hf", SMALL_IDS, None, "attention and final logit softcaps, sliding window on even layers"),
    ("gemma2-gguf-rules", "repo:testdata/arch/gemma2/hf", SMALL_IDS, {"query_pre_attn_scalar": 8},
     "what llama.cpp's rules make of the gemma2 GGUF, which carries no query_pre_attn_scalar: scale 1/sqrt(head_dim)"),
    ("deepseek_v2", "repo:testdata/arch/deepseek_v2/hf", SMALL_IDS, None, "q_proj form, one dense and one MoE layer with a shared expert"),
    ("deepseek_v3_moe", "repo:attn/testdata/forward/deepseek_v3_moe", [1, 9, 7, 15, 3, 30, 12, 5, 40, 21, 63, 0], None,
     "generated here: group-limited routing (4 groups of 2, 2 kept), score correction, top-3, shared expert"),
    ("opt", "repo:attn/testdata/forward/opt", [2, 9, 7, 15, 3, 30, 12, 5, 40], None,
     "generated here: OPTForCausalLM, pre-LayerNorm, positions offset 2, relu, tied head"),
    ("gpt_bigcode", "repo:attn/testdata/forward/gpt_bigcode", [0, 9, 7, 15, 3, 30, 12, 5, 40], None,
     "generated here: GPTBigCodeForCausalLM, multi-query c_attn, learned positions, gelu_pytorch_tanh"),
    ("gptj", "repo:attn/testdata/forward/gptj", [0, 9, 7, 15, 3, 30, 12, 5, 40], None,
     "generated here: GPTJForCausalLM, parallel block on ln_1, rotary_dim 4 of 8 on interleaved pairs, LM head bias"),
]


def resolve(spec):
    kind, rel = spec.split(":", 1)
    return os.path.join(SHARED if kind == "shared" else ROOT, rel)


def main():
    make_deepseek_v3_moe(os.path.join(OUT, "deepseek_v3_moe"))
    make_opt(os.path.join(OUT, "opt"))
    make_bigcode(os.path.join(OUT, "gpt_bigcode"))
    make_gptj(os.path.join(OUT, "gptj"))
    manifest = {"generator": "attn/testdata/forward/reference.py (numpy %s, float64)" % np.__version__, "models": []}
    for name, folder, ids, over, note in MODELS:
        path = resolve(folder)
        with open(os.path.join(path, "config.json")) as f:
            mt = json.load(f)["model_type"]
        m = Classic(path, over) if mt in ("opt", "gpt_bigcode", "gptj") else Model(path, over)
        res = m.forward(ids)
        write_safetensors(os.path.join(OUT, name + ".safetensors"), res)
        manifest["models"].append({
            "name": name, "folder": folder, "token_ids": ids, "overrides": over or {}, "note": note,
            "sha256": {f: sha256(os.path.join(path, f)) for f in ("config.json", "model.safetensors")},
        })
        print(name, "argmax last:", int(np.argmax(res["logits"][-1])), file=sys.stderr)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
