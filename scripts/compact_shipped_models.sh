#!/usr/bin/env bash
# Stores shipped models' weights in float16 (half the bytes, so CIFAR-10 fits the 25 MB assets budget) and
# re-measures each card on the rounded weights (python -m sia_core compact keeps the figures measured before), then
# recomputes the shipped results that read those models. Re-run: bash scripts/compact_shipped_models.sh [model-id ...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
MODELS=("$@")
if [[ ${#MODELS[@]} -eq 0 ]]; then
  MODELS=(shapes-standard shapes-spurious-hue shapes-robust shapes-sia-at shapes-random-attributes)
fi
for id in "${MODELS[@]}"; do
  if grep -q '"weights_dtype": "float16"' "assets/models/$id/card.json"; then
    echo "$id: already float16" >&2
    continue
  fi
  $PYTHON -m sia_core compact --model "$id" --json
done
# the Shapes transfer table is the only shipped result that reads the Shapes models
$PYTHON scripts/precompute.py transfer-shapes
