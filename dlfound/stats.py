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


BOOTSTRAP_RESAMPLES = 10_000
# Fewer seeds than this decide nothing: with 3 seeds a bootstrap distribution has 10 distinct means
# and its interval is about the range of the seeds' values, far narrower than the t-interval.
MIN_SEEDS_FOR_VERDICT = 8


def paired_bootstrap(statistic, samples: dict, level: float = 0.95,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict:
    """A statistic of several cells' per-seed values with its paired percentile-bootstrap interval.

    Seed s is the same key in every cell of a sweep (common random numbers), so the cells' values
    are paired by seed: each resample draws seed indices with replacement and applies the SAME
    indices to every cell, so the seeds' shared luck stays out of the interval of a difference or
    a ratio. The interval is the expanded percentile interval (Hesterberg 2015, "What teachers
    should know about the bootstrap", Am. Stat. 69(4)): the percentiles at alpha' / 2 and
    1 - alpha' / 2 with z(alpha' / 2) = sqrt(n / (n - 1)) t(alpha / 2, n - 1), which corrects the
    plain percentile interval's narrowness at few seeds (at 3 seeds it would claim 95% and cover
    far less).

    Args:
      statistic: maps {name: values (R, S)} (R resamples of S seeds) to R numbers, vectorized over
        resamples, e.g. `lambda v: v["relu"].mean(-1) - v["sigmoid"].mean(-1)`.
      samples: {name: per-seed values (S,)}, all in the same seed order.
      level: the interval's coverage.
    Returns:
      {"estimate": statistic on the seeds as measured, "low", "high", "level", "seeds"}.
    """
    arrays = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in samples.items()}
    sizes = {a.size for a in arrays.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"paired samples need the same, non-zero number of seeds; got sizes {sorted(sizes)}")
    n = sizes.pop()
    estimate = float(np.asarray(statistic({k: a[None, :] for k, a in arrays.items()})).ravel()[0])
    index = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    values = np.asarray(statistic({k: a[index] for k, a in arrays.items()}), dtype=np.float64).ravel()
    if n < 2 or np.isnan(values).all():  # no interval: too few seeds, or the statistic is never defined
        return {"estimate": estimate, "low": math.nan, "high": math.nan, "level": level, "seeds": n}
    from scipy.special import ndtr

    tail = float(ndtr(-math.sqrt(n / (n - 1)) * _t_quantile(1 - (1 - level) / 2, n - 1)))
    # Order statistics, not interpolation: a quantity can be infinite (a target never reached).
    low, high = (float(q) for q in np.nanquantile(values, [tail, 1 - tail], method="inverted_cdf"))
    return {"estimate": estimate, "low": low, "high": high, "level": level, "seeds": n}


def interval_verdict(interval: dict, threshold: float, higher_passes: bool = True) -> str:
    """"reproduced" when the whole interval clears `threshold` (above it, or below it with
    `higher_passes=False`), "not reproduced" when it lies wholly on the other side, else
    "inconclusive" (the seeds cannot tell, or there are fewer than MIN_SEEDS_FOR_VERDICT)."""
    low, high = interval["low"], interval["high"]  # an infinite end (a target never reached) is an end
    if math.isnan(low) or math.isnan(high) or interval["seeds"] < MIN_SEEDS_FOR_VERDICT:
        return "inconclusive"
    above, below = low > threshold, high < threshold
    if above or below:
        return "reproduced" if above == higher_passes else "not reproduced"
    return "inconclusive"
