"""The `npz:PATH` loader: a user's own arrays, checked key by key with errors that name the problem."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from dlfound.data.dataset import Dataset
from dlfound.data.normalize import standardize
from dlfound.data.splits import carve_validation
from dlfound.errors import ConfigError

PREFIX = "npz:"
REQUIRED = ("x_train", "y_train", "x_test", "y_test")
MAX_CLASSES = 2**16  # a larger label is a stray value, and beyond 2**31 it would wrap in int32


def npz_path(name: str) -> Path:
    """The file named by "npz:PATH"; ConfigError if it does not exist."""
    try:
        path = Path(name[len(PREFIX):]).expanduser()
    except RuntimeError:  # "~user" naming no user
        raise ConfigError(f"dataset {name!r}: cannot expand the home directory in that path") from None
    if not path.is_file():
        raise ConfigError(f"dataset {name!r}: no such file {str(path)!r}")
    return path


def _read(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):
        raise ConfigError(f"{path} is not an .npz file (the zip archive numpy.savez writes); save the "
                          "arrays with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)")
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as stored:
            for key in stored.files:
                try:
                    arrays[key] = stored[key]
                except ValueError as exc:
                    if "pickle" not in str(exc):
                        raise
                    raise ConfigError(f"{path}: {key} holds Python objects, not numbers; "
                                      "store numeric arrays") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path} is not a readable .npz file ({exc})") from None
    return arrays


def _entry(values: np.ndarray, bad: np.ndarray) -> str:
    """`[i, j] = v` for the first True of `bad` (indices as in the file)."""
    index = np.unravel_index(int(np.argmax(bad)), bad.shape)
    return f"[{', '.join(str(int(i)) for i in index)}] = {values[index].item()!r}"


def _check_float32(values: np.ndarray, key: str, path: Path) -> None:
    """Every value must be finite, and stay finite once cast to float32 for training."""
    if not np.isfinite(values).all():
        raise ConfigError(f"{path}: {key} contains NaN or inf: {key}{_entry(values, ~np.isfinite(values))}")
    with np.errstate(over="ignore"):
        bad = ~np.isfinite(values.astype(np.float32))
    if bad.any():
        raise ConfigError(f"{path}: {key}{_entry(values, bad)} overflows float32 (largest "
                          f"{float(np.finfo(np.float32).max):.3g}); rescale the data")


def _labels(y: np.ndarray, key: str, path: Path) -> np.ndarray:
    """Integer class labels of shape (N,); float targets of shape (N, T) pass through as float32."""
    if y.ndim == 2 and np.issubdtype(y.dtype, np.floating):
        _check_float32(y, key, path)
        return y.astype(np.float32)
    if y.ndim != 1:
        raise ConfigError(f"{path}: {key} has shape {y.shape}; expected (N,) labels or (N, T) float targets")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.isfinite(y) & (y == np.round(y))):
            raise ConfigError(f"{path}: {key} must hold integer class labels (found dtype {y.dtype})")
    if y.size and y.min() < 0:
        raise ConfigError(f"{path}: {key} has negative label {y.min()}; labels must be 0..C-1")
    if y.size and y.max() >= MAX_CLASSES:
        raise ConfigError(f"{path}: {key} has label {y.max()}; labels must be 0..C-1 with C <= {MAX_CLASSES}")
    return y.astype(np.int32)


def _shown(classes: np.ndarray) -> str:
    values = [str(int(c)) for c in classes]
    return "{" + ", ".join(values if len(values) <= 7 else [*values[:6], "...", values[-1]]) + "}"


def _num_classes(arrays: dict, ys: dict[str, np.ndarray], path: Path) -> int:
    """C from the file's `num_classes` entry, else from the training labels, which must be exactly
    0..C-1; validation and test labels outside 0..C-1 are an error (never a silently wider model)."""
    observed = np.unique(ys["y_train"])
    if "num_classes" in arrays:
        declared = arrays["num_classes"]
        if declared.ndim != 0 or not np.issubdtype(declared.dtype, np.integer) \
                or not 2 <= int(declared) <= MAX_CLASSES:
            raise ConfigError(f"{path}: invalid num_classes={declared!r}; allowed: one integer from 2 to "
                              f"{MAX_CLASSES}")
        count = int(declared)
    elif not np.array_equal(observed, np.arange(len(observed))):
        raise ConfigError(
            f"{path}: y_train holds the {len(observed)} classes {_shown(observed)}, "
            f"not 0..{len(observed) - 1}; "
            "relabel them 0..C-1 (numpy.unique(y, return_inverse=True)[1]), or store num_classes=C in the "
            "file when some classes have no training example")
    else:
        count = len(observed)
    if count < 2:
        raise ConfigError(f"{path}: y_train holds only class {_shown(observed)}; "
                          "a classifier needs at least 2")
    for key in ("y_train", "y_val", "y_test"):
        if key in ys and ys[key].size and ys[key].max() >= count:
            raise ConfigError(f"{path}: {key}{_entry(ys[key], ys[key] >= count)} is outside the {count} "
                              f"classes 0..{count - 1} of the training labels")
    return count


def _check(arrays: dict[str, np.ndarray], path: Path) -> None:
    missing = [k for k in REQUIRED if k not in arrays]
    if ("x_val" in arrays) != ("y_val" in arrays):
        missing.append("y_val" if "x_val" in arrays else "x_val")
    if missing:
        raise ConfigError(f"{path} lacks key(s) {', '.join(missing)}; needs {', '.join(REQUIRED)} "
                          "(x_val, y_val optional, together)")
    for split in ("train", "val", "test"):
        if f"x_{split}" not in arrays:
            continue
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        for key, value in ((f"x_{split}", x), (f"y_{split}", y)):
            if value.ndim == 0:
                raise ConfigError(f"{path}: {key} is a single value; expected one row per example")
        if len(x) != len(y):
            raise ConfigError(f"{path}: x_{split} has {len(x)} examples but y_{split} has {len(y)}")
        if len(x) == 0 and split != "val":
            raise ConfigError(f"{path}: the {split} split is empty")
        if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
            raise ConfigError(f"{path}: x_{split} has dtype {x.dtype}; expected real numbers")
        _check_float32(x, f"x_{split}", path)
    shapes = {arrays[k].shape[1:] for k in arrays if k.startswith("x_")}
    if len(shapes) > 1:
        raise ConfigError(f"{path}: the x arrays disagree on the example shape: {sorted(shapes)}")


def load_npz(name: str, *, validation_fraction: float = 0.1, seed: int = 0,
             normalize: str = "scalar") -> Dataset:
    """Loads "npz:PATH"; x_val/y_val are used if present, else carved from train with `seed`.

    1-D integer y are class labels 0..C-1 (C from an optional `num_classes` entry, else the classes
    of y_train); 2-D float y are regression targets. Every check runs before anything is trained.
    """
    path = npz_path(name)
    arrays = _read(path)
    _check(arrays, path)
    ys = {k: _labels(arrays[k], k, path) for k in arrays if k in ("y_train", "y_val", "y_test")}
    kinds = {y.ndim for y in ys.values()}
    if len(kinds) > 1:
        raise ConfigError(f"{path}: the y arrays mix class labels and regression targets")
    x, y = arrays["x_train"], ys["y_train"]
    if "x_val" in arrays:
        x_val, y_val = arrays["x_val"], ys["y_val"]
    else:
        x, y, x_val, y_val = carve_validation(x, y, validation_fraction, seed)
    num_classes = _num_classes(arrays, ys, path) if kinds == {1} else 0
    x, x_val, x_test = standardize(x, x_val, arrays["x_test"], mode=normalize)
    return Dataset(x, y, x_val, y_val, x_test, ys["y_test"], name=name, num_classes=num_classes)
