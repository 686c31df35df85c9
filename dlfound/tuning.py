"""Per-cell learning-rate tuning: the validation split picks the rate, the test split reports it.

Every rate of a cell trains in the same vmapped program (`Sweep(..., vmapped={"learning_rate":
rates})`), so no method loses a comparison only because it was given another's learning rate.
The pick uses the mean over seeds of the final validation metric; the per-seed values reported at
the picked rate then come from the test split, which took no part in the pick.

One rule picks the metric: the validation split's version of the quantity the claim judges, so
accuracy where the claim is about accuracy (T1/T2, the main sweep: `val_accuracy`) and log loss
where it is about the training objective (T3, T7: `val_loss`). A pick on the edge of its grid
(`at_grid_edge`) is flagged in the run's summary: the grid should then grow that way.
"""

from __future__ import annotations

import numpy as np

from dlfound.table import Table


def log_spaced(low: float, high: float, count: int) -> tuple[float, ...]:
    """`count` learning rates from `low` to `high`, evenly spaced in log scale, rounded to 3 digits."""
    return tuple(float(f"{r:.3g}") for r in np.geomspace(low, high, count))


def at_grid_edge(rate: float, rates) -> bool:
    """Whether `rate` is the smallest or largest of two or more `rates` (the optimum may lie beyond)."""
    return len(rates) > 1 and rate in (min(rates), max(rates))


def pick(table: Table, rates, select_by: str = "val_accuracy", higher_is_better: bool = True,
         **where) -> float:
    """The rate whose mean final `select_by` over seeds is best in the cell `where`.

    A diverged model's NaN counts as the worst value; ties go to the smaller rate.
    """
    scores = []
    for rate in rates:
        values = np.asarray(table.final(select_by, learning_rate=rate, **where), dtype=np.float64)
        sign = 1.0 if higher_is_better else -1.0
        scores.append(np.mean(np.where(np.isnan(values), -np.inf, sign * values)))
    return float(rates[int(np.argmax(scores))])


def tuned_final(table: Table, metric: str, rates, select_by: str = "val_accuracy",
                higher_is_better: bool = True, **where) -> tuple[float, np.ndarray]:
    """The picked rate of cell `where` and the per-seed final `metric` at that rate."""
    rate = pick(table, rates, select_by, higher_is_better, **where)
    return rate, table.final(metric, learning_rate=rate, **where)
