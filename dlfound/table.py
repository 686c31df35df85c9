"""Sweep results addressed by their axes, as (models, evaluations) arrays.

    table.final("test_accuracy", depth=4, activation="relu")          # one value per model
    table.history("train_loss", depth=8, learning_rate=0.1)            # (models, evaluations)
    table.steps_to("train_accuracy", 0.6, depth=8, activation="relu")  # first step reaching 0.6
    table.models(depth=8, activation="relu")                          # trained variables, per model

Keywords select rows by any field that is fixed for a model: the cell's grid axes (depth,
activation, ...), its members' values (seed, learning_rate, ...), `init`, `status`, or `cell=`
the cell's id. A selection must fall within one cell; a name that is none of these is an error
that lists them. Rows stay in memory as the sweep returns them; JSONL is only their file format.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np

from dlfound import claims
from dlfound.checkpoints import Models
from dlfound.errors import ConfigError

ORDER_FIELDS = ("cell", "model", "eval")  # where a row sits, not what was trained


def _matches(value, wanted) -> bool:
    if isinstance(wanted, tuple):
        wanted = list(wanted)
    if isinstance(wanted, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return math.isclose(value, wanted, rel_tol=1e-9, abs_tol=0.0)
    return value == wanted


class Table:
    """Rows of a sweep (one per cell x model x evaluation), selected by axis and member values."""

    def __init__(self, rows: list[dict], models: Optional[Callable[[str], Optional[Models]]] = None):
        self.rows = rows
        self._models = models  # cell id -> its trained models (None where none were kept)
        self._by_cell: dict[str, list[dict]] = {}
        for row in rows:
            self._by_cell.setdefault(row["cell"], []).append(row)
        self.fields = self._fixed_fields()

    def _fixed_fields(self) -> tuple[str, ...]:
        """Fields whose value is the same in every evaluation of a model (the selectable ones)."""
        fixed: Optional[set[str]] = None
        for rows in self._by_cell.values():
            first = [r for r in rows if r["model"] == rows[0]["model"]]
            same = {k for k in first[0] if all(r.get(k) == first[0][k] for r in first)}
            fixed = same if fixed is None else fixed & same
        return tuple(sorted((fixed or set()) - {"model", "eval"}))

    def cells(self) -> list[str]:
        """Cell ids in the order of the rows."""
        return list(self._by_cell)

    @property
    def axes(self) -> dict[str, list]:
        """Each selectable field that differs between cells, with its values in order of appearance."""
        out = {}
        for name in self.fields:
            values = []
            for rows in self._by_cell.values():
                value = rows[0].get(name)
                if value not in values:
                    values.append(value)
            if len(values) > 1 and name != "cell":
                out[name] = values
        return out

    def select(self, **where) -> list[dict]:
        """The rows of the one cell that `where` selects (see the module docstring)."""
        unknown = sorted(set(where) - set(self.fields))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r} to select by; valid: {', '.join(self.fields)}")
        cells = [where["cell"]] if "cell" in where else list(self._by_cell)
        if "cell" in where and where["cell"] not in self._by_cell:
            raise ValueError(f"no results for cell {where['cell']!r}; cells: {', '.join(self._by_cell)}")
        matched = {}
        for cell in cells:
            rows = [r for r in self._by_cell[cell] if all(_matches(r.get(k), v) for k, v in where.items())]
            if rows:
                matched[cell] = rows
        if len(matched) != 1:
            found = ", ".join(matched) if matched else "none"
            raise ValueError(f"{where} selects {len(matched)} cells ({found}); name one cell by its axes "
                             f"({', '.join(self.axes) or 'cell'})")
        return next(iter(matched.values()))

    def history(self, metric: str, *, layer: Optional[int] = None, **where) -> np.ndarray:
        """`metric` per selected model (rows) per evaluation (columns).

        Per-layer metrics (grad_norm, activation_mean, activation_std) need `layer`
        (negative counts from the output: -1 is the readout for grad_norm).
        """
        rows = self.select(**where)
        models = sorted({r["model"] for r in rows})
        evals = sorted({r["eval"] for r in rows})
        pick = (lambda v: v) if layer is None else (lambda v: v[layer])
        index = {(r["model"], r["eval"]): pick(r[metric]) for r in rows}
        return np.array([[index[(m, t)] for t in evals] for m in models], dtype=float)

    def final(self, metric: str, *, layer: Optional[int] = None, **where) -> np.ndarray:
        """`metric` at the last evaluation, one value per selected model."""
        return self.history(metric, layer=layer, **where)[:, -1]

    def diverged_models(self) -> int:
        """How many of the table's models diverged (each counted once, by its first evaluation's row)."""
        return sum(r["status"] == "diverged" for r in self.rows if r["eval"] == 0)

    def steps(self, **where) -> np.ndarray:
        """The training step of each evaluation."""
        return self.history("step", **where)[0]

    def steps_to(self, metric: str, target: float, *, higher_is_better: bool = True, **where) -> np.ndarray:
        """Per selected model, the first evaluated step at which `metric` reaches `target`; inf if never."""
        values = self.history(metric, **where)
        return np.atleast_1d(np.asarray(
            claims.steps_to_target(values, self.steps(**where), target, higher_is_better), dtype=float))

    def models(self, **where) -> Models:
        """The trained models of the selected rows (model axis in row order), as the sweep kept them."""
        rows = self.select(**where)
        cell = rows[0]["cell"]
        kept = self._models(cell) if self._models is not None else None
        if kept is None:  # a ConfigError: the command line reports it in one line
            raise ConfigError(f"no trained models of cell {cell!r} were kept (the run used --no-params, or "
                              "its checkpoint is missing or damaged); re-run with --overwrite to keep them")
        return kept.take(sorted({r["model"] for r in rows}))

    def member_values(self, name: str, **where) -> np.ndarray:
        """Per selected model, the value of a fixed field (seed, learning_rate, status, ...)."""
        first = {}
        for r in self.select(**where):
            first.setdefault(r["model"], r[name])
        return np.array([first[m] for m in sorted(first)])
