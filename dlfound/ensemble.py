"""Train many models in one compiled program, sharded over every device.

Members differ in their seed's key, their numeric hyperparameters (`Hyperparams`) and, in a
packed program, their structural variant (`dlfound.packing`), so `jax.vmap` stacks them;
`jax.shard_map` splits the stacked model axis across the mesh of all devices (one XLA CPU
device per core, or several GPUs/TPUs; across hosts after `jax.distributed.initialize`).
Models never communicate, so every device trains its share independently. Ensembles larger
than one call holds run as several calls of one program (chunks).

Each call gives every device the same number of members (its lanes), padding with copies of
the last member. XLA compiles a vmapped step differently for different numbers of members
(on a 2-core CPU, a depth-16 MLP rounds differently with 3 members per device than with 4,
and again with 64), and a deep net can amplify one rounding difference into a visibly
different model. So on a CPU the lanes are fixed (CPU_LANES) for every program with enough
members to fill them: a model's numbers then never depend on how many other models, cells or
seeds share its program, nor on the number of cores. (A program with fewer members uses only
the lanes it needs, so one model alone is not padded to a full call.) On an accelerator the
lanes are a device's whole share of the members, split into as few calls as its memory allows.
"""

from __future__ import annotations

import math
import os
import time
from typing import Optional, Sequence, Union

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from dlfound import runtime, segmented
from dlfound.config import Config
from dlfound.data.dataset import Dataset
from dlfound.errors import ConfigError
from dlfound.hyperparams import Hyperparams
from dlfound.packing import Pack
from dlfound.train import Features, TrainResult, make_train

AXIS = "models"
DEVICE_MEMORY_FRACTION = 0.5  # of an accelerator's memory, for one program's members
HOST_MEMORY_FRACTION = 0.25  # of the host's memory on CPU, shared by all CPU devices
# Members per CPU device per call. Measured on 2 cores (a main-sweep cell at depth 4 / 16): 238 / 597
# ms per model with 3 per device, 188 / 565 with 4, 148 / 476 with 8. But every call is padded to
# the lanes: over the programs of all the experiments' default runs, 3 lanes pad 4.8% of the work,
# 4 lanes 26%, 8 lanes 41% (seed counts are 3 or 5, times a few vmapped values), and the main
# sweep took 82 s with 4 lanes and 85 s with 8. With 3, a 5-seed cell also keeps the 3 models per
# device it always had.
CPU_LANES = 3


def model_mesh() -> jax.sharding.Mesh:
    """A 1-D mesh over all devices of all processes, named `models`."""
    return jax.make_mesh((jax.device_count(),), (AXIS,))


def layer_sizes(cfg: Union[Config, Pack], data: Dataset) -> list[int]:
    """Units of the input, of each hidden layer of the (padded) stack, and of the output."""
    pack = Pack.of(cfg)
    widths = pack.base.widths if len(pack.depths) == 1 else (pack.base.width,) * pack.depth
    return [int(np.prod(data.input_shape)), *widths, max(data.num_classes, 1)]


def parameter_count(cfg: Union[Config, Pack], data: Dataset) -> int:
    """Weights and biases of one member's dense layers (norm scales and offsets not counted)."""
    sizes = layer_sizes(cfg, data)
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def estimate_bytes_per_model(cfg: Union[Config, Pack], data: Dataset) -> int:
    """Rough float32 working set of one member: parameters x 6 (params, gradients, two optimizer
    moments, updates, a copy); the training batch's pre-activations and activations kept for the
    backward pass (each option a packed program computes counts); and an evaluation chunk
    passing the widest layer, with two layers alive at a time."""
    pack = Pack.of(cfg)
    sizes = layer_sizes(pack, data)
    params = parameter_count(pack, data)
    options = len(pack.activations) + len(pack.norms)  # each computed for every member
    eval_rows = min(8192, data.num_train + len(data.x_val) + len(data.x_test))
    train = pack.base.batch_size * sum(sizes[1:]) * (1 + options)
    evaluate = eval_rows * max(sizes[1:]) * 2 * (1 + options)
    return 4 * (6 * params + train + evaluate)


def host_memory_bytes() -> int:
    """Physical memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def device_memory_bytes() -> Optional[int]:
    """Memory of one local accelerator as its backend reports it (`memory_stats()`); None on CPU."""
    stats = jax.local_devices()[0].memory_stats() or {}
    return int(stats["bytes_limit"]) if "bytes_limit" in stats else None


def memory_budget_bytes() -> int:
    """Bytes one program's members may use, over all devices: a share of each accelerator's
    memory, or on CPU a share of the host's memory (which all CPU devices share)."""
    per_device = device_memory_bytes()
    if per_device is not None:
        return int(DEVICE_MEMORY_FRACTION * per_device * jax.device_count())
    return int(HOST_MEMORY_FRACTION * host_memory_bytes() * jax.process_count())


def check_fits(cfg: Union[Config, Pack], data: Dataset) -> None:
    """Refuses, before compiling, a model whose working set exceeds 80% of one device's memory."""
    need = estimate_bytes_per_model(cfg, data)
    have = device_memory_bytes() or host_memory_bytes()
    if need > 0.8 * have:
        base = Pack.of(cfg).base
        raise ConfigError(f"one model of depth={base.depth}, width={base.width} needs about "
                          f"{need / 2**30:.1f} GiB; this device has {have / 2**30:.1f} GiB: "
                          "reduce width, depth or batch_size")


def lanes(cfg: Union[Config, Pack], data: Dataset, num_members: int, budget: Optional[int] = None) -> int:
    """Members each device trains per call: CPU_LANES on a CPU (fewer only if the members or the
    memory are fewer); on an accelerator all of its
    share in as few calls as `budget` bytes (default: from the device's memory) allow, split
    evenly; never more than the budget holds."""
    budget = memory_budget_bytes() if budget is None else budget
    devices = jax.device_count()
    fit = max(1, budget // devices // max(estimate_bytes_per_model(cfg, data), 1))
    share = max(1, math.ceil(num_members / devices))
    if jax.default_backend() == "cpu":
        return min(CPU_LANES, fit, share)
    return math.ceil(share / math.ceil(share / fit))


def chunk_size(cfg: Union[Config, Pack], data: Dataset, num_members: int,
               budget: Optional[int] = None) -> int:
    """Members per program call: `lanes` on every device."""
    return lanes(cfg, data, num_members, budget) * jax.device_count()


def make_program(cfg: Union[Config, Pack], features: Features = Features(), mesh=None):
    """The jitted ensemble program `run(seeds, data, hparams, variants) -> TrainResult`.

    `seeds` (uint32), `hparams` and `variants` (int32 indices into the pack) carry a leading
    model axis sharded over `mesh` (default: all devices); `data` is replicated.
    """
    mesh = mesh or model_mesh()
    train = make_train(cfg, features)

    def member(seed, data, hparams, variant):
        return train(jax.random.key(seed), data, hparams, variant)

    spec = PartitionSpec(AXIS)
    fn = jax.shard_map(jax.vmap(member, in_axes=(0, None, 0, 0)), mesh=mesh,
                       in_specs=(spec, PartitionSpec(), spec, spec), out_specs=spec, check_vma=False)
    return jax.jit(fn, compiler_options=runtime.ensemble_compiler_options())


def place(tree, sharding):
    """Global arrays from host values present in full on every process."""
    def put(leaf):
        leaf = np.asarray(leaf)
        return jax.make_array_from_callback(leaf.shape, sharding, lambda index: leaf[index])

    return jax.tree.map(put, tree)


def member_inputs(cfg: Union[Config, Pack], seeds: Sequence[int], members: Sequence[dict],
                  variants: Sequence[int]) -> tuple[np.ndarray, Hyperparams, np.ndarray]:
    """Host arrays of seeds, stacked hyperparameters (each from its variant's config plus its
    member's overrides; unknown names raise) and variant indices."""
    pack = Pack.of(cfg)
    hparams = Hyperparams.stacked([pack.variants[v] for v in variants], members)
    return np.asarray(seeds, np.uint32), hparams, np.asarray(variants, np.int32)


def compile_program(cfg: Union[Config, Pack], data: Dataset, num_members: int,
                    features: Features = Features()) -> tuple[object, float]:
    """Compiles the program for `num_members` members (a multiple of the device count) without
    running it; returns the compiled program and the seconds spent lowering and compiling."""
    mesh = model_mesh()
    seeds, hparams, variants = member_inputs(cfg, range(num_members), [{}] * num_members, [0] * num_members)
    args = place((seeds, hparams, variants), NamedSharding(mesh, PartitionSpec(AXIS)))
    replicated = place(data, NamedSharding(mesh, PartitionSpec()))
    start = time.perf_counter()
    compiled = make_program(cfg, features, mesh).lower(args[0], replicated, *args[1:]).compile()
    return compiled, time.perf_counter() - start


def to_host(tree) -> dict:
    """Host (numpy) arrays of a tree of global arrays, gathered from every process."""
    if jax.process_count() > 1:
        tree = multihost_utils.process_allgather(tree, tiled=True)
    return jax.tree.map(np.asarray, tree)


def train_ensemble(
    cfg: Union[Config, Pack], data: Dataset, seeds: Sequence[int], members: Optional[Sequence[dict]] = None,
    variants: Optional[Sequence[int]] = None, *, budget: Optional[int] = None,
    features: Optional[Features] = None, lanes_for: Optional[int] = None,
    segments: Sequence[int] = (), store=None,
) -> TrainResult:
    """Trains one model per (seed, hyperparameter member, variant); arrays gain a leading model axis.

    Model i uses key `jax.random.key(seed_i)`, the same key in every cell of a sweep
    (common random numbers), so comparisons across cells are paired. `variants` index the
    configs of a Pack (default: all 0); per-layer arrays then cover the pack's whole stack.
    `lanes_for` sizes each call as for that many members (a resumed part of a larger program
    then trains with the lanes, hence the numbers, of the whole). With two or more `segments`
    (evaluations per segment), each call trains segment by segment, checkpointed to `store`
    (`dlfound.segmented`; the same numbers, bit for bit on a CPU).
    """
    pack = Pack.of(cfg)
    members = list(members) if members is not None else [{} for _ in seeds]
    variants = list(variants) if variants is not None else [0] * len(seeds)
    if not len(members) == len(variants) == len(seeds):
        raise ValueError(f"{len(seeds)} seeds, {len(members)} hyperparameter members and "
                         f"{len(variants)} variants")
    model_seeds, hparams, variant_ids = member_inputs(pack, seeds, members, variants)
    features = Features.needed(hparams) if features is None else features
    check_fits(pack, data)
    mesh = model_mesh()
    run = make_program(pack, features, mesh)
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))
    per_call = chunk_size(pack, data, lanes_for or len(seeds), budget)
    data = place(data, NamedSharding(mesh, PartitionSpec()))
    parts = []
    for chunk, start in enumerate(range(0, len(seeds), per_call)):
        idx = list(range(start, min(start + per_call, len(seeds))))
        idx += [idx[-1]] * (per_call - len(idx))  # pad to a fixed shape: one compile
        args = place((model_seeds[idx], hparams[idx], variant_ids[idx]), sharding)
        if len(segments) > 1:
            parts.append(segmented.train_chunk(pack, features, mesh, args, data, segments, store, chunk))
        else:
            parts.append(to_host(run(args[0], data, *args[1:])))
    return jax.tree.map(lambda *xs: np.concatenate(xs)[: len(seeds)], *parts)
