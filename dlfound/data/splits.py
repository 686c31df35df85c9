"""Seeded splitting: carving a validation set from train, and subsetting train for data-scaling runs."""

from __future__ import annotations

import math

import numpy as np

from dlfound.data.dataset import Dataset
from dlfound.errors import ConfigError


def carve_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Splits (x, y) into train and validation by a seeded permutation; returns (x_tr, y_tr, x_val, y_val).

    The validation set is the first `round(fraction * n)` examples of the permutation;
    fraction 0 gives empty validation arrays of shape (0, ...).
    """
    if not 0 <= fraction < 1:
        raise ConfigError(f"invalid validation_fraction={fraction!r}; allowed: 0 <= fraction < 1")
    n = len(x)
    num_val = int(round(fraction * n))
    if num_val == 0:
        return x, y, x[:0], y[:0]
    if num_val >= n:
        raise ConfigError(f"validation_fraction={fraction} leaves no training examples out of {n}")
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:num_val], order[num_val:]
    return x[train], y[train], x[val], y[val]


def subset_train(data: Dataset, fraction: float, seed: int) -> Dataset:
    """Keeps the first ceil(fraction * n) training examples of a seeded permutation (val/test unchanged)."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"invalid train fraction {fraction!r}; allowed: 0 < fraction <= 1")
    n = data.num_train
    keep = np.random.default_rng(seed).permutation(n)[: math.ceil(fraction * n)]
    return data.replace(x_train=data.x_train[keep], y_train=data.y_train[keep])
