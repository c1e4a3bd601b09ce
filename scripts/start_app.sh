#!/usr/bin/env bash
# Sets up .venv and starts the app on the embedded default (no download, no GPU needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh app
exec "${SIA_VENV:-.venv}/bin/python" -m streamlit run app.py "$@"
