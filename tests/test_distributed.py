"""Scale: two processes on localhost give the same run as one process with two devices; a forced
3-device ensemble equals single-device training; an ensemble over the memory budget runs in chunks with
the same results; a non-writing process never touches the run directory.
"""

from __future__ import annotations

import functools
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest
import tiny_support
from hypothesis import given, settings
from hypothesis import strategies as st

from dlfound import ensemble, sweep
from dlfound.config import Config
from dlfound.data import load
from dlfound.data.dataset import Dataset
from dlfound.results import RunDir
from dlfound.train import make_train

REPO = Path(__file__).resolve().parents[1]
RTOL, ATOL = 1e-5, 1e-6
TIMEOUT_S = 600


# Trains an ensemble on however many CPU devices DLFOUND_CPU_DEVICES asks for and saves every leaf.
ENSEMBLE_SCRIPT = textwrap.dedent('''
    import json, sys
    import numpy as np
    from dlfound import runtime

    runtime.configure()
    import jax
    from dlfound.config import Config
    from dlfound.data import load
    from dlfound.ensemble import train_ensemble

    cfg = Config(**json.loads(sys.argv[1]))
    data = load(cfg.dataset, validation_fraction=0.1)
    out = train_ensemble(cfg, data, json.loads(sys.argv[2]))
    leaves = jax.tree_util.tree_flatten_with_path(out)[0]
    np.savez(sys.argv[3], device_count=jax.device_count(),
             **{jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves})
''')


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLFOUND_") or k == "DLFOUND_JAX_CACHE"}
    env.pop("CI", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tiny_support.write(tmp_path_factory.mktemp("tiny"), "tiny_dist", widths=(4, 8))
    return path, tiny_support.load(path, "dlfound_test_tiny_dist")


def _committed_segment(run) -> bool:
    try:
        return any((run / "segments").glob("*/chunk-*/meta"))
    except OSError:  # Orbax renames its temporary folders meanwhile
        return False


def _gloo_available() -> bool:
    try:
        from jax._src.lib import _jax
    except ImportError:
        return False
    return hasattr(_jax, "make_gloo_tcp_collectives")


@pytest.mark.parametrize("segmented, killed", [(False, False), (True, False), (True, True)])
def test_two_processes_match_one_process_with_two_devices(tiny, tmp_path, segmented, killed):
    """With `segmented`, every program trains in segments of two evaluations, checkpointed by both
    processes (dlfound.segmented), and still equals the one-process run in one piece; with `killed`,
    both processes are killed (SIGKILL) once a segment checkpoint is committed, and then resumed."""
    if not _gloo_available():
        pytest.skip("this jaxlib has no gloo CPU collectives (make_gloo_tcp_collectives)")
    longer = ["--set", "num_epochs=12"] if segmented else []
    single = tmp_path / "single"
    assert tiny[1].main(["--quiet", "--out", str(single), *longer]) == 0  # this process: 2 CPU devices

    multi = tmp_path / "multi"
    port = _free_port()
    segments = {"DLFOUND_SEGMENT_SECONDS": "0"} if segmented else {}

    def start(port):
        return [subprocess.Popen(
            [sys.executable, str(tiny[0]), "--quiet", "--out", str(multi), *longer], cwd=tmp_path,
            env=_env(DLFOUND_COORDINATOR=f"127.0.0.1:{port}", DLFOUND_NUM_PROCESSES="2",
                     DLFOUND_PROCESS_ID=str(i), DLFOUND_CPU_DEVICES="1", **segments),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    procs = start(port)
    if killed:
        deadline = time.time() + TIMEOUT_S
        while not _committed_segment(multi) and procs[0].poll() is None and time.time() < deadline:
            time.sleep(0.05)
        for proc in procs:
            proc.kill()
            proc.communicate()
        procs = start(_free_port())
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=TIMEOUT_S))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    codes = [proc.returncode for proc in procs]
    if codes != [0, 0]:
        stderr = "\n".join(err for _, err in outputs)
        lower = stderr.lower()
        if "gloo" in lower and ("unimplemented" in lower or "not supported" in lower):
            pytest.skip(f"gloo collectives unavailable here: {stderr.strip().splitlines()[-1]}")
        raise AssertionError(f"exit statuses {codes}:\n{stderr}")

    summaries = [json.loads((run / "summary.json").read_text()) for run in (multi, single)]
    assert summaries[0] == summaries[1]
    assert (multi / "results.jsonl").read_bytes() == (single / "results.jsonl").read_bytes()
    env = json.loads((multi / "config.json").read_text())["environment"]
    assert env["process_count"] == 2 and env["device_count"] == 2


def test_a_refusal_by_process_0_stops_every_process(tiny, tmp_path):
    """Process 0 finds the run directory locked: both processes exit 2 at once, none waits on a peer."""
    if not _gloo_available():
        pytest.skip("this jaxlib has no gloo CPU collectives (make_gloo_tcp_collectives)")
    busy = RunDir(tmp_path / "busy")
    port = _free_port()
    with busy.lock():
        procs = [subprocess.Popen(
            [sys.executable, str(tiny[0]), "--quiet", "--out", str(busy.path)], cwd=tmp_path,
            env=_env(DLFOUND_COORDINATOR=f"127.0.0.1:{port}", DLFOUND_NUM_PROCESSES="2",
                     DLFOUND_PROCESS_ID=str(i), DLFOUND_CPU_DEVICES="1"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
        try:
            errors = [proc.communicate(timeout=120)[1] for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
    assert [proc.returncode for proc in procs] == [2, 2]
    assert "in use by another dlfound process" in errors[0]
    assert "process 0 refused" in errors[1]
    assert "Traceback" not in errors[0] + errors[1]
    assert not (busy.path / "results.jsonl").exists()


CFG_3 = Config(dataset="moons", depth=2, width=16, activation="tanh", optimizer="adam", learning_rate=1e-2,
               batch_size=32, num_epochs=3)
SEEDS_3 = [0, 1, 2, 3, 4]  # 5 models on 3 devices: padded to 6


def test_three_devices_equal_one_device(tmp_path):
    script = tmp_path / "ensemble.py"
    script.write_text(ENSEMBLE_SCRIPT)
    out = tmp_path / "three.npz"
    cfg = {k: v for k, v in CFG_3.to_dict().items() if k != "resolved_init"}
    proc = subprocess.run([sys.executable, str(script), json.dumps(cfg), json.dumps(SEEDS_3), str(out)],
                          env=_env(DLFOUND_CPU_DEVICES="3"), capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)
    assert proc.returncode == 0, proc.stderr
    three = dict(np.load(out))
    assert int(three.pop("device_count")) == 3

    data = load(CFG_3.dataset, validation_fraction=0.1)
    solo = jax.jit(make_train(CFG_3))  # no vmap, no sharding: one device
    deviation = 0.0
    for i, seed in enumerate(SEEDS_3):
        leaves = jax.tree_util.tree_flatten_with_path(solo(jax.random.key(seed), data))[0]
        assert {jax.tree_util.keystr(p) for p, _ in leaves} == set(three)
        for path, leaf in leaves:
            a, b = three[jax.tree_util.keystr(path)][i], np.asarray(leaf)
            where = f"seed {seed} {jax.tree_util.keystr(path)}"
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=where)
            finite = np.isfinite(b)
            deviation = max(deviation, float(np.max(np.abs(a[finite] - b[finite]), initial=0.0)))
    print(f"3 devices vs 1 device: max deviation {deviation:.3g}")


def _toy(n=192, d=6, classes=3) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n + 64, d)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(d, classes)), axis=1).astype(np.int32)
    return Dataset(x[:n], y[:n], x[n:n + 32], y[n:n + 32], x[n + 32:], y[n + 32:], name="toy",
                   num_classes=classes)


CHUNK_CFG = Config(dataset="xor", depth=1, width=16, optimizer="sgd", learning_rate=0.1, batch_size=32,
                   num_epochs=2)


@settings(max_examples=60, deadline=None)
@given(members=st.integers(1, 500), budget_models=st.floats(0, 1000), width=st.integers(1, 4096))
def test_lanes_fit_the_budget(members, budget_models, width):
    """Every device gets the same number of members per call: CPU_LANES, or fewer where the
    members or the memory are fewer."""
    cfg, data, devices = CHUNK_CFG.replace(width=width), _toy(), jax.device_count()
    per_model = ensemble.estimate_bytes_per_model(cfg, data)
    budget = int(budget_models * per_model)
    chunk = ensemble.chunk_size(cfg, data, members, budget)
    assert chunk % devices == 0 and 1 <= chunk // devices <= min(ensemble.CPU_LANES, math.ceil(members / devices))
    if budget >= devices * per_model:
        assert chunk * per_model <= budget  # a call stays within the budget when one per device fits
    if budget >= ensemble.CPU_LANES * devices * per_model and members >= ensemble.CPU_LANES * devices:
        assert chunk == ensemble.CPU_LANES * devices  # fixed, whatever the number of members


def test_sweep_over_the_memory_budget_runs_in_chunks_with_the_same_results(monkeypatch):
    data = _toy()
    sw = sweep.Sweep(CHUNK_CFG, vmapped={"learning_rate": (0.05, 0.1, 0.2)})
    seeds = [0, 1, 2, 3]  # 12 models
    programs = []
    real_program = ensemble.make_program

    def counting(*args, **kwargs):
        run = real_program(*args, **kwargs)

        def counted(model_seeds, *rest):
            programs.append(model_seeds.shape[0])
            return run(model_seeds, *rest)

        return counted

    monkeypatch.setattr(ensemble, "make_program", counting)
    whole = sweep.run_sweep(sw, data, seeds, quiet=True)
    lanes = ensemble.CPU_LANES * jax.device_count()
    assert programs == [lanes] * math.ceil(12 / lanes)

    budget = 5 * ensemble.estimate_bytes_per_model(CHUNK_CFG, data)  # 5 models fit: 2 per device
    programs.clear()
    monkeypatch.setattr(sweep, "train_ensemble", functools.partial(ensemble.train_ensemble, budget=budget))
    chunked = sweep.run_sweep(sw, data, seeds, quiet=True)
    assert programs == [4, 4, 4]

    deviation = 0.0
    for metric in ("train_loss", "test_loss", "test_accuracy", "batch_loss"):
        a, b = whole.history(metric, cell="base"), chunked.history(metric, cell="base")
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
        finite = np.isfinite(a)
        deviation = max(deviation, float(np.max(np.abs(a[finite] - b[finite]))))
    lrs = [table.member_values("learning_rate", cell="base").tolist() for table in (whole, chunked)]
    assert lrs[0] == lrs[1]
    print(f"chunked vs one program: max deviation {deviation:.3g}")


def test_a_non_writing_process_never_modifies_the_run_directory(tmp_path, monkeypatch):
    """Process 1 of a multi-process run reads results.jsonl but must not repair it under process 0."""
    sw = sweep.Sweep(CHUNK_CFG, {"width": (4, 8)})
    sweep.run_sweep(sw, _toy(), [0], RunDir(tmp_path), quiet=True)
    torn = (tmp_path / "results.jsonl").read_bytes() + b'{"cell": "width=4", "mod'
    (tmp_path / "results.jsonl").write_bytes(torn)

    def no_training(*args, **kwargs):
        raise AssertionError("finished cells were trained again")

    monkeypatch.setattr(sweep, "train_ensemble", no_training)
    monkeypatch.setattr(sweep.runtime, "is_writer", lambda: False)
    table = sweep.run_sweep(sw, _toy(), [0], RunDir(tmp_path), quiet=True)
    assert table.cells() == ["width=4", "width=8"]
    assert (tmp_path / "results.jsonl").read_bytes() == torn

    monkeypatch.setattr(sweep.runtime, "is_writer", lambda: True)
    sweep.run_sweep(sw, _toy(), [0], RunDir(tmp_path), quiet=True)
    assert (tmp_path / "results.jsonl").read_bytes() == torn[: torn.rindex(b"\n") + 1]
