"""The npz:PATH loader: a round trip, and a clear ConfigError for every malformed file."""

from __future__ import annotations

import numpy as np
import pytest

from dlfound.data import load
from dlfound.errors import ConfigError


def _arrays(n_train=50, n_test=20, features=3, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.normal(2.0, 3.0, (n_train, features)),
        "y_train": rng.integers(0, 4, n_train),
        "x_test": rng.normal(2.0, 3.0, (n_test, features)),
        "y_test": rng.integers(0, 4, n_test),
    }


def _save(tmp_path, arrays, name="data.npz") -> str:
    path = tmp_path / name
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_round_trip_without_normalization(tmp_path):
    arrays = _arrays()
    arrays["y_train"][0] = 4  # num_classes = max label + 1 over all splits
    data = load(_save(tmp_path, arrays), validation_fraction=0.0, normalize="none")
    np.testing.assert_allclose(data.x_train, arrays["x_train"].astype(np.float32))
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert data.num_classes == 5 and data.x_val.shape == (0, 3)


def test_carves_validation_and_normalizes_with_train_statistics(tmp_path):
    data = load(_save(tmp_path, _arrays(n_train=100)), validation_fraction=0.2, seed=1)
    assert (data.num_train, len(data.x_val), len(data.x_test)) == (80, 20, 20)
    assert abs(data.x_train.mean()) < 1e-5 and abs(data.x_train.std() - 1) < 1e-5
    per_feature = load(_save(tmp_path, _arrays(n_train=100)), normalize="feature")
    np.testing.assert_allclose(per_feature.x_train.std(axis=0), 1, rtol=1e-4)


def test_uses_given_validation_split(tmp_path):
    arrays = _arrays()
    arrays["x_val"], arrays["y_val"] = np.zeros((7, 3)), np.ones(7, dtype=np.int64)
    data = load(_save(tmp_path, arrays), validation_fraction=0.5, normalize="none")
    assert data.num_train == 50 and data.x_val.shape == (7, 3)
    np.testing.assert_array_equal(data.y_val, 1)


def test_float_integral_labels_and_regression_targets(tmp_path):
    arrays = _arrays()
    arrays["y_train"] = arrays["y_train"].astype(np.float64)
    assert load(_save(tmp_path, arrays)).y_train.dtype == np.int32
    arrays["y_train"], arrays["y_test"] = np.ones((50, 2)), np.ones((20, 2))
    data = load(_save(tmp_path, arrays, "reg.npz"))
    assert data.num_classes == 0 and data.y_train.shape == (45, 2) and data.y_train.dtype == np.float32


def _broken(kind: str) -> dict[str, np.ndarray]:
    arrays = _arrays()
    if kind == "missing key":
        del arrays["y_test"]
    elif kind == "x_val without y_val":
        arrays["x_val"] = np.zeros((3, 3))
    elif kind == "mismatched lengths":
        arrays["y_train"] = arrays["y_train"][:-1]
    elif kind == "nan input":
        arrays["x_train"][3, 1] = np.nan
    elif kind == "inf input":
        arrays["x_test"][0, 0] = np.inf
    elif kind == "non-integer labels":
        arrays["y_train"] = arrays["y_train"] + 0.5
    elif kind == "negative labels":
        arrays["y_test"][2] = -1
    elif kind == "empty train":
        arrays["x_train"], arrays["y_train"] = np.zeros((0, 3)), np.zeros(0, dtype=int)
    elif kind == "empty test":
        arrays["x_test"], arrays["y_test"] = np.zeros((0, 3)), np.zeros(0, dtype=int)
    elif kind == "shape disagreement":
        arrays["x_test"] = np.zeros((20, 4))
    return arrays


@pytest.mark.parametrize("kind, message", [
    ("missing key", "lacks key.*y_test"),
    ("x_val without y_val", "lacks key.*y_val"),
    ("mismatched lengths", "x_train has 50 examples but y_train has 49"),
    ("nan input", "x_train contains NaN or inf"),
    ("inf input", "x_test contains NaN or inf"),
    ("non-integer labels", "y_train must hold integer class labels"),
    ("negative labels", "y_test has negative label"),
    ("empty train", "train split is empty"),
    ("empty test", "test split is empty"),
    ("shape disagreement", "disagree on the example shape"),
])
def test_rejections_name_the_problem(tmp_path, kind, message):
    name = _save(tmp_path, _broken(kind))
    with pytest.raises(ConfigError, match=message):
        load(name)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load(f"npz:{tmp_path / 'absent.npz'}")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(ConfigError, match="is not an .npz file"):
        load(f"npz:{bad}")
