"""Bad config values, flags and dataset names never reach training: exit status 2, one `error:` line
naming the field and value, and no traceback (the contract: tests/bad_input.py).
"""

from __future__ import annotations

import math

import pytest
from bad_input import assert_names_value, in_tmp, rejected, run_cli  # noqa: F401 (in_tmp: autouse)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlfound import activations, initializers, losses, optim
from dlfound import config as config_lib
from dlfound.data import registry


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
    status, err, out = run_cli(capsys, tmp_path, "--set", f"{field}={raw}")
    line = rejected(status, err, out, field)
    assert_names_value(line, raw)


@pytest.mark.parametrize("item, needles", [
    ("learning_rte=0.1", ["'learning_rte'", "valid fields", "learning_rate"]),
    ("lr=0.1", ["'lr'", "valid fields"]),
    ("Depth=3", ["'Depth'", "valid fields"]),
    ("num_epoch=3", ["'num_epoch'", "valid fields"]),
    ("=3", ["''", "valid fields"]),
    ("depth", ["'depth'", "key=value"]),
    ("", ["''", "key=value"]),
])
def test_unknown_or_malformed_set_isrejected(capsys, tmp_path, item, needles):
    status, err, out = run_cli(capsys, tmp_path, "--set", item)
    rejected(status, err, out, *needles)


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
def test_generated_bad_integers_arerejected(capsys, tmp_path, field, data):
    raw = data.draw(st.one_of(
        st.integers(max_value=INT_MINIMUM[field] - 1).map(str),
        st.floats(allow_nan=True).filter(lambda v: not (math.isfinite(v) and v == int(v))).map(repr),
        st.text(max_size=8).filter(lambda s: not _parses(int, s.strip().strip("()[]")) and "," not in s),
    ), label="raw")
    status, err, out = run_cli(capsys, tmp_path, "--set", f"{field}={raw}")
    line = rejected(status, err, out, field)
    assert_names_value(line, raw)


@pytest.mark.parametrize("field", sorted(FLOAT_OK))
@HYP
@given(data=st.data())
def test_generated_bad_floats_arerejected(capsys, tmp_path, field, data):
    ok = FLOAT_OK[field]
    raw = data.draw(st.one_of(
        st.floats(allow_nan=True, allow_infinity=True)
        .filter(lambda v: not (math.isfinite(v) and ok(v))).map(repr),
        st.text(max_size=8).filter(lambda s: not _parses(float, s)),
    ), label="raw")
    status, err, out = run_cli(capsys, tmp_path, "--set", f"{field}={raw}")
    line = rejected(status, err, out, field)
    assert_names_value(line, raw)


@pytest.mark.parametrize("field", sorted(NAMES))
@HYP
@given(data=st.data())
def test_generated_unknown_names_arerejected(capsys, tmp_path, field, data):
    valid = NAMES[field]
    names = st.text(max_size=10).filter(lambda s: s.strip() not in valid and not s.startswith("npz:"))
    raw = data.draw(names, label="raw")
    status, err, out = run_cli(capsys, tmp_path, "--set", f"{field}={raw}")
    line = rejected(status, err, out, field)
    assert "valid choices" in line
    assert_names_value(line, raw)


@HYP
@given(raw=st.text(max_size=8).filter(
    lambda s: s.strip().lower() not in {"true", "1", "yes", "false", "0", "no"}))
def test_generated_bad_booleans_arerejected(capsys, tmp_path, raw):
    status, err, out = run_cli(capsys, tmp_path, "--set", f"residual={raw}")
    line = rejected(status, err, out, "residual")
    assert_names_value(line, raw)


@HYP
@given(name=st.text(min_size=1, max_size=12).filter(
    lambda s: "=" not in s and s.strip() not in config_lib.field_names()))
def test_generated_unknown_fields_arerejected(capsys, tmp_path, name):
    # one token: a separate value starting with "-" would be read by argparse as an option
    status, err, out = run_cli(capsys, tmp_path, f"--set={name}=1")
    rejected(status, err, out, repr(name.strip()), "valid fields")


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
    status, err, out = run_cli(capsys, tmp_path, *argv)
    rejected(status, err, out, needle)


@pytest.mark.parametrize("seeds", ["0", "-1", "abc", "1.5", "", "1e3", str(10**12), "nan"])
def test_bad_seed_counts(capsys, tmp_path, seeds):
    status, err, out = run_cli(capsys, tmp_path, "--seeds", seeds)
    line = rejected(status, err, out, "--seeds")
    assert_names_value(line, seeds)


@pytest.mark.parametrize("value", ["width", "activation,,bogus", "ALL", "depth;activation"])
def test_bad_pack_policy_isrejected(capsys, tmp_path, monkeypatch, value):
    monkeypatch.setenv("DLFOUND_PACK", value)
    status, err, out = run_cli(capsys, tmp_path)
    rejected(status, err, out, "pack axis", "none, all, activation")


@pytest.mark.parametrize("name", ["mnist2", "MNIST", "fashion-mnist", "", "npz:", "npz:/no/such/file.npz"])
def test_unknown_datasets(capsys, tmp_path, name):
    status, err, out = run_cli(capsys, tmp_path, "--dataset", name)
    rejected(status, err, out, "dataset", repr(name) if name else "''")
