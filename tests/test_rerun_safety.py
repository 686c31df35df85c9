"""Safe re-runs: a finished cell is reused only when everything that determines it is unchanged,
and a start that was refused never blocks the corrected command."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

from dlfound import files, identity, sweep
from dlfound.config import Config
from dlfound.data import load
from dlfound.errors import ConfigError
from dlfound.results import RunDir
from dlfound.sweep import Sweep, run_sweep
from experiments import depth_activation

BASE = Config(dataset="moons", depth=1, width=4, batch_size=32, num_epochs=1, eval_every_epochs=1,
              optimizer="sgd", learning_rate=0.1)


def _tripwire(*args, **kwargs):
    raise AssertionError("reached training")


@pytest.fixture(scope="module")
def moons():
    return load("moons")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, moons):
    """A finished two-cell API run and its table."""
    path = tmp_path_factory.mktemp("api") / "run"
    table = run_sweep(Sweep(BASE, {"width": (4, 8)}), moons, [0, 1], RunDir(path), quiet=True)
    return path, table


def test_the_same_inputs_are_read_back_without_training(finished, moons):
    path, table = finished
    with mock.patch.object(sweep, "train_ensemble", _tripwire):
        again = run_sweep(Sweep(BASE, {"width": (4, 8)}), moons, [0, 1], RunDir(path), quiet=True)
    assert files.dumps(again.rows) == files.dumps(table.rows)  # NaN-safe equality


@pytest.mark.parametrize("changed, needle", [
    (dict(base=BASE.replace(optimizer="adam")), "config.optimizer is 'sgd' there, 'adam' now"),
    (dict(base=BASE.replace(num_epochs=2, eval_every_epochs=2)), "config.num_epochs is 1 there, 2 now"),
    (dict(vmapped={"learning_rate": (0.05,)}), "its vmapped values differ"),
    (dict(data="shifted"), "its data differ"),
    (dict(versions={"jax": "0.0.1"}), "versions.jax is"),
])
def test_changed_inputs_are_refused_not_answered_with_old_results(finished, moons, changed, needle):
    """The README's snippet changed from SGD to Adam and re-run used to return the SGD numbers."""
    path, _ = finished
    data = moons.replace(x_test=moons.x_test + np.float32(1.0)) if changed.get("data") else moons
    versions = {**identity.package_versions(), **changed.get("versions", {})}
    with mock.patch.object(sweep, "train_ensemble", _tripwire), \
            mock.patch.object(identity, "package_versions", lambda: versions), \
            pytest.raises(ConfigError, match="was trained on other inputs") as refused:
        run_sweep(Sweep(changed.get("base", BASE), {"width": (4, 8)}, changed.get("vmapped", {})), data,
                  [0, 1], RunDir(path), quiet=True)
    assert needle in str(refused.value) and "--overwrite" in str(refused.value)


def test_a_refused_start_does_not_block_the_corrected_command(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert depth_activation.EXPERIMENT.main(["--quick", "--quiet", "--out", out, "--set", "batch_size=100000"]) == 2
    assert "batch_size=100000" in capsys.readouterr().err
    with mock.patch.object(sweep, "train_ensemble", _tripwire), pytest.raises(AssertionError, match="training"):
        depth_activation.EXPERIMENT.main(["--quick", "--quiet", "--out", out, "--set", "batch_size=32"])


def test_overwrite_starts_the_same_run_afresh(tmp_path):
    run = RunDir(tmp_path / "run")
    info = {"experiment": "x", "config": {"depth": 2}, "seeds": [0], "quick": False}
    run.write_config(info)
    run.append_cell("a", [{"model": 0, "eval": 0}])
    run.write_config(info)  # the same run resumes
    assert run.finished_cells() == {"a"}
    run.write_config(info, overwrite=True)
    assert RunDir(run.path).finished_cells() == set()
