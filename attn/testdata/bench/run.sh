#!/bin/sh
# Runs BenchmarkLayer4096 and the PyTorch script in one session, alternately,
# so that both see the same machine, on 2 threads and on 1. Usage (from the
# repository root):
#   sh attn/testdata/bench/run.sh
# Debian's python3-torch uses the generic BLAS alternative (by default the
# reference libblas3, ~60× slower); set BLAS_DIR to an optimised BLAS's
# folder to measure torch with it, e.g. after
# apt-get install libopenblas0-pthread:
#   BLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-pthread sh attn/testdata/bench/run.sh
set -e
PY=${PY:-/usr/bin/python3}
ROUNDS=${ROUNDS:-3}
go test -c -o /tmp/attn.bench.test ./attn
for threads in 2 1; do
	i=0
	while [ $i -lt "$ROUNDS" ]; do
		/tmp/attn.bench.test -test.run '^$' -test.bench Layer4096 -test.benchtime 5x -test.cpu $threads | grep Benchmark
		THREADS=$threads LD_LIBRARY_PATH=${BLAS_DIR:-} OPENBLAS_NUM_THREADS=$threads "$PY" attn/testdata/bench/layer4096.py
		i=$((i + 1))
	done
done
