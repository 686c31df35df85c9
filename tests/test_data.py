"""Data layer: registry, splits, normalization, synthetic tasks and mnist1d (no network, no IDX files)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from dlfound.data import Dataset, DatasetUnavailable, load, names, subset_train
from dlfound.data import functions, registry
from dlfound.data.normalize import standardize
from dlfound.data.splits import carve_validation
from dlfound.errors import ConfigError


@pytest.fixture(autouse=True)
def _hermetic(tmp_path, monkeypatch):
    """Every cache goes to a temp dir; no test reads the user's data directory."""
    monkeypatch.setenv("DLFOUND_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DLFOUND_DATA_DIR", raising=False)


# ---------------------------------------------------------------- registry


def test_names_cover_the_design_table():
    expected = {"mnist1d", "mnist", "fashion_mnist", "xor", "and", "or", "not", "blobs", "moons",
                "spirals", "circles", "sawtooth", "sin", "abs", "bump", "step"}
    assert expected <= set(names())


def test_check_name_accepts_every_builtin_name():
    for name in names():
        registry.check_name(name)


def test_check_name_rejects_unknown_name_listing_choices():
    with pytest.raises(ConfigError, match="unknown dataset 'cifar'.*mnist1d.*npz:PATH"):
        registry.check_name("cifar")


def test_check_name_npz_requires_existing_file(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(ConfigError, match=str(missing)):
        registry.check_name(f"npz:{missing}")
    missing.write_bytes(b"")
    registry.check_name(f"npz:{missing}")


def test_check_name_loads_nothing():
    code = ("import sys, dlfound.data.registry as r; r.check_name('mnist'); r.check_name('fashion_mnist'); "
            "assert 'tensorflow_datasets' not in sys.modules and 'mnist1d' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dataset_unavailable_is_a_config_error():
    assert issubclass(DatasetUnavailable, ConfigError)


def test_unknown_option_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown option 'colour'.*num_examples"):
        load("moons", colour="red")
    with pytest.raises(ConfigError, match="unknown option 'bits'.*normalize"):
        load("mnist1d", bits=3)


@pytest.mark.parametrize("options", [dict(num_examples=0), dict(noise=-1.0), dict(noise=float("nan"))])
def test_bad_option_values_are_config_errors(options):
    with pytest.raises(ConfigError):
        load("moons", **options)


# ---------------------------------------------------------------- splits and normalization


def test_carve_validation_sizes_and_determinism():
    x, y = np.arange(100, dtype=np.float32)[:, None], np.arange(100) % 3
    a = carve_validation(x, y, 0.1, seed=0)
    b = carve_validation(x, y, 0.1, seed=0)
    c = carve_validation(x, y, 0.1, seed=1)
    assert (len(a[0]), len(a[2])) == (90, 10)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[2], c[2])
    assert sorted(np.concatenate([a[0], a[2]])[:, 0]) == list(range(100))


def test_zero_validation_fraction_gives_empty_arrays():
    data = load("moons", validation_fraction=0.0)
    assert data.x_val.shape == (0, 2) and data.y_val.shape == (0,)
    assert data.num_train == 200


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_bad_validation_fraction(fraction):
    with pytest.raises(ConfigError, match="validation_fraction"):
        load("moons", validation_fraction=fraction)


def test_standardize_uses_train_statistics_only():
    rng = np.random.default_rng(0)
    train, test = rng.normal(3, 2, (500, 4)), rng.normal(10, 1, (100, 4))
    out_train, out_test = standardize(train, test, mode="scalar")
    assert out_train.dtype == np.float32
    assert abs(out_train.mean()) < 1e-5 and abs(out_train.std() - 1) < 1e-5
    np.testing.assert_allclose(out_test, (test - train.mean()) / train.std(), rtol=1e-5)
    per_feature, = standardize(train * np.arange(1, 5), mode="feature")
    np.testing.assert_allclose(per_feature.std(axis=0), 1, rtol=1e-5)
    with pytest.raises(ConfigError, match="normalize"):
        standardize(train, mode="minmax")


def test_subset_train_takes_a_seeded_prefix():
    data = load("blobs", num_examples=101, validation_fraction=0.0)
    half = subset_train(data, 0.5, seed=3)
    assert half.num_train == math.ceil(0.5 * 101)
    again = subset_train(data, 0.5, seed=3)
    np.testing.assert_array_equal(half.x_train, again.x_train)
    assert not np.array_equal(half.x_train, subset_train(data, 0.5, seed=4).x_train)
    rows = {tuple(r) for r in data.x_train}
    assert all(tuple(r) in rows for r in half.x_train)
    np.testing.assert_array_equal(half.x_test, data.x_test)
    assert subset_train(data, 1.0, seed=0).num_train == 101
    with pytest.raises(ConfigError):
        subset_train(data, 0.0, seed=0)


# ---------------------------------------------------------------- mnist1d


def test_mnist1d_shapes_dtypes_normalization_and_cache(tmp_path):
    data = load("mnist1d", cache_dir=tmp_path)
    assert isinstance(data, Dataset) and data.num_classes == 10
    assert (data.x_train.shape, data.x_val.shape, data.x_test.shape) == ((3600, 40), (400, 40), (1000, 40))
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert data.y_test.shape == (1000,) and data.y_test.dtype == np.int32
    assert abs(data.x_train.mean()) < 1e-4 and abs(data.x_train.std() - 1) < 1e-4
    assert (tmp_path / "arrays" / "mnist1d.npz").is_file()
    again = load("mnist1d", cache_dir=tmp_path)
    np.testing.assert_array_equal(again.x_val, data.x_val)
    other = load("mnist1d", cache_dir=tmp_path, seed=1)
    assert not np.array_equal(other.y_val, data.y_val)


# ---------------------------------------------------------------- synthetic tasks


def test_truth_tables_are_exact():
    tables = {"xor": [0, 1, 1, 0], "and": [0, 0, 0, 1], "or": [0, 1, 1, 1]}
    for name, labels in tables.items():
        data = load(name, validation_fraction=0.5)
        np.testing.assert_array_equal(data.x_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
        np.testing.assert_array_equal(data.y_train, labels)
        np.testing.assert_array_equal(data.x_test, data.x_train)
        np.testing.assert_array_equal(data.y_test, data.y_train)
        assert data.x_val.shape == (0, 2) and data.num_classes == 2
    data = load("not")
    np.testing.assert_array_equal(data.x_train[:, 0], [0, 1])
    np.testing.assert_array_equal(data.y_train, [1, 0])
    parity = load("xor", bits=3)
    assert parity.x_train.shape == (8, 3)
    np.testing.assert_array_equal(parity.y_train, parity.x_train.sum(1) % 2)


def _perceptron_separates(x, y, max_epochs=1000) -> bool:
    xb, s = np.hstack([x, np.ones((len(x), 1))]), 2 * y - 1
    w = np.zeros(xb.shape[1])
    for _ in range(max_epochs):
        wrong = s * (xb @ w) <= 0
        if not wrong.any():
            return True
        i = np.flatnonzero(wrong)[0]
        w += s[i] * xb[i]
    return False


@pytest.mark.parametrize("dim", [2, 5])
def test_blobs_are_linearly_separable_with_margin(dim):
    data = load("blobs", dim=dim, noise=1.0, margin=0.4, validation_fraction=0.0)
    x, y = np.concatenate([data.x_train, data.x_test]), np.concatenate([data.y_train, data.y_test])
    w = np.ones(dim) / np.sqrt(dim)
    assert np.all((2 * y - 1) * (x @ w) >= 0.2 - 1e-5)
    assert _perceptron_separates(x.astype(np.float64), y)
    assert set(np.unique(y)) == {0, 1} and abs(y.mean() - 0.5) < 0.05


@pytest.mark.parametrize("name", ["blobs", "moons", "spirals", "circles"])
def test_two_d_tasks_are_seeded_and_balanced(name):
    a, b = load(name), load(name)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(load(name, data_seed=1).x_train, a.x_train)
    assert a.x_train.shape == (180, 2) and a.x_test.shape == (200, 2) and a.num_classes == 2
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int32
    assert np.bincount(a.y_test).tolist() == [100, 100]


def test_circles_radii_and_moons_shape():
    data = load("circles", noise=0.0, factor=0.3, validation_fraction=0.0)
    radius = np.linalg.norm(data.x_train, axis=1)
    np.testing.assert_allclose(radius, np.where(data.y_train == 0, 1.0, 0.3), rtol=1e-5)
    moons = load("moons", noise=0.0, validation_fraction=0.0)
    upper = moons.x_train[moons.y_train == 0]
    np.testing.assert_allclose(np.linalg.norm(upper, axis=1), 1.0, rtol=1e-5)


def _count_pieces(y: np.ndarray) -> int:
    slope_signs = np.sign(np.diff(y))
    return 1 + int(np.sum(slope_signs[1:] != slope_signs[:-1]))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_sawtooth_has_two_to_the_k_pieces(k):
    grid = np.linspace(0.0, 1.0, 2**12 + 1)  # the kinks at multiples of 2^-k lie on the grid
    assert _count_pieces(functions.tent_power(grid, k)) == 2**k
    data = load("sawtooth", k=k, validation_fraction=0.0)
    assert data.y_train.shape == (256, 1) and data.y_train.dtype == np.float32 and data.num_classes == 0
    expected = functions.tent_power(data.x_train.astype(np.float64), k)
    np.testing.assert_allclose(data.y_train, expected, atol=1e-5)


def test_sawtooth_teeth_option_and_alternating_labels():
    assert np.array_equal(load("sawtooth", teeth=4).y_train, load("sawtooth", k=3).y_train)
    with pytest.raises(ConfigError, match="power of two"):
        load("sawtooth", teeth=3)
    with pytest.raises(ConfigError, match="disagree"):
        load("sawtooth", k=2, teeth=4)
    data = load("sawtooth", k=3, task="classification", num_examples=4000, validation_fraction=0.0)
    labels = data.y_train[np.argsort(data.x_train[:, 0])]
    assert data.num_classes == 2 and labels.dtype == np.int32
    assert int(np.sum(labels[1:] != labels[:-1])) == 2**3  # 2^k + 1 alternating intervals


@pytest.mark.parametrize("name, fn", [
    ("sin", lambda x: np.sin(np.pi * x)),
    ("abs", np.abs),
    ("bump", lambda x: np.exp(-x**2 / (2 * 0.2**2))),
    ("step", lambda x: 1 / (1 + np.exp(-50 * x))),
])
def test_regression_functions(name, fn):
    data = load(name, validation_fraction=0.0)
    assert data.x_train.shape == (256, 1) and data.y_train.shape == (256, 1) and data.num_classes == 0
    assert data.y_train.dtype == np.float32
    assert data.x_train.min() >= -1 and data.x_train.max() <= 1
    np.testing.assert_allclose(data.y_train, fn(data.x_train.astype(np.float64)), atol=1e-5)


def test_regression_domain_and_noise_options():
    data = load("sin", domain="0,1", noise=0.1, num_examples=500, validation_fraction=0.0)
    assert data.x_train.min() >= 0 and data.x_train.max() <= 1
    residual = data.y_train - np.sin(np.pi * data.x_train)
    assert 0.07 < residual.std() < 0.13
    with pytest.raises(ConfigError, match="domain"):
        load("sin", domain="1,0")
