"""Declarative sweeps: structural axes loop in Python (one compile per cell), numeric axes
and seeds are vmapped (one program for all values), finished cells persist and resume.

    sweep = Sweep(base, grid={"depth": (1, 4), "activation": ("relu", "tanh")},
                  vmapped={"learning_rate": (1e-3, 1e-2)})
    table = run_sweep(sweep, data, seeds=range(5), run_dir=run_dir)
    acc_SxT = table.history("depth=4,activation=relu", "test_accuracy")
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
import time
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np

from dlfound import config as config_lib
from dlfound import runtime
from dlfound.config import VMAPPABLE, Config
from dlfound.data.dataset import Dataset
from dlfound.data.splits import subset_train
from dlfound.ensemble import check_fits, train_ensemble
from dlfound.errors import ConfigError
from dlfound.results import RunDir

STRUCTURAL = tuple(n for n in config_lib.field_names() if n not in VMAPPABLE + ("seed",))
PER_LAYER = ("grad_norm", "activation_mean", "activation_std")


@dataclasses.dataclass(frozen=True)
class Cell:
    """One structural setting: its id, its config and the axis values that define it."""

    id: str
    cfg: Config
    axes: dict


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A base config, a grid of structural axes and vmapped numeric axes."""

    base: Config
    grid: Mapping[str, Sequence] = dataclasses.field(default_factory=dict)
    vmapped: Mapping[str, Sequence] = dataclasses.field(default_factory=dict)

    def cells(self) -> list[Cell]:
        """Every combination of the grid's values, validated (errors name the cell)."""
        for name in self.grid:
            if name not in STRUCTURAL:
                raise ConfigError(f"invalid grid axis {name!r}; structural axes: {', '.join(STRUCTURAL)}")
        for name in self.vmapped:
            if name not in VMAPPABLE:
                raise ConfigError(f"invalid vmapped axis {name!r}; vmappable axes: {', '.join(VMAPPABLE)}")
        out = []
        for values in itertools.product(*self.grid.values()):
            axes = dict(zip(self.grid, values))
            cfg = config_lib.validate(self.base.replace(**axes))
            for name, column in self.vmapped.items():
                for value in column:
                    config_lib.validate(cfg.replace(**{name: value}))
            out.append(Cell(cell_id(axes), cfg, axes))
        ids = [c.id for c in out]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"grid has repeated values: {', '.join(sorted({i for i in ids if ids.count(i) > 1}))}")
        return out

    def members(self, seeds: Sequence[int]) -> tuple[list[int], list[dict]]:
        """Seeds x vmapped values, seed-major: the models of one cell's ensemble."""
        combos = [dict(zip(self.vmapped, v)) for v in itertools.product(*self.vmapped.values())]
        pairs = [(s, c) for s in seeds for c in combos]
        return [s for s, _ in pairs], [c for _, c in pairs]


def cell_id(axes: Mapping) -> str:
    """Stable, readable id of a cell, e.g. 'depth=4,activation=relu' ('base' if no axes)."""
    return ",".join(f"{k}={_fmt(v)}" for k, v in axes.items()) or "base"


def _fmt(value) -> str:
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return str(value)


def _data_for(cell: Cell, data: Union[Dataset, Callable[[Config], Dataset]]) -> Dataset:
    dataset = data(cell.cfg) if callable(data) else data
    if cell.cfg.train_fraction < 1:
        dataset = subset_train(dataset, cell.cfg.train_fraction, seed=cell.cfg.seed)
    config_lib.check_batch_size(cell.cfg, dataset.num_train)
    return dataset


def _rows(cell: Cell, seeds, members, result) -> list[dict]:
    """One row per model per evaluation; per-layer statistics as lists."""
    history = result.history
    num_models, num_evals = history["step"].shape
    rows = []
    for m in range(num_models):
        diverged = int(result.diverged_step[m])
        base = {"cell": cell.id, **cell.axes, "model": m, "seed": int(seeds[m]),
                **{k: float(v) for k, v in members[m].items()}, "init": cell.cfg.resolved_init,
                "status": "diverged" if diverged >= 0 else "ok", "diverged_step": diverged}
        for t in range(num_evals):
            row = dict(base, eval=t)
            for name, values in history.items():
                value = values[m, t]
                row[name] = value.tolist() if name in PER_LAYER else value.item()
            rows.append(row)
    return rows


class Progress:
    """One stderr line per cell: cells done, models trained, models/s, ETA."""

    def __init__(self, total_cells: int, quiet: bool):
        self.total, self.quiet, self.done, self.models, self.start = total_cells, quiet, 0, 0, time.time()

    def update(self, cell: Cell, num_models: int, seconds: float, skipped: bool = False) -> None:
        self.done += 1
        if skipped:
            self.total -= 1
            self.done -= 1
        else:
            self.models += num_models
        if self.quiet or skipped:
            return
        elapsed = time.time() - self.start
        rate = self.models / max(elapsed, 1e-9)
        eta = elapsed / max(self.done, 1) * (self.total - self.done)
        print(f"[{self.done}/{self.total}] {cell.id}: {num_models} models in {seconds:.1f}s | "
              f"{self.models} models, {rate:.1f} models/s | ETA {eta:.0f}s", file=sys.stderr, flush=True)


def run_sweep(
    sweep: Sweep, data: Union[Dataset, Callable[[Config], Dataset]], seeds: Sequence[int],
    run_dir: Optional[RunDir] = None, *, quiet: bool = False,
    on_result: Optional[Callable[[Cell, object], None]] = None,
) -> "Table":
    """Trains every unfinished cell (finished ones are read back) and returns all rows.

    `on_result(cell, result)` sees each freshly trained cell's TrainResult (with final
    parameters) before its rows are committed, e.g. to save weights next to the rows.
    """
    cells = sweep.cells()
    seeds = [int(s) for s in seeds]
    model_seeds, members = sweep.members(seeds)
    stored: dict[str, list[dict]] = {}
    for row in run_dir.load_rows(repair=runtime.is_writer()) if run_dir is not None else []:
        stored.setdefault(row["cell"], []).append(row)
    finished = set(stored)
    datasets = {cell.id: _data_for(cell, data) for cell in cells if cell.id not in finished}
    for cell in cells:
        if cell.id in datasets:
            check_fits(cell.cfg, datasets[cell.id])  # refuse an oversized cell before any training
    progress = Progress(len(cells), quiet)
    rows: list[dict] = []
    for cell in cells:
        if cell.id in finished:
            rows.extend(stored[cell.id])
            progress.update(cell, 0, 0.0, skipped=True)
            continue
        start = time.time()
        vmapped_dropout = "dropout_rate" in sweep.vmapped or None
        result = train_ensemble(cell.cfg, datasets.pop(cell.id), model_seeds, members,
                                vmapped_dropout=vmapped_dropout)
        cell_rows = _rows(cell, model_seeds, members, result)
        if on_result is not None:
            on_result(cell, result)
        if run_dir is not None and runtime.is_writer():
            run_dir.append_cell(cell.id, cell_rows)
        rows.extend(cell_rows)
        progress.update(cell, len(model_seeds), time.time() - start)
    return Table(rows)


def run_sweeps(
    sweeps: Sequence[Sweep], data: Union[Dataset, Callable[[Config], Dataset]], seeds: Sequence[int],
    run_dir: Optional[RunDir] = None, *, quiet: bool = False,
) -> "Table":
    """Several sweeps (distinct cell ids) into one Table; every cell of every sweep is
    validated before anything trains, so a bad late cell cannot waste the early ones."""
    for sweep in sweeps:
        sweep.cells()
    rows: list[dict] = []
    for sweep in sweeps:
        rows += run_sweep(sweep, data, seeds, run_dir, quiet=quiet).rows
    return Table(rows)


class Table:
    """Query helper over sweep rows: histories and final values as (models, evaluations) arrays."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self._by_cell: dict[str, list[dict]] = {}
        for row in rows:
            self._by_cell.setdefault(row["cell"], []).append(row)

    def cells(self) -> list[str]:
        return list(self._by_cell)

    def _cell(self, cell: str) -> list[dict]:
        if cell not in self._by_cell:
            raise KeyError(f"no results for cell {cell!r}; cells: {', '.join(self._by_cell)}")
        return self._by_cell[cell]

    def history(self, cell: str, metric: str, *, layer: Optional[int] = None, **member) -> np.ndarray:
        """Metric per model (rows, matching `member` values such as seed) per evaluation.

        Per-layer metrics (grad_norm, activation_mean, activation_std) need `layer`
        (negative counts from the output: -1 is the readout for grad_norm).
        """
        rows = [r for r in self._cell(cell) if all(math.isclose(r[k], v) for k, v in member.items())]
        models = sorted({r["model"] for r in rows})
        evals = sorted({r["eval"] for r in rows})
        pick = (lambda v: v) if layer is None else (lambda v: v[layer])
        index = {(r["model"], r["eval"]): pick(r[metric]) for r in rows}
        return np.array([[index[(m, t)] for t in evals] for m in models], dtype=float)

    def final(self, cell: str, metric: str, *, layer: Optional[int] = None, **member) -> np.ndarray:
        """Metric at the last evaluation, one value per model."""
        return self.history(cell, metric, layer=layer, **member)[:, -1]

    def steps(self, cell: str) -> np.ndarray:
        """Training step of each evaluation."""
        return self.history(cell, "step")[0]

    def member_values(self, cell: str, name: str) -> np.ndarray:
        """Per-model value of a member field (seed, learning_rate, status, ...)."""
        first = {}
        for r in self._cell(cell):
            first.setdefault(r["model"], r[name])
        return np.array([first[m] for m in sorted(first)])
