# The anchor of qkv extract's benchmark: write every layer's q, k, v, o of a
# Llama safetensors file (BF16) as float32 safetensors, tensor by tensor as it
# is read: the header from the shapes first, then the data streamed; like
# qkv, through a temporary file that is synced and renamed into place.
import json, mmap, os, struct, sys
import numpy as np

src, dst = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8 : 8 + n])
    proj = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj"}
    layers = sorted({int(k.split(".")[2]) for k in header if ".self_attn.q_proj." in k})
    names = sorted(f"layers.{i}.{p}" for i in layers for p in proj)
    src_of = {f"layers.{i}.{p}": header[f"model.layers.{i}.self_attn.{proj[p]}.weight"] for i in layers for p in proj}
    out, off = {}, 0
    for name in names:
        size = 4 * int(np.prod(src_of[name]["shape"]))
        out[name] = {"dtype": "F32", "shape": src_of[name]["shape"], "data_offsets": [off, off + size]}
        off += size
    h = json.dumps(out).encode()
    h += b" " * (-len(h) % 8)
    tmp = dst + ".tmp"
    with open(tmp, "wb") as w:
        w.write(struct.pack("<Q", len(h)) + h)
        for name in names:
            a, b = src_of[name]["data_offsets"]
            x = np.frombuffer(buf, dtype="<u2", count=(b - a) // 2, offset=8 + n + a)
            w.write(((x.astype(np.uint32) << 16).view(np.float32)).tobytes())
        w.flush()
        os.fsync(w.fileno())
    os.rename(tmp, dst)
