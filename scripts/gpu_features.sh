#!/usr/bin/env bash
# The features study's GPU tier as one device call: every stage at the paper's scale, cut off after a time budget so
# the call returns its files either way (a second call on the same warm machine resumes the stages from /tmp).
#
# Here, once:   cp -r ../shared/data/cifar10-jpg artifacts/        (19 MB; artifacts/ is ignored, so carry it)
# On the device (the `device` tool's run, carry ["artifacts/cifar10-jpg"], timeout_s 600):
#               bash scripts/gpu_features.sh 540
# Back here:    python scripts/features_at_scale.py import --out <files_at> --world cifar10 --tier gpu
#               python scripts/features_at_scale.py write --world cifar10 --tier gpu
#               python scripts/precompute.py claims-cifar10
#
# Writes into $OUT (the device's return folder; artifacts/gpu-out elsewhere): gpu.txt (the card), run.log, and
# export's features-results.json and features-weights.tar. FEATURES_WORLD / FEATURES_TIER / FEATURES_WORK override
# the world, tier and work folder (the tests run it on the Shapes world's tiny tier).
set -u
budget=${1:-540}
world=${FEATURES_WORLD:-cifar10}
tier=${FEATURES_TIER:-gpu}
work=${FEATURES_WORK:-/tmp/features-$world-$tier}
out=${OUT:-artifacts/gpu-out}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 SIA_CIFAR10_DIR=${SIA_CIFAR10_DIR:-artifacts/cifar10-jpg}
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi: $(uname -m)") \
  > "$out/gpu.txt"
started=$(date +%s)
# the stages checkpoint as they go; a run cut off by the budget still exports what finished
timeout --signal=TERM "$budget" "$python" scripts/features_at_scale.py run --world "$world" --tier "$tier" \
  --work "$work" > "$out/run.log" 2>&1
status=$?
echo "run: exit $status after $(( $(date +%s) - started )) s (124: the budget of $budget s ran out)" | tee -a "$out/run.log"
"$python" scripts/features_at_scale.py export --world "$world" --tier "$tier" --work "$work" --out "$out"
tail -n 30 "$out/run.log"
