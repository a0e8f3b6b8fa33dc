#!/bin/sh
# Speed of one training epoch of report 000's network (784-256-10 sigmoid, Adam,
# batch 128, float32, 60,000 images) at 1 and 2 threads: xgrad, the bare GEMMs of the
# same epoch, PyTorch and scikit-learn (skipped with a message when missing); median
# over EPOCHS epochs, and peak resident memory of each whole run.
#   apps/mnist/bench/mnist_bench.sh [BUILD_DIR] [MNIST_DIR] [EPOCHS]
set -u
BUILD=${1:-build/release}  # README's build folder
DATA=${2:-data/mnist}
EPOCHS=${3:-5}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
echo "# mnist_bench: $(date -u +%FT%TZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "# network 784-256-10 sigmoid, Adam lr 1e-3, batch 128, float32, $EPOCHS epochs, median epoch time"
for t in 1 2; do
  export OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t
  "$BUILD/apps/mnist/mnist_gemm_epoch" "$t" "$EPOCHS" 128 "$DATA"
  # CPU time the hypervisor gave to other guests during the run (/proc/stat "steal",
  # USER_HZ ticks): a two-thread run on a 2-vCPU guest slows down with it.
  steal0=$(awk '/^cpu /{print $9}' /proc/stat)
  "$BUILD/apps/mnist/mnist" train --dataset mnist --data "$DATA" --layers 256 --activation sigmoid \
    --optimiser adam --lr 1e-3 --lr-decay 1 --dropout 0 --batch 128 --epochs "$EPOCHS" \
    --threads "$t" --no-train-eval --quiet --out "$OUT/x$t" > "$OUT/x$t.log" 2>&1 ||
    { echo "xgrad run failed:"; cat "$OUT/x$t.log"; exit 1; }
  median=$(tail -n +2 "$OUT/x$t/history.csv" | cut -d, -f8 | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  acc=$(grep -o 'test accuracy [0-9.]*%' "$OUT/x$t.log")
  rss=$(grep -o 'peak resident memory [0-9]* MiB' "$OUT/x$t.log")
  steal=$(awk -v s0="$steal0" -v hz="$(getconf CLK_TCK)" '/^cpu /{printf "%.2f", ($9 - s0) / hz}' /proc/stat)
  echo "xgrad threads=$t epochs=$EPOCHS median_epoch_s=$median $acc, $rss, stolen_cpu_s=$steal," \
       "load $(cut -d' ' -f1-3 /proc/loadavg)"
  for peer in torch sklearn; do
    $PY "$HERE/peers.py" "$DATA" "$t" "$EPOCHS" "$peer" 2>&1 | tail -1
  done
done
