#!/bin/bash
# Speed benchmark of issue 4 in one run: xgrad (runge_bench) next to PyTorch and
# scikit-learn on the same machine, one thread each (OpenBLAS, torch, sklearn's BLAS).
#   [BENCH_OUT=file] apps/runge/bench/run_bench.sh [BUILD_DIR] [EPOCHS]
# Writes apps/runge/results/bench.csv (or BENCH_OUT) and prints it; a missing peer is skipped with a
# message. Uses Debian's /usr/bin/python3 (python3-torch, python3-sklearn).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../../build-runge}"
epochs="${2:-3000}"
out="${BENCH_OUT:-$here/../results/bench.csv}"  # BENCH_OUT=file writes elsewhere
cores=$(nproc)  # before OMP_NUM_THREADS=1, which nproc obeys
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
echo "# $(date -u +%FT%TZ) $cores cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" >&2
"$build/apps/runge/runge_bench" --epochs "$epochs" --threads 1 --cases full,batch5 > "$out"
if [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 "$here/peers.py" --epochs "$epochs" >> "$out"
else
  echo "run_bench.sh: /usr/bin/python3 missing, skipping the PyTorch and scikit-learn peers" >&2
fi
cat "$out"
