"""Numerical constants shared by the engine."""

from __future__ import annotations

# the floor of a norm, spread or time that may be zero before it divides (all-equal scores, a zero gradient): far
# below any real value in float32 or float64, so it only turns 0 / 0 into 0 instead of NaN
TINY = 1e-12
