#!/usr/bin/python3
"""Times numpy.linalg.svd(compute_uv=False) on the benchmark matrices, side by
side with `go test -bench Spectrum ./inspect`, and writes the matrices and
numpy's float64 singular values so that the Go side can check agreement.

A measuring tool only (numpy is not a dependency of qkv). Usage:
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread python3 numpy_svd.py [outdir]
(default outdir /tmp/qkv-bench; run.sh does both sides)
then
    QKV_BENCH_DIR=/tmp/qkv-bench go test -run XXX -bench Spectrum ./inspect
Matrices: seeded standard normal float32, shapes 4096x4096 and 1024x4096.
"""
import os, sys, time
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/qkv-bench"
os.makedirs(out, exist_ok=True)
for (m, n) in [(1024, 4096), (4096, 4096)]:
    rng = np.random.default_rng(20261128)
    a = rng.standard_normal((m, n), dtype=np.float32)
    a.tofile(os.path.join(out, f"a_{m}x{n}.f32"))
    best = None
    reps = 3 if m * n <= 1024 * 4096 else 1
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        s32 = np.linalg.svd(a, compute_uv=False)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        best = (dt, dc) if best is None or dt < best[0] else best
    # process_time counts every OpenBLAS thread: on a shared machine it is
    # steadier than wall time (compare with the Go benchmark's cpu-s/op).
    print(f"numpy svd float32 {m}x{n}: {best[0]:.3f} s wall, {best[1]:.3f} s cpu (best of {reps})", flush=True)
    ref = os.path.join(out, f"sv_{m}x{n}.f64")
    if os.path.exists(ref) and os.environ.get("QKV_REDO_F64") is None:
        s64 = np.fromfile(ref, dtype=np.float64)
    else:
        t0 = time.perf_counter()
        s64 = np.linalg.svd(a.astype(np.float64), compute_uv=False)
        print(f"numpy svd float64 {m}x{n}: {time.perf_counter() - t0:.3f} s", flush=True)
        s64.tofile(ref)
    print(f"  sv max {s64[0]:.6g} min {s64[-1]:.6g} cond {s64[0]/s64[-1]:.4g}; "
          f"float32 svd max rel diff {np.max(np.abs(s32 - s64) / s64):.2g}", flush=True)
