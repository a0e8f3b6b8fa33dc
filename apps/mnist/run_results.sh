#!/bin/sh
# Runs every training of docs/results-mnist.md one after another (one long run at a
# time: the machine is shared), each into results/mnist/<name>/ with a log.
#   apps/mnist/run_results.sh [BUILD_DIR] [DATA_DIR] [names...]
# Names: best (3 seeds), fashion (3 seeds), r000, r001, r003, logistic000, logistic003,
# activations (report 000 Table III), sweeps (the three grids of docs/results-mnist.md;
# resumable).
set -eu
BUILD=${1:-build/release}  # README's build folder
DATA=${2:-data/mnist}
shift 2 2>/dev/null || true
NAMES=${*:-"best r000 r001 r003 logistic000 logistic003 fashion activations sweeps"}
MNIST="$BUILD/apps/mnist/mnist"
OUT=results/mnist
mkdir -p "$OUT"
run() {  # name, args...
  name=$1
  shift
  echo "== $name: $*"
  "$MNIST" train --quiet --out "$OUT/$name" "$@" > "$OUT/$name.log" 2>&1 || echo "$name FAILED (see $OUT/$name.log)"
  grep "test accuracy\|time:" "$OUT/$name.log" || true
}
for n in $NAMES; do
  case $n in
  best)  # the default recipe, 3 seeds
    for s in 1 2 3; do run best-seed$s --dataset mnist --data "$DATA" --seed $s; done ;;
  fashion)
    for s in 1 2 3; do run fashion-seed$s --dataset fashion-mnist --seed $s; done ;;
  r000)  # report 000's final model: 784-256-10 sigmoid, Adam, batch 128, 30 epochs, pooled 80/20
    run r000 --dataset mnist --data "$DATA" --protocol pooled --layers 256 --activation sigmoid \
      --optimiser adam --lr 1e-3 --lr-decay 1 --dropout 0 --batch 128 --epochs 30 ;;
  r001)  # report 001: 3x100 sigmoid, RMSprop lr 1e-3, L2 1e-3 in its lambda/(2n) convention, batch 64
    run r001 --dataset mnist --data "$DATA" --protocol pooled --layers 100 100 100 \
      --activation sigmoid --optimiser rmsprop --lr 1e-3 --lr-decay 1 --dropout 0 \
      --penalty l2 --lambda 7.8125e-6 --batch 64 --epochs 30 ;;
  r003)  # report 003: 784-128-10 ReLU, glorot uniform, plain SGD lr 1e-3, batch 50, 50 epochs, 60k/10k
    run r003 --dataset mnist --data "$DATA" --layers 128 --activation relu --init glorot_uniform \
      --optimiser sgd --lr 1e-3 --lr-decay 1 --dropout 0 --batch 50 --epochs 50 ;;
  logistic000)  # softmax regression with report 000's protocol and optimiser
    run logistic000 --dataset mnist --data "$DATA" --protocol pooled --logistic --optimiser adam \
      --lr 1e-3 --lr-decay 1 --batch 128 --epochs 30 ;;
  logistic003)  # report 003's logistic regression: SGD lr 1e-3, batch 50, 50 epochs
    run logistic003 --dataset mnist --data "$DATA" --logistic --init glorot_uniform --optimiser sgd \
      --lr 1e-3 --lr-decay 1 --batch 50 --epochs 50 ;;
  activations)  # report 000 Table III / Fig. 9: 784-256-10, 5 epochs, three activations
    for a in sigmoid relu leaky_relu; do
      run act-$a --dataset mnist --data "$DATA" --protocol pooled --layers 256 --activation $a \
        --lr 1e-3 --lr-decay 1 --dropout 0 --batch 128 --epochs 5
    done ;;
  sweeps)  # report 000 Figs. 7-8: 2 epochs per point, two workers with 1 BLAS thread each
    S="$MNIST sweep --dataset mnist --data $DATA --protocol pooled --activation sigmoid --optimiser adam --batch 128 --epochs 2 --workers 2"
    $S --layers 128 128 --lrs 0.1 0.316 1 3.16 10 --lambdas 1e-10 1e-9 1e-8 1e-7 1e-6 1e-5 \
      --csv "$OUT/sweep-lr-lambda.csv" > "$OUT/sweep-lr-lambda.log" 2>&1
    $S --layers 128 128 --lrs 1e-4 3.16e-4 1e-3 3.16e-3 1e-2 3.16e-2 1e-1 --lambdas 0 1e-6 1e-5 1e-4 1e-3 1e-2 \
      --csv "$OUT/sweep-lr-lambda-adam.csv" > "$OUT/sweep-lr-lambda-adam.log" 2>&1
    $S --lr 1e-3 --layer-counts 1 2 3 4 --node-counts 32 64 128 256 \
      --csv "$OUT/sweep-layers-nodes.csv" > "$OUT/sweep-layers-nodes.log" 2>&1
    echo "== sweeps: $OUT/sweep-*.csv" ;;
  *) echo "unknown run $n" >&2; exit 2 ;;
  esac
done
