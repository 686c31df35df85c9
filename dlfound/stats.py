"""Statistics over seeds, declared once for every experiment."""

from __future__ import annotations

import math

import numpy as np


def _t_quantile(p: float, df: int) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def describe(values) -> dict:
    """Mean, sample std, min, max, count and 95% t-interval over seeds; NaNs are excluded and counted."""
    x = np.asarray(values, dtype=np.float64).ravel()
    nan = np.isnan(x)
    x = x[~nan]
    n = int(x.size)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan,
                "n": 0, "n_nan": int(nan.sum()), "ci95": [math.nan, math.nan]}
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=1)) if n > 1 else 0.0
    half = _t_quantile(0.975, n - 1) * std / math.sqrt(n) if n > 1 else 0.0
    return {"mean": mean, "std": std, "min": float(np.min(x)), "max": float(np.max(x)),
            "n": n, "n_nan": int(nan.sum()), "ci95": [mean - half, mean + half]}
