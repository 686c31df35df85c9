"""Sweeps: cell validation, ensembles equal solo runs, sharding, resume without retraining."""

import jax
import numpy as np
import pytest

from dlfound import ensemble, runtime, sweep
from dlfound.config import Config
from dlfound.data.dataset import Dataset
from dlfound.errors import ConfigError
from dlfound.hyperparams import Hyperparams
from dlfound.results import RunDir
from dlfound.train import make_train


def _data(n=256, d=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + 64, d)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(d, classes)), axis=1).astype(np.int32)
    return Dataset(x[:n], y[:n], x[n:n + 32], y[n:n + 32], x[n + 32:], y[n + 32:], name="toy", num_classes=classes)


BASE = Config(dataset="xor", depth=1, width=16, batch_size=32, num_epochs=2, optimizer="sgd", learning_rate=0.1)


def test_cells_are_the_grid_product_with_stable_ids():
    cells = sweep.Sweep(BASE, {"depth": (1, 2), "activation": ("relu", "tanh")}).cells()
    assert [c.id for c in cells] == ["depth=1,activation=relu", "depth=1,activation=tanh",
                                     "depth=2,activation=relu", "depth=2,activation=tanh"]
    assert cells[3].cfg.depth == 2 and cells[3].cfg.activation == "tanh"


@pytest.mark.parametrize("grid, vmapped, needle", [
    ({"learning_rate": (0.1,)}, {}, "structural axes"),
    ({}, {"depth": (1, 2)}, "vmappable axes"),
    ({"activation": ("relu", "rleu")}, {}, "rleu"),
    ({}, {"learning_rate": (0.1, -1.0)}, "learning_rate"),
])
def test_bad_sweeps_are_rejected_before_training(grid, vmapped, needle):
    with pytest.raises(ConfigError, match=needle):
        sweep.Sweep(BASE, grid, vmapped).cells()


def test_members_are_seed_major_products():
    seeds, members = sweep.Sweep(BASE, vmapped={"learning_rate": (0.1, 0.2)}).members([0, 1])
    assert seeds == [0, 0, 1, 1]
    assert [m["learning_rate"] for m in members] == [0.1, 0.2, 0.1, 0.2]


def test_ensemble_members_equal_solo_runs():
    data = _data()
    seeds, members = [0, 1, 2], [{"learning_rate": 0.05}, {"learning_rate": 0.2}, {"learning_rate": 0.1}]
    out = ensemble.train_ensemble(BASE, data, seeds, members)
    train = jax.jit(make_train(BASE))
    for i, (seed, member) in enumerate(zip(seeds, members)):
        solo = train(jax.random.key(seed), data, Hyperparams.from_config(BASE, **member))
        np.testing.assert_allclose(out.history["train_loss"][i], solo.history["train_loss"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out.params["hidden_0"]["kernel"][i], solo.params["hidden_0"]["kernel"],
                                   rtol=1e-5, atol=1e-6)


def test_chunked_ensemble_equals_one_program():
    data = _data()
    whole = ensemble.train_ensemble(BASE, data, [0, 1, 2, 3, 4])
    chunked = ensemble.train_ensemble(BASE, data, [0, 1, 2, 3, 4], budget=1)
    assert ensemble.chunk_size(BASE, data, 5, budget=1) == jax.device_count()
    np.testing.assert_allclose(whole.history["test_loss"], chunked.history["test_loss"], rtol=1e-5, atol=1e-6)


def test_same_seed_same_key_in_every_cell():
    """Cells that differ only after initialization start from identical models (paired comparisons)."""
    data = _data()
    table = sweep.run_sweep(sweep.Sweep(BASE, {"optimizer": ("sgd", "momentum")}), data, [3, 4], quiet=True)
    sgd, momentum = (table.history("train_loss", cell=c) for c in table.cells())
    np.testing.assert_array_equal(sgd[:, 0], momentum[:, 0])
    assert not np.allclose(sgd[:, -1], momentum[:, -1])
    assert list(table.member_values("seed", cell=table.cells()[0])) == [3, 4]


def test_repeated_grid_values_are_rejected():
    with pytest.raises(ConfigError, match="repeated"):
        sweep.Sweep(BASE, {"width": (16, 16)}).cells()


def test_rows_and_table_shapes(tmp_path):
    data = _data()
    sw = sweep.Sweep(BASE, {"depth": (1, 2)}, {"learning_rate": (0.05, 0.1)})
    table = sweep.run_sweep(sw, data, [0, 1], RunDir(tmp_path), quiet=True)
    assert table.history("test_accuracy", cell="depth=2").shape == (4, BASE.num_epochs + 1)
    assert table.history("test_accuracy", learning_rate=0.1, cell="depth=2").shape == (2, BASE.num_epochs + 1)
    assert table.history("grad_norm", layer=0, cell="depth=2").shape == (4, BASE.num_epochs + 1)
    row = table.rows[0]
    assert {"cell", "seed", "learning_rate", "init", "status", "diverged_step", "eval", "step"} <= set(row)
    assert row["init"] == "he" and row["status"] == "ok"


def test_resume_skips_finished_cells_and_returns_the_same_rows(tmp_path, monkeypatch):
    data = _data()
    sw = sweep.Sweep(BASE, {"depth": (1, 2)})
    first = sweep.run_sweep(sw, data, [0, 1], RunDir(tmp_path), quiet=True)

    def fail(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(sweep, "train_ensemble", fail)
    again = sweep.run_sweep(sw, data, [0, 1], RunDir(tmp_path), quiet=True)
    np.testing.assert_equal(again.rows, first.rows)  # NaN-aware: the initial batch_loss is NaN


def test_diverged_members_are_recorded_and_do_not_disturb_the_others():
    data = _data()
    sw = sweep.Sweep(BASE, vmapped={"learning_rate": (0.1, 1e6)})
    table = sweep.run_sweep(sw, data, [0], quiet=True)
    status = table.member_values("status", cell="base")
    assert list(status) == ["ok", "diverged"]
    assert table.member_values("diverged_step", cell="base")[1] >= 0
    solo = sweep.run_sweep(sweep.Sweep(BASE, vmapped={"learning_rate": (0.1,)}), data, [0], quiet=True)
    np.testing.assert_allclose(table.history("train_loss", cell="base")[0], solo.history("train_loss", cell="base")[0],
                               rtol=1e-5)


def test_batch_larger_than_data_is_a_config_error():
    with pytest.raises(ConfigError, match="batch_size"):
        sweep.run_sweep(sweep.Sweep(BASE.replace(batch_size=10_000)), _data(), [0], quiet=True)


def test_a_model_too_big_for_the_machine_is_refused_before_compiling():
    cfg = BASE.replace(width=10**9)
    with pytest.raises(ConfigError, match="GiB"):
        ensemble.train_ensemble(cfg, _data(), [0])


def test_ensemble_compiler_options_change_no_result():
    """The XLA options sharded ensembles compile with on CPU change compile work, not arithmetic."""
    assert runtime.ensemble_compiler_options() == runtime.CPU_ENSEMBLE_OPTIONS  # the suite runs on CPU
    train = make_train(BASE.replace(optimizer="adam", learning_rate=0.01, num_epochs=6))
    data = _data(n=9000)  # more rows than one evaluation chunk
    default = jax.jit(train)(jax.random.key(0), data)
    tuned = jax.jit(train, compiler_options=runtime.ensemble_compiler_options())(jax.random.key(0), data)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), default, tuned)
