#!/usr/bin/env bash
# The CIFAR-10 world's four studies at the papers' budgets (ε; N, steps and networks are our choice for a CPU), on the shipped CIFAR-10 models and the embedded
# CIFAR-10 test subset, written to assets/precomputed/ (the pages open on them) with a summary beside the papers'
# numbers in assets/precomputed/cifar10-study.json:
#   margins: the zoo (500 images, L-inf 8/255, with the pseudo-margin) and each page's study (300 images);
#   diagnosis: both models at the page's settings; regions: both models, and every fill on cifar10-standard;
#   features: D̂_det / D̂_rand at L2 0.5 from cifar10-standard, D̂_R from cifar10-robust, on 2,000 training images
#   of the JPEG copy (../shared/data/cifar10-jpg; skipped without it), each trained on and scored at L2 0.25 / 0.5.
# About 75 minutes on one CPU thread. PROCESSES=2 shards the zoo's margins over torchrun.
# Re-run: bash scripts/cifar10_study.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
PROCESSES=${PROCESSES:-1}
if [ "$PROCESSES" -gt 1 ]; then
  $PYTHON -m torch.distributed.run --nproc-per-node "$PROCESSES" scripts/precompute.py zoo-cifar10
else
  $PYTHON scripts/precompute.py zoo-cifar10
fi
$PYTHON scripts/precompute.py cifar10
