#!/bin/sh
# Side-by-side spectrum benchmark: numpy (OpenBLAS, pthread build) then qkv.
# numpy is only a measuring tool here. The system's libblas/liblapack
# alternatives may point at the reference BLAS; LD_LIBRARY_PATH selects
# OpenBLAS for this process only, without touching the system setting.
set -e
dir=${1:-/tmp/qkv-bench}
here=$(dirname "$0")
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread /usr/bin/python3 "$here/numpy_svd.py" "$dir"
cd "$here/../../.."
QKV_BENCH_DIR=$dir go test -run 'TestBenchAgreement' -bench 'Spectrum' -benchtime 1x -timeout 30m ./inspect
