"""What a sweep will cost, stated before it trains: models, parameters, memory, time and disk.

Work is counted in FLOPs: 6 per parameter per example of each training step (forward 2,
backward 4) and 2 per parameter per evaluated example. Time is that work over this machine's
matmul rate, measured once per process, times ACHIEVED_FRACTION (the share of the matmul peak
small-MLP ensembles reach on a CPU: 0.26-0.48 in `experiments/benchmark.py`), plus
COMPILE_SECONDS per program. An accelerator usually beats the estimate: its first programs
then set the progress line's ETA.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Sequence

import jax
import jax.numpy as jnp

from dlfound import ensemble

ACHIEVED_FRACTION = 0.25
COMPILE_SECONDS = 3.0  # per program on a 2-core CPU (benchmark: 2.2-4.2 s per main-sweep cell)
CHECKPOINT_BYTES = 80 * 2**10  # Orbax's files around one cell's arrays (measured: 60-80 KiB)
ROW_BYTES, LAYER_BYTES = 500, 60  # results.jsonl per model x evaluation, plus per-layer statistics


@dataclasses.dataclass(frozen=True)
class Estimate:
    """The size of a sweep's unfinished work."""

    cells: int
    programs: int
    models: int
    parameters: int  # of the largest model
    bytes_per_call: int  # the largest call's working set
    flops: float
    seconds: float
    results_bytes: int
    models_bytes: int = 0  # the trained models kept (float32 parameters of every model)

    def line(self, keep_models: bool = True) -> str:
        """One line for the user: counts, memory, disk and time."""
        models = f", {_bytes(self.models_bytes)} of trained models" if keep_models else ""
        return (f"plan: {self.cells} cells in {self.programs} programs, {self.models:,} models of up to "
                f"{self.parameters:,} parameters; about {_bytes(self.bytes_per_call)} per call, "
                f"{_bytes(self.results_bytes)} of results{models} and {_duration(self.seconds)} on this "
                "machine")


def _bytes(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 2**10:.0f} KiB"


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


@functools.cache
def matmul_flops_per_s(n: int = 1024, repeats: int = 3) -> float:
    """FLOP/s of one float32 n x n matmul on the default device, best of `repeats`."""
    x = jnp.ones((n, n), jnp.float32)
    product = jax.jit(lambda a: a @ a)
    product(x).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product(x).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / max(best, 1e-9)


def estimate(programs: Sequence) -> Estimate:
    """The cost of training `programs` (`dlfound.sweep.Program`s)."""
    flops = results = 0.0
    parameters = per_call = models = 0
    for program in programs:
        cfg, data = program.pack.base, program.data
        params = ensemble.parameter_count(program.pack, data)
        steps = cfg.num_epochs * (data.num_train // cfg.batch_size)
        evals = cfg.num_epochs // cfg.eval_every_epochs + 1
        examples = data.num_train + len(data.x_val) + len(data.x_test)
        flops += program.num_models * params * (6 * cfg.batch_size * steps + 2 * examples * evals)
        results += program.num_models * evals * (ROW_BYTES + LAYER_BYTES * (program.pack.depth + 1))
        parameters = max(parameters, params)
        models += 4 * program.num_models * params + CHECKPOINT_BYTES * len(program.cells)
        calls = ensemble.chunk_size(program.pack, data, program.num_models)
        per_call = max(per_call, calls * ensemble.estimate_bytes_per_model(program.pack, data))
    seconds = flops / (ACHIEVED_FRACTION * matmul_flops_per_s()) + COMPILE_SECONDS * len(programs)
    return Estimate(sum(len(p.cells) for p in programs), len(programs), sum(p.num_models for p in programs),
                    parameters, per_call, flops, seconds, int(results), models)
