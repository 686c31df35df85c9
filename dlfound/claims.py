"""A claim is a predicate over measurements: `judge` turns its outcome into a verdict with the evidence.

A claim about trained networks is judged on its effects: each judged quantity (a difference, a
ratio, a fraction of seeds) with its 95% paired-bootstrap interval over seeds (`effect`, method in
`dlfound.stats.paired_bootstrap`); the claim is reproduced when every interval clears its
criterion, not reproduced when one excludes it, inconclusive otherwise (`outcome`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from decimal import Decimal

import numpy as np

from dlfound import stats

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
QUICK_PREFIX = "quick run (tiny budget; verdict not meaningful): "


def effect(name: str, statistic, samples: dict, threshold: float, higher_passes: bool = True,
           seed: int = 0) -> dict:
    """A judged quantity with its 95% paired-bootstrap interval over seeds and that interval's verdict.

    Args:
      name: what the quantity is, e.g. "relu - sigmoid test accuracy, depth 8".
      statistic: maps {cell: values (R, S)} to R numbers (see `stats.paired_bootstrap`).
      samples: {cell: per-seed values (S,)}, in the same seed order in every cell.
      threshold: the criterion; the quantity must lie above it (below with `higher_passes=False`).
    Returns:
      {"name", "estimate", "low", "high", "level", "seeds", "threshold", "higher_passes", "verdict"}.
    """
    interval = stats.paired_bootstrap(statistic, samples, seed=seed)
    return {"name": name, **interval, "threshold": float(threshold), "higher_passes": bool(higher_passes),
            "verdict": stats.interval_verdict(interval, threshold, higher_passes)}


def effect_of_rows(name: str, statistic, rows: dict, threshold: float, higher_passes: bool = True) -> dict:
    """`effect` of per-seed rows (S, ...) holding more than one number per seed (say, one per layer):
    the bootstrap resamples seed indices, the same in every row, and `statistic` gets {name: (R, S, ...)}."""
    size = len(next(iter(rows.values())))
    pick = lambda v: {k: np.asarray(r)[v["seed"].astype(int)] for k, r in rows.items()}  # noqa: E731
    return effect(name, lambda v: statistic(pick(v)), {"seed": np.arange(size)}, threshold, higher_passes)


def mean_of(name: str):
    """The statistic mean over seeds of cell `name`, for `effect`."""
    return lambda v: v[name].mean(-1)


def median_of(name: str):
    """The statistic median over seeds of cell `name`, for `effect` (a target never reached is inf)."""
    return lambda v: np.median(v[name], -1)


def mean_difference(better: str, worse: str):
    """The statistic mean(better) - mean(worse) over seeds, for `effect`."""
    return lambda v: v[better].mean(-1) - v[worse].mean(-1)


def absolute_mean_difference(a: str, b: str):
    """The statistic |mean(a) - mean(b)| over seeds, for `effect`."""
    return lambda v: np.abs(v[a].mean(-1) - v[b].mean(-1))


def diverged_as_inf(losses) -> np.ndarray:
    """Per-model losses with a diverged model's NaN counted as +inf: the worst, never below a threshold
    and never reaching a target."""
    losses = np.asarray(losses, dtype=np.float64)
    return np.where(np.isnan(losses), np.inf, losses)


def _quotient(a, b):
    with np.errstate(invalid="ignore", divide="ignore"):
        return a / b


def mean_ratio(top: str, bottom: str):
    """The statistic mean(top) / mean(bottom) over seeds, for `effect` (inf/inf is NaN)."""
    return lambda v: _quotient(v[top].mean(-1), v[bottom].mean(-1))


def median_ratio(top: str, bottom: str):
    """The statistic median(top) / median(bottom) over seeds, for `effect` (inf/inf is NaN; a
    target never reached counts as inf, so only `top` never reaching it gives inf)."""
    return lambda v: _quotient(np.median(v[top], -1), np.median(v[bottom], -1))


def median_ratio_to_best(name: str, rivals):
    """The statistic median(name) / the lowest of the `rivals`' medians over seeds, for `effect`."""
    rivals = tuple(rivals)
    return lambda v: _quotient(np.median(v[name], -1), np.min([np.median(v[r], -1) for r in rivals], axis=0))


def largest_mean(v: dict) -> np.ndarray:
    """The largest of the cells' means over seeds: a statistic for `effect`, (R, S) -> (R,)."""
    return np.max([a.mean(-1) for a in v.values()], axis=0)


def outcome(effects: Iterable[dict], *exact) -> bool | None:
    """The three-valued outcome of a claim from its effects' verdicts and any exact conditions."""
    as_bool = {REPRODUCED: True, NOT_REPRODUCED: False, INCONCLUSIVE: None}
    return all_of([as_bool[e["verdict"]] for e in effects] + list(exact))


def effect_text(e: dict) -> str:
    """`name +0.12 [0.08, 0.15] (> 0.1, 16 seeds)`: an effect with its interval and criterion."""
    side = ">" if e["higher_passes"] else "<"
    return (f"{e['name']} {fmt(e['estimate'])} [{fmt(e['low'])}, {fmt(e['high'])}] "
            f"({side} {fmt(e['threshold'])}, {e['seeds']} seeds)")


def judge(id: str, claim: str, criterion: str, passed: bool | None, evidence: str,
          numbers: dict | None = None, quick: bool = False, effects: Iterable[dict] = ()) -> dict:
    """The verdict record of one claim: reproduced if `passed`, not if False, inconclusive if None or quick.

    Args:
      id: short claim id from the design table, e.g. "T1".
      claim: the claim in one sentence, with its source.
      criterion: the pass criterion, stated so that a reader can check it against `numbers`.
      passed: the criterion's outcome; None when the measurements cannot decide it.
      evidence: the measured numbers in words.
      numbers: the measurements behind the verdict (JSON-serializable).
      quick: a --quick run, whose budget is too small for any verdict to mean anything.
      effects: the judged quantities with their intervals (`effect`); `passed` must not claim
        more than they allow (`outcome(effects, ...)` computes it).
    """
    if passed is not None and not isinstance(passed, (bool, np.bool_)):
        raise TypeError(f"passed must be True, False or None, got {passed!r} ({type(passed).__name__})")
    effects = list(effects)
    if effects and passed is not None and passed and outcome(effects) is not True:
        raise ValueError(f"claim {id} cannot pass: not every interval clears its criterion")
    if quick:
        verdict = INCONCLUSIVE
        evidence = QUICK_PREFIX + evidence
    elif passed is None:
        verdict = INCONCLUSIVE
    else:
        verdict = REPRODUCED if passed else NOT_REPRODUCED
    record = {"id": id, "claim": claim, "criterion": criterion, "verdict": verdict,
              "evidence": evidence, "numbers": dict(numbers or {})}
    if effects:
        record["effects"] = effects
    return record


def k_of_n(flags: Iterable) -> tuple[int, int]:
    """How many of `flags` are true, and how many there are."""
    flags = np.asarray(list(flags), dtype=bool).ravel()
    return int(flags.sum()), int(flags.size)


def all_of(*conditions) -> bool | None:
    """Three-valued AND: False if any is False, else None if any is None, else True.

    Accepts the conditions as arguments or as one iterable.
    """
    if len(conditions) == 1 and not isinstance(conditions[0], (bool, np.bool_, type(None))):
        conditions = tuple(conditions[0])
    if any(c is not None and not c for c in conditions):
        return False
    if any(c is None for c in conditions):
        return None
    return True


def fmt(x, digits: int = 3) -> str:
    """Compact text for a number: 3 significant digits, whole below 1e6, 'nan'/'inf', lists bracketed."""
    if x is None:
        return "n/a"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x)).lower()
    if isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.ndim > 0):
        return "[" + ", ".join(fmt(v, digits) for v in np.asarray(x).ravel().tolist()) + "]"
    if isinstance(x, (int, np.integer)) and abs(int(x)) < 10**6:
        return str(int(x))
    if isinstance(x, int) and abs(x) >= 10**300:
        return f"{Decimal(x):.{digits - 1}e}"
    if not isinstance(x, (int, np.integer, float, np.floating, np.ndarray)):
        return str(x)
    value = float(x)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    if 10 ** (digits - 1) <= abs(value) < 1e6:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def ratio(a, b) -> float:
    """a / b as a float that never raises: x/0 is +-inf, 0/0 and anything with NaN is nan."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.nan
    if b == 0:
        return math.nan if a == 0 else math.copysign(math.inf, a) * math.copysign(1.0, b)
    if math.isinf(a) and math.isinf(b):
        return math.nan
    return a / b


def steps_to_target(history_values, steps, target: float, higher_is_better: bool = True):
    """The first step at which a metric reaches `target` (>= or, for losses, <=); inf if never.

    Args:
      history_values: metric per evaluation, shape (T,) or (S, T) for S seeds; NaN never reaches.
      steps: the training step of each evaluation, shape (T,).
      target: the threshold.
      higher_is_better: True for accuracies, False for losses and errors.

    Returns:
      A float for one history, an array of S floats for S histories.
    """
    values = np.asarray(history_values, dtype=np.float64)
    steps = np.asarray(steps, dtype=np.float64)
    if values.shape[-1:] != steps.shape:
        raise ValueError(f"history of shape {values.shape} does not match {steps.shape[0]} steps "
                         "on its last axis")
    with np.errstate(invalid="ignore"):
        reached = values >= target if higher_is_better else values <= target
    first = np.where(reached.any(axis=-1), steps[np.argmax(reached, axis=-1)], np.inf)
    return float(first) if np.ndim(first) == 0 else first


def verdict_line(claim: dict) -> str:
    """One line: `[T1] reproduced: <claim> -- <evidence>; 95% intervals: <effects>`."""
    line = f"[{claim['id']}] {claim['verdict']}: {claim['claim']} -- {claim['evidence']}"
    effects = claim.get("effects") or []
    return line + ("; 95% intervals: " + "; ".join(map(effect_text, effects)) if effects else "")


def print_verdicts(claims: list[dict], file=None) -> None:
    """Prints one verdict line per claim (stdout by default)."""
    for claim in claims:
        print(verdict_line(claim), file=file or sys.stdout)


def count_verdicts(claims: list[dict]) -> dict[str, int]:
    """How many claims got each verdict."""
    return {v: sum(c["verdict"] == v for c in claims) for v in VERDICTS}
