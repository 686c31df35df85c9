"""Data contents checked before anything is created, and sizes refused or stated with an estimate
before any training."""

from __future__ import annotations

import itertools
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safety_support import one_line, run_cli, tripwire

from dlfound import budget, results, sweep
from dlfound.data import load
from dlfound.errors import ConfigError
from dlfound.results import RunDir
from experiments import depth_activation

HYP = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_examples = itertools.count()


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


# --- data contents -----------------------------------------------------------------------------


def _arrays(n_train=60, n_test=20, classes=3, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    return {"x_train": rng.normal(size=(n_train, 3)), "y_train": np.arange(n_train) % classes,
            "x_test": rng.normal(size=(n_test, 3)), "y_test": np.arange(n_test) % classes}


def _npz(tmp_path, name="data", **arrays) -> str:
    path = tmp_path / f"{name}.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


DATA_CASES = {
    "classes_10_to_19": (dict(y_train=np.arange(60) % 10 + 10, y_test=np.arange(20) % 10 + 10),
                         "y_train holds the 10 classes {10, 11, 12, 13, 14, 15, ..., 19}, not 0..9"),
    "stray_test_label": (dict(y_test=np.r_[np.arange(19) % 3, 65535]),
                         "y_test[19] = 65535 is outside the 3 classes 0..2"),
    "float64_overflow": (dict(x_train=np.where(np.eye(60, 3, -3) > 0, 1e300, 0.5)),
                         "x_train[3, 0] = 1e+300 overflows float32"),
    "too_large_to_standardize": (dict(x_train=np.full((60, 3), 1e30) * np.r_[1, -1] .repeat(30)[:, None]),
                                 "too large to standardize in float32"),
    "one_class": (dict(y_train=np.zeros(60, np.int64), y_test=np.zeros(20, np.int64)), "at least 2"),
    "bad_declared_count": (dict(num_classes=np.array([3, 4])), "invalid num_classes"),
    "label_past_declared": (dict(num_classes=np.int64(2)), "y_train[2] = 2 is outside the 2 classes"),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_contents_are_refused_before_the_run_folder_exists(capsys, tmp_path, case):
    changes, needle = DATA_CASES[case]
    dataset = _npz(tmp_path, case, **{**_arrays(), **changes})
    out = tmp_path / "run"
    status, err = run_cli(capsys, "--dataset", dataset, "--set", "batch_size=8", "--out", str(out))
    assert status == 2
    one_line(err, needle)
    assert not out.exists()


def test_declared_classes_may_be_absent_from_training(tmp_path):
    arrays = _arrays()
    data = load(_npz(tmp_path, **{**arrays, "y_train": arrays["y_train"] * 2}, num_classes=np.int64(6)))
    assert data.num_classes == 6
    assert load(_npz(tmp_path, "plain", **arrays)).num_classes == 3


def test_files_that_are_not_npz_archives(capsys, tmp_path):
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    objects = _npz(tmp_path, "objects", **{**_arrays(), "y_train": np.array([{"a": 1}] * 60, dtype=object)})
    for dataset, needle in ((f"npz:{npy}", "is not an .npz file"), (objects, "y_train holds Python objects")):
        status, err = run_cli(capsys, "--dataset", dataset, "--out", str(tmp_path / "run"))
        line = one_line(err, needle)
        assert status == 2 and "allow_pickle" not in line


LABEL_DTYPES = st.sampled_from([np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint64, np.float32,
                                np.float64, np.bool_])
VALUE_DTYPES = st.sampled_from([np.float16, np.float32, np.float64, np.int8, np.int64, np.uint16])


@HYP
@given(data=st.data())
def test_generated_npz_contents_never_trace_back_or_change_the_class_count(capsys, tmp_path, data):
    """Any npz gives one error line or reaches training with C = its contiguous training classes."""
    n_train = data.draw(st.integers(1, 12))
    n_test = data.draw(st.integers(0, 6))
    features = data.draw(st.integers(1, 3))
    labels = data.draw(st.lists(st.integers(0, 70000), min_size=1, max_size=4, unique=True))
    magnitude = data.draw(st.sampled_from([1.0, 1e5, 1e30, 1e39, 1e300, float("nan")]))
    y_dtype, x_dtype = data.draw(LABEL_DTYPES), data.draw(VALUE_DTYPES)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    with np.errstate(all="ignore"):
        arrays = {"x_train": (rng.normal(size=(n_train, features)) * magnitude).astype(x_dtype),
                  "y_train": rng.choice(labels, n_train).astype(y_dtype),
                  "x_test": rng.normal(size=(n_test, features)).astype(x_dtype),
                  "y_test": rng.choice(labels, n_test).astype(y_dtype)}
    example = next(_examples)
    dataset = _npz(tmp_path, f"generated{example}", **arrays)
    out = tmp_path / f"generated-run{example}"
    captured = {}

    def record(pack, data_, *args, **kwargs):
        captured["classes"] = data_.num_classes
        raise AssertionError("reached training")

    capsys.readouterr()
    with mock.patch.object(sweep, "train_ensemble", record):
        try:
            status = depth_activation.EXPERIMENT.main(["--quiet", "--quick", "--dataset", dataset, "--out", str(out),
                                            "--set", "batch_size=1", "--set", "validation_fraction=0"])
        except AssertionError:
            status = None
    err = capsys.readouterr().err
    if status is None:
        observed = np.unique(arrays["y_train"].astype(np.int64))
        assert captured["classes"] == len(observed) and observed.tolist() == list(range(len(observed)))
    else:
        assert status == 2
        one_line(err)
        assert not out.exists()


# --- sizes and estimates -----------------------------------------------------------------------


@pytest.mark.parametrize("setting, needle", [
    ("depth=1000000000", "invalid depth=1000000000; allowed: an integer from 0 to 1024"),
    ("width=100000", "invalid width=100000; allowed: an integer from 1 to 65536"),
    ("num_epochs=10000000", "num_epochs"),
    ("batch_size=100000000", "batch_size"),
])
def test_structural_values_have_upper_bounds(capsys, tmp_path, setting, needle):
    status, err = run_cli(capsys, "--set", setting, "--out", str(tmp_path / "run"))
    assert status == 2
    one_line(err, needle)


def test_every_sweep_states_its_size_and_time_before_training(capsys, tmp_path):
    cfg = depth_activation.EXPERIMENT.base
    data = load(cfg.dataset)
    programs = sweep.plan_programs(depth_activation.sweeps(cfg, depth_activation.DEPTHS,
                                                           depth_activation.ACTIVATIONS,
                                                           rates=(cfg.learning_rate,)),
                                   data, range(100_000), ("activation", "init", "residual", "norm"))
    cost = budget.estimate(programs)
    assert cost.cells == 31 and cost.models == 3_100_000
    assert cost.seconds > 24 * 3600 and "models of up to" in cost.line() and "days" in cost.line()
    logistic = next(p for p in programs if p.pack.depth == 0)
    one = budget.estimate([logistic])
    steps = cfg.num_epochs * (data.num_train // cfg.batch_size)
    params = (data.input_shape[0] + 1) * 10
    examples = data.num_train + len(data.x_val) + len(data.x_test)
    evals = cfg.num_epochs // cfg.eval_every_epochs + 1
    assert one.flops == 100_000 * params * (6 * cfg.batch_size * steps + 2 * examples * evals)


def test_the_estimate_is_printed_before_training(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)  # $CI silences progress lines
    capsys.readouterr()
    with mock.patch.object(sweep, "train_ensemble", tripwire), pytest.raises(AssertionError):
        depth_activation.EXPERIMENT.main(["--quick", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    # 7 quick cells x 8 seeds x 7 vmapped learning rates
    assert "plan: 7 cells in 3 programs, 392 models of up to 7,434 parameters; about" in err
    assert "of results, " in err and "of trained models and" in err and "on this machine" in err


def test_results_that_cannot_fit_on_disk_are_refused(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "run")
    free = results.shutil.disk_usage(run.path).free
    with pytest.raises(ConfigError, match=r"needs about \d+ MiB for its results .* MiB free"):
        run.check_space(free)
    run.check_space(1024)


