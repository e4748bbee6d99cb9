#!/bin/sh
# Runs BenchmarkLayer4096 and the PyTorch script in one session, alternately,
# so that both see the same machine. Usage (from the repository root):
#   sh attn/testdata/bench/run.sh
# Debian's python3-torch uses the generic BLAS alternative (by default the
# reference libblas3); set BLAS_DIR to an optimised BLAS's folder, e.g.
#   BLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-pthread sh attn/testdata/bench/run.sh
# to measure torch with OpenBLAS (apt-get install libopenblas0-pthread).
set -e
PY=${PY:-/usr/bin/python3}
go test -c -o /tmp/attn.bench.test ./attn
for i in 1 2 3; do
	/tmp/attn.bench.test -test.run '^$' -test.bench Layer4096 -test.benchtime 5x | grep Benchmark
	LD_LIBRARY_PATH=${BLAS_DIR:-} OPENBLAS_NUM_THREADS=2 "$PY" attn/testdata/bench/layer4096.py
done
