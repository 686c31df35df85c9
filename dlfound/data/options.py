"""Checks for loader options: unknown names and bad values become ConfigErrors that name the option."""

from __future__ import annotations

import inspect
import math
from typing import Callable

from dlfound.errors import ConfigError


def option_names(fn: Callable) -> tuple[str, ...]:
    """The keyword options `fn` accepts."""
    params = inspect.signature(fn).parameters.values()
    return tuple(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)


def check_options(fn: Callable, options: dict, dataset: str, extra: tuple[str, ...] = ()) -> None:
    """Raises ConfigError for an option that `fn` does not take, listing those it does (plus `extra`)."""
    valid = option_names(fn) + tuple(extra)
    for key in options:
        if key not in valid:
            listed = ", ".join(valid) or "none"
            raise ConfigError(f"unknown option {key!r} for dataset {dataset!r}; valid options: {listed}")


def positive_int(name: str, value) -> int:
    """`value` as an int >= 1, or a ConfigError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"invalid {name}={value!r}; allowed: an integer >= 1")
    return value


def nonnegative(name: str, value) -> float:
    """`value` as a finite float >= 0, or a ConfigError naming `name`."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < 0:
        raise ConfigError(f"invalid {name}={value!r}; allowed: a finite number >= 0")
    return float(value)


def positive(name: str, value) -> float:
    """`value` as a finite float > 0, or a ConfigError naming `name`."""
    if nonnegative(name, value) == 0:
        raise ConfigError(f"invalid {name}={value!r}; allowed: a finite number > 0")
    return float(value)


def interval(name: str, value) -> tuple[float, float]:
    """`value` ("lo,hi" or a pair of numbers) as (lo, hi) with lo < hi, or a ConfigError."""
    try:
        parts = value.strip("()[] ").split(",") if isinstance(value, str) else list(value)
        lo, hi = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid {name}={value!r}; allowed: two numbers lo,hi such as -1,1") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"invalid {name}={value!r}; allowed: two finite numbers lo < hi")
    return lo, hi
