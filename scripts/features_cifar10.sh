#!/usr/bin/env bash
# D̂_det and D̂_rand on CIFAR-10 at a small scale (Ilyas et al. 2019): a standard small-cnn trained on the 5,085-image
# exact-pixel subset in ../shared/data/cifar10-subset, targeted L2 PGD (100 steps of 0.1, as the paper) to EPS,
# a fresh small-cnn trained on each relabelled set and scored on the 1,017 original test images.
# EPS defaults to 2.0, not the paper's 0.5: the source model fits its 5,085 training images so closely that
# eps 0.5 reaches only 25% targeted success on them (1.0: 74%, 2.0: 99.6%). KINDS="d_det d_rand" adds D̂_rand.
# ~20 min per kind on 2 CPU cores. Results go to artifacts/features-cifar10/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
CIFAR_DIR=${CIFAR_DIR:-../shared/data/cifar10-subset}
OUT=${OUT:-artifacts/features-cifar10}
EPOCHS=${EPOCHS:-30}
EPS=${EPS:-2.0}
KINDS=${KINDS:-d_det}
if [ ! -d "$CIFAR_DIR" ]; then echo "No CIFAR-10 data at $CIFAR_DIR (set CIFAR_DIR)." >&2; exit 2; fi
mkdir -p "$OUT"
if [ ! -f "$OUT/cifar10-standard/card.json" ]; then
$PYTHON -m sia_core train --id cifar10-standard --dataset cifar10 --data-dir "$CIFAR_DIR" --architecture small-cnn \
  --epochs "$EPOCHS" --lr 2e-3 --eval-attack pgd-l2 --eval-eps 0.5 --out "$OUT/cifar10-standard" --json \
  | tee -a "$OUT/results.jsonl"
fi
for kind in $KINDS; do
  $PYTHON -m sia_core features build --kind $kind --model "$OUT/cifar10-standard" --data-dir "$CIFAR_DIR" \
    --n 5085 --eps "$EPS" --steps 100 --step-size 0.1 --out "$OUT/${kind}_eps$EPS.npz" --json | tee -a "$OUT/results.jsonl"
  $PYTHON -m sia_core features train --constructed "$OUT/${kind}_eps$EPS.npz" --model "$OUT/cifar10-standard" --data-dir "$CIFAR_DIR" \
    --architecture small-cnn --epochs "$EPOCHS" --eval-eps 0.25 --eval-n 1017 --json | tee -a "$OUT/results.jsonl"
done
