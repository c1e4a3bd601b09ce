#!/usr/bin/env bash
# Reproduces the robust / non-robust features study on Fashion-MNIST (Ilyas et al. 2019, scaled down):
# builds D_det and D_rand (10k, targeted L2 PGD, eps 2.0) from fmnist-standard, D_NR (5k) from fmnist-standard
# and D_R (5k) from fmnist-robust (300 normalized steps of 0.1), trains a fresh tiny-cnn on each (10 epochs),
# and scores all on the original test set: clean, and L2-PGD robust accuracy at eps 0.5. ~15 min on 2 CPU cores.
# Results go to artifacts/features/ (JSON lines in results.jsonl); the builds resume if interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
OUT=${OUT:-artifacts/features}
mkdir -p "$OUT"
: > "$OUT/results.jsonl"
build() { $PYTHON -m sia_core features build --kind "$1" --model "$2" --n "$3" --steps "$4" --eps 2.0 --out "$OUT/$1.npz" --json; }
build d_det fmnist-standard 10000 50 | tee -a "$OUT/results.jsonl"
build d_rand fmnist-standard 10000 50 | tee -a "$OUT/results.jsonl"
build d_nr fmnist-standard 5000 300 | tee -a "$OUT/results.jsonl"
build d_r fmnist-robust 5000 300 | tee -a "$OUT/results.jsonl"
for kind in d_det d_rand d_nr d_r; do
  $PYTHON -m sia_core features train --constructed "$OUT/$kind.npz" --epochs 10 --eval-eps 0.5 --eval-n 1000 --json \
    | tee -a "$OUT/results.jsonl"
done
for model in fmnist-standard fmnist-robust; do
  $PYTHON -m sia_core features evaluate --model "$model" --eval-eps 0.5 --eval-n 1000 --json | tee -a "$OUT/results.jsonl"
done
