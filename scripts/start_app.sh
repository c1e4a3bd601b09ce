#!/usr/bin/env bash
# Sets up .venv and starts the app on the embedded default (no download, no GPU needed).
# Your own model: bash scripts/start_app.sh -- --model python:lenet.py:LeNet --weights lenet.pt --input-shape 1,28,28
#   --data mnist:./data   (paths are relative to the folder you start it in; or a sia_explorer.toml there)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bash "$repo/scripts/setup.sh" app
venv=${SIA_VENV:-$repo/.venv}
[[ $venv == /* ]] || venv="$repo/$venv"
exec "$venv/bin/python" "$repo/sia_app/serve.py" "$@"
