#!/usr/bin/env bash
# Trains the Fashion-MNIST models of the margin-consistency zoo that the other scripts do not: PGD-AT at two more
# radii, FGSM with random start, TRADES and L2 PGD-AT (fmnist-standard, fmnist-robust = PGD-AT at 0.1, fmnist-sia-at
# and fmnist-random-attributes complete the zoo). Same small network and schedule family as the shipped models, 5
# epochs, weights stored in float16 so the zoo fits the assets budget; every card is measured on the rounded weights
# under PGD-L∞ at the zoo's ε = 0.1, and records its own command. Each run checkpoints every epoch under
# $SIA_EXPLORER_HOME/checkpoints and resumes when re-run. Re-run: bash scripts/train_zoo_models.sh [model-id ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
# one thread per run: two runs on two cores otherwise oversubscribe and crawl
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
CHECKPOINTS=${SIA_EXPLORER_HOME:-$HOME/.cache/sia-explorer}/checkpoints
mkdir -p "$CHECKPOINTS"
ONLY="$*"

run() {
  local id=$1; shift
  if [[ -n "$ONLY" && " $ONLY " != *" $id "* ]]; then return; fi
  $PYTHON -m sia_core train --id "$id" --dataset fashion-mnist --architecture tiny-cnn --lr 2e-3 --seed 0 \
    --epochs 5 --eps-warmup-epochs 1 --weights-dtype float16 --eval-attack pgd-linf --eval-eps 0.1 --eval-steps 20 \
    --checkpoint "$CHECKPOINTS/$id.pt" "$@" --json
}

run fmnist-pgd-0.05 --recipe pgd --eps 0.05 --attack-steps 5 \
  --description 'PGD adversarial training at L-inf eps 0.05 (5 steps, random start), weights in float16.'
run fmnist-pgd-0.2 --recipe pgd --eps 0.2 --attack-steps 5 \
  --description 'PGD adversarial training at L-inf eps 0.2 (5 steps, random start), weights in float16.'
run fmnist-fgsm-rs --recipe fgsm-rs --eps 0.1 \
  --description 'FGSM with random start at L-inf eps 0.1 (Wong et al. 2020), weights in float16.'
run fmnist-trades --recipe trades --eps 0.1 --attack-steps 5 --trades-beta 6 \
  --description 'TRADES at L-inf eps 0.1, beta 6 (5 KL steps), weights in float16.'
run fmnist-pgd-l2 --recipe pgd-l2 --eps 1.5 --attack-steps 5 \
  --description 'PGD adversarial training at L2 eps 1.5 (5 steps, random start), weights in float16.'
