"""Process-level JAX settings: one CPU device per core, a persistent compilation cache, XLA options."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jax
import jax.numpy as jnp

from dlfound.errors import ConfigError

# XLA options for sharded ensembles on CPU, measured with experiments/benchmark.py: LLVM
# optimization level 1 cuts compile time per sweep cell by 20%; results stay equal (bitwise, in
# the checks made) and run time unchanged. It also stops XLA splitting one large op over several
# cores, which costs a lone model on 2 cores 25% but nothing to an ensemble, whose every core
# already runs its own models; so single-model programs keep XLA's defaults. (Level 0 makes epochs four times slower.
# Eigen dots instead of YNNPACK fusions, `xla_cpu_experimental_ynn_fusion_type=""`, made epochs
# 7% faster but miscompiled the sharded Fashion-MNIST recipe: its training loss rose after the
# first epoch. Not used.)
CPU_ENSEMBLE_OPTIONS = {"xla_backend_optimization_level": "1"}


@functools.cache
def ensemble_compiler_options() -> dict:
    """`jax.jit(..., compiler_options=...)` for a sharded ensemble: CPU_ENSEMBLE_OPTIONS on a CPU
    backend whose XLA knows them, else {} (GPU and TPU keep XLA's defaults)."""
    if jax.default_backend() != "cpu":
        return {}
    try:
        jax.jit(lambda x: x + 1, compiler_options=CPU_ENSEMBLE_OPTIONS).lower(jnp.float32(0)).compile()
    except jax.errors.JaxRuntimeError:  # an XLA version without these options
        return {}
    return dict(CPU_ENSEMBLE_OPTIONS)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _backend_started() -> bool:
    from jax._src import xla_bridge

    return bool(getattr(xla_bridge, "_backends", {}))


def is_writer() -> bool:
    """Whether this process writes results (process 0 of a multi-process run)."""
    return jax.process_index() == 0


def all_processes_agree(ok: bool) -> bool:
    """Process 0's go/no-go, shared with every process (so none waits on a peer that refused)."""
    if jax.process_count() == 1:
        return ok
    import numpy as np
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(ok)))


MAX_CPU_DEVICES = 4096


def _environment_int(name: str, low: int, high: int) -> int | None:
    """$name as an integer in [low, high], None if unset; ConfigError naming it if it is anything else."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise ConfigError(f"invalid ${name}={os.environ[name]!r}; allowed: an integer from {low} to {high}; "
                          f"fix or unset it")
    return value


def check_environment() -> None:
    """Raises ConfigError naming the first bad DLFOUND_* variable (the command line calls it before work)."""
    _environment_int("DLFOUND_CPU_DEVICES", 1, MAX_CPU_DEVICES)
    if os.environ.get("DLFOUND_COORDINATOR"):
        processes = _environment_int("DLFOUND_NUM_PROCESSES", 1, 2**16)
        if processes is None:
            raise ConfigError("$DLFOUND_COORDINATOR is set but $DLFOUND_NUM_PROCESSES is not; set both "
                              "and $DLFOUND_PROCESS_ID, or unset it")
        if _environment_int("DLFOUND_PROCESS_ID", 0, processes - 1) is None:
            raise ConfigError("$DLFOUND_COORDINATOR is set but $DLFOUND_PROCESS_ID is not; set it to this "
                              f"process's index, 0 to {processes - 1}")


def configure(*, cpu_devices: int | None = None, cache_dir: str | None = None) -> None:
    """Splits the CPU into one XLA device per usable core and enables the compilation cache.

    Must run before the first JAX computation; later calls leave the device count alone.
    An ensemble's model axis is sharded over these devices, so every core trains models
    (the same code path as several GPUs). `DLFOUND_CPU_DEVICES` overrides the count.
    With `DLFOUND_COORDINATOR=host:port`, `DLFOUND_NUM_PROCESSES` and `DLFOUND_PROCESS_ID`
    set, the process joins a multi-process run: each trains its share of every ensemble
    and process 0 writes the results. Bad values of these variables are left for
    `check_environment` to report (an import never fails on them).
    """
    try:
        check_environment()
        environment_ok = True
    except ConfigError:
        environment_ok = False
    if not _backend_started():
        count = _environment_int("DLFOUND_CPU_DEVICES", 1, MAX_CPU_DEVICES) if environment_ok else None
        jax.config.update("jax_num_cpu_devices", cpu_devices or count or usable_cores())
        if os.environ.get("DLFOUND_COORDINATOR") and environment_ok:
            # Several hosts (or processes): JAX's multi-controller runtime, CPU collectives via gloo.
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
            jax.distributed.initialize(
                coordinator_address=os.environ["DLFOUND_COORDINATOR"],
                num_processes=int(os.environ["DLFOUND_NUM_PROCESSES"]),
                process_id=int(os.environ["DLFOUND_PROCESS_ID"]),
            )
    cache = cache_dir or os.environ.get("DLFOUND_JAX_CACHE") or str(Path.home() / ".cache" / "dlfound" / "jax")
    if cache.lower() != "off":
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
