"""Trained models kept with Orbax: reloaded models reproduce their recorded numbers; damaged or
foreign checkpoints are never loaded; --overwrite and --no-params behave."""

import shutil

import jax
import numpy as np
import pytest

from dlfound import checkpoints, results, sweep
from dlfound.config import Config
from dlfound.data.dataset import Dataset
from dlfound.errors import ConfigError
from dlfound.results import RunDir


def _data(n=256, d=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + 64, d)).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(d, classes)), axis=1).astype(np.int32)
    return Dataset(x[:n], y[:n], x[n:n + 32], y[n:n + 32], x[n + 32:], y[n + 32:], name="toy",
                   num_classes=classes)


BASE = Config(dataset="xor", depth=1, width=16, batch_size=32, num_epochs=2, optimizer="sgd",
              learning_rate=0.1)
GRID = {"depth": (1, 2), "norm": (None, "batch")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("kept")
    table = sweep.run_sweep(sweep.Sweep(BASE, GRID), _data(), [3, 5], RunDir(path), quiet=True)
    return path, table


@pytest.mark.parametrize("depth, norm", [(1, None), (2, "batch")])
def test_a_reloaded_model_reproduces_its_recorded_test_accuracy(trained, depth, norm):
    path, table = trained
    data = _data()
    for seed, recorded in zip((3, 5), table.final("test_accuracy", depth=depth, norm=norm)):
        model = results.load_model(path, seed=seed, depth=depth, norm=norm)
        assert model.cfg.depth == depth and model.cfg.norm == norm
        assert ("batch_stats" in model.variables) == (norm is not None)
        logits = model.module.apply(model.variables, data.x_test)
        assert np.mean(np.argmax(logits, -1) == data.y_test) == pytest.approx(recorded, abs=0)


def test_the_models_of_a_fresh_and_a_resumed_run_are_equal(trained, tmp_path):
    path, table = trained
    resumed = sweep.run_sweep(sweep.Sweep(BASE, GRID), _data(), [3, 5], RunDir(path), quiet=True)
    in_memory = sweep.run_sweep(sweep.Sweep(BASE, GRID), _data(), [3, 5], None, quiet=True)
    for source in (resumed, in_memory):
        for depth in (1, 2):
            for norm in (None, "batch"):
                a, b = table.models(depth=depth, norm=norm), source.models(depth=depth, norm=norm)
                assert a.seeds == b.seeds == (3, 5)
                jax.tree.map(np.testing.assert_array_equal, a.variables, b.variables)
    one = table.models(seed=5, depth=2, norm=None)
    assert one.seeds == (5,) and one.variables["params"]["hidden_0"]["kernel"].shape == (1, 8, 16)


def test_a_truncated_checkpoint_is_not_loaded(trained, tmp_path):
    path, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    cell = "depth=1,norm=None"
    for damaged in checkpoints.cell_path(copy, cell, (3, 5)).rglob("d/*"):  # the arrays' data files
        damaged.write_bytes(damaged.read_bytes()[:-7])
    with pytest.raises(ConfigError, match="no trained models of cell 'depth=1,norm=None'"):
        results.load_model(copy, seed=3, depth=1, norm=None)
    assert results.load_model(copy, seed=3, depth=2, norm=None).cfg.depth == 2  # the others still load


def test_a_checkpoint_of_other_inputs_is_not_loaded(trained, tmp_path):
    path, _ = trained
    cell = "depth=1,norm=None"
    other = tmp_path / "other"
    sweep.run_sweep(sweep.Sweep(BASE.replace(learning_rate=0.2), GRID), _data(), [3, 5], RunDir(other),
                    quiet=True)
    shutil.rmtree(checkpoints.cell_path(other, cell, (3, 5)))
    shutil.copytree(checkpoints.cell_path(path, cell, (3, 5)), checkpoints.cell_path(other, cell, (3, 5)))
    assert checkpoints.load(path, cell, (3, 5)) is not None
    with pytest.raises(ConfigError, match="no trained models"):
        results.load_models(other, depth=1, norm=None)


def test_a_selection_of_several_models_is_refused_by_load_model(trained):
    with pytest.raises(ConfigError, match="selects 2 models"):
        results.load_model(trained[0], depth=1, norm=None)
    with pytest.raises(ConfigError, match="unknown field 'width2'"):
        results.load_model(trained[0], width2=3)


def test_no_models_are_kept_when_asked_not_to(tmp_path):
    fresh = sweep.run_sweep(sweep.Sweep(BASE), _data(), [0], RunDir(tmp_path, keep_models=False), quiet=True)
    assert not (tmp_path / checkpoints.MODELS_DIR).exists()
    assert fresh.models().seeds == (0,)  # this process still holds the models it trained
    resumed = sweep.run_sweep(sweep.Sweep(BASE), _data(), [0], RunDir(tmp_path), quiet=True)
    with pytest.raises(ValueError, match="--no-params"):
        resumed.models()
