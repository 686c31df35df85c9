"""Input standardization with statistics from the training split only."""

from __future__ import annotations

import numpy as np

from dlfound.errors import ConfigError

MODES = ("scalar", "feature", "none")


def standardize(x_train: np.ndarray, *others: np.ndarray, mode: str = "scalar") -> list[np.ndarray]:
    """Returns float32 copies of all arrays standardized with x_train's mean and std.

    "scalar": one mean and std over every train value (as MNIST's 0.1307/0.3081);
    "feature": per-feature mean and std (constant features get std 1); "none": only cast.
    """
    if mode not in MODES:
        raise ConfigError(f"invalid normalize={mode!r}; allowed: {', '.join(MODES)}")
    arrays = [np.asarray(a, dtype=np.float32) for a in (x_train, *others)]
    if mode == "none" or x_train.size == 0:
        return arrays
    axis = None if mode == "scalar" else 0
    mean = arrays[0].mean(axis=axis, dtype=np.float64)
    std = arrays[0].std(axis=axis, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    return [((a - mean) / std).astype(np.float32) for a in arrays]
