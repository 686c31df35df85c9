"""MNIST-style IDX datasets: the TFDS builder on small files written here, checksums, caches, mock_data."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from dlfound.data import DataIntegrityError, DatasetUnavailable, load
from dlfound.data import cache, idx, images, sources
from dlfound.errors import ConfigError

N_TRAIN, N_TEST = 30, 12
USER_CACHE = cache.cache_root()  # resolved before the fixtures redirect $DLFOUND_CACHE_DIR


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """No test touches the network or the user's directories."""

    def no_network(url, dest):
        raise OSError(f"network disabled in tests ({url})")

    monkeypatch.setattr(sources, "fetch", no_network)
    monkeypatch.delenv("DLFOUND_DATA_DIR", raising=False)
    monkeypatch.setenv("DLFOUND_CACHE_DIR", str(tmp_path / "default_cache"))


def _write_idx_files(directory: Path, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, N_TRAIN).astype(np.uint8),
        "x_test": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, N_TEST).astype(np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for key, filename in zip(arrays, idx.FILES):
        (directory / filename).write_bytes(gzip.compress(idx.encode_idx(arrays[key])))
    return arrays


def _content_sha256(directory: Path) -> dict[str, str]:
    return {f: hashlib.sha256(gzip.decompress((directory / f).read_bytes())).hexdigest() for f in idx.FILES}


@pytest.fixture
def small_mnist(monkeypatch):
    """Makes the `mnist` spec expect the small files the tests write (sizes and, via `expect`, checksums)."""

    def expect(content_sha256=None):
        spec = dataclasses.replace(idx.SPECS["mnist"], num_train=N_TRAIN, num_test=N_TEST,
                                   content_sha256=content_sha256 or {})
        monkeypatch.setitem(idx.SPECS, "mnist", spec)

    expect()
    return expect


def test_idx_encode_decode_round_trip():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(idx.decode_idx(idx.encode_idx(array), "x"), array)
    with pytest.raises(DataIntegrityError, match="bad magic"):
        idx.decode_idx(b"\x00\x00\x0d\x01" + bytes(8), "x")
    with pytest.raises(DataIntegrityError, match="disagrees with the file.s length"):
        idx.decode_idx(idx.encode_idx(array)[:-1], "x")


def test_builder_reads_manual_files_in_order(tmp_path, small_mnist):
    manual = tmp_path / "manual_files"
    arrays = _write_idx_files(manual)
    small_mnist(_content_sha256(manual))  # checksums match: accepted
    raw = images.load_arrays("mnist", cache_dir=tmp_path / "cache", manual_dir=manual)
    for key in arrays:
        np.testing.assert_array_equal(raw[key], arrays[key])
    assert (tmp_path / "cache" / "tfds" / "idx_images" / "mnist" / "1.0.0").is_dir()
    assert (tmp_path / "cache" / "arrays" / "mnist.npz").is_file()


def test_load_returns_normalized_dataset_with_carved_validation(tmp_path, small_mnist):
    _write_idx_files(tmp_path / "cache" / "manual" / "mnist")  # the default manual directory
    data = load("mnist", cache_dir=tmp_path / "cache", validation_fraction=0.2, seed=0)
    assert data.x_train.shape == (24, 28, 28) and data.x_val.shape == (6, 28, 28)
    assert data.x_test.shape == (N_TEST, 28, 28) and data.num_classes == 10
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int32
    assert abs(data.x_train.mean()) < 1e-4 and abs(data.x_train.std() - 1) < 1e-4
    same = load("mnist", cache_dir=tmp_path / "cache", validation_fraction=0.2, seed=0)
    np.testing.assert_array_equal(same.y_val, data.y_val)


def test_data_dir_env_var_is_searched(tmp_path, monkeypatch, small_mnist):
    _write_idx_files(tmp_path / "data" / "mnist")
    monkeypatch.setenv("DLFOUND_DATA_DIR", str(tmp_path / "data"))
    assert load("mnist", cache_dir=tmp_path / "cache").num_train == 27


def test_checksum_mismatch_names_the_file(tmp_path, small_mnist):
    manual = tmp_path / "manual_files"
    _write_idx_files(manual)
    wrong = dict(_content_sha256(manual), **{idx.TRAIN_LABELS: "0" * 64})
    small_mnist(wrong)
    with pytest.raises(DataIntegrityError, match=f"checksum mismatch for .*{idx.TRAIN_LABELS}"):
        images.load_arrays("mnist", cache_dir=tmp_path / "cache", manual_dir=manual)
    assert issubclass(DataIntegrityError, ConfigError)


def test_wrong_sizes_and_labels_are_rejected(tmp_path, small_mnist):
    manual = tmp_path / "manual_files"
    _write_idx_files(manual)
    labels = np.full(N_TEST, 10, dtype=np.uint8)
    (manual / idx.TEST_LABELS).write_bytes(gzip.compress(idx.encode_idx(labels)))
    with pytest.raises(DataIntegrityError, match="label 10 is outside 0..9"):
        images.load_arrays("mnist", cache_dir=tmp_path / "cache", manual_dir=manual)
    (manual / idx.TEST_LABELS).write_bytes(b"not gzip")
    with pytest.raises(DataIntegrityError, match="not a readable gzip"):
        images.load_arrays("mnist", cache_dir=tmp_path / "cache", manual_dir=manual)


def test_missing_data_says_which_files_go_where(tmp_path):
    with pytest.raises(DatasetUnavailable) as info:
        load("mnist", cache_dir=tmp_path / "cache")
    message = str(info.value)
    for filename in idx.FILES:
        assert filename in message
    assert str(tmp_path / "cache" / "manual" / "mnist") in message
    assert "network disabled" in message and "storage.googleapis.com" in message
    with pytest.raises(DatasetUnavailable, match="downloads are disabled"):
        load("mnist", cache_dir=tmp_path / "cache", download=False, manual_dir=tmp_path / "mine")


def test_download_is_verified_against_official_archive_checksums(tmp_path, monkeypatch):
    def fake_fetch(url, dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(b"tampered")

    monkeypatch.setattr(sources, "fetch", fake_fetch)
    with pytest.raises(DataIntegrityError, match=f"checksum mismatch for https://.*{idx.TRAIN_IMAGES}"):
        sources.locate(idx.SPECS["mnist"], tmp_path, manual=tmp_path / "empty")
    assert not (tmp_path / "downloads" / "mnist" / idx.TRAIN_IMAGES).exists()


def test_corrupted_cache_is_detected_and_rebuilt(tmp_path, small_mnist):
    manual = tmp_path / "manual_files"
    arrays = _write_idx_files(manual)
    root = tmp_path / "cache"
    images.load_arrays("mnist", cache_dir=root, manual_dir=manual)
    path = images.cache_path("mnist", root)
    stored = dict(np.load(path))
    stored["x_train"] = stored["x_train"].copy()
    stored["x_train"][0, 0, 0] ^= 0xFF  # tampered content with a stale digest
    np.savez(path, **stored)
    assert cache.load_checked(path) is None
    raw = images.load_arrays("mnist", cache_dir=root, manual_dir=manual)
    np.testing.assert_array_equal(raw["x_train"], arrays["x_train"])
    assert cache.load_checked(path) is not None
    path.write_bytes(path.read_bytes()[:100])  # truncated file
    raw = images.load_arrays("mnist", cache_dir=root, manual_dir=manual)
    np.testing.assert_array_equal(raw["y_test"], arrays["y_test"])


def test_tfds_mock_data_exercises_the_read_path(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=5):
        raw = images.load_arrays("fashion_mnist", cache_dir=tmp_path / "cache")
        data = load("mnist", cache_dir=tmp_path / "other", validation_fraction=0.2)
    assert raw["x_train"].shape == (5, 28, 28) and raw["x_train"].dtype == np.uint8
    assert raw["y_test"].shape == (5,) and raw["y_test"].dtype == np.int32
    assert raw["y_train"].min() >= 0 and raw["y_train"].max() < 10
    assert (data.num_train, len(data.x_val), len(data.x_test)) == (4, 1, 5)


@pytest.mark.skipif(not sources.DEBIAN_DIRS["fashion_mnist"].is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_debian():
    # The user's cache, so the one-time decode (~10 s) is reused by later runs.
    data = load("fashion_mnist", cache_dir=USER_CACHE, validation_fraction=0.1, seed=0)
    assert (data.num_train, len(data.x_val), len(data.x_test)) == (54000, 6000, 10000)
    assert data.x_train.shape[1:] == (28, 28) and data.num_classes == 10
    assert abs(float(data.x_train.mean())) < 1e-3 and abs(float(data.x_train.std()) - 1) < 1e-3
    assert np.bincount(data.y_test).tolist() == [1000] * 10
