"""Input standardization with statistics from the training split only."""

from __future__ import annotations

import numpy as np

from dlfound.errors import ConfigError

MODES = ("scalar", "feature", "none")
_CHUNK = 1 << 22  # values per chunk when summing squares: bounded float32 temporaries


def _mean_std(x: np.ndarray, per_feature: bool) -> tuple[np.ndarray, np.ndarray]:
    rows = x.reshape(len(x), -1)
    axis = 0 if per_feature else None
    mean = rows.mean(axis=axis, dtype=np.float64)
    squares = np.zeros_like(mean)
    for chunk in np.array_split(rows, max(1, rows.size // _CHUNK)):
        squares = squares + np.square(chunk - mean.astype(np.float32)).sum(axis=axis, dtype=np.float64)
    std = np.sqrt(squares / (len(rows) if per_feature else rows.size))
    shape = x.shape[1:] if per_feature else ()
    return mean.reshape(shape), np.where(std > 0, std, 1.0).reshape(shape)


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
    with np.errstate(over="ignore"):  # an overflow is reported just below
        mean, std = _mean_std(arrays[0], per_feature=mode == "feature")
    if not np.isfinite(std).all():
        raise ConfigError(f"training inputs too large to standardize in float32 (largest magnitude "
                          f"{float(np.max(np.abs(arrays[0]))):.3g}); rescale them or use normalize=none")
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    return [(a - mean) / std for a in arrays]
