#!/bin/bash
# Speed benchmark of issue 4 in one run: xgrad (runge_bench) next to PyTorch, scikit-learn
# and LibTorch on the same machine, one thread each (OpenBLAS, torch's intra- and inter-op
# pools, sklearn's BLAS), then a table of CPU time per step and each peer's ratio to xgrad.
#   [BENCH_OUT=file] apps/runge/bench/run_bench.sh [BUILD_DIR] [EPOCHS]
# Writes apps/runge/results/bench.csv (or BENCH_OUT) and prints it; a missing peer is skipped
# with a message. PyTorch and scikit-learn run under Debian's /usr/bin/python3
# (python3-torch, python3-sklearn). The LibTorch peer (bench/libtorch, a separate CMake
# project: Torch never enters xgrad's build) is configured and built in
# BUILD_DIR/runge-libtorch when find_package(Torch) succeeds (libtorch-dev).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../../build-runge}"
epochs="${2:-3000}"
out="${BENCH_OUT:-$here/../results/bench.csv}"  # BENCH_OUT=file writes elsewhere
cores=$(nproc)  # before OMP_NUM_THREADS=1, which nproc obeys
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

# Build the LibTorch peer before any timing, so its compile does not load the machine.
libtorch=""
lt_build="$build/runge-libtorch"
mkdir -p "$lt_build"
if cmake -S "$here/libtorch" -B "$lt_build" -DCMAKE_BUILD_TYPE=Release > "$lt_build/configure.log" 2>&1; then
  if cmake --build "$lt_build" -j2 > "$lt_build/build.log" 2>&1; then
    libtorch="$lt_build/runge_libtorch"
  else
    echo "run_bench.sh: the LibTorch peer did not build, skipping it (see $lt_build/build.log)" >&2
  fi
else
  echo "run_bench.sh: find_package(Torch) failed (libtorch-dev missing?), skipping the LibTorch" \
       "peer (see $lt_build/configure.log)" >&2
fi

echo "# $(date -u +%FT%TZ) $cores cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)," \
     "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$build/apps/runge/runge_bench" --epochs "$epochs" --threads 1 --cases full,full32,batch5 > "$out"
if [ -x /usr/bin/python3 ]; then
  /usr/bin/python3 "$here/peers.py" --epochs "$epochs" >> "$out"
else
  echo "run_bench.sh: /usr/bin/python3 missing, skipping the PyTorch and scikit-learn peers" >&2
fi
if [ -n "$libtorch" ]; then
  "$libtorch" --epochs "$epochs" --cases full,batch5 >> "$out"
fi
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cat "$out"

# Per case: process CPU time per step (the fairer figure on a shared machine) and wall
# time, and each implementation's time over xgrad's (> 1: xgrad is faster). A float32 row
# (torch_float32) is set against xgrad_float32 when that row is there.
echo
awk -F, 'NR > 1 { key = $2 SUBSEP $1; cpu[key] = $8; wall[key] = $7; mse[key] = $9
                  if (!(($2) in seen)) { seen[$2] = 1; cases[++nc] = $2 }
                  if (!(($1) in iseen)) { iseen[$1] = 1; impls[++ni] = $1 } }
  END {
    printf "%-8s %-14s %14s %10s %13s %10s %10s\n", "case", "impl", "cpu_us/step", "x xgrad",
           "wall_us/step", "x xgrad", "test_mse"
    for (c = 1; c <= nc; ++c) {
      for (i = 1; i <= ni; ++i) {
        k = cases[c] SUBSEP impls[i]
        x = cases[c] SUBSEP "xgrad"
        if (impls[i] ~ /_float32$/ && (cases[c] SUBSEP "xgrad_float32") in cpu)
          x = cases[c] SUBSEP "xgrad_float32"
        if (!(k in cpu)) continue
        rc = (x in cpu) ? sprintf("%.2f", cpu[k] / cpu[x]) : "-"
        rw = (x in wall) ? sprintf("%.2f", wall[k] / wall[x]) : "-"
        printf "%-8s %-14s %14.1f %10s %13.1f %10s %10.4g\n", cases[c], impls[i], cpu[k], rc,
               wall[k], rw, mse[k]
      }
    }
  }' "$out"
