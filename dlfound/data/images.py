"""The `mnist` and `fashion_mnist` loaders: decoded once by the TFDS builder, then served from a cache."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np

from dlfound.data import sources
from dlfound.data.cache import cache_root, cached_arrays
from dlfound.data.dataset import Dataset
from dlfound.data.errors import DataIntegrityError
from dlfound.data.idx import SPECS
from dlfound.data.normalize import standardize
from dlfound.data.splits import carve_validation
from dlfound.data.tfds_builder import make_builder, read_split


def cache_path(name: str, root: Path) -> Path:
    """The decoded uint8 arrays of dataset `name`."""
    return root / "arrays" / f"{name}.npz"


def decode(name: str, root: Path, manual_dir=None, download: bool = True) -> dict[str, np.ndarray]:
    """Builds the TFDS array_record store (if needed) and reads it back as uint8/int32 arrays."""
    spec = SPECS[name]
    builder = make_builder(name, root / "tfds",
                           locate=lambda: sources.locate(spec, root, manual_dir, allow_download=download))
    builder.download_and_prepare()
    x_train, y_train = read_split(builder, "train")
    x_test, y_test = read_split(builder, "test")
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def _check_decoded(name: str, arrays: dict[str, np.ndarray]) -> None:
    spec = SPECS[name]
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.shape[1:] != spec.image_shape or y.shape != (len(x),):
            raise DataIntegrityError(f"decoded {name} {split} split has unexpected shape {x.shape}/{y.shape}")
        if len(y) and (y.min() < 0 or y.max() >= spec.num_classes):
            raise DataIntegrityError(f"decoded {name} {split} labels leave 0..{spec.num_classes - 1}")


def load_arrays(name: str, cache_dir: Optional[os.PathLike | str] = None, manual_dir=None,
                download: bool = True) -> dict[str, np.ndarray]:
    """The raw uint8 images and int32 labels of `name`, from <cache>/arrays/<name>.npz or decoded afresh."""
    root = cache_root(cache_dir)
    arrays = cached_arrays(cache_path(name, root), lambda: decode(name, root, manual_dir, download))
    _check_decoded(name, arrays)
    return arrays


def load_images(name: str, *, validation_fraction: float = 0.1, seed: int = 0, cache_dir=None,
                manual_dir: Optional[os.PathLike | str] = None, download: bool = True,
                normalize: str = "scalar") -> Dataset:
    """MNIST-style images as float32 (N, 28, 28), standardized by one mean/std over the train pixels.

    The statistics come from the training examples left after carving validation.
    """
    arrays = load_arrays(name, cache_dir, manual_dir, download)
    x, y, x_val, y_val = carve_validation(arrays["x_train"], arrays["y_train"], validation_fraction, seed)
    x, x_val, x_test = standardize(x / np.float32(255), x_val / np.float32(255),
                                   arrays["x_test"] / np.float32(255), mode=normalize)
    return Dataset(x, y.astype(np.int32), x_val, y_val.astype(np.int32), x_test,
                   arrays["y_test"].astype(np.int32), name=name, num_classes=SPECS[name].num_classes)
