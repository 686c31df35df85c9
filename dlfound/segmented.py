"""Long programs trained in segments, the ensemble's whole state checkpointed after each (Orbax),
so that a run killed inside a long cell resumes from its last segment instead of the cell's start.

A program whose estimated time exceeds twice `segment_seconds()` (60 s; `DLFOUND_SEGMENT_SECONDS`
overrides) is split at its evaluations into segments of about that long, each of at least two
evaluations; shorter programs keep one segment and run exactly as before. Every chunk of members
(`ensemble.chunk_size`) is compiled as `start` (the models before training) and `advance`
(evaluations first..first+count-1) and checkpointed after each segment under

    run_dir/segments/<program key>/chunk-<c>/    params, optimizer state, batch statistics, step,
                                                 random keys, divergence flags and history so far

with the program's fingerprint and a checksum of the arrays: a checkpoint of other inputs, or a
damaged one, is never loaded (the chunk is trained again). Only a chunk's latest segment is kept,
and a program's checkpoints are deleted once its rows are committed. The segmented run equals the
run in one program bit for bit on a CPU (tests/test_segments.py).
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from dlfound import checkpoints, runtime
from dlfound.errors import ConfigError
from dlfound.files import read_json, write_json_atomic
from dlfound.train import Features, TrainResult, late_divergence, make_segments

SEGMENTS_DIR = "segments"
SEGMENT_SECONDS = 60.0
PLAN_FILE = "plan.json"


def segment_seconds() -> float:
    """Seconds a segment aims at: $DLFOUND_SEGMENT_SECONDS, else 60."""
    text = os.environ.get("DLFOUND_SEGMENT_SECONDS", "").strip()
    if not text:
        return SEGMENT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"invalid DLFOUND_SEGMENT_SECONDS={text!r}; allowed: seconds >= 0 (0: segments "
                          "of two evaluations)")
    return value


def plan(num_evaluations: int, seconds: float, target: float) -> list[int]:
    """Evaluations per segment (summing to `num_evaluations`): one segment unless the program is
    expected to take more than 2 x `target` seconds; else about `target` seconds each, >= 2 each."""
    if seconds <= 2 * target and target > 0 or num_evaluations < 4:
        return [num_evaluations]
    parts = min(num_evaluations // 2, max(2, int(seconds // max(target, 1e-9))))
    counts = [num_evaluations // parts] * parts
    counts[-1] += num_evaluations - sum(counts)
    return counts


@functools.lru_cache(maxsize=16)
def programs(pack, features: Features, mesh):
    """The compiled pieces of a pack's run: `start(seeds, data, hparams, variants)` and, per count,
    `advance(count)(states, seeds, data, hparams, first)`; a model axis sharded over `mesh`."""
    from dlfound.ensemble import AXIS

    segments, spec = make_segments(pack, features), PartitionSpec(AXIS)
    options = runtime.ensemble_compiler_options()

    def start(seed, data, hparams, variant):
        return segments.start(jax.random.key(seed), data, hparams, variant)

    start_program = jax.jit(jax.shard_map(
        jax.vmap(start, in_axes=(0, None, 0, 0)), mesh=mesh, in_specs=(spec, PartitionSpec(), spec, spec),
        out_specs=spec, check_vma=False), compiler_options=options)

    @functools.cache
    def advance_program(count: int):
        def advance(state, seed, data, hparams, first):
            return segments.advance(state, jax.random.key(seed), data, hparams, first, count)
        return jax.jit(jax.shard_map(
            jax.vmap(advance, in_axes=(0, 0, None, 0, None)), mesh=mesh,
            in_specs=(spec, spec, PartitionSpec(), spec, PartitionSpec()), out_specs=spec, check_vma=False),
            compiler_options=options)

    return start_program, advance_program


def _is_key(leaf) -> bool:
    return jnp.issubdtype(getattr(leaf, "dtype", np.float32), jax.dtypes.prng_key)


def _host(tree):
    """Host arrays of a (sharded) tree, random keys as their key data."""
    from dlfound.ensemble import to_host

    return to_host(jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree))


class Store:
    """The segment checkpoints of one program: the latest per chunk, with the program's fingerprint,
    and its segment plan (`counts`: planned once, then read back, so a resume splits as before)."""

    def __init__(self, run_path: Path, identity, plan_counts):
        self.fingerprint = checkpoints.fingerprint(identity)
        self.root = Path(run_path) / SEGMENTS_DIR / self.fingerprint
        try:
            stored = read_json(self.root / PLAN_FILE)["counts"]
        except (OSError, ValueError, KeyError, TypeError):
            stored = None
        valid = isinstance(stored, list) and all(isinstance(c, int) and c >= 2 for c in stored)
        self.counts = list(stored) if valid else list(plan_counts())

    def save(self, chunk: int, evaluations: int, state, history: dict) -> None:
        """Checkpoints a chunk after `evaluations` evaluations (every process calls it)."""
        if runtime.is_writer() and not (self.root / PLAN_FILE).exists():
            self.root.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.root / PLAN_FILE, {"counts": self.counts})
        leaves = [np.asarray(x) for x in jax.tree.leaves(_host(state))]
        tree = {"state": {str(i): leaf for i, leaf in enumerate(leaves)}, "history": dict(history)}
        checkpoints.write(self.root / f"chunk-{chunk}", tree,
                          {"fingerprint": self.fingerprint, "chunk": chunk, "evaluations": evaluations})

    def load(self, chunk: int, num_leaves: int) -> Optional[tuple[int, list, dict]]:
        """(evaluations done, the state's leaves on the host (keys as key data), history so far), or
        None if the chunk has no checkpoint of this program, or a damaged one."""
        found = checkpoints.read(self.root / f"chunk-{chunk}")
        if found is None or found[0].get("fingerprint") != self.fingerprint:
            return None
        meta, tree = found
        if len(tree["state"]) != num_leaves:
            return None
        leaves = [tree["state"][str(i)] for i in range(num_leaves)]
        return int(meta["evaluations"]), leaves, dict(tree["history"])

    def clear(self) -> None:
        """Deletes the program's checkpoints (its rows are committed)."""
        if runtime.is_writer():
            shutil.rmtree(self.root, ignore_errors=True)


def _joined(parts: list) -> dict:
    """Histories of consecutive segments joined along the evaluation axis."""
    return jax.tree.map(lambda *h: np.concatenate(h, 1), *parts)


def train_chunk(pack, features: Features, mesh, args, data, counts: Sequence[int], store: Optional[Store],
                chunk: int) -> TrainResult:
    """One chunk of members trained segment by segment, resumed from its checkpoint if it has one."""
    from dlfound.ensemble import place

    start_program, advance_program = programs(pack, features, mesh)
    seeds, hparams, variants = args
    state = start_program(seeds, data, hparams, variants)
    done, history = 0, []
    template, treedef = jax.tree.flatten(state)
    resumed = store.load(chunk, len(template)) if store is not None else None
    if resumed is not None:
        done, stored, so_far = resumed
        placed = place(stored, NamedSharding(mesh, PartitionSpec(mesh.axis_names[0])))
        state = treedef.unflatten([jax.random.wrap_key_data(p, impl=jax.random.key_impl(t)) if _is_key(t)
                                   else p for p, t in zip(placed, template)])
        history = [so_far]
    first = 0
    for count in counts:
        if first >= done:
            state, part = advance_program(count)(state, seeds, data, hparams, np.int32(first))
            history.append(_host(part))
            if store is not None and first + count < sum(counts):
                store.save(chunk, first + count, state, _joined(history))
        first += count
    history = _joined(history)
    final = _host({"params": state.params, "batch_stats": state.batch_stats, "diverged": state.diverged_step})
    diverged = np.asarray(jax.jit(jax.vmap(late_divergence))(final["diverged"], history))
    return TrainResult(final["params"], final["batch_stats"], history, diverged)


def program_identity(cells_identity, seeds, members, variants, lanes: int) -> dict:
    """What a segmented program computes; its fingerprint keys the checkpoints (never other inputs')."""
    return {"cells": cells_identity, "seeds": [int(s) for s in seeds],
            "members": [{k: float(v) for k, v in m.items()} for m in members],
            "variants": [int(v) for v in variants], "lanes": lanes}
