#!/usr/bin/env bash
# D̂_det and D̂_rand on CIFAR-10 at a small scale (PAPERS.md §3.8): a standard small-cnn trained on the 5,085-image
# exact-pixel subset in ../shared/data/cifar10-subset, targeted L2 PGD (eps 0.5, 100 steps of 0.1, as the paper),
# a fresh small-cnn trained on each relabelled set and scored on the 1,017 original test images.
# ~10 min on 2 CPU cores. Results go to artifacts/features-cifar10/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
CIFAR_DIR=${CIFAR_DIR:-../shared/data/cifar10-subset}
OUT=${OUT:-artifacts/features-cifar10}
EPOCHS=${EPOCHS:-30}
if [ ! -d "$CIFAR_DIR" ]; then echo "No CIFAR-10 data at $CIFAR_DIR (set CIFAR_DIR)." >&2; exit 2; fi
mkdir -p "$OUT"
: > "$OUT/results.jsonl"
$PYTHON -m sia_core train --id cifar10-standard --dataset cifar10 --data-dir "$CIFAR_DIR" --architecture small-cnn \
  --epochs "$EPOCHS" --lr 2e-3 --eval-attack pgd-l2 --eval-eps 0.5 --out "$OUT/cifar10-standard" --json \
  | tee -a "$OUT/results.jsonl"
for kind in d_det d_rand; do
  $PYTHON -m sia_core features build --kind $kind --model "$OUT/cifar10-standard" --data-dir "$CIFAR_DIR" \
    --n 5085 --eps 0.5 --steps 100 --step-size 0.1 --out "$OUT/$kind.npz" --json | tee -a "$OUT/results.jsonl"
  $PYTHON -m sia_core features train --data "$OUT/$kind.npz" --model "$OUT/cifar10-standard" --data-dir "$CIFAR_DIR" \
    --architecture small-cnn --epochs "$EPOCHS" --eval-eps 0.25 --eval-n 1017 --json | tee -a "$OUT/results.jsonl"
done
