"""Trained models kept with Orbax: each finished cell's final variables, per member, in the run directory.

    run_dir/models/<cell key>/     an Orbax checkpoint of one block (a cell's seeds trained together):
        arrays                     {"params", "batch_stats"}, each array with a leading model axis
        meta                       cell id, config, seeds, vmapped values, the block's fingerprint
                                   and a checksum of the arrays

`write` and `read` are the checkpoint format that segment checkpoints (dlfound.segmented) share:
a damaged checkpoint (arrays that no longer match their checksum) reads as a missing one.
A cell's checkpoint is written (atomically, by Orbax's rename on commit) before its rows are
committed, and carries the fingerprint of the cell's identity (`dlfound.identity`): a model is
returned only if that fingerprint matches the finished cell's, so a checkpoint never outlives
or mixes with a run of other inputs. Every process calls `save`; Orbax writes from process 0.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import NamedTuple, Optional

import jax
import numpy as np

from dlfound.config import Config
from dlfound.files import dumps, to_jsonable
from dlfound.models import MLP, make_model

MODELS_DIR = "models"
logging.getLogger("absl").setLevel(logging.ERROR)  # Orbax logs every save at INFO


def variables_of(result) -> dict:
    """A TrainResult's final variables as Flax takes them: params, and batch_stats where there are any."""
    variables = {"params": result.params}
    if result.batch_stats:
        variables["batch_stats"] = result.batch_stats
    return variables


def fingerprint(identity) -> str:
    """A short digest of an identity (a cell's, as stored with its rows, or a program's)."""
    return hashlib.sha256(dumps(to_jsonable(identity)).encode()).hexdigest()[:16]


def checksum(tree) -> str:
    """sha256 (16 hex digits) over every leaf's path, dtype, shape and bytes: a damaged file never loads."""
    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        leaf = np.ascontiguousarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)}|{leaf.dtype.str}|{leaf.shape}|".encode())
        digest.update(leaf.reshape(-1).view(np.uint8))
    return digest.hexdigest()[:16]


def cell_path(run_path: Path, cell_id: str, seeds) -> Path:
    """Where the models of a cell's block of `seeds` live: a readable prefix of the cell's id and a
    digest of the id and the seeds."""
    readable = "".join(c if c.isalnum() or c in "=-." else "_" for c in cell_id)[:60]
    key = f"{cell_id}|{','.join(str(int(s)) for s in seeds)}"
    return Path(run_path) / MODELS_DIR / f"{readable}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def orbax():
    import orbax.checkpoint as ocp  # imported on first use: it is slow to import

    return ocp


def write(path: Path, arrays: dict, meta: dict) -> None:
    """Saves a tree of host `arrays` and JSON `meta` as one Orbax checkpoint (committed by a rename,
    so never half-written), `meta` with the arrays' checksum; every process calls it."""
    ocp = orbax()
    meta = to_jsonable({**meta, "checksum": checksum(arrays)})
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
        checkpointer.save(Path(path).absolute(), force=True, args=ocp.args.Composite(
            arrays=ocp.args.StandardSave(arrays), meta=ocp.args.JsonSave(meta)))


def read(path: Path) -> Optional[tuple[dict, dict]]:
    """(meta, host arrays) of a checkpoint `write` made; None if there is none or it is truncated or
    damaged (its arrays no longer match their checksum)."""
    path = Path(path).absolute()
    if not (path / "meta").exists():
        return None
    ocp = orbax()
    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
            restored = checkpointer.restore(path, args=ocp.args.Composite(
                arrays=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
    except Exception:  # noqa: BLE001 - a truncated or corrupted checkpoint is a missing one
        return None
    meta, arrays = dict(restored["meta"]), jax.tree.map(np.asarray, dict(restored["arrays"]))
    return (meta, arrays) if meta.get("checksum") == checksum(arrays) else None


def save(run_path: Path, cell_id: str, cfg: Config, seeds, members, variables: dict, identity) -> None:
    """Writes one cell's final variables (leading model axis) with its metadata."""
    tree = jax.tree.map(np.asarray, {"params": variables["params"],
                                     "batch_stats": variables.get("batch_stats") or {}})
    meta = {"cell": cell_id, "config": cfg.to_dict(), "seeds": [int(s) for s in seeds],
            "members": [{k: float(v) for k, v in m.items()} for m in members],
            "fingerprint": fingerprint(identity)}
    write(cell_path(run_path, cell_id, dict.fromkeys(seeds)), tree, meta)


@dataclasses.dataclass(frozen=True)
class Models:
    """A cell's trained models: its config and variables with a leading model axis."""

    cfg: Config
    variables: dict
    seeds: tuple
    members: tuple

    @property
    def num_outputs(self) -> int:
        return int(self.variables["params"]["readout"]["kernel"].shape[-1])

    def module(self) -> MLP:
        """The Flax module: `models.module().apply(models.one(i), x)`."""
        return make_model(self.cfg, self.num_outputs)

    def one(self, index: int) -> dict:
        """The variables of model `index` (no model axis), ready for `module().apply`."""
        return jax.tree.map(lambda v: v[index], self.variables)

    def take(self, indices) -> "Models":
        """The models at `indices`, in that order."""
        indices = list(indices)
        return Models(self.cfg, jax.tree.map(lambda v: v[np.asarray(indices, int)], self.variables),
                      tuple(self.seeds[i] for i in indices), tuple(self.members[i] for i in indices))


def load(run_path: Path, cell_id: str, seeds, identity=None) -> Optional[Models]:
    """The models of a cell's block of `seeds`, or None if none were kept, the checkpoint is
    damaged, or its fingerprint is not that of `identity` (the finished block's)."""
    found = read(cell_path(run_path, cell_id, seeds))
    if found is None:
        return None
    meta, variables = found
    foreign = identity is not None and meta.get("fingerprint") != fingerprint(identity)
    if meta.get("cell") != cell_id or foreign:
        return None
    if not variables.get("batch_stats"):
        variables.pop("batch_stats", None)
    return Models(Config.from_dict(meta["config"]), variables, tuple(meta["seeds"]),
                  tuple(dict(m) for m in meta["members"]))


class SavedModel(NamedTuple):
    """One trained model: `module.apply(variables, x)` gives its outputs (logits)."""

    cfg: Config
    module: MLP
    variables: dict
