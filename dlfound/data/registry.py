"""Dataset names and the one `load` entry point; `check_name` is cheap enough for config validation."""

from __future__ import annotations

import os
from functools import partial
from typing import Callable, Optional

from dlfound.data import npz
from dlfound.data.dataset import Dataset
from dlfound.data.mnist1d_loader import load_mnist1d
from dlfound.data.options import check_options
from dlfound.data.synthetic import TASKS as SYNTHETIC_TASKS
from dlfound.data.synthetic import load_synthetic
from dlfound.errors import unknown_name

IMAGE_DATASETS = ("mnist", "fashion_mnist")


def _loader(name: str) -> Callable[..., Dataset]:
    if name == "mnist1d":
        return load_mnist1d
    if name in IMAGE_DATASETS:
        from dlfound.data.images import load_images  # imports tensorflow_datasets: only when needed

        return partial(load_images, name)
    return partial(load_synthetic, name)


def names() -> tuple[str, ...]:
    """Every built-in dataset name (plus, not listed, any "npz:PATH" to an existing file)."""
    return ("mnist1d", *IMAGE_DATASETS, *SYNTHETIC_TASKS)


def check_name(name: str) -> None:
    """Raises ConfigError unless `name` is built in or "npz:PATH" to an existing file; loads nothing."""
    if isinstance(name, str) and name.startswith(npz.PREFIX):
        npz.npz_path(name)
        return
    if name not in names():
        raise unknown_name("dataset", name, (*names(), "npz:PATH"))


def check_contents(name: str, *, validation_fraction: float = 0.1, seed: int = 0) -> None:
    """Loads a user's "npz:PATH" file once to check its contents (ConfigError naming the problem), so
    a command refuses bad data before it creates anything; built-in datasets are checked as they load."""
    if name.startswith(npz.PREFIX):
        load(name, validation_fraction=validation_fraction, seed=seed)


def load(name: str, *, validation_fraction: float = 0.1, seed: int = 0,
         cache_dir: Optional[os.PathLike | str] = None, **options) -> Dataset:
    """Loads dataset `name` with its train/validation/test splits; `seed` draws the validation carve.

    Options per dataset: mnist/fashion_mnist: manual_dir, download, normalize;
    mnist1d: normalize; npz:PATH: normalize; synthetic tasks: see dlfound.data.synthetic.
    """
    check_name(name)
    if name.startswith(npz.PREFIX):
        check_options(npz.load_npz, options, name)
        return npz.load_npz(name, validation_fraction=validation_fraction, seed=seed, **options)
    loader = _loader(name)
    if name in SYNTHETIC_TASKS:
        return loader(validation_fraction=validation_fraction, seed=seed, **options)
    check_options(loader, {"cache_dir": cache_dir, **options}, name)
    return loader(validation_fraction=validation_fraction, seed=seed, cache_dir=cache_dir, **options)
