"""Train many models of one structure in one compiled program, sharded over every device.

Members differ only in their seed's key and numeric hyperparameters (`Hyperparams`), so
`jax.vmap` stacks them; `jax.shard_map` splits the stacked model axis across the mesh of
all devices (one XLA CPU device per core, or several GPUs/TPUs; across hosts after
`jax.distributed.initialize`). Models never communicate, so every device trains its
share independently.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from dlfound import runtime
from dlfound.config import Config
from dlfound.data.dataset import Dataset
from dlfound.errors import ConfigError
from dlfound.train import Hyperparams, TrainResult, make_train

AXIS = "models"
MEMORY_BUDGET_BYTES = 4 * 2**30  # one program's working set; bigger ensembles run in chunks


def model_mesh() -> jax.sharding.Mesh:
    """A 1-D mesh over all devices of all processes, named `models`."""
    return jax.make_mesh((jax.device_count(),), (AXIS,))


def member_hyperparams(cfg: Config, members: Sequence[dict]) -> Hyperparams:
    """Stacks each member's numeric hyperparameters (missing ones from `cfg`; unknown names raise)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *[Hyperparams.from_config(cfg, **m) for m in members])


def estimate_bytes_per_model(cfg: Config, data: Dataset) -> int:
    """Rough float32 working set of one member: parameters x 6 (params, grads, optimizer
    moments, updates) plus activations of a training batch and an evaluation chunk."""
    sizes = [int(np.prod(data.input_shape)), *cfg.widths, max(data.num_classes, 1)]
    params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    units = sum(sizes[1:])
    eval_rows = min(8192, data.num_train + len(data.x_val) + len(data.x_test))
    return 4 * (6 * params + 3 * (cfg.batch_size + eval_rows) * units)


def host_memory_bytes() -> int:
    """Physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits(cfg: Config, data: Dataset) -> None:
    """Refuses, before compiling, a model whose working set exceeds 80% of the machine's memory."""
    need, have = estimate_bytes_per_model(cfg, data), host_memory_bytes()
    if jax.default_backend() == "cpu" and need > 0.8 * have:
        raise ConfigError(f"one model of depth={cfg.depth}, width={cfg.width} needs about {need / 2**30:.1f} GiB; "
                          f"this machine has {have / 2**30:.1f} GiB: reduce width, depth or batch_size")


def chunk_size(cfg: Config, data: Dataset, num_members: int, budget: int = MEMORY_BUDGET_BYTES) -> int:
    """Members per program so one program stays within `budget` (a multiple of the devices)."""
    devices = jax.device_count()
    fit = max(1, budget // max(estimate_bytes_per_model(cfg, data), 1))
    fit = max(devices, fit // devices * devices)
    return min(fit, math.ceil(num_members / devices) * devices)


def _sharded_train(train_fn: Callable, mesh) -> Callable:
    """jit(shard_map(vmap(train))): takes uint32 seeds, replicated data and stacked hparams."""
    spec = PartitionSpec(AXIS)

    def train_from_seed(seed, data, hparams):
        return train_fn(jax.random.key(seed), data, hparams)

    fn = jax.shard_map(
        jax.vmap(train_from_seed, in_axes=(0, None, 0)), mesh=mesh,
        in_specs=(spec, PartitionSpec(), spec), out_specs=spec, check_vma=False,
    )
    return jax.jit(fn, compiler_options=runtime.ensemble_compiler_options())


def _global(tree, sharding):
    """Global arrays from host values present in full on every process."""
    def put(leaf):
        leaf = np.asarray(leaf)
        return jax.make_array_from_callback(leaf.shape, sharding, lambda index: leaf[index])

    return jax.tree.map(put, tree)


def _to_host(tree) -> dict:
    if jax.process_count() > 1:
        tree = multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)


def _flag_late_divergence(result: TrainResult) -> TrainResult:
    """Flags members whose evaluated training loss is non-finite though no minibatch loss was.

    `train_step` sees a blow-up in the loss of the step after it, so an update that breaks a model
    in the last step before the end of training shows only in the evaluation. The step recorded is
    the evaluation's, the step whose loss `train_step` would have found non-finite.
    """
    bad = ~np.isfinite(result.history["train_loss"])
    first = np.argmax(bad, axis=1)
    late = (result.diverged_step < 0) & bad.any(axis=1)
    step = result.history["step"][np.arange(len(first)), first]
    diverged = np.where(late, step, result.diverged_step).astype(result.diverged_step.dtype)
    return result.replace(diverged_step=diverged)


def train_ensemble(
    cfg: Config, data: Dataset, seeds: Sequence[int], members: Sequence[dict] | None = None,
    *, budget: int = MEMORY_BUDGET_BYTES, vmapped_dropout: bool | None = None,
) -> TrainResult:
    """Trains one model per (seed, hyperparameter member) pair; arrays gain a leading model axis.

    Model i uses key `jax.random.key(seed_i)`, the same key in every cell of a sweep
    (common random numbers), so comparisons across cells are paired.
    """
    members = list(members) if members is not None else [{} for _ in seeds]
    if len(members) != len(seeds):
        raise ValueError(f"{len(seeds)} seeds but {len(members)} hyperparameter members")
    if vmapped_dropout is None:
        vmapped_dropout = any(m.get("dropout_rate", cfg.dropout_rate) > 0 for m in members)
    label_noise = any(m.get("label_noise", cfg.label_noise) > 0 for m in members)
    weight_decay = any(m.get("weight_decay", cfg.weight_decay) > 0 for m in members)
    check_fits(cfg, data)
    mesh = model_mesh()
    train = make_train(cfg, vmapped_dropout=vmapped_dropout, label_noise=label_noise,
                       weight_decay=weight_decay)
    run = _sharded_train(train, mesh)
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))
    per_program = chunk_size(cfg, data, len(seeds), budget)
    data = _global(data, NamedSharding(mesh, PartitionSpec()))
    parts = []
    for start in range(0, len(seeds), per_program):
        idx = list(range(start, min(start + per_program, len(seeds))))
        idx += [idx[-1]] * (per_program - len(idx))  # pad to a fixed shape: one compile
        model_seeds = np.asarray([seeds[i] for i in idx], np.uint32)
        hparams = member_hyperparams(cfg, [members[i] for i in idx])
        model_seeds, hparams = _global((model_seeds, hparams), sharding)
        parts.append(_to_host(run(model_seeds, data, hparams)))
    out = jax.tree.map(lambda *xs: np.concatenate(xs)[: len(seeds)], *parts)
    return _flag_late_divergence(out)
