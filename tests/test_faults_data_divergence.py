"""Faults in data and training: corrupted dataset caches are detected and rebuilt, and diverging
ensemble members are flagged without disturbing the others (equal to their solo runs).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

from dlfound import sweep
from dlfound.config import Config
from dlfound.data import cache, load, mnist1d_loader
from dlfound.hyperparams import Hyperparams
from dlfound.train import make_train


def _checked_cache(tmp_path):
    path = tmp_path / "arrays" / "toy.npz"
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(4096, dtype=np.float32).reshape(64, 64), "y": np.arange(64, dtype=np.int32)}

    return path, calls, build


def _flip(path: Path, where: float) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupted_cache_is_detected_and_rebuilt(tmp_path, caplog):
    path, calls, build = _checked_cache(tmp_path)
    first = cache.cached_arrays(path, build)
    assert len(calls) == 1
    cache.cached_arrays(path, build)
    assert len(calls) == 1  # a good cache is read, not rebuilt
    original = path.read_bytes()
    corruptions = {
        "flipped byte": lambda: _flip(path, 0.5),
        "truncated": lambda: path.write_bytes(original[: len(original) // 2]),
        "empty": lambda: path.write_bytes(b""),
        "not a zip": lambda: path.write_text("hello"),
        "digest mismatch": lambda: np.savez(path, x=first["x"] + 1, y=first["y"],
                                            __sha256__=np.array(cache.arrays_digest(first))),
        "digest missing": lambda: np.savez(path, **first),
    }
    for name, corrupt in corruptions.items():
        corrupt()
        caplog.clear()
        arrays = cache.cached_arrays(path, build)
        assert len(calls) == 2, name
        calls.pop()
        np.testing.assert_array_equal(arrays["x"], first["x"], err_msg=name)
        assert any("rebuilding" in r.getMessage() for r in caplog.records), name
        assert cache.load_checked(path) is not None, f"{name}: the rebuilt cache does not verify"


def test_corrupted_mnist1d_cache_is_rebuilt(tmp_path, monkeypatch, caplog):
    calls = []
    real = mnist1d_loader.generate
    monkeypatch.setattr(mnist1d_loader, "generate", lambda: calls.append(1) or real())
    first = load("mnist1d", cache_dir=tmp_path)
    path = tmp_path / "arrays" / "mnist1d.npz"
    _flip(path, 0.3)  # inside x_train's bytes: the zip's CRC or the digest catches it
    again = load("mnist1d", cache_dir=tmp_path)
    assert len(calls) == 2 and any("rebuilding" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(again.x_train, first.x_train)
    np.testing.assert_array_equal(again.y_test, first.y_test)
    load("mnist1d", cache_dir=tmp_path)
    assert len(calls) == 2


LEARNING_RATES = tuple(float(v) for v in np.logspace(-4, 3, 8))


def test_diverging_members_are_flagged_and_the_others_equal_solo_runs():
    """1e-4 .. 1e3 in one vmapped ensemble: the large rates blow up (NaN), the rest train as if alone."""
    data = load("moons", validation_fraction=0.1)
    cfg = Config(dataset="moons", depth=2, width=16, activation="identity", batch_size=32, num_epochs=4,
                 eval_every_epochs=2, optimizer="sgd")
    captured = {}
    table = sweep.run_sweep(sweep.Sweep(cfg, vmapped={"learning_rate": LEARNING_RATES}), data, [0],
                            quiet=True, on_result=lambda cell, result: captured.update(result=result))
    ensemble = captured["result"]
    status = table.member_values("status", cell="base")
    steps = table.member_values("diverged_step", cell="base")
    total_steps = cfg.num_epochs * (data.num_train // cfg.batch_size)
    assert list(table.member_values("learning_rate", cell="base")) == pytest.approx(LEARNING_RATES)
    diverged = status == "diverged"
    assert 1 <= diverged.sum() <= 5 and not diverged[:4].any(), status
    loss = table.history("train_loss", cell="base")
    for i in range(len(LEARNING_RATES)):
        finite = np.isfinite(loss[i]).all() and np.isfinite(table.history("test_loss", cell="base")[i]).all()
        assert finite != diverged[i], f"member {i}: status {status[i]} but finite history {finite}"
        assert (0 <= steps[i] <= total_steps) if diverged[i] else steps[i] == -1

    solo = jax.jit(make_train(cfg))
    deviation = 0.0
    for i, lr in enumerate(LEARNING_RATES):
        alone = solo(jax.random.key(0), data, Hyperparams.from_config(cfg, learning_rate=lr))
        if diverged[i]:
            assert int(alone.diverged_step) >= 0 and abs(int(alone.diverged_step) - steps[i]) <= 1
            continue
        assert int(alone.diverged_step) == -1
        pairs = [(ensemble.params, alone.params), (ensemble.history, alone.history)]
        for stacked, single in pairs:
            for a, b in zip(jax.tree.leaves(stacked), jax.tree.leaves(single)):
                np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6)
                both = np.isfinite(b)
                deviation = max(deviation, float(np.max(np.abs(a[i][both] - np.asarray(b)[both]), initial=0)))
    print(f"max |ensemble - solo| over non-diverged members: {deviation:.3g}")


def test_divergence_in_the_last_step_is_flagged():
    """An update that breaks the model in the final step shows only in the last evaluation: still flagged."""
    data = load("moons", validation_fraction=0.1)
    cfg = Config(dataset="moons", depth=1, width=8, activation="identity", batch_size=data.num_train,
                 num_epochs=1, optimizer="sgd")  # one step in all
    sw = sweep.Sweep(cfg, vmapped={"learning_rate": (0.1, 1e20, 1e38)})
    table = sweep.run_sweep(sw, data, [0], quiet=True)
    assert list(table.member_values("status", cell="base")) == ["ok", "diverged", "diverged"]
    assert list(table.member_values("diverged_step", cell="base")) == [-1, 1, 1]
    assert np.isnan(table.history("train_loss", cell="base")[1:, -1]).all()
