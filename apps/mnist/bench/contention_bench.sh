#!/bin/sh
# Two threads against one, with and without a busy neighbour: report 000's network
# (784-256-10 sigmoid, Adam, batch 128, float32) trained by xgrad at --threads 1 and 2,
# first on a quiet machine, then with one other process spinning on a core (what a
# browser or a compile does to a laptop). PyTorch runs the same pairs when installed.
# ROUNDS rounds, each running every configuration once (interleaved, so a slow spell of
# the shared machine hits them alike); prints each run's median epoch and, at the end,
# the median over the rounds and the ratio of two threads to one.
#   apps/mnist/bench/contention_bench.sh [BUILD_DIR] [MNIST_DIR] [ROUNDS] [EPOCHS]
set -u
BUILD=${1:-build}
DATA=${2:-data/mnist}
ROUNDS=${3:-5}
EPOCHS=${4:-3}
for v in "$ROUNDS" "$EPOCHS"; do
  case "$v" in ''|*[!0-9]*|0) echo "contention_bench.sh: ROUNDS and EPOCHS must be positive integers, got '$ROUNDS' and '$EPOCHS'" >&2; exit 2;; esac
done
if [ ! -x "$BUILD/apps/mnist/mnist" ]; then
  echo "contention_bench.sh: no $BUILD/apps/mnist/mnist: build first (cmake --build $BUILD)" >&2
  exit 2
fi
if ! ls "$DATA"/train-images-idx3-ubyte* > /dev/null 2>&1; then
  echo "contention_bench.sh: no MNIST in '$DATA' (train-images-idx3-ubyte[.gz]); get it with" \
       "apps/mnist/download_mnist.sh or pass the folder" >&2
  exit 2
fi
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
OUT=$(mktemp -d)
BUSY=""
stop_busy() { [ -n "$BUSY" ] && kill "$BUSY" 2>/dev/null; BUSY=""; }
trap 'stop_busy; rm -rf "$OUT"' EXIT INT TERM
have_torch=0
if [ -x "$PY" ] && "$PY" -c "import torch" 2>/dev/null; then have_torch=1; else
  echo "# PyTorch (python3-torch) missing: xgrad only" >&2
fi
echo "# contention_bench: $(date -u +%FT%TZ), $(nproc) cores, $ROUNDS rounds of $EPOCHS epochs," \
     "load before $(cut -d' ' -f1-3 /proc/loadavg)"

xgrad_epoch() {  # xgrad_epoch THREADS -> median epoch seconds, and CPU time stolen by the hypervisor
  rm -rf "$OUT/run"
  steal0=$(awk '/^cpu /{print $9}' /proc/stat)
  OPENBLAS_NUM_THREADS=$1 OMP_NUM_THREADS=$1 "$BUILD/apps/mnist/mnist" train --dataset mnist \
    --data "$DATA" --layers 256 --activation sigmoid --optimiser adam --lr 1e-3 --lr-decay 1 \
    --dropout 0 --batch 128 --epochs "$EPOCHS" --threads "$1" --no-train-eval --quiet \
    --out "$OUT/run" > "$OUT/run.log" 2>&1 ||
    { echo "xgrad run failed:" >&2; cat "$OUT/run.log" >&2; touch "$OUT/failed"; exit 1; }
  median=$(tail -n +2 "$OUT/run/history.csv" | cut -d, -f8 | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  steal=$(awk -v s0="$steal0" -v hz="$(getconf CLK_TCK)" '/^cpu /{printf "%.2f", ($9 - s0) / hz}' /proc/stat)
  echo "$median stolen_cpu_s=$steal"
}
torch_epoch() {  # torch_epoch THREADS -> median epoch seconds
  OPENBLAS_NUM_THREADS=$1 OMP_NUM_THREADS=$1 "$PY" "$HERE/peers.py" "$DATA" "$1" "$EPOCHS" torch |
    tail -1 | sed -n 's/.*median_epoch_s=\([0-9.]*\).*/\1/p'
}

for neighbour in quiet busy; do
  if [ "$neighbour" = busy ]; then
    sh -c 'while :; do :; done' & BUSY=$!
  fi
  for round in $(seq "$ROUNDS"); do
    for t in 1 2; do
      x=$(xgrad_epoch "$t") || exit 1  # the run's log is on stderr already
      echo "$neighbour xgrad threads=$t round=$round median_epoch_s=$x"
      if [ "$have_torch" = 1 ]; then
        echo "$neighbour torch threads=$t round=$round median_epoch_s=$(torch_epoch "$t")"
      fi
    done
  done
  stop_busy
done | tee "$OUT/all.txt"
[ -e "$OUT/failed" ] && exit 1  # the loop ran in a pipeline's subshell
echo "# load after $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "neighbour impl   1-thread_s 2-thread_s  2T/1T  worst_round_2T/1T   (medians over rounds)"
awk '{ split($3, t, "="); split($4, r, "="); split($5, v, "="); key = $1 " " $2
       x[key, t[2]] = x[key, t[2]] " " v[2]; val[key, r[2], t[2]] = v[2]
       if (r[2] > rounds) rounds = r[2]; if (!(key in seen)) { seen[key] = 1; keys[++n] = key } }
  function median(list,   a, m, i, j, s) {
    m = split(substr(list, 2), a, " ")
    for (i = 2; i <= m; ++i) { s = a[i]; for (j = i - 1; j >= 1 && a[j] > s; --j) a[j + 1] = a[j]; a[j + 1] = s }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
  }
  END { for (i = 1; i <= n; ++i) { k = keys[i]; one = median(x[k, 1]); two = median(x[k, 2]); worst = 0
          for (q = 1; q <= rounds; ++q) if ((k, q, 1) in val && val[k, q, 1] > 0 && val[k, q, 2] / val[k, q, 1] > worst) worst = val[k, q, 2] / val[k, q, 1]
          printf "%-9s %-6s %10.3f %10.3f %6.2f %12.2f\n", substr(k, 1, index(k, " ") - 1), substr(k, index(k, " ") + 1), one, two, two / one, worst } }' "$OUT/all.txt"
