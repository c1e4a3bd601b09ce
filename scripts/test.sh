#!/usr/bin/env bash
# Sets up .venv with the test requirements (and chromium) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
exec "${SIA_VENV:-.venv}/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
