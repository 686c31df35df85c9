"""Benchmark (not a test): dlfound's training path against the seeds' PyTorch loop and the machine.

Measures, in one run on this machine:
  (a) one epoch of the seeds' 784-128-64-10 ReLU MLP (Adam, batch 64) on MNIST-shaped
      random data: dlfound's `train_epoch` (one `lax.scan`) vs the seeds' PyTorch loop
      (forward, loss, zero_grad, backward, step), first in a child process started on one
      core (one XLA device, PyTorch at 1 thread), then on all the process's cores (PyTorch at
      1, 2 and all-cores threads); each ratio uses PyTorch's best thread setting;
  (b) achieved FLOP/s against a large float32 matmul measured on the same cores (FLOPs
      counted as needed: forward 2 per multiply-add, backward 4, no input gradient for layer 1);
  (c) models/s for ensembles of 1, 8, 32, 128 on MNIST-1D (the sharded ensemble path),
      and the ratio of 32 against one model trained alone;
  (d) compile time per cell against depth (no persistent cache);
  (e) peak resident memory.
Each timing is the best of `--repeats` runs after a warm-up; PyTorch is optional
(`pip install -e .[bench]`). Start it on the cores to measure (`taskset -c 0,1`).
Run:    taskset -c 0,1 python -m experiments.benchmark            # ~3 min on 2 cores
        python -m experiments.benchmark --quick                  # seconds; smoke test
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
from jax.experimental.compilation_cache import compilation_cache

from dlfound import cli, ensemble, optim
from dlfound.config import Config
from dlfound.data import load
from dlfound.data.dataset import Dataset
from dlfound.models import make_model
from dlfound.train import Hyperparams, create_train_state, make_train, train_epoch

SEED_MLP = Config(dataset="mnist1d", depth=2, width=(128, 64), activation="relu", init="std_uniform",
                  optimizer="adam", learning_rate=1e-3, batch_size=64, num_epochs=1)
SIZES = (784, 128, 64, 10)


def best_time(fn, repeats: int) -> float:
    """Best wall time of `fn()` over `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def epoch_flops(num_examples: int, batch: int = 64) -> float:
    """FLOPs of one epoch: 2 per multiply-add forward, 4 backward, no input gradient for layer 1."""
    macs = [a * b for a, b in zip(SIZES[:-1], SIZES[1:])]
    per_example = 2 * sum(macs) + 4 * sum(macs) - 2 * macs[0]
    return per_example * (num_examples // batch) * batch


def matmul_peak(n: int, repeats: int) -> float:
    """FLOP/s of an n x n float32 matmul in XLA on this process's cores."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    f = jax.jit(lambda a: a @ a)
    return 2 * n**3 / best_time(lambda: f(a).block_until_ready(), repeats)


def mnist_shaped(num_examples: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(num_examples, 28, 28)).astype(np.float32), rng.integers(0, 10, num_examples).astype(np.int32)


def dlfound_epoch(x, y, repeats: int) -> float:
    """Seconds for one epoch of `train_epoch` (the path `make_train` runs), jitted on one device."""
    model = make_model(SEED_MLP, 10)
    tx = optim.make_optimizer("adam", decay=False)  # weight decay 0, as a sweep compiles it
    state = create_train_state(SEED_MLP, model, tx, jax.random.key(0), x[:1], Hyperparams.from_config(SEED_MLP), 10)
    xd, yd = jax.device_put(x, jax.devices()[0]), jax.device_put(y, jax.devices()[0])
    epoch = jax.jit(train_epoch, static_argnums=4)
    return best_time(lambda: jax.block_until_ready(epoch(state, xd, yd, jax.random.key(1), 64)), repeats)


def torch_epoch(x, y, threads: int, repeats: int) -> float | None:
    """Seconds for one epoch of the seeds' PyTorch loop at `threads` threads (None without torch)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).long()

    def epoch():
        perm = torch.randperm(len(xt))
        for start in range(0, len(xt) - 63, 64):
            idx = perm[start:start + 64]
            loss = loss_fn(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()

    return best_time(epoch, repeats)


def ensemble_throughput(data: Dataset, sizes, repeats: int) -> dict:
    """Models/s of the sharded ensemble path on MNIST-1D, one compiled program per size."""
    cfg = Config(depth=2, width=100, batch_size=100, num_epochs=10)
    out = {}
    for size in sizes:
        seconds = best_time(lambda: ensemble.train_ensemble(cfg, data, list(range(size))), repeats)
        out[str(size)] = size / seconds
    return out


def compile_seconds(data: Dataset, depths) -> dict:
    """Lower + compile time of one sweep cell (3 models per device) per depth, never from the cache."""
    enabled = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()  # the cache decides once per process whether it is used
    try:
        return {str(depth): _cell_compile_seconds(data, depth) for depth in depths}
    finally:
        jax.config.update("jax_enable_compilation_cache", enabled)
        compilation_cache.reset_cache()


def _cell_compile_seconds(data: Dataset, depth: int) -> float:
    cfg = Config(depth=depth, width=64, optimizer="sgd", learning_rate=0.05, batch_size=128, num_epochs=36,
                 eval_every_epochs=2)
    mesh = ensemble.model_mesh()
    train = make_train(cfg, label_noise=False, weight_decay=False)  # as train_ensemble compiles this cell
    fn = ensemble._sharded_train(train, mesh)
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(ensemble.AXIS))
    n = jax.device_count() * 3
    seeds, hparams = ensemble._global((np.arange(n, dtype=np.uint32),
                                       ensemble.member_hyperparams(cfg, [{}] * n)), sharding)
    replicated = ensemble._global(data, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
    start = time.perf_counter()
    fn.lower(seeds, replicated, hparams).compile()
    return time.perf_counter() - start


def epoch_speed(x, y, flops: float, threads, quick: bool) -> dict:
    """Epoch times of dlfound and PyTorch (at each thread count), the ratio, and FLOP/s vs peak."""
    repeats = 1 if quick else 3
    peak = matmul_peak(512 if quick else 2048, repeats)
    jax_s = dlfound_epoch(x, y, repeats)
    torch_s = {t: torch_epoch(x, y, t, 1 if quick else 2) for t in threads}
    torch_best = min((s for s in torch_s.values() if s), default=None)
    return {
        "epoch_s": {"dlfound": jax_s, **{f"pytorch_{t}_threads": s for t, s in torch_s.items()}},
        "speedup_vs_pytorch": (torch_best / jax_s) if torch_best else None,
        "matmul_peak_gflops": peak / 1e9, "achieved_gflops": flops / jax_s / 1e9,
        "fraction_of_matmul_peak": flops / jax_s / peak,
    }


def one_core_epoch_speed(quick: bool) -> dict | None:
    """`epoch_speed` in a child process started on one core (one XLA device, PyTorch at 1 thread)."""
    core = min(os.sched_getaffinity(0))
    code = (f"import os; os.sched_setaffinity(0, {{{core}}}); import json; "  # before JAX starts threads
            f"from experiments import benchmark as b; print(json.dumps(b._one_core({quick})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        print(f"one-core measurement failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _one_core(quick: bool) -> dict:
    x, y = mnist_shaped(2048 if quick else 60000)
    return epoch_speed(x, y, epoch_flops(len(x)), (1,), quick)


def run(ctx: cli.Context) -> dict:
    quick = ctx.quick
    repeats = 1 if quick else 3
    x, y = mnist_shaped(2048 if quick else 60000)
    cores = sorted(os.sched_getaffinity(0))
    one_core = one_core_epoch_speed(quick) or {}
    all_cores = epoch_speed(x, y, epoch_flops(len(x)), sorted({1, min(2, len(cores)), len(cores)}), quick)
    data = load("mnist1d")
    models_per_s = ensemble_throughput(data, (1, 8) if quick else (1, 8, 32, 128), repeats)
    compile_s = compile_seconds(data, (1, 2) if quick else (1, 2, 4, 8, 16))
    metrics = {
        "cores": len(cores), "devices": jax.device_count(), "backend": jax.default_backend(),
        **one_core,
        "all_cores": all_cores,
        "models_per_s": models_per_s,
        "ensemble32_vs_single": (models_per_s["32"] / models_per_s["1"]) if "32" in models_per_s else None,
        "compile_s": compile_s,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if not ctx.quiet:
        for key, value in metrics.items():
            print(f"{key:>24}: {value}", file=sys.stderr)
    return {"metrics": metrics, "claims": []}


EXPERIMENT = cli.Experiment(name="benchmark", description=__doc__, base=SEED_MLP, quick_overrides={},
                            default_seeds=1, run=run)


def main(argv=None) -> int:
    return cli.main(EXPERIMENT, argv)


if __name__ == "__main__":
    raise SystemExit(main())
