#!/usr/bin/env bash
# Rebuilds the embedded default in assets/: the balanced Fashion-MNIST test subset and the four
# shipped models with their cards. Needs the Debian package `dataset-fashion-mnist` (MIT), or
# FASHION_MNIST_DIR pointing at a folder of the idx files. ~25 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DATA=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
only=${1:-all}

run() { [[ $only == all || $only == "$1" ]]; }

if run subset; then
  $PYTHON -m sia_core build-subset --data-dir "$DATA" --per-class 250 --seed 0 --json
fi
if run fmnist-standard; then
  $PYTHON -m sia_core train --id fmnist-standard --dataset fashion-mnist --data-dir "$DATA" \
    --architecture tiny-cnn --recipe standard --epochs 15 --lr 2e-3 --seed 0 \
    --eval-attack pgd-linf --eval-eps 0.1 --eval-steps 20 \
    --description "Standard training; the default model." --json
fi
if run fmnist-robust; then
  $PYTHON -m sia_core train --id fmnist-robust --dataset fashion-mnist --data-dir "$DATA" \
    --architecture tiny-cnn --recipe pgd --eps 0.1 --attack-steps 5 --eps-warmup-epochs 1 \
    --epochs 8 --lr 2e-3 --seed 0 \
    --eval-attack pgd-linf --eval-eps 0.1 --eval-steps 20 \
    --description "PGD adversarial training at L-inf eps 0.1 (5 steps, random start)." --json
fi
if run shapes-standard; then
  $PYTHON -m sia_core train --id shapes-standard --dataset shapes --architecture tiny-cnn \
    --recipe standard --epochs 10 --lr 2e-3 --seed 0 \
    --description "Standard training on unbiased Shapes." --json
fi
if run shapes-spurious-hue; then
  $PYTHON -m sia_core train --id shapes-spurious-hue --dataset shapes --spurious hue --spurious-strength 0.99 \
    --architecture tiny-cnn --recipe standard --epochs 10 --lr 2e-3 --seed 0 \
    --description "Trained where hue predicts the class 99% of the time; tested on the unbiased split." --json
fi
