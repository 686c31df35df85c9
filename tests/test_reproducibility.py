"""Reproducibility: the same seed and config give bitwise-identical results in-process, across processes,
and across an interrupted run that resumes; an ensemble member equals its seed trained alone; config.json
records what ran; `--from RUN_DIR` reproduces a run.

Tolerance for ensemble vs solo: rtol 1e-5, atol 1e-6 (vmapped matmuls are not bitwise equal to single ones
on CPU; the largest deviation measured is printed).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import tiny_support

from dlfound import sweep
from dlfound.config import Config
from dlfound.data.dataset import Dataset
from dlfound.ensemble import train_ensemble
from dlfound.results import RunDir
from dlfound.train import make_train

REPO = Path(__file__).resolve().parents[1]
RTOL, ATOL = 1e-5, 1e-6



@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny experiment: its file (for subprocesses) and its module (for in-process runs)."""
    path = tiny_support.write(tmp_path_factory.mktemp("tiny"), "tiny_repro")
    return path, tiny_support.load(path, "dlfound_test_tiny_repro")


def _main(tiny, *argv) -> None:
    assert tiny[1].main(["--quiet", *argv]) == 0


@pytest.fixture(scope="module")
def first_run(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("first") / "run"
    _main(tiny, "--out", str(out))
    return out


def _same_run(a: Path, b: Path) -> None:
    assert (a / "results.jsonl").read_bytes() == (b / "results.jsonl").read_bytes()
    assert json.loads((a / "summary.json").read_text()) == json.loads((b / "summary.json").read_text())


def _toy(n=192, d=6, classes=3, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + 64, d)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(d, classes)), axis=1).astype(np.int32)
    return Dataset(x[:n], y[:n], x[n:n + 32], y[n:n + 32], x[n + 32:], y[n + 32:], name="toy",
                   num_classes=classes)


CONFIGS = {
    "relu_adam": Config(dataset="xor", depth=2, width=16, activation="relu", optimizer="adam",
                        learning_rate=1e-2, batch_size=32, num_epochs=3),
    "batchnorm_dropout_momentum": Config(dataset="xor", depth=2, width=16, activation="tanh", norm="batch",
                                         dropout_rate=0.2, optimizer="momentum", learning_rate=0.05,
                                         weight_decay=1e-3, batch_size=32, num_epochs=3),
}


def _assert_trees_equal(a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


SEEDS = [0, 1, 2, 3, 4]  # 5 models on 2 devices: the padded path


@pytest.fixture(scope="module")
def ensembles() -> dict:
    return {name: train_ensemble(cfg, _toy(), SEEDS) for name, cfg in CONFIGS.items()}


def test_same_seed_is_bitwise_identical_in_process(ensembles):
    name = "batchnorm_dropout_momentum"
    again = train_ensemble(CONFIGS[name], _toy(), SEEDS)  # a fresh program: retraced, compiled or cached
    _assert_trees_equal(ensembles[name], again)


def test_same_run_is_bitwise_identical_in_process_and_across_processes(tiny, first_run, tmp_path):
    again = tmp_path / "again"
    _main(tiny, "--out", str(again))
    _same_run(first_run, again)
    other = tmp_path / "subprocess"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLFOUND_") or k == "DLFOUND_JAX_CACHE"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    env["DLFOUND_CPU_DEVICES"] = "2"
    proc = subprocess.run([sys.executable, str(tiny[0]), "--quiet", "--out", str(other)], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    _same_run(first_run, other)


def test_interrupted_run_resumes_to_identical_results(tiny, first_run, tmp_path, monkeypatch, capsys):
    """Ctrl-C after two cells (exit 130, cells saved), then the same command: bitwise the uninterrupted
    run."""
    out = tmp_path / "run"
    real, calls = sweep.train_ensemble, []

    def interrupt_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep, "train_ensemble", interrupt_third)
    assert tiny[1].main(["--quiet", "--out", str(out)]) == 130
    assert "re-run the same command to resume" in capsys.readouterr().err
    assert RunDir(out).finished_cells() == {"width=4", "width=8"} and not (out / "summary.json").exists()
    monkeypatch.setattr(sweep, "train_ensemble", real)
    _main(tiny, "--out", str(out))
    _same_run(first_run, out)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_ensemble_member_equals_its_seed_alone(ensembles, name):
    data, cfg, stacked = _toy(), CONFIGS[name], ensembles[name]
    solo = jax.jit(make_train(cfg))
    deviation = 0.0
    for i, seed in enumerate(SEEDS):
        alone = solo(jax.random.key(seed), data)
        for a, b in zip(jax.tree.leaves(stacked), jax.tree.leaves(alone), strict=True):
            a, b = np.asarray(a)[i], np.asarray(b)
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
            finite = np.isfinite(b)
            deviation = max(deviation, float(np.max(np.abs(a[finite] - b[finite]), initial=0.0)))
    print(f"{name}: max |ensemble - solo| = {deviation:.3g}")


def test_config_json_records_the_environment(first_run):
    stored = json.loads((first_run / "config.json").read_text())
    assert stored["experiment"] == "tiny" and stored["seeds"] == [0, 1, 2] and stored["quick"] is False
    assert stored["config"]["dataset"] == "moons" and stored["config"]["resolved_init"] == "he"
    env = stored["environment"]
    import flax
    import jaxlib
    import optax

    assert env["jax"] == jax.__version__ and env["jaxlib"] == jaxlib.__version__
    assert env["flax"] == flax.__version__ and env["optax"] == optax.__version__
    assert env["numpy"] == np.__version__ and env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["backend"] == jax.default_backend() == "cpu"
    assert env["device_count"] == jax.device_count() == 2 and env["process_count"] == 1
    assert "default_matmul_precision" in env
    assert env["default_matmul_precision"] == jax.config.jax_default_matmul_precision
    assert env["utc_time"] and env["command"]
    if (REPO / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", env["git_revision"]), env["git_revision"]
        commit = f"{env['git_revision']}^{{commit}}"
        assert subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", commit], check=False).returncode == 0
        assert isinstance(env["git_dirty"], bool)


def test_from_reruns_the_same_config_and_seeds(tiny, tmp_path, monkeypatch):
    original = tmp_path / "original"
    _main(tiny, "--out", str(original), "--seeds", "4", "--set", "learning_rate=0.3", "--set", "seed=1")
    rerun = tmp_path / "rerun"
    _main(tiny, "--from", str(original), "--out", str(rerun))
    _same_run(original, rerun)
    summary = json.loads((rerun / "summary.json").read_text())
    assert summary["seeds"] == [0, 1, 2, 3] and summary["config"]["learning_rate"] == 0.3
    assert summary["config"]["seed"] == 1

    monkeypatch.chdir(original)  # from inside the run directory: `--from .` writes next to it
    _main(tiny, "--from", ".")
    _same_run(original, tmp_path / "original-rerun")
