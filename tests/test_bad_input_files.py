"""Bad run directories (--from, --out) and bad .npz datasets never reach training, and two real
subprocess runs show that no traceback reaches the user's terminal (the contract: tests/bad_input.py).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bad_input import in_tmp, rejected, run_cli  # noqa: F401 (in_tmp: autouse)

from dlfound import config as config_lib

REPO = Path(__file__).resolve().parents[1]
_counter = itertools.count()


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
        status, err, _ = run_cli(capsys, tmp_path, "--from", path, "--out", str(tmp_path / "rerun"))
        rejected(status, err, tmp_path / "rerun", needle)
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
        status, err, _ = run_cli(capsys, tmp_path, "--out", str(out))
        rejected(status, err, tmp_path / "none", needle)
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
def test_bad_npz_datasets_arerejected(capsys, tmp_path, case):
    arrays, needle = BAD_DATASETS[case]
    path = tmp_path / f"{case}.npz"
    np.savez(path, **arrays)
    status, err, out = run_cli(capsys, tmp_path, "--dataset", f"npz:{path}", "--set", "batch_size=8")
    rejected(status, err, out, needle)


def test_file_that_is_not_npz_isrejected(capsys, tmp_path):
    path = tmp_path / "data.npz"
    path.write_text("x_train,y_train\n1,2\n")
    status, err, out = run_cli(capsys, tmp_path, "--dataset", f"npz:{path}")
    rejected(status, err, out, "is not an .npz file")


def test_a_good_npz_passes_the_checks(capsys, tmp_path):
    """The checks above are not rejecting everything: a clean file reaches training (the tripwire)."""
    path = tmp_path / "good.npz"
    np.savez(path, **_arrays())
    with pytest.raises(AssertionError, match="reached training"):
        run_cli(capsys, tmp_path, "--dataset", f"npz:{path}", "--set", "batch_size=8")


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
