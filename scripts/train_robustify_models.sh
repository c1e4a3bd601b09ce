#!/usr/bin/env bash
# Trains the models of the SIA transfer table (SIA adversarial training and its random-attribute control, on
# Fashion-MNIST and Shapes, plus PGD-AT on Shapes). Each run checkpoints every epoch under
# $SIA_EXPLORER_HOME/checkpoints (default ~/.cache/sia-explorer) and resumes when re-run after an interruption;
# each card records its own command. Re-run: bash scripts/train_robustify_models.sh [model-id ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
# one thread per run: two runs (or a run and the app) on two cores otherwise oversubscribe and crawl
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
CHECKPOINTS=${SIA_EXPLORER_HOME:-$HOME/.cache/sia-explorer}/checkpoints
mkdir -p "$CHECKPOINTS"
EPS_SIA=0.0157  # 4/255: the upper end of SIA's "small pixel budget"

run() {
  local id=$1; shift
  if [[ -n "$ONLY" && " $ONLY " != *" $id "* ]]; then return; fi
  $PYTHON -m sia_core train --id "$id" --architecture tiny-cnn --lr 2e-3 --seed 0 \
    --checkpoint "$CHECKPOINTS/$id.pt" "$@" --json
}

ONLY="$*"
run fmnist-sia-at --dataset fashion-mnist --recipe sia --eps $EPS_SIA --attack-steps 5 --eps-warmup-epochs 1 \
  --epochs 8 --eval-attack pgd-linf --eval-eps 0.1 --eval-steps 20 \
  --description 'SIA adversarial training: half of each batch attacked by a 5-step SIA over every attribute, pixel budget 4/255.'
run fmnist-random-attributes --dataset fashion-mnist --recipe random-attributes --eps $EPS_SIA --epochs 8 \
  --eval-attack pgd-linf --eval-eps 0.1 --eval-steps 20 \
  --description 'Control for SIA training: half of each batch gets random attribute values and uniform noise of 4/255.'
run shapes-robust --dataset shapes --recipe pgd --eps 0.0314 --attack-steps 5 --eps-warmup-epochs 1 --epochs 8 \
  --eval-attack pgd-linf --eval-eps 0.0314 --eval-steps 20 \
  --description 'PGD adversarial training at L-inf eps 8/255 (5 steps, random start) on unbiased Shapes.'
run shapes-sia-at --dataset shapes --recipe sia --eps $EPS_SIA --attack-steps 5 --eps-warmup-epochs 1 --epochs 8 \
  --eval-attack pgd-linf --eval-eps 0.0314 --eval-steps 20 \
  --description 'SIA adversarial training on unbiased Shapes: half of each batch attacked by a 5-step SIA, pixel budget 4/255.'
run shapes-random-attributes --dataset shapes --recipe random-attributes --eps $EPS_SIA --epochs 8 \
  --eval-attack pgd-linf --eval-eps 0.0314 --eval-steps 20 \
  --description 'Control for SIA training on Shapes: half of each batch gets random attribute values and uniform noise of 4/255.'
