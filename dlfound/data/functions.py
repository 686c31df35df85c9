"""Seeded 1-D tasks: the sawtooth (Telgarsky's tent-map composition) and regressions sin/abs/bump/step."""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from dlfound.data.options import interval, nonnegative, positive, positive_int
from dlfound.data.task import Task, sizes
from dlfound.errors import ConfigError


def tent(x: np.ndarray) -> np.ndarray:
    """The tent map on [0,1]: 2x below 1/2, 2(1-x) above."""
    return np.where(x < 0.5, 2 * x, 2 * (1 - x))


def tent_power(x: np.ndarray, k: int) -> np.ndarray:
    """The k-fold composition of the tent map: 2^k linear pieces and 2^(k-1) teeth on [0,1]."""
    for _ in range(k):
        x = tent(x)
    return x


def _depth(k: Optional[int], teeth: Optional[int]) -> int:
    if teeth is None:
        return positive_int("k", 3 if k is None else k)
    teeth = positive_int("teeth", teeth)
    if teeth & (teeth - 1):
        raise ConfigError(f"invalid teeth={teeth!r}; allowed: a power of two (k = log2(teeth) + 1)")
    from_teeth = int(math.log2(teeth)) + 1
    if k is not None and k != from_teeth:
        raise ConfigError(f"k={k!r} and teeth={teeth!r} disagree; a sawtooth with k folds has 2^(k-1) teeth")
    return from_teeth


def sawtooth(*, k: Optional[int] = None, teeth: Optional[int] = None, task: str = "regression",
             num_examples: int = 256, num_test: Optional[int] = None, noise: float = 0.0,
             data_seed: int = 0) -> Task:
    """x ~ U[0,1]; task "regression": y = tent^k(x) (+ noise); task "classification": y = [tent^k(x) > 1/2].

    `k` (default 3) folds give 2^k linear pieces; `teeth` (a power of two) sets k = log2(teeth)+1.
    The classification labels alternate over 2^k + 1 intervals (Telgarsky's alternating points).
    """
    depth, noise = _depth(k, teeth), nonnegative("noise", noise)
    if task not in ("regression", "classification"):
        raise ConfigError(f"invalid task={task!r}; allowed: regression, classification")
    n_train, n_test = sizes(num_examples, num_test)
    rng = np.random.default_rng(data_seed)
    splits = []
    for n in (n_train, n_test):
        x = rng.uniform(0.0, 1.0, (n, 1))
        height = tent_power(x, depth)
        if task == "classification":
            splits += [x.astype(np.float32), (height[:, 0] > 0.5).astype(np.int32)]
        else:
            target = height + noise * rng.standard_normal(x.shape)
            splits += [x.astype(np.float32), target.astype(np.float32)]
    return Task(*splits, num_classes=2 if task == "classification" else 0)


def _regression(fn: Callable[[np.ndarray, float, float], np.ndarray], num_examples, num_test,
                noise, domain, data_seed) -> Task:
    lo, hi = interval("domain", domain)
    noise = nonnegative("noise", noise)
    n_train, n_test = sizes(num_examples, num_test)
    rng = np.random.default_rng(data_seed)
    splits = []
    for n in (n_train, n_test):
        x = rng.uniform(lo, hi, (n, 1))
        y = fn(x, lo, hi) + noise * rng.standard_normal(x.shape)
        splits += [x.astype(np.float32), y.astype(np.float32)]
    return Task(*splits, num_classes=0)


def sin(*, num_examples: int = 256, num_test: Optional[int] = None, noise: float = 0.0,
        frequency: float = 1.0, domain=(-1.0, 1.0), data_seed: int = 0) -> Task:
    """y = sin(pi * frequency * x) on `domain` (x uniform), plus Gaussian target noise."""
    frequency = positive("frequency", frequency)
    return _regression(lambda x, lo, hi: np.sin(np.pi * frequency * x),
                       num_examples, num_test, noise, domain, data_seed)


def abs_(*, num_examples: int = 256, num_test: Optional[int] = None, noise: float = 0.0,
         domain=(-1.0, 1.0), data_seed: int = 0) -> Task:
    """y = |x - c|, c the domain's midpoint (|x| on [-1,1]), plus Gaussian target noise."""
    return _regression(lambda x, lo, hi: np.abs(x - (lo + hi) / 2),
                       num_examples, num_test, noise, domain, data_seed)


def bump(*, num_examples: int = 256, num_test: Optional[int] = None, noise: float = 0.0,
         width: float = 0.2, domain=(-1.0, 1.0), data_seed: int = 0) -> Task:
    """y = exp(-(x - c)^2 / (2 width^2)), a Gaussian bump at the domain's midpoint c."""
    width = positive("width", width)
    return _regression(lambda x, lo, hi: np.exp(-((x - (lo + hi) / 2) ** 2) / (2 * width**2)),
                       num_examples, num_test, noise, domain, data_seed)


def step(*, num_examples: int = 256, num_test: Optional[int] = None, noise: float = 0.0,
         sharpness: float = 50.0, domain=(-1.0, 1.0), data_seed: int = 0) -> Task:
    """y = sigmoid(sharpness * (x - c)), a steep step at the domain's midpoint c."""
    sharpness = positive("sharpness", sharpness)
    return _regression(lambda x, lo, hi: 0.5 * (1 + np.tanh(0.5 * sharpness * (x - (lo + hi) / 2))),
                       num_examples, num_test, noise, domain, data_seed)


TASKS = {"sawtooth": sawtooth, "sin": sin, "abs": abs_, "bump": bump, "step": step}
