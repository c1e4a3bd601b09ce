#!/usr/bin/env bash
# Trains the CIFAR-10 models on all 50,000 training images of the JPEG copy (../shared/data/cifar10-jpg), with
# random crops and flips, on resnet9-slim (ResNet-9 at a quarter width: see `python bench/run.py --only
# cifar10_training` for why). Each card reports the exact-pixel test images first (../shared/data/cifar10-subset,
# the headline; clean and under PGD-20 at L-inf 8/255) and the 10,000 JPEG test images second (clean). Checkpoints every
# epoch under $SIA_EXPLORER_HOME/checkpoints and resumes when re-run. Weights in float16 (the assets budget).
# Re-run: bash scripts/train_cifar10_models.sh [model-id ...]   (CIFAR10_DIR / CIFAR10_EXACT_DIR to move the data)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
DATA=${CIFAR10_DIR:-../shared/data/cifar10-jpg}
EXACT=${CIFAR10_EXACT_DIR:-../shared/data/cifar10-subset}
CHECKPOINTS=${SIA_EXPLORER_HOME:-$HOME/.cache/sia-explorer}/checkpoints
mkdir -p "$CHECKPOINTS"
ONLY="$*"
EPS=0.0314  # 8/255

run() {
  local id=$1; shift
  if [[ -n "$ONLY" && " $ONLY " != *" $id "* ]]; then return; fi
  $PYTHON -m sia_core train --id "$id" --dataset cifar10 --data-dir "$DATA" --architecture resnet9-slim \
    --augment crop-flip --batch-size 128 --lr 4e-3 --weight-decay 5e-4 --seed 0 --weights-dtype float16 \
    --eval-data "cifar10:$EXACT" --eval-data "cifar10:$DATA" --eval-attack pgd-linf --eval-eps $EPS --eval-steps 20 \
    --eval-attack-sets 1 \
    --checkpoint "$CHECKPOINTS/$id.pt" "$@" --json
}

run cifar10-standard --recipe standard --epochs ${STANDARD_EPOCHS:-12} \
  --description 'Standard training on the 50,000 CIFAR-10 training images (JPEG copy), random crops and flips.'
# the features lens's standard source at scale: the same recipe run five times longer, then fitted without augmentation
# (scripts/features_at_scale.py success: the first 1,000 training images reach D̂_det's target at L2 0.5 more often)
run cifar10-standard-60 --recipe standard --epochs 60 \
  --description 'Standard training as cifar10-standard, for 60 epochs instead of 12.'
run cifar10-standard-long --recipe standard --epochs ${LONG_NO_AUGMENT_EPOCHS:-12} --init-from cifar10-standard-60 \
  --augment none --lr 1e-3 \
  --description "cifar10-standard-60 trained ${LONG_NO_AUGMENT_EPOCHS:-12} more epochs without augmentation, until it fits its training images."
run cifar10-robust --recipe fgsm-rs --eps $EPS --eps-warmup-epochs 2 --epochs ${ROBUST_EPOCHS:-12} \
  --description 'FGSM with random start at L-inf 8/255 (Wong et al. 2020) on the 50,000 CIFAR-10 training images.'
# the robust source of the features lens's D̂_R: L2 PGD adversarial training at ε 0.5 with 7 steps of ε/5
# (Ilyas et al. 2019's robust CIFAR-10 model, in Madry et al. 2018's recipe), scored at L2 0.5 by the card, then at
# L2 0.25 by `python -m sia_core evaluate --model cifar10-robust-l2 --data cifar10:$CIFAR10_EXACT_DIR --attack pgd-l2
# --eps 0.25 --add-to-card` (below)
run cifar10-robust-l2 --recipe pgd-l2 --eps 0.5 --attack-steps 7 --attack-step-fraction 0.2 --eps-warmup-epochs 1 \
  --epochs ${ROBUST_L2_EPOCHS:-10} --eval-attack pgd-l2 --eval-eps 0.5 \
  --description 'PGD adversarial training at L2 ε 0.5 (7 steps of ε/5) on the 50,000 CIFAR-10 training images.'
if [[ -z "$ONLY" || " $ONLY " == *" cifar10-robust-l2 "* ]] && ! grep -q '"eps": 0.25' assets/models/cifar10-robust-l2/card.json; then
  $PYTHON -m sia_core evaluate --model cifar10-robust-l2 --data "cifar10:$EXACT" --attack pgd-l2 --eps 0.25 --steps 20 \
    --add-to-card --json
fi
run cifar10-sia-at --recipe sia --eps 0.0157 --attack-steps 3 --eps-warmup-epochs 1 --epochs ${SIA_EPOCHS:-6} \
  --description 'SIA adversarial training on CIFAR-10: half of each batch attacked by a 3-step SIA, pixel budget 4/255.'
# the control of cifar10-sia-at's transfer claim: the same attribute ranges drawn at random, the same uniform pixel noise
# of 4/255, the same half of each batch, epochs and schedule
run cifar10-random-attributes --recipe random-attributes --eps 0.0157 --eps-warmup-epochs 1 --epochs ${SIA_EPOCHS:-6} \
  --description 'Random-attribute control on CIFAR-10: half of each batch gets random attribute edits in SIA ranges plus uniform pixel noise of 4/255.'
