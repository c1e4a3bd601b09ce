#!/usr/bin/env bash
# Creates .venv and installs the Python requirements; with `dev`, also the test requirements and the
# Debian packages the tests use (chromium for the browser test, dataset-fashion-mnist for the loaders).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-app}
VENV=${SIA_VENV:-.venv}

if [[ ! -x $VENV/bin/python ]]; then
  python3 -m venv "$VENV"
fi
requirements=requirements.txt
[[ $mode == dev ]] && requirements=requirements-dev.txt
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
# AutoAttack's library without its dependencies (it pins requests~=2.25; it needs only torch and scipy, pinned above)
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps torchattacks==3.5.1
# timm (Apache-2.0) for one data file, the ImageNet-1k WordNet ids that ImageNet-style folders are named by; never
# imported, so its dependencies are not needed
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps timm==1.0.31
# facenet-pytorch (MIT) for MTCNN's O-Net weights (facenet_pytorch/data/onet.pt); it pins torch < 2.3 and numpy < 2,
# so --no-deps: sia_core/models/onet.py defines the network and reads the file with weights_only=True
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps facenet-pytorch==2.6.0
# the project itself, editable: `python -m sia_core` and the `sia` command then work from any folder
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .

if [[ $mode == dev ]]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  [[ -d /usr/share/datasets/fashion-mnist ]] || missing+=(dataset-fashion-mnist)
  if ((${#missing[@]})); then
    if [[ $(id -u) == 0 ]]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
  fi
fi
