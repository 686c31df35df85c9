"""Accelerator check (not a claim): the measurements that tell whether sweeps fill a GPU, in one command.

Runs, each in a fresh process with an empty compilation cache (cold, as a new user runs it):
  1. the main sweep (`experiments.depth_activation`) at its defaults: wall time and the
     number of compiled programs (read from its config.json);
  2. the main sweep with 100 seeds (3,000 depth x activation models plus 100 baselines);
  3. in this process, from `experiments.benchmark`: the device's measured peaks, the
     saturation curve (models/s up to 65,536 MNIST-1D models) with fractions of those peaks,
     and one epoch of the seeds' MLP (microseconds per step; PyTorch on the same GPU where it
     sees one);
and writes `CHECK.md` (each measure against its target) and summary.json to the run directory.
A re-run measures afresh: the two runs' folders inside it are replaced, never resumed.
Targets on one GPU: main sweep cold <= 20 s in <= 3 programs; 100 seeds <= 60 s; at least
2,000 MNIST-1D models/s at 4,096 models. On a CPU the same command runs (slowly; --quick for
seconds) and the targets are reported but not expected to hold.
Run:    pip install -e ".[gpu,bench]" && python -m experiments.accelerator_check
        python -m experiments.accelerator_check --quick    # the same steps on tiny budgets
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

from dlfound import cli
from dlfound.data import load
from dlfound.files import read_json, write_bytes_atomic
from . import benchmark

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"main_sweep_s": 20.0, "main_sweep_programs": 3, "seeds100_s": 60.0, "models_per_s_4096": 2000.0}


def timed_run(name: str, out: Path, args: list[str]) -> dict:
    """Runs `dlfound run name` in a fresh process with an empty compilation cache; its wall time."""
    env = dict(os.environ, DLFOUND_JAX_CACHE=tempfile.mkdtemp(prefix="dlfound-cold-"), PYTHONUNBUFFERED="1")
    shutil.rmtree(out, ignore_errors=True)  # this check's own sub-run from an earlier check: measure afresh
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dlfound", "run", name, "--out", str(out), "--quiet", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"seconds": seconds, "error": f"exit {proc.returncode}: {tail[0]}"}
    config = read_json(out / "config.json")
    return {"seconds": seconds, "programs": len(config.get("programs", [])), "packing": config.get("packing"),
            "models_per_call": [p["models_per_call"] for p in config.get("programs", [])]}


def report(metrics: dict) -> str:
    """CHECK.md: each measure against its target."""
    main, many, bench = metrics["main_sweep"], metrics["seeds100"], metrics["benchmark"]
    at_4096 = bench["saturation"].get("4096")
    rate = at_4096["models_per_s"] if isinstance(at_4096, dict) else None
    rows = [("main sweep, cold", main.get("seconds"), f"<= {TARGETS['main_sweep_s']:.0f} s"),
            ("main sweep, compiled programs", main.get("programs"), f"<= {TARGETS['main_sweep_programs']}"),
            ("main sweep, 100 seeds, cold", many.get("seconds"), f"<= {TARGETS['seeds100_s']:.0f} s"),
            ("MNIST-1D models/s at 4096 models", rate, f">= {TARGETS['models_per_s_4096']:.0f}"),
            ("seeds' MLP, microseconds per step", bench["seed_mlp"]["us_per_step"], ""),
            ("seeds' MLP, speedup vs PyTorch", bench["seed_mlp"]["speedup_vs_pytorch"], "")]
    device = f"{metrics['device_kind']} x {metrics['devices']} ({metrics['backend']})"
    lines = [f"# Accelerator check: {device}", "", "| measure | value | target |", "|---|---|---|"]
    for name, value, target in rows:
        lines.append(f"| {name} | {'n/a' if value is None else f'{value:.4g}'} | {target} |")
    if isinstance(at_4096, dict):
        lines.append(f"\nAt 4096 models: {at_4096['fraction_of_flops_peak']:.3g} of the float32 FLOP/s peak "
                     f"and {at_4096['fraction_of_bytes_peak']:.3g} of the bandwidth peak, both measured "
                     "in the same run.")
    for name, run in (("main sweep", main), ("100 seeds", many)):
        if "error" in run:
            lines.append(f"\n{name} failed: {run['error']}")
    return "\n".join(lines) + "\n"


def run(ctx: cli.Context) -> dict:
    quick = ["--quick"] if ctx.quick else []
    metrics = {"backend": jax.default_backend(), "devices": jax.device_count(),
               "device_kind": jax.devices()[0].device_kind,
               "main_sweep": timed_run("depth_activation", ctx.run_dir.file("main"), quick),
               "seeds100": timed_run("depth_activation", ctx.run_dir.file("seeds100"),
                                     [*quick, "--seeds", "2" if ctx.quick else "100"])}
    metrics["benchmark"] = measure(ctx.quick)
    metrics["targets"] = TARGETS
    write_bytes_atomic(ctx.run_dir.file("CHECK.md"), report(metrics).encode())
    if not ctx.quiet:
        print(report(metrics), file=sys.stderr)
    return {"metrics": metrics, "claims": []}


def measure(quick: bool) -> dict:
    """Peaks, saturation curve and seed-MLP epoch, as the benchmark measures them."""
    repeats = 1 if quick else 3
    peaks = {"flops": benchmark.matmul_peak(512 if quick else 4096, repeats),
             "bytes_per_s": benchmark.bandwidth_peak(16 if quick else 1024, repeats)}
    cfg = benchmark.ENSEMBLE.replace(num_epochs=1) if quick else benchmark.ENSEMBLE
    sizes = benchmark.ENSEMBLE_SIZES[:2] if quick else benchmark.ENSEMBLE_SIZES
    return {"measured_peaks": peaks, "datasheet_peaks": benchmark.datasheet_peaks(),
            "saturation": benchmark.saturation(cfg, load("mnist1d"), sizes, repeats, 60.0, peaks),
            "seed_mlp": benchmark.epoch_speed(benchmark.mnist_shaped(2048 if quick else 60000), (1,), quick)}


EXPERIMENT = cli.Experiment(name="accelerator_check", description=__doc__, base=benchmark.SEED_MLP,
                            default_seeds=1, run=run)
cli.script(__name__, EXPERIMENT)
