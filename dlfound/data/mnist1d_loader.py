"""The `mnist1d` loader: MNIST-1D from the mnist1d package (4000/1000, 40 features), cached as .npz."""

from __future__ import annotations

import os
import random
from typing import Optional

import numpy as np

from dlfound.data.cache import cache_root, cached_arrays
from dlfound.data.dataset import Dataset
from dlfound.data.errors import DataIntegrityError
from dlfound.data.normalize import standardize
from dlfound.data.splits import carve_validation

NUM_FEATURES, NUM_CLASSES = 40, 10


def generate() -> dict[str, np.ndarray]:
    """Runs mnist1d's make_dataset with its default arguments (seed 42), restoring the global RNG state."""
    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {"x_train": data["x"].astype(np.float32), "y_train": data["y"].astype(np.int32),
            "x_test": data["x_test"].astype(np.float32), "y_test": data["y_test"].astype(np.int32)}


def load_mnist1d(*, validation_fraction: float = 0.1, seed: int = 0,
                 cache_dir: Optional[os.PathLike | str] = None, normalize: str = "scalar") -> Dataset:
    """MNIST-1D standardized by one mean/std over all train values (scalar, keeping each sequence's shape).

    Generated once and cached at <cache>/arrays/mnist1d.npz.
    """
    arrays = cached_arrays(cache_root(cache_dir) / "arrays" / "mnist1d.npz", generate)
    if arrays["x_train"].shape != (4000, NUM_FEATURES) or arrays["x_test"].shape != (1000, NUM_FEATURES):
        raise DataIntegrityError(f"mnist1d arrays have unexpected shapes {arrays['x_train'].shape}")
    x, y, x_val, y_val = carve_validation(arrays["x_train"], arrays["y_train"], validation_fraction, seed)
    x, x_val, x_test = standardize(x, x_val, arrays["x_test"], mode=normalize)
    return Dataset(x, y, x_val, y_val, x_test, arrays["y_test"], name="mnist1d", num_classes=NUM_CLASSES)
