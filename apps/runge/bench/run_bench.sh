#!/bin/bash
# Speed benchmark of issue 4 in one run: xgrad (runge_bench) next to PyTorch, scikit-learn
# and LibTorch on the same machine, one thread each (OpenBLAS, torch's intra- and inter-op
# pools, sklearn's BLAS), then a table of the median CPU time per step and each peer's
# ratio to xgrad. xgrad also runs the full batch as 2 data-parallel shards on 2 threads
# (xgrad_2threads: runge train --shards 2 --threads 2); its gain is in wall time, so a
# second table sets every implementation's wall time against it. The peers run at one
# thread, their fastest setting here; PyTorch also runs at 2 threads (torch_2threads) to
# show it (apps/runge/results/threads-2026-11-22.txt).
#   [BENCH_OUT=file] [REPEATS=n] apps/runge/bench/run_bench.sh [BUILD_DIR] [EPOCHS]
# The full-batch case (a few seconds per implementation) runs REPEATS times (default 5) in
# rounds, every implementation once per round, so a slow spell of the shared machine hits
# them alike; the table takes the median of each. The batch-5 case (a minute for PyTorch)
# runs once. Writes ./runge-bench.csv in the working folder (or BENCH_OUT; the committed
# copy that make_figures.py draws is BENCH_OUT=apps/runge/results/bench.csv), one row per run, and
# prints it; a missing peer is skipped with a message. PyTorch and scikit-learn run under Debian's /usr/bin/python3
# (python3-torch, python3-sklearn). The LibTorch peer (bench/libtorch, a separate CMake
# project: Torch never enters xgrad's build) is configured and built in
# BUILD_DIR/runge-libtorch when find_package(Torch) succeeds (libtorch-dev).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../../build/release}"  # README's build folder
epochs="${2:-3000}"
repeats="${REPEATS:-5}"
case "$repeats" in ''|*[!0-9]*|0) echo "run_bench.sh: REPEATS must be a positive integer, not '$repeats'" >&2; exit 2;; esac
out="${BENCH_OUT:-runge-bench.csv}"  # a trial run never replaces the committed results
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
python=""
if [ -x /usr/bin/python3 ]; then
  python=/usr/bin/python3
else
  echo "run_bench.sh: /usr/bin/python3 missing, skipping the PyTorch and scikit-learn peers" >&2
fi
# Every implementation on one case: runge_bench writes the CSV header the first time.
run_case() {  # run_case CASE XGRAD_CASES PEERS [--no-header]
  "$build/apps/runge/runge_bench" --epochs "$epochs" --threads 1 --cases "$2" ${4:-}
  if [ -n "$python" ]; then "$python" "$here/peers.py" --epochs "$epochs" --cases "$1" --peers "$3"; fi
  if [ -n "$libtorch" ]; then "$libtorch" --epochs "$epochs" --cases "$1"; fi
}
{
  for round in $(seq "$repeats"); do
    echo "run_bench.sh: full batch, round $round of $repeats" >&2
    run_case full full,full32,full2 torch,torch_float32,sklearn $([ "$round" -gt 1 ] && echo --no-header)
    # PyTorch given both cores too, as torch_2threads: slower than at one thread here.
    if [ -n "$python" ]; then
      "$python" "$here/peers.py" --epochs "$epochs" --cases full --peers torch --threads 2 |
        sed 's/^torch,/torch_2threads,/'
    fi
  done
  echo "run_bench.sh: batch 5, once (PyTorch takes about a minute)" >&2
  run_case batch5 batch5 torch,sklearn --no-header
} > "$out"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cat "$out"

# Per case: the median over the runs of process CPU time per step (the fairer figure on a
# shared machine) and of wall time, and each implementation's median over xgrad's (> 1:
# xgrad is faster). A float32 row (torch_float32) is set against xgrad_float32 when that
# row is there.
echo
awk -F, 'function median(list,   v, n, i, j, t) {
           n = split(substr(list, 2), v, " ")
           for (i = 2; i <= n; ++i) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; --j) v[j + 1] = v[j]; v[j + 1] = t }
           return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
         }
  NR > 1 && $1 != "impl" { key = $2 SUBSEP $1; cpu[key] = cpu[key] " " $8; wall[key] = wall[key] " " $7
                  runs[key]++; mse[key] = $9
                  if (!(($2) in seen)) { seen[$2] = 1; cases[++nc] = $2 }
                  if (!(($1) in iseen)) { iseen[$1] = 1; impls[++ni] = $1 } }
  END {
    for (k in cpu) { mc[k] = median(cpu[k]); mw[k] = median(wall[k]) }
    printf "%-8s %-14s %5s %14s %10s %13s %10s %10s\n", "case", "impl", "runs", "cpu_us/step",
           "x xgrad", "wall_us/step", "x xgrad", "test_mse"
    for (c = 1; c <= nc; ++c) {
      for (i = 1; i <= ni; ++i) {
        k = cases[c] SUBSEP impls[i]
        x = cases[c] SUBSEP "xgrad"
        if (impls[i] ~ /_float32$/ && (cases[c] SUBSEP "xgrad_float32") in mc)
          x = cases[c] SUBSEP "xgrad_float32"
        if (!(k in mc)) continue
        rc = (x in mc) ? sprintf("%.2f", mc[k] / mc[x]) : "-"
        rw = (x in mw) ? sprintf("%.2f", mw[k] / mw[x]) : "-"
        printf "%-8s %-14s %5d %14.1f %10s %13.1f %10s %10.4g\n", cases[c], impls[i], runs[k],
               mc[k], rc, mw[k], rw, mse[k]
      }
    }
    x = "full" SUBSEP "xgrad_2threads"
    if (!(x in mw)) exit
    printf "\nfull batch, wall time against xgrad with 2 shards on 2 threads (> 1: xgrad is faster)\n"
    printf "%-14s %5s %13s %16s\n", "impl", "runs", "wall_us/step", "x xgrad_2threads"
    for (i = 1; i <= ni; ++i) {
      k = "full" SUBSEP impls[i]
      if ((k in mw) && impls[i] !~ /_float32$/)  # float64 against float64
        printf "%-14s %5d %13.1f %16.2f\n", impls[i], runs[k], mw[k], mw[k] / mw[x]
    }
  }' "$out"
