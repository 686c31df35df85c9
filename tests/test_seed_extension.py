"""Seeds added to a finished run train only the new seeds, and give exactly the numbers of a run
of all the seeds at once; fewer seeds train nothing."""

from unittest import mock

import jax
import numpy as np

from dlfound import files, sweep
from dlfound.data import load
from dlfound.results import RunDir
from dlfound.sweep import Sweep, run_sweep

from test_rerun_safety import BASE
from experiments import depth_activation

GRID, VMAPPED = {"width": (4, 8)}, {"learning_rate": (0.05, 0.1, 0.2)}  # 6+ members: full lanes


def _trained_seeds(calls):
    real = sweep.train_ensemble

    def record(pack, data, seeds, *args, **kwargs):
        calls.append(sorted(set(int(s) for s in seeds)))
        return real(pack, data, seeds, *args, **kwargs)
    return record


def test_added_seeds_train_alone_and_equal_one_run_of_all(tmp_path):
    moons = load("moons")
    declared = Sweep(BASE, GRID, VMAPPED)
    at_once = run_sweep(declared, moons, [0, 1, 2, 3], RunDir(tmp_path / "once"), quiet=True)
    run_sweep(declared, moons, [0, 1], RunDir(tmp_path / "grown"), quiet=True)
    calls = []
    with mock.patch.object(sweep, "train_ensemble", _trained_seeds(calls)):
        grown = run_sweep(declared, moons, [0, 1, 2, 3], RunDir(tmp_path / "grown"), quiet=True)
    assert calls == [[2, 3], [2, 3]]  # a program per width, the new seeds only
    assert files.dumps(grown.rows) == files.dumps(at_once.rows)
    for width in (4, 8):
        jax.tree.map(np.testing.assert_array_equal, grown.models(width=width).variables,
                     at_once.models(width=width).variables)
    calls.clear()
    with mock.patch.object(sweep, "train_ensemble", _trained_seeds(calls)):
        fewer = run_sweep(declared, moons, [3, 1], RunDir(tmp_path / "grown"), quiet=True)
    assert calls == []
    assert list(fewer.member_values("seed", width=4)) == [3, 3, 3, 1, 1, 1]
    np.testing.assert_array_equal(fewer.final("train_loss", width=8, seed=3),
                                  at_once.final("train_loss", width=8, seed=3))
    assert fewer.models(width=8, seed=3).seeds == (3, 3, 3)


def test_the_command_line_adds_seeds_to_a_finished_run(tmp_path):
    out = str(tmp_path / "run")
    assert depth_activation.EXPERIMENT.main(["--quick", "--quiet", "--out", out, "--seeds", "2"]) == 0
    calls = []
    with mock.patch.object(sweep, "train_ensemble", _trained_seeds(calls)):
        assert depth_activation.EXPERIMENT.main(["--quick", "--quiet", "--out", out, "--seeds", "0-3"]) == 0
    assert calls and all(c == [2, 3] for c in calls)
    once = str(tmp_path / "once")
    assert depth_activation.EXPERIMENT.main(["--quick", "--quiet", "--out", once, "--seeds", "4"]) == 0
    grown, fresh = (files.read_json(f"{d}/summary.json") for d in (out, once))
    assert grown["seeds"] == [0, 1, 2, 3] and files.read_json(f"{out}/config.json")["seeds"] == [0, 1, 2, 3]
    assert files.dumps(grown["metrics"]) == files.dumps(fresh["metrics"])
    assert files.dumps(grown["claims"]) == files.dumps(fresh["claims"])
