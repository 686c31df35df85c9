"""Benchmark (not a test): dlfound's training path against the seeds' PyTorch loop and the machine.

Measures, in one run on this machine:
  (a) one epoch of the seeds' 784-128-64-10 ReLU MLP (Adam, batch 64) on MNIST-shaped
      random data: dlfound's `train_epoch` (one `lax.scan`) vs the seeds' PyTorch loop
      (forward, loss, zero_grad, backward, step), and microseconds per step. On a CPU first
      in a child process started on one core (one XLA device, PyTorch at 1 thread), then on
      all the process's cores (PyTorch at 1, 2 and all-cores threads); on a GPU, PyTorch
      runs on the same GPU (`torch.cuda`) when it sees one. Ratios use PyTorch's best setting;
  (b) the device's peaks measured in the same run: a large float32 matmul (FLOP/s) and a
      large elementwise pass (bytes/s); on a GPU also its datasheet figures, where known;
  (c) a saturation curve: models/s for ensembles of 1 to 65,536 MNIST-1D models (the
      sharded ensemble path; 1 epoch with --quick), stopping where one call no longer fits
      in an accelerator's memory or after the first size that takes over 60 s, with
      achieved FLOP/s and bytes/s as fractions of the peaks (counted as below);
  (d) compilation: seconds per sweep cell against depth, and the programs and compile
      seconds of the whole main sweep under each packing policy (none, this backend's
      default, everything); never from the persistent cache;
  (e) peak resident memory.
FLOPs are counted as needed (forward 2 per multiply-add, backward 4, no input gradient for the
first layer); bytes as the floor a step must move (parameters, gradients and Adam's moments
read or written once each, plus the minibatch). Each timing is the best of `--repeats` runs
after a warm-up; PyTorch is optional (`pip install -e .[bench]`). Start it on the cores to
measure (`taskset -c 0,1`).
Run:    taskset -c 0,1 python -m experiments.benchmark            # ~6 min on 2 cores
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
import jax.numpy as jnp
import numpy as np
from jax.experimental.compilation_cache import compilation_cache

from dlfound import cli, ensemble, packing, sweep
from dlfound.config import Config
from dlfound.data import load
from dlfound.data.dataset import Dataset
from dlfound.train import Features, init_state, train_epoch
from . import depth_activation

SEED_MLP = Config(dataset="mnist1d", depth=2, width=(128, 64), activation="relu", init="std_uniform",
                  optimizer="adam", learning_rate=1e-3, batch_size=64, num_epochs=1)
SIZES = (784, 128, 64, 10)
ENSEMBLE = Config(depth=2, width=100, batch_size=100, num_epochs=10)  # MNIST-1D, 40-100-100-10
ENSEMBLE_SIZES = (1, 8, 32, 128, 512, 2048, 4096, 16384, 65536)
# Datasheet peaks (dense float32 without tensor cores, memory bandwidth), by device kind.
DATASHEET = {"H200": (67e12, 4.8e12), "H100": (67e12, 3.35e12), "A100": (19.5e12, 2.0e12)}


def best_time(fn, repeats: int) -> float:
    """Best wall time of `fn()` over `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def mlp_flops(sizes, rows: int, backward: bool) -> float:
    """FLOPs of `rows` examples through an MLP: 2 per multiply-add forward, 4 more backward
    (none for the input gradient of the first layer)."""
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    per_example = 2 * sum(macs) + ((4 * sum(macs) - 2 * macs[0]) if backward else 0)
    return float(per_example) * rows


def epoch_flops(num_examples: int, batch: int = 64) -> float:
    """FLOPs of one training epoch of the seeds' MLP."""
    return mlp_flops(SIZES, (num_examples // batch) * batch, backward=True)


def matmul_peak(n: int, repeats: int) -> float:
    """FLOP/s of an n x n float32 matmul (full float32 precision) on this process's devices."""
    a = jax.random.normal(jax.random.key(0), (n, n))
    f = jax.jit(lambda a: jnp.matmul(a, a, precision="highest"))
    return 2 * n**3 / best_time(lambda: f(a).block_until_ready(), repeats)


def bandwidth_peak(megabytes: int, repeats: int) -> float:
    """Bytes/s of one elementwise pass (read and write) over a float32 array of `megabytes`."""
    x = jnp.zeros((megabytes * 2**18,), jnp.float32)
    f = jax.jit(lambda x: x * 0.5 + 1.0)
    return 2 * x.nbytes / best_time(lambda: f(x).block_until_ready(), repeats)


def datasheet_peaks() -> dict | None:
    """The device's datasheet float32 FLOP/s and bytes/s, where this table knows its kind."""
    kind = jax.devices()[0].device_kind
    for name, (flops, bandwidth) in DATASHEET.items():
        if name in kind:
            return {"device_kind": kind, "flops": flops, "bytes_per_s": bandwidth}
    return None


def mnist_shaped(num_examples: int) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(num_examples, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, num_examples).astype(np.int32)
    return Dataset(x, y, x[:0], y[:0], x[:0], y[:0], name="mnist-shaped", num_classes=10)


def dlfound_epoch(data: Dataset, repeats: int) -> float:
    """Seconds for one epoch of `train_epoch` (the path `make_train` runs), jitted on one device."""
    state = init_state(SEED_MLP, jax.random.key(0), data, features=Features())  # as a sweep compiles it
    device = jax.devices()[0]
    x, y = jax.device_put(data.x_train, device), jax.device_put(data.y_train, device)
    epoch = jax.jit(train_epoch, static_argnums=4)
    return best_time(lambda: jax.block_until_ready(epoch(state, x, y, jax.random.key(1), 64)), repeats)


def torch_epoch(data: Dataset, threads: int, repeats: int, device: str = "cpu") -> float | None:
    """Seconds for one epoch of the seeds' PyTorch loop (None without torch or that device)."""
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 128), torch.nn.ReLU(),
                                torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(data.x_train).to(device), torch.from_numpy(data.y_train).long().to(device)

    def epoch():
        perm = torch.randperm(len(xt), device=device)
        for start in range(0, len(xt) - 63, 64):
            idx = perm[start:start + 64]
            loss = loss_fn(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    return best_time(epoch, repeats)


def epoch_speed(data: Dataset, threads, quick: bool) -> dict:
    """Epoch times of dlfound and PyTorch, microseconds per step, the ratio, and FLOP/s vs peak."""
    repeats = 1 if quick else 3
    peak = matmul_peak(512 if quick else 2048, repeats)
    jax_s = dlfound_epoch(data, repeats)
    if jax.default_backend() == "gpu":
        torch_s = {"cuda": torch_epoch(data, 1, 1 if quick else 2, device="cuda")}
    else:
        torch_s = {f"{t}_threads": torch_epoch(data, t, 1 if quick else 2) for t in threads}
    torch_best = min((s for s in torch_s.values() if s), default=None)
    flops = epoch_flops(data.num_train)
    return {
        "epoch_s": {"dlfound": jax_s, **{f"pytorch_{k}": s for k, s in torch_s.items()}},
        "us_per_step": jax_s / (data.num_train // 64) * 1e6,
        "speedup_vs_pytorch": (torch_best / jax_s) if torch_best else None,
        "matmul_peak_gflops": peak / 1e9, "achieved_gflops": flops / jax_s / 1e9,
        "fraction_of_matmul_peak": flops / jax_s / peak,
    }


def one_core_epoch_speed(quick: bool) -> dict | None:
    """`epoch_speed` in a child process started on one core (one XLA device, PyTorch at 1 thread)."""
    core = min(os.sched_getaffinity(0))
    code = (f"import os; os.sched_setaffinity(0, {{{core}}}); import json; "  # before JAX starts threads
            f"from dlfound import catalog; b = catalog.load('benchmark'); print(json.dumps(b.one_core({quick})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        print(f"one-core measurement failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def one_core(quick: bool) -> dict:
    """What the one-core child measures (called in that child)."""
    return epoch_speed(mnist_shaped(2048 if quick else 60000), (1,), quick)


def ensemble_work(cfg: Config, data: Dataset) -> tuple[float, float]:
    """FLOPs and the byte floor of training one model of `cfg` on `data` (all evaluations included)."""
    sizes = (int(np.prod(data.input_shape)), *cfg.widths, data.num_classes)
    steps = cfg.num_epochs * (data.num_train // cfg.batch_size)
    rows = data.num_train + len(data.x_val) + len(data.x_test)
    evals = cfg.num_epochs // cfg.eval_every_epochs + 1
    params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    flops = mlp_flops(sizes, steps * cfg.batch_size, True) + evals * (
        mlp_flops(sizes, rows, False) + mlp_flops(sizes, 512, True))
    step_bytes = 4 * (7 * params + cfg.batch_size * sizes[0])  # params, grads, 2 moments; the batch
    return flops, steps * step_bytes + evals * 4 * (params + rows * sizes[0])


def saturation(cfg: Config, data: Dataset, sizes, repeats: int, max_seconds: float, peaks: dict) -> dict:
    """Models/s per ensemble size, until a size needs more calls than its lanes allow or too long.

    On a CPU every call has CPU_LANES members per device, so a size beyond that runs as
    several calls; on an accelerator the curve stops where one call no longer fits in memory.
    """
    flops, nbytes = ensemble_work(cfg, data)
    out = {}
    for size in sizes:
        if jax.default_backend() != "cpu" and ensemble.chunk_size(cfg, data, size) < size:
            out[str(size)] = "over one call's memory"
            break
        seconds = best_time(lambda: ensemble.train_ensemble(cfg, data, list(range(size))), repeats)
        out[str(size)] = {"models_per_s": size / seconds, "seconds": seconds,
                          "fraction_of_flops_peak": size * flops / seconds / peaks["flops"],
                          "fraction_of_bytes_peak": size * nbytes / seconds / peaks["bytes_per_s"]}
        if seconds > max_seconds:
            break
    return out


def uncached(fn):
    """Calls `fn()` with the persistent compilation cache off (it decides once per process)."""
    enabled = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()
    try:
        return fn()
    finally:
        jax.config.update("jax_enable_compilation_cache", enabled)
        compilation_cache.reset_cache()


def cell_compile_seconds(data: Dataset, depths) -> dict:
    """Compile time of one main-sweep cell (3 models per device) per depth."""
    base = depth_activation.BASE
    n = jax.device_count() * 3
    return {str(d): ensemble.compile_program(base.replace(depth=d), data, n)[1] for d in depths}


def sweep_compile_seconds(data: Dataset, quick: bool, seeds: int = 5) -> dict:
    """Programs and total compile seconds of the main sweep under each packing policy (with
    --quick, its depth-1 cells of two activations, packed and not)."""
    exp = depth_activation
    base = exp.BASE.replace(**exp.EXPERIMENT.quick.config) if quick else exp.BASE
    depths, acts = ((1,), ("identity", "relu")) if quick else (exp.DEPTHS, exp.ACTIVATIONS)
    sweeps = exp.sweeps(base, depths, acts)
    policies = {"none": (), "default": packing.default_axes(), "all": packing.PACKABLE}
    out = {}
    for name, axes in policies.items():
        if quick and name == "default":
            continue
        programs = sweep.plan_programs(sweeps, data, range(seeds), axes)
        seconds = 0.0
        for program in programs:
            members = ensemble.chunk_size(program.pack, data, program.num_models)
            seconds += ensemble.compile_program(program.pack, data, members)[1]
        out[name] = {"axes": list(axes), "programs": len(programs), "compile_s": seconds}
    return out


def run(ctx: cli.Context) -> dict:
    quick = ctx.quick
    repeats = 1 if quick else 3
    seed_data = mnist_shaped(2048 if quick else 60000)
    cores = sorted(os.sched_getaffinity(0))
    one = one_core_epoch_speed(quick) if jax.default_backend() == "cpu" else None
    all_devices = epoch_speed(seed_data, sorted({1, min(2, len(cores)), len(cores)}), quick)
    peaks = {"flops": matmul_peak(512 if quick else 4096, repeats),
             "bytes_per_s": bandwidth_peak(16 if quick else 1024, repeats)}
    data = load("mnist1d")
    cfg = ENSEMBLE.replace(num_epochs=1) if quick else ENSEMBLE
    curve = saturation(cfg, data, ENSEMBLE_SIZES[:3] if quick else ENSEMBLE_SIZES, repeats, 60.0, peaks)
    rates = {k: v["models_per_s"] for k, v in curve.items() if isinstance(v, dict)}
    metrics = {
        "cores": len(cores), "devices": jax.device_count(), "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "one_core": one, "all_devices": all_devices,
        "measured_peaks": peaks, "datasheet_peaks": datasheet_peaks(),
        "saturation": curve,
        "best_models_per_s_vs_one_model": max(rates.values()) / rates["1"],
        "cell_compile_s": uncached(lambda: cell_compile_seconds(data, (1,) if quick else (1, 2, 4, 8, 16))),
        "main_sweep_compile": uncached(lambda: sweep_compile_seconds(data, quick)),
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if not ctx.quiet:
        for key, value in metrics.items():
            print(f"{key:>32}: {value}", file=sys.stderr)
    return {"metrics": metrics, "claims": []}


EXPERIMENT = cli.Experiment(name="benchmark", description=__doc__, base=SEED_MLP,
                            default_seeds=1, run=run)
cli.script(__name__, EXPERIMENT)
