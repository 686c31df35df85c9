"""Files that survive a crash: atomic writes (temp file, fsync, rename), and strict JSON in which
NaN and infinities are the strings "nan", "inf" and "-inf" (`read_json` turns them back into floats).

Files are created with the permissions the user's umask gives (not a temp file's 0600), so a
group sharing a results folder can read them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()  # read once: os.umask can only be read by setting it


def to_jsonable(obj):
    """Converts numpy/JAX values, tuples and paths to plain JSON types; NaN/inf become strings."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array__"):
        return to_jsonable(np.asarray(obj).tolist())
    raise TypeError(f"cannot write {type(obj).__name__} value {obj!r} to JSON; convert it to numbers first")


def from_jsonable(obj):
    """Inverse of `to_jsonable` for special floats: "nan", "inf", "-inf" become floats again."""
    if isinstance(obj, dict):
        return {k: from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v) for v in obj]
    if isinstance(obj, str) and obj in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[obj]
    return obj


def dumps(obj, indent: int | None = None) -> str:
    """Strict JSON text of `obj` (see `to_jsonable`)."""
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)


def fsync_dir(directory: Path) -> None:
    """Makes a rename or a new file in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path, data: bytes) -> None:
    """Writes a temp file next to `path`, fsyncs it and renames it over `path`, then fsyncs the dir."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path, obj) -> None:
    """Atomically writes `obj` as indented strict JSON."""
    write_bytes_atomic(path, (dumps(obj, indent=2) + "\n").encode())


def read_json(path):
    """Reads a JSON file written by `write_json_atomic` (special floats restored)."""
    with open(path, encoding="utf-8") as f:
        return from_jsonable(json.load(f))
