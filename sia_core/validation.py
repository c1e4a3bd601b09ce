"""Checks that configs run in `__post_init__`: a bad value raises a `ConfigError` that names the field and the
value, before any number is computed with it."""

from __future__ import annotations

import math
from typing import Any, Iterable, Optional

from sia_core.errors import ConfigError


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{name} must be a number, got {value!r}.")
    return float(value)


def positive(name: str, value: Any) -> None:
    require(_number(name, value) > 0, f"{name} must be > 0, got {value!r}.")


def non_negative(name: str, value: Any) -> None:
    require(_number(name, value) >= 0, f"{name} must be >= 0, got {value!r}.")


def positive_int(name: str, value: Any) -> None:
    require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
            f"{name} must be a whole number > 0, got {value!r}.")


def non_negative_int(name: str, value: Any) -> None:
    require(isinstance(value, int) and not isinstance(value, bool) and value >= 0,
            f"{name} must be a whole number >= 0, got {value!r}.")


def in_range(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
             high_open: bool = False) -> None:
    number = _number(name, value)
    above = number > low if low_open else number >= low
    below = number < high if high_open else number <= high
    require(above and below, f"{name} must lie in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
                             f", got {value!r}.")


def one_of(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    require(value in choices, f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}.")


def optional(check, name: str, value: Optional[Any], *args: Any) -> None:
    """Run `check` unless `value` is None (an optional field left at its default)."""
    if value is not None:
        check(name, value, *args)
