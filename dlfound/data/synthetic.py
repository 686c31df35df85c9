"""Seeded synthetic tasks: truth tables, 2-D classification (blobs, moons, spirals, circles), and dispatch.

Generation uses the `data_seed` option (default 0), so the task stays fixed while the
run's `seed` varies; `seed` only draws the validation carve. Inputs are returned as
generated (normalize="none" by default), since each task's domain is part of its definition.
"""

from __future__ import annotations

import itertools
from typing import Optional

import numpy as np

from dlfound.data import functions
from dlfound.data.dataset import Dataset
from dlfound.data.normalize import standardize
from dlfound.data.options import check_options, nonnegative, positive, positive_int
from dlfound.data.splits import carve_validation
from dlfound.data.task import Task, sizes
from dlfound.errors import ConfigError


def _table(bits: int, rule) -> Task:
    bits = positive_int("bits", bits)
    x = np.array(list(itertools.product((0, 1), repeat=bits)), dtype=np.float32)
    y = np.array([rule(row) for row in x.astype(int)], dtype=np.int32)
    return Task(x, y, x.copy(), y.copy(), 2, carve_validation=False)


def xor(*, bits: int = 2) -> Task:
    """Parity of `bits` inputs in {0,1}; train and test are the full truth table."""
    return _table(bits, lambda row: int(row.sum() % 2))


def and_(*, bits: int = 2) -> Task:
    """AND of `bits` inputs in {0,1}; train and test are the full truth table."""
    return _table(bits, lambda row: int(row.all()))


def or_(*, bits: int = 2) -> Task:
    """OR of `bits` inputs in {0,1}; train and test are the full truth table."""
    return _table(bits, lambda row: int(row.any()))


def not_() -> Task:
    """NOT of one input in {0,1}; train and test are the full truth table."""
    return _table(1, lambda row: int(1 - row[0]))


def _balanced_labels(rng: np.random.Generator, n: int, classes: int = 2) -> np.ndarray:
    return rng.permutation(np.arange(n) % classes).astype(np.int32)


def _two_class(sample, num_examples, num_test, data_seed) -> Task:
    n_train, n_test = sizes(num_examples, num_test)
    rng = np.random.default_rng(data_seed)
    splits = []
    for n in (n_train, n_test):
        y = _balanced_labels(rng, n)
        splits += [sample(rng, y).astype(np.float32), y]
    return Task(*splits, num_classes=2)


def blobs(*, num_examples: int = 200, num_test: Optional[int] = None, dim: int = 2,
          margin: float = 0.5, noise: float = 0.5, data_seed: int = 0) -> Task:
    """Two Gaussian blobs at +-w (w = ones/sqrt(dim)), std `noise`, separated by a gap of width `margin`.

    Points closer than margin/2 to the plane w.x = 0 are pushed out along w, so the
    classes are linearly separable with margin >= margin/2 on each side.
    """
    dim, margin, noise = positive_int("dim", dim), nonnegative("margin", margin), nonnegative("noise", noise)
    w = np.ones(dim) / np.sqrt(dim)

    def sample(rng, y):
        sign = (2 * y - 1)[:, None]
        x = sign * w + noise * rng.standard_normal((len(y), dim))
        shortfall = np.maximum(0.0, margin / 2 - sign[:, 0] * (x @ w))
        return x + shortfall[:, None] * sign * w

    return _two_class(sample, num_examples, num_test, data_seed)


def moons(*, num_examples: int = 200, num_test: Optional[int] = None, noise: float = 0.1,
          data_seed: int = 0) -> Task:
    """Two interleaving half circles (label 0 upper, 1 lower) plus Gaussian input noise."""
    noise = nonnegative("noise", noise)

    def sample(rng, y):
        theta = rng.uniform(0, np.pi, len(y))
        upper = np.stack([np.cos(theta), np.sin(theta)], 1)
        lower = np.stack([1 - np.cos(theta), 0.5 - np.sin(theta)], 1)
        x = np.where(y[:, None] == 0, upper, lower)
        return x + noise * rng.standard_normal(x.shape)

    return _two_class(sample, num_examples, num_test, data_seed)


def spirals(*, num_examples: int = 200, num_test: Optional[int] = None, noise: float = 0.05,
            turns: float = 1.5, data_seed: int = 0) -> Task:
    """Two interleaved Archimedean spirals of `turns` turns (radius <= 1), one per class."""
    noise, turns = nonnegative("noise", noise), positive("turns", turns)

    def sample(rng, y):
        t = rng.uniform(0.05, 1.0, len(y))
        angle = 2 * np.pi * turns * t + np.pi * y
        x = t[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
        return x + noise * rng.standard_normal(x.shape)

    return _two_class(sample, num_examples, num_test, data_seed)


def circles(*, num_examples: int = 200, num_test: Optional[int] = None, noise: float = 0.05,
            factor: float = 0.5, data_seed: int = 0) -> Task:
    """Two concentric circles: label 0 on radius 1, label 1 on radius `factor` (< 1)."""
    noise, factor = nonnegative("noise", noise), positive("factor", factor)
    if factor >= 1:
        raise ConfigError(f"invalid factor={factor!r}; allowed: 0 < factor < 1")

    def sample(rng, y):
        angle = rng.uniform(0, 2 * np.pi, len(y))
        radius = np.where(y == 0, 1.0, factor)[:, None]
        x = radius * np.stack([np.cos(angle), np.sin(angle)], 1)
        return x + noise * rng.standard_normal(x.shape)

    return _two_class(sample, num_examples, num_test, data_seed)


TASKS = {
    "xor": xor, "and": and_, "or": or_, "not": not_,
    "blobs": blobs, "moons": moons, "spirals": spirals, "circles": circles,
    **functions.TASKS,
}


def load_synthetic(name: str, *, validation_fraction: float = 0.1, seed: int = 0,
                   normalize: str = "none", **options) -> Dataset:
    """Generates task `name` with `options`, carves validation with `seed`, and returns a Dataset."""
    make = TASKS[name]
    check_options(make, options, name, extra=("normalize",))
    task = make(**options)
    x, y = task.x_train, task.y_train
    if task.carve_validation:
        x, y, x_val, y_val = carve_validation(x, y, validation_fraction, seed)
    else:
        x_val, y_val = x[:0], y[:0]
    x, x_val, x_test = standardize(x, x_val, task.x_test, mode=normalize)
    return Dataset(x, y, x_val, y_val, x_test, task.y_test, name=name, num_classes=task.num_classes)
