# The anchor of qkv check's benchmark: a NaN/Inf/zero scan of every tensor of
# a safetensors file in numpy (BF16, F16 and F32), one tensor at a time.
import json, mmap, struct, sys
import numpy as np

DT = {"BF16": ("<u2", 2), "F16": ("<f2", 2), "F32": ("<f4", 4)}

def load(buf, info, base):
    a, b = info["data_offsets"]
    dt, size = DT[info["dtype"]]
    raw = np.frombuffer(buf, dtype=dt, count=(b - a) // size, offset=base + a)
    return (raw.astype(np.uint32) << 16).view(np.float32) if info["dtype"] == "BF16" else raw.astype(np.float32)

with open(sys.argv[1], "rb") as f:
    buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8 : 8 + n])
    bad = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        x = load(buf, info, 8 + n)
        rows = x.reshape(-1, info["shape"][-1] if info["shape"] else 1)
        nan, inf, zero_rows = int(np.isnan(x).sum()), int(np.isinf(x).sum()), int((~rows.any(axis=1)).sum())
        if nan or inf or zero_rows:
            bad += 1
    print(f"{len(header) - ('__metadata__' in header)} tensors, {bad} with NaN/Inf/zero rows")
