"""Declarative sweeps: a grid of structural cells, each with vmapped numeric axes and seeds;
finished cells persist and resume.

    sweep = Sweep(base, grid={"depth": (1, 4), "activation": ("relu", "tanh")},
                  vmapped={"learning_rate": (1e-3, 1e-2)})
    table = run_sweep(sweep, data, seeds=range(5), run_dir=run_dir)
    acc_SxT = table.history("test_accuracy", depth=4, activation="relu")

Cells are trained by as few compiled programs as the backend's packing policy allows
(`dlfound.packing`): cells that differ only in packable axes share one program, in which
every cell's members carry their variant. A grid is declared the same way whatever the policy.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time
from typing import Callable, Mapping, Optional, Sequence, Union

import jax
import numpy as np

from dlfound import config as config_lib
from dlfound import budget, checkpoints, ensemble, identity, packing, runtime, segmented
from dlfound.config import Config
from dlfound.data.dataset import Dataset
from dlfound.data.splits import subset_train
from dlfound.ensemble import check_fits, train_ensemble
from dlfound.errors import ConfigError
from dlfound.hyperparams import VMAPPABLE
from dlfound.packing import PER_LAYER, Pack
from dlfound.files import from_jsonable, to_jsonable
from dlfound.results import RunDir
from dlfound.stored import Finished
from dlfound.table import Table

STRUCTURAL = tuple(n for n in config_lib.field_names() if n not in VMAPPABLE + ("seed",))


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


def axes_of(cfg: Config, names: Sequence[str], **overrides) -> dict:
    """`cfg`'s values of the axes `names`, then `overrides`: the address of a cell of a `labelled` sweep."""
    return {name: getattr(cfg, name) for name in names} | overrides


def labelled(cfg: Config, names: Sequence[str], **grid) -> Sweep:
    """A sweep whose every cell carries the axes `names` (each at `cfg`'s value unless `grid` lists
    values), so the parts of one experiment, with their own configs, are told apart in one table."""
    return Sweep(cfg, {name: (value,) for name, value in axes_of(cfg, names).items()} | grid)


def cell_id(axes: Mapping) -> str:
    """Stable, readable id of a cell, e.g. 'depth=4,activation=relu' ('base' if no axes)."""
    return ",".join(f"{k}={_fmt(v)}" for k, v in axes.items()) or "base"


def _fmt(value) -> str:
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    return str(value)


class _Datasets:
    """Each cell's dataset, built once per distinct input (cells that share one share the object)."""

    def __init__(self, data: Union[Dataset, Callable[[Config], Dataset]]):
        self.data, self.subsets = data, {}

    def __call__(self, cfg: Config) -> Dataset:
        dataset = self.data(cfg) if callable(self.data) else self.data
        if cfg.train_fraction < 1:
            key = (id(dataset), cfg.train_fraction, cfg.seed)
            if key not in self.subsets:
                self.subsets[key] = (dataset, subset_train(dataset, cfg.train_fraction, seed=cfg.seed))
            dataset = self.subsets[key][1]
        config_lib.check_batch_size(cfg, dataset.num_train)
        return dataset


def _rows(cell: Cell, seeds, members, result) -> list[dict]:
    """One row per model per evaluation; per-layer statistics as lists."""
    history = {name: np.asarray(values) for name, values in result.history.items()}
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


@dataclasses.dataclass(frozen=True)
class Program:
    """Cells trained by one compiled program: their pack, dataset and the members of each cell."""

    cells: tuple[Cell, ...]
    pack: Pack
    data: Dataset
    seeds: tuple[tuple[int, ...], ...]  # per cell: each model's seed
    members: tuple[tuple[dict, ...], ...]  # per cell: each model's vmapped values
    lanes_for: int = 0  # members the lanes are sized for (default: this program's own)

    @property
    def num_models(self) -> int:
        return sum(len(s) for s in self.seeds)

    def label(self) -> str:
        ids = [c.id for c in self.cells]
        return ids[0] if len(ids) == 1 else f"{len(ids)} cells ({ids[0]} ... {ids[-1]})"

    def variants(self) -> list[int]:
        return [self.pack.index(c.cfg) for c, s in zip(self.cells, self.seeds) for _ in s]

    def segments(self) -> list[int]:
        """Evaluations per segment (`dlfound.segmented.plan`): one unless the program is long."""
        cfg = self.pack.base
        return segmented.plan(cfg.num_epochs // cfg.eval_every_epochs + 1, budget.estimate([self]).seconds,
                              segmented.segment_seconds())

    def store(self, run_path, identities: dict) -> Optional[segmented.Store]:
        """Where this program checkpoints its segments, keyed by everything it computes; None if it
        has one segment."""
        if run_path is None:
            return None
        store = segmented.Store(run_path, segmented.program_identity(
            [identities.get(c.id) for c in self.cells], [s for ss in self.seeds for s in ss],
            [m for ms in self.members for m in ms], self.variants(), self.lanes_for or self.num_models),
            self.segments)
        return store if len(store.counts) > 1 else None

    def train(self, store: Optional[segmented.Store] = None) -> list:
        """Trains every model in one `train_ensemble` call (in segments checkpointed to `store`, if
        given); returns each cell's own TrainResult."""
        result = train_ensemble(self.pack, self.data, [s for ss in self.seeds for s in ss],
                                [m for ms in self.members for m in ms], self.variants(),
                                lanes_for=self.lanes_for or None,
                                segments=store.counts if store is not None else (), store=store)
        out, start = [], 0
        for cell, seeds in zip(self.cells, self.seeds):
            part = jax.tree.map(lambda x, lo=start, hi=start + len(seeds): x[lo:hi], result)
            out.append(self.pack.own(part, self.pack.index(cell.cfg)))
            start += len(seeds)
        return out


def plan_programs(sweeps: Sequence[Sweep], data, seeds: Sequence[int], axes: Sequence[str]) -> list[Program]:
    """Every cell of `sweeps`, grouped into programs by the packing `axes` and shared data.

    The grouping depends only on the declaration (never on which cells are finished), so an
    interrupted run resumes with the very programs an uninterrupted one runs.
    """
    cells, origin = [], []
    for sweep in sweeps:
        for cell in sweep.cells():
            cells.append(cell)
            origin.append(sweep)
    ids = [c.id for c in cells]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ConfigError(f"cell {repeated[0]!r} appears in more than one sweep; cell ids must be unique")
    datasets = _Datasets(data)
    groups: dict[tuple, list[int]] = {}
    for group in packing.plan([c.cfg for c in cells], axes):
        for i in group:
            groups.setdefault((group[0], id(datasets(cells[i].cfg))), []).append(i)
    programs = []
    for (first, _), group in sorted(groups.items(), key=lambda kv: kv[1][0]):
        group_cells = tuple(cells[i] for i in group)
        member_lists = [origin[i].members(seeds) for i in group]
        programs.append(Program(
            group_cells, Pack(tuple(dict.fromkeys(c.cfg for c in group_cells))), datasets(group_cells[0].cfg),
            tuple(tuple(s) for s, _ in member_lists), tuple(tuple(m) for _, m in member_lists)))
    return programs


class Progress:
    """One stderr line per program: cells done, models trained, models/s, ETA."""

    def __init__(self, total_cells: int, quiet: bool):
        self.total, self.quiet, self.done, self.models, self.start = total_cells, quiet, 0, 0, time.time()

    def update(self, program: Program, seconds: float) -> None:
        self.done += len(program.cells)
        self.models += program.num_models
        if self.quiet:
            return
        elapsed = time.time() - self.start
        rate = self.models / max(elapsed, 1e-9)
        eta = elapsed / max(self.done, 1) * (self.total - self.done)
        print(f"[{self.done}/{self.total}] {program.label()}: {program.num_models} models in "
              f"{seconds:.1f}s | {self.models} models, {rate:.1f} models/s | ETA {eta:.0f}s",
              file=sys.stderr, flush=True)


def run_sweep(
    sweep: Sweep, data: Union[Dataset, Callable[[Config], Dataset]], seeds: Sequence[int],
    run_dir: Optional[RunDir] = None, *, quiet: bool = False,
    on_result: Optional[Callable[[Cell, object], None]] = None, pack: Optional[Sequence[str]] = None,
) -> "Table":
    """Trains every unfinished cell (finished ones are read back) and returns all rows.

    `on_result(cell, result)` sees each freshly trained cell's TrainResult (with final
    parameters, shaped as if the cell were trained alone) before its rows are committed.
    `pack` names the axes to pack into shared programs (default: `packing.default_axes()`).
    """
    return run_sweeps([sweep], data, seeds, run_dir, quiet=quiet, on_result=on_result, pack=pack)


def run_sweeps(
    sweeps: Sequence[Sweep], data: Union[Dataset, Callable[[Config], Dataset]], seeds: Sequence[int],
    run_dir: Optional[RunDir] = None, *, quiet: bool = False,
    on_result: Optional[Callable[[Cell, object], None]] = None, pack: Optional[Sequence[str]] = None,
) -> "Table":
    """Several sweeps (distinct cell ids) into one Table, their cells packed together where the
    policy allows; every cell is validated and every program's size checked before anything trains.

    The cells of one program are committed to `run_dir` together, in one write.
    """
    seeds = [int(s) for s in seeds]
    axes = packing.default_axes() if pack is None else tuple(pack)
    programs = plan_programs(sweeps, data, seeds, axes)
    order = [cell.id for sweep in sweeps for cell in sweep.cells()]
    identities = _identities(programs) if run_dir is not None else {}
    if run_dir is not None:
        run_dir.load_rows(repair=runtime.is_writer())  # drops a torn block a killed run left
    finished = Finished.read(run_dir, identities) if run_dir is not None else Finished()
    todo = [p for p in (_unfinished(program, finished) for program in programs) if p is not None]
    for program in todo:
        check_fits(program.pack, program.data)  # refuse an oversized program before any training
    if todo:
        cost = budget.estimate(todo)
        keep = run_dir is not None and run_dir.keep_models
        if run_dir is not None and runtime.is_writer():
            run_dir.check_space(cost.results_bytes + (cost.models_bytes if keep else 0))
        if not quiet:
            print(cost.line(keep), file=sys.stderr, flush=True)
    if run_dir is not None and runtime.is_writer():
        run_dir.record_programs(axes, [_describe(p) for p in programs])
    progress = Progress(sum(len(p.cells) for p in todo), quiet)
    keep_models = run_dir is not None and run_dir.keep_models
    if keep_models and todo and run_dir.writer:
        run_dir.file(checkpoints.MODELS_DIR)  # listed in the marker, so --overwrite deletes it
    for program in todo:
        start = time.time()
        store = program.store(run_dir.path if run_dir is not None else None, identities)
        if store is not None and run_dir.writer:
            run_dir.file(segmented.SEGMENTS_DIR)  # listed in the marker, so --overwrite deletes it
        results = program.train(store)
        blocks, block_identities = {}, {}
        for cell, seeds_, members, result in zip(program.cells, program.seeds, program.members, results):
            if on_result is not None:
                on_result(cell, result)
            variables = checkpoints.variables_of(result)
            block_identities[cell.id] = dict(identities.get(cell.id, {}), seeds=list(dict.fromkeys(seeds_)))
            if keep_models:  # every process calls save (Orbax writes from process 0), before the rows commit
                checkpoints.save(run_dir.path, cell.id, cell.cfg, seeds_, members, variables,
                                 block_identities[cell.id])
            in_memory = None if keep_models else checkpoints.Models(cell.cfg, variables, tuple(seeds_),
                                                                    tuple(members))
            blocks[cell.id] = _rows(cell, seeds_, members, result)
            finished.add(cell.id, dict.fromkeys(seeds_), blocks[cell.id], block_identities[cell.id],
                         in_memory)
        if run_dir is not None and runtime.is_writer():
            run_dir.append_cells(blocks, block_identities)
        if store is not None:
            store.clear()  # the rows are committed: the segments are no longer needed
        progress.update(program, time.time() - start)
    wanted = list(dict.fromkeys(seeds))
    return Table(finished.table_rows(order, wanted),
                 models=finished.models(run_dir.path if keep_models else None, wanted))


def _unfinished(program: Program, finished: Finished) -> Optional[Program]:
    """`program` restricted to the seeds its cells have not finished (None if none): a resumed or
    extended run trains only those, with the lanes of the whole program, so that its numbers are
    those an uninterrupted run gives."""
    keep = []
    for i, cell in enumerate(program.cells):
        missing = set(finished.missing(cell.id, program.seeds[i]))
        if missing:
            pairs = [(s, m) for s, m in zip(program.seeds[i], program.members[i]) if s in missing]
            keep.append((cell, tuple(s for s, _ in pairs), tuple(m for _, m in pairs)))
    if not keep:
        return None
    cells = tuple(c for c, _, _ in keep)
    return dataclasses.replace(program, cells=cells, pack=Pack(tuple(dict.fromkeys(c.cfg for c in cells))),
                               seeds=tuple(s for _, s, _ in keep), members=tuple(m for _, _, m in keep),
                               lanes_for=program.num_models)


def _identities(programs: Sequence[Program]) -> dict[str, dict]:
    """Each planned cell's identity (dlfound.identity), as it reads back from JSON."""
    versions, digests, out = identity.package_versions(), {}, {}
    for program in programs:
        key = id(program.data)
        if key not in digests:
            digests[key] = identity.data_digest(program.data)
        for cell, seeds, members in zip(program.cells, program.seeds, program.members):
            out[cell.id] = from_jsonable(to_jsonable(identity.cell_identity(
                cell.cfg.to_dict(), seeds, members, digests[key], versions)))
    return out


def _describe(program: Program) -> dict:
    """What config.json records of a program: its cells, stack, models and models per call."""
    members = program.num_models
    return {"cells": [c.id for c in program.cells], "variants": len(program.pack.variants),
            "stack_depth": program.pack.depth, "models": members,
            "models_per_call": ensemble.chunk_size(program.pack, program.data, members),
            "memory_budget_bytes": ensemble.memory_budget_bytes()}
