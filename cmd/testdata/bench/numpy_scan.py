# The anchor of qkv check's benchmark: a NaN/Inf/zero-row scan of every
# tensor of a BF16 safetensors file in numpy, one tensor at a time, into
# buffers allocated once (the fastest plain numpy we found).
import json, mmap, struct, sys
import numpy as np

with open(sys.argv[1], "rb") as f:
    buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8 : 8 + n])
    header.pop("__metadata__", None)
    most = max(b - a for a, b in (v["data_offsets"] for v in header.values())) // 2
    wide, finite = np.empty(most, np.uint32), np.empty(most, bool)
    bad = 0
    for name, info in header.items():
        assert info["dtype"] == "BF16", name
        a, b = info["data_offsets"]
        raw = np.frombuffer(buf, dtype="<u2", count=(b - a) // 2, offset=8 + n + a)
        x = wide[: raw.size]
        np.left_shift(raw, 16, out=x, dtype=np.uint32)
        x = x.view(np.float32)
        nonfinite = x.size - np.count_nonzero(np.isfinite(x, out=finite[: raw.size]))
        rows = x.reshape(-1, info["shape"][-1] if info["shape"] else 1)
        zero_rows = rows.shape[0] - np.count_nonzero(rows.any(axis=1))
        bad += bool(nonfinite or zero_rows)
    print(f"{len(header)} tensors, {bad} with NaN, Inf or zero rows")
