"""Where the embedded default lives on disk."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = PROJECT_ROOT / "assets"
MODELS_DIR = ASSETS_DIR / "models"
PRECOMPUTED_DIR = ASSETS_DIR / "precomputed"  # written by scripts/precompute.py
