"""What a sweep has finished: per cell, the rows and trained models of each seed, from any block.

A block is the seeds of one cell trained together. A run later asked for more seeds trains only
the seeds it lacks (a new block per cell), and one asked for fewer returns only those: rows are
assembled per cell in the order of the seeds asked for, `model` renumbered to match, so a Table
never shows how the seeds were split into blocks.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import numpy as np

from dlfound import checkpoints, identity
from dlfound.checkpoints import Models, SavedModel
from dlfound.errors import ConfigError
from dlfound.table import Table


class Finished:
    """The finished seeds of each cell: their rows, and the block (seeds trained together) of each."""

    def __init__(self):
        self.rows: dict[str, dict[int, list[dict]]] = {}
        self.block_of: dict[str, dict[int, tuple]] = {}
        self.identity_of: dict[tuple, object] = {}
        self.in_memory: dict[tuple, Models] = {}

    @classmethod
    def read(cls, run_dir, identities: dict) -> "Finished":
        """The finished blocks of `run_dir` for the cells of `identities` (the sweep's), each checked
        against its cell's identity; a block trained on other inputs is a ConfigError naming them."""
        out = cls()
        for cell_id, stored, rows in run_dir.blocks():
            if cell_id not in identities:
                continue
            found = identity.differences(stored, identities[cell_id])
            if found:
                raise ConfigError(f"cell {cell_id!r} in {str(run_dir.path)!r} was trained on other inputs "
                                  f"({'; '.join(found[:3])}); choose another run directory, or pass "
                                  "--overwrite to train the run again")
            seeds = tuple(stored["seeds"]) if "seeds" in (stored or {}) else tuple(dict.fromkeys(
                r["seed"] for r in rows))
            out.add(cell_id, seeds, rows, stored)
        return out

    def add(self, cell_id: str, block_seeds: Sequence[int], rows: list[dict], block_identity=None,
            models: Optional[Models] = None) -> None:
        """Records a finished block: its rows (and, when not kept on disk, its models)."""
        block = tuple(int(s) for s in block_seeds)
        for row in rows:
            if row["seed"] not in self.block_of.get(cell_id, {}):
                self.rows.setdefault(cell_id, {}).setdefault(row["seed"], []).append(row)
        for seed in block:
            self.block_of.setdefault(cell_id, {}).setdefault(seed, block)
        self.identity_of[(cell_id, block)] = block_identity
        if models is not None:
            self.in_memory[(cell_id, block)] = models

    def missing(self, cell_id: str, seeds: Sequence[int]) -> list[int]:
        """The seeds of `seeds` that `cell_id` has not finished."""
        done = self.rows.get(cell_id, {})
        return [s for s in seeds if s not in done]

    def table_rows(self, cells: Sequence[str], seeds: Sequence[int]) -> list[dict]:
        """The rows of `cells` for those of `seeds` each has finished, seed-major in that order, `model`
        numbered to match."""
        out = []
        for cell_id in cells:
            position = 0
            for seed in seeds:
                rows = self.rows.get(cell_id, {}).get(seed, [])
                own = sorted({r["model"] for r in rows})
                out += [dict(r, model=position + own.index(r["model"])) for r in rows]
                position += len(own)
        return out

    def models(self, run_path, seeds: Sequence[int]):
        """A `cell id -> Models` loader for the Table: each cell's models for `seeds`, in its row order
        (read from the block checkpoints, or from memory); None where a block's were not kept."""
        def load(cell_id: str) -> Optional[Models]:
            parts = []
            for seed in [s for s in seeds if s in self.rows.get(cell_id, {})]:
                block = self.block_of[cell_id][seed]
                models = self.in_memory.get((cell_id, block))
                if models is None and run_path is not None:
                    models = checkpoints.load(run_path, cell_id, block, self.identity_of[(cell_id, block)])
                if models is None:
                    return None
                parts.append(models.take([i for i, s in enumerate(models.seeds) if s == seed]))
            variables = jax.tree.map(lambda *v: np.concatenate(v), *[p.variables for p in parts])
            return Models(parts[0].cfg, variables, sum((p.seeds for p in parts), ()),
                          sum((p.members for p in parts), ()))
        return load


def read_table(run_dir) -> Table:
    """Every finished block of a run directory (read only) as one Table, its models loadable."""
    from dlfound.results import RunDir

    reader = RunDir(run_dir, writer=False)
    blocks = reader.blocks()
    if not blocks:
        raise ConfigError(f"{str(reader.path)!r} holds no finished cells")
    finished = Finished()
    for cell_id, stored, rows in blocks:
        seeds = (stored or {}).get("seeds") or dict.fromkeys(r["seed"] for r in rows)
        finished.add(cell_id, seeds, rows, stored)
    seeds = list(dict.fromkeys(r["seed"] for _, _, rows in blocks for r in rows))
    cells = list(dict.fromkeys(cell for cell, _, _ in blocks))
    return Table(finished.table_rows(cells, seeds), models=finished.models(reader.path, seeds))


def load_models(run_dir, **where):
    """The trained models a selection of a finished run names (`Table.models`): a
    `dlfound.checkpoints.Models` with its config and variables (leading model axis)."""
    try:
        return read_table(run_dir).models(**where)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def load_model(run_dir, **where):
    """One trained model of a finished run, e.g. `load_model(path, seed=3, depth=8, activation="relu")`:
    its config, Flax module and variables, so that `module.apply(variables, x)` gives its outputs."""
    models = load_models(run_dir, **where)
    if len(models.seeds) != 1:
        raise ConfigError(f"{where} selects {len(models.seeds)} models; name one (for example seed=...)")
    return SavedModel(models.cfg, models.module(), models.one(0))
