"""Bad input never reaches training: exit status 2, one `error:` line naming the field and value, and
no traceback.

The command line runs in-process (`experiments.depth_activation.main`) with `train_ensemble`
replaced by a tripwire, so any input that got as far as training fails the test; two real
subprocess runs prove that no traceback reaches the user's terminal.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlfound import activations, initializers, losses, optim
from dlfound import config as config_lib
from dlfound import sweep as sweep_lib
from dlfound.data import registry
from experiments import depth_activation

REPO = Path(__file__).resolve().parents[1]
_counter = itertools.count()


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch, tmp_path):
    """Relative default paths (./runs) land in the test's directory, never in the checkout."""
    monkeypatch.chdir(tmp_path)


def _tripwire(*args, **kwargs):
    raise AssertionError("bad input reached training")


def _cli(capsys, tmp_path, *args, quick=True):
    """Runs the experiment's command line in-process; returns (status, stderr, run dir)."""
    out = tmp_path / f"run{next(_counter)}"
    argv = ["--quiet", *(["--quick"] if quick else []), *args]
    if "--out" not in args and "--from" not in args:
        argv += ["--out", str(out)]
    capsys.readouterr()
    with mock.patch.object(sweep_lib, "train_ensemble", _tripwire):
        status = depth_activation.EXPERIMENT.main(argv)
    captured = capsys.readouterr()
    return status, captured.err, out


def _rejected(status, err, out, *needles) -> str:
    """Asserts the bad-input contract and returns the one error line."""
    assert status == 2, f"exit status {status}; stderr: {err!r}"
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one 'error:' line, got {err!r}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert not (out / "results.jsonl").exists(), "results were written for bad input"
    return lines[0]


def _value_forms(raw: str) -> set[str]:
    """Ways an error line may show the value `raw` (as typed, quoted, or parsed)."""
    forms = {repr(raw), repr(raw.strip())}
    if raw.strip():
        forms.add(raw.strip())
    for parse in (int, float):
        try:
            forms.add(repr(parse(raw)))
        except ValueError:
            pass
    if "," in raw:
        try:
            forms.add(repr(tuple(int(p) for p in raw.strip("()[]").split(",") if p.strip())))
        except ValueError:
            pass
    return forms


def _assert_names_value(line: str, raw: str) -> None:
    assert any(form in line for form in _value_forms(raw)), f"value {raw!r} not named in {line!r}"


# One or more bad values per config field: wrong types, out of range, unknown names and typos.
FIELD_CASES = {
    "dataset": ["mnist-1d", "MNIST1D", "moon", "", "npz:/no/such/file.npz"],
    "depth": ["-1", "two", "1.5", "", "4e0"],
    "width": ["0", "-8", "wide", "8,x", "", "8,8", "1.5"],
    "activation": ["rleu", "ReLU", "sigmoidd", "", "relu6"],
    "init": ["hee", "He", "normal", ""],
    "norm": ["batchnorm", "Batch", "1", "[1]"],
    "dropout_rate": ["1", "-0.1", "nan", "half"],
    "residual": ["maybe", "2", "True!"],
    "loss": ["crossentropy", "hinge", "MSE"],
    "optimizer": ["adamm", "SGD", "lbfgs", ""],
    "learning_rate": ["0", "-1", "nan", "inf", "1e400", "fast", "-inf"],
    "momentum": ["1", "-0.5", "1.5", "nan"],
    "weight_decay": ["-1e-4", "inf", "x"],
    "schedule": ["linear", "cosine_decay", "Constant"],
    "warmup_steps": ["-1", "1.5", "ten"],
    "grad_clip_norm": ["-1", "nan", "clip"],
    "batch_size": ["0", "-64", "64.0", "100000"],
    "num_epochs": ["0", "-2", "two"],
    "eval_every_epochs": ["0", "3", "-1", "x"],
    "init_scale": ["0", "-1", "inf"],
    "label_noise": ["1.5", "-0.1", "nan"],
    "train_fraction": ["0", "1.5", "-1", "nan"],
    "validation_fraction": ["1", "-0.1", "nan", "1.0"],
    "seed": ["-1", "1.5", "x"],
}
CASES = [(field, raw) for field, raws in FIELD_CASES.items() for raw in raws]


def test_every_config_field_has_bad_cases():
    assert set(FIELD_CASES) == set(config_lib.field_names())


@pytest.mark.parametrize("field, raw", CASES, ids=[f"{f}={r}" for f, r in CASES])
def test_bad_field_value_is_rejected_before_training(capsys, tmp_path, field, raw):
    status, err, out = _cli(capsys, tmp_path, "--set", f"{field}={raw}")
    line = _rejected(status, err, out, field)
    _assert_names_value(line, raw)


@pytest.mark.parametrize("item, needles", [
    ("learning_rte=0.1", ["'learning_rte'", "valid fields", "learning_rate"]),
    ("lr=0.1", ["'lr'", "valid fields"]),
    ("Depth=3", ["'Depth'", "valid fields"]),
    ("num_epoch=3", ["'num_epoch'", "valid fields"]),
    ("=3", ["''", "valid fields"]),
    ("depth", ["'depth'", "key=value"]),
    ("", ["''", "key=value"]),
])
def test_unknown_or_malformed_set_is_rejected(capsys, tmp_path, item, needles):
    status, err, out = _cli(capsys, tmp_path, "--set", item)
    _rejected(status, err, out, *needles)


# Hypothesis: generated bad values for each kind of field.
HYP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
INT_MINIMUM = {"depth": 0, "warmup_steps": 0, "seed": 0, "batch_size": 1, "num_epochs": 1,
               "eval_every_epochs": 1, "width": 1}
FLOAT_OK = {
    "learning_rate": lambda v: v > 0, "momentum": lambda v: 0 <= v < 1, "weight_decay": lambda v: v >= 0,
    "grad_clip_norm": lambda v: v >= 0, "dropout_rate": lambda v: 0 <= v < 1, "init_scale": lambda v: v > 0,
    "label_noise": lambda v: 0 <= v <= 1, "train_fraction": lambda v: 0 < v <= 1,
    "validation_fraction": lambda v: 0 <= v < 1,
}
NAMES = {
    "activation": set(activations.names()), "init": {*initializers.INITIALIZERS, "auto"},
    "optimizer": set(optim.OPTIMIZERS), "schedule": set(optim.SCHEDULES), "loss": set(losses.names()),
    "dataset": set(registry.names()),
}


def _parses(parse, text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def test_float_and_int_tables_cover_the_numeric_fields():
    numeric = {f for f in config_lib.field_names() if config_lib._field_type(f) in (int, float)}
    assert numeric == (set(INT_MINIMUM) - {"width"}) | set(FLOAT_OK)


@pytest.mark.parametrize("field", sorted(INT_MINIMUM))
@HYP
@given(data=st.data())
def test_generated_bad_integers_are_rejected(capsys, tmp_path, field, data):
    raw = data.draw(st.one_of(
        st.integers(max_value=INT_MINIMUM[field] - 1).map(str),
        st.floats(allow_nan=True).filter(lambda v: not (math.isfinite(v) and v == int(v))).map(repr),
        st.text(max_size=8).filter(lambda s: not _parses(int, s.strip().strip("()[]")) and "," not in s),
    ), label="raw")
    status, err, out = _cli(capsys, tmp_path, "--set", f"{field}={raw}")
    line = _rejected(status, err, out, field)
    _assert_names_value(line, raw)


@pytest.mark.parametrize("field", sorted(FLOAT_OK))
@HYP
@given(data=st.data())
def test_generated_bad_floats_are_rejected(capsys, tmp_path, field, data):
    ok = FLOAT_OK[field]
    raw = data.draw(st.one_of(
        st.floats(allow_nan=True, allow_infinity=True)
        .filter(lambda v: not (math.isfinite(v) and ok(v))).map(repr),
        st.text(max_size=8).filter(lambda s: not _parses(float, s)),
    ), label="raw")
    status, err, out = _cli(capsys, tmp_path, "--set", f"{field}={raw}")
    line = _rejected(status, err, out, field)
    _assert_names_value(line, raw)


@pytest.mark.parametrize("field", sorted(NAMES))
@HYP
@given(data=st.data())
def test_generated_unknown_names_are_rejected(capsys, tmp_path, field, data):
    valid = NAMES[field]
    names = st.text(max_size=10).filter(lambda s: s.strip() not in valid and not s.startswith("npz:"))
    raw = data.draw(names, label="raw")
    status, err, out = _cli(capsys, tmp_path, "--set", f"{field}={raw}")
    line = _rejected(status, err, out, field)
    assert "valid choices" in line
    _assert_names_value(line, raw)


@HYP
@given(raw=st.text(max_size=8).filter(
    lambda s: s.strip().lower() not in {"true", "1", "yes", "false", "0", "no"}))
def test_generated_bad_booleans_are_rejected(capsys, tmp_path, raw):
    status, err, out = _cli(capsys, tmp_path, "--set", f"residual={raw}")
    line = _rejected(status, err, out, "residual")
    _assert_names_value(line, raw)


@HYP
@given(name=st.text(min_size=1, max_size=12).filter(
    lambda s: "=" not in s and s.strip() not in config_lib.field_names()))
def test_generated_unknown_fields_are_rejected(capsys, tmp_path, name):
    # one token: a separate value starting with "-" would be read by argparse as an option
    status, err, out = _cli(capsys, tmp_path, f"--set={name}=1")
    _rejected(status, err, out, repr(name.strip()), "valid fields")


@pytest.mark.parametrize("argv, needle", [
    (["--sed", "3"], "--sed"),
    (["--seed", "3"], "--seed"),  # not an abbreviation of --seeds: a typo for the config's seed
    (["--quik"], "--quik"),
    (["--quick=yes"], "--quick"),
    (["--out"], "--out"),
    (["positional"], "positional"),
    (["-x"], "-x"),
    (["--set"], "--set"),
])
def test_unknown_and_malformed_flags(capsys, tmp_path, argv, needle):
    status, err, out = _cli(capsys, tmp_path, *argv)
    _rejected(status, err, out, needle)


@pytest.mark.parametrize("seeds", ["0", "-1", "abc", "1.5", "", "1e3", str(10**12), "nan"])
def test_bad_seed_counts(capsys, tmp_path, seeds):
    status, err, out = _cli(capsys, tmp_path, "--seeds", seeds)
    line = _rejected(status, err, out, "--seeds")
    _assert_names_value(line, seeds)


@pytest.mark.parametrize("value", ["width", "activation,,bogus", "ALL", "depth;activation"])
def test_bad_pack_policy_is_rejected(capsys, tmp_path, monkeypatch, value):
    monkeypatch.setenv("DLFOUND_PACK", value)
    status, err, out = _cli(capsys, tmp_path)
    _rejected(status, err, out, "pack axis", "none, all, activation")


@pytest.mark.parametrize("name", ["mnist2", "MNIST", "fashion-mnist", "", "npz:", "npz:/no/such/file.npz"])
def test_unknown_datasets(capsys, tmp_path, name):
    status, err, out = _cli(capsys, tmp_path, "--dataset", name)
    _rejected(status, err, out, "dataset", repr(name) if name else "''")


def _run_dir(tmp_path, config_text: str) -> Path:
    path = tmp_path / f"from{next(_counter)}"
    path.mkdir()
    (path / "config.json").write_text(config_text)
    return path


def test_from_rejects_what_is_not_a_run_directory(capsys, tmp_path):
    stored = {"experiment": "depth_activation", "config": config_lib.Config().to_dict(), "seeds": [0],
              "quick": True}
    empty = tmp_path / "empty"
    empty.mkdir()
    regular = tmp_path / "file.txt"
    regular.write_text("hello")
    cases = [
        (str(empty), "not a run directory"),
        (str(regular), "not a run directory"),
        (str(tmp_path / "missing"), "not a run directory"),
        ("", "--from"),
        (str(_run_dir(tmp_path, "{not json")), "config.json"),
        (str(_run_dir(tmp_path, "[1, 2]")), "config.json"),
        (str(_run_dir(tmp_path, json.dumps({"experiment": "depth_activation"}))), "config.json"),
        (str(_run_dir(tmp_path, json.dumps({**stored, "experiment": "other"}))), "'other'"),
        (str(_run_dir(tmp_path, json.dumps({**stored, "seeds": [-1]}))), "seeds"),
        (str(_run_dir(tmp_path, json.dumps({**stored, "seeds": "abc"}))), "seeds"),
        (str(_run_dir(tmp_path, json.dumps({**stored, "config": {**stored["config"], "depth": -3}}))),
         "depth=-3"),
        (str(_run_dir(tmp_path, json.dumps({**stored, "config": {"dpeth": 3}}))), "'dpeth'"),
        (str(_run_dir(tmp_path, json.dumps({**stored, "config": [1]}))), "config.json"),
    ]
    for path, needle in cases:
        status, err, _ = _cli(capsys, tmp_path, "--from", path, "--out", str(tmp_path / "rerun"))
        _rejected(status, err, tmp_path / "rerun", needle)
    assert not (tmp_path / "rerun" / "config.json").exists()


def test_out_that_is_a_file_or_holds_something_else(capsys, tmp_path):
    regular = tmp_path / "file.txt"
    regular.write_text("hello")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text("[1, 2]")
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"experiment": "other", "config": {}, "seeds": [0],
                                                   "quick": False}))
    for out, needle in [(regular, "not a directory"), (regular / "sub", "not writable"),
                        (foreign, "config.json"), (other, "not a dlfound run directory"), ("", "--out")]:
        status, err, _ = _cli(capsys, tmp_path, "--out", str(out))
        _rejected(status, err, tmp_path / "none", needle)
    assert regular.read_text() == "hello" and (foreign / "config.json").read_text() == "[1, 2]"


def _arrays(n_train=50, n_test=20, features=3) -> dict:
    rng = np.random.default_rng(0)
    return {"x_train": rng.normal(size=(n_train, features)), "y_train": rng.integers(0, 3, n_train),
            "x_test": rng.normal(size=(n_test, features)), "y_test": rng.integers(0, 3, n_test)}


def _with(**changes) -> dict:
    arrays = _arrays()
    for key, value in changes.items():
        if value is None:
            del arrays[key]
        else:
            arrays[key] = value
    return arrays


def _poisoned(key, index, value) -> dict:
    arrays = _arrays()
    arrays[key] = arrays[key].astype(np.float64)
    arrays[key][index] = value
    return arrays


BAD_DATASETS = {
    "feature_mismatch": (_with(x_test=np.zeros((20, 4))), "disagree on the example shape"),
    "length_mismatch": (_with(y_train=np.zeros(49, np.int64)), "x_train has 50 examples but y_train has 49"),
    "scalar_x": (_with(x_train=np.float64(1.0)), "x_train"),
    "scalar_y": (_with(y_test=np.int64(1)), "y_test"),
    "labels_as_column": (_with(y_train=np.zeros((50, 1), np.int64)), "y_train has shape (50, 1)"),
    "nan_input": (_poisoned("x_train", (3, 1), np.nan), "x_train contains NaN"),
    "inf_input": (_poisoned("x_test", (0, 0), np.inf), "x_test contains NaN or inf"),
    "nan_label": (_poisoned("y_train", 5, np.nan), "y_train"),
    "negative_label": (_with(y_test=-np.ones(20, np.int64)), "negative label -1"),
    "fractional_label": (_poisoned("y_train", 0, 0.5), "integer class labels"),
    "label_past_int32": (_with(y_train=np.full(50, 2**31, np.int64)), "y_train"),
    "huge_float_label": (_with(y_train=np.full(50, 1e12)), "y_train"),
    "empty_train": (_with(x_train=np.zeros((0, 3)), y_train=np.zeros(0, np.int64)), "train split is empty"),
    "empty_test": (_with(x_test=np.zeros((0, 3)), y_test=np.zeros(0, np.int64)), "test split is empty"),
    "missing_key": (_with(y_test=None), "lacks key(s) y_test"),
    "val_without_labels": (_with(x_val=np.zeros((5, 3))), "y_val"),
    "text_input": (_with(x_train=np.array(["a"] * 50)), "x_train"),
    "complex_input": (_with(x_train=np.ones((50, 3), np.complex64)), "x_train"),
}


@pytest.mark.parametrize("case", sorted(BAD_DATASETS))
def test_bad_npz_datasets_are_rejected(capsys, tmp_path, case):
    arrays, needle = BAD_DATASETS[case]
    path = tmp_path / f"{case}.npz"
    np.savez(path, **arrays)
    status, err, out = _cli(capsys, tmp_path, "--dataset", f"npz:{path}", "--set", "batch_size=8")
    _rejected(status, err, out, needle)


def test_file_that_is_not_npz_is_rejected(capsys, tmp_path):
    path = tmp_path / "data.npz"
    path.write_text("x_train,y_train\n1,2\n")
    status, err, out = _cli(capsys, tmp_path, "--dataset", f"npz:{path}")
    _rejected(status, err, out, "is not an .npz file")


def test_a_good_npz_passes_the_checks(capsys, tmp_path):
    """The checks above are not rejecting everything: a clean file reaches training (the tripwire)."""
    path = tmp_path / "good.npz"
    np.savez(path, **_arrays())
    with pytest.raises(AssertionError, match="reached training"):
        _cli(capsys, tmp_path, "--dataset", f"npz:{path}", "--set", "batch_size=8")


@pytest.mark.parametrize("argv, needle", [
    (["--set", "learning_rate=-1"], "learning_rate=-1.0"),
    (["--dataset", "NPZ"], "unknown dataset 'NPZ'"),
])
def test_subprocess_shows_one_line_and_no_traceback(tmp_path, argv, needle):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLFOUND_COORDINATOR")}
    proc = subprocess.run([sys.executable, "-m", "experiments.depth_activation", "--quick", "--out",
                           str(tmp_path / "run"), *argv], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert not (tmp_path / "run").exists()
