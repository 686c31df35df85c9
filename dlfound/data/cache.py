"""Cache locations and a checksummed .npz store, so a corrupted cache is detected and rebuilt."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np

log = logging.getLogger(__name__)

CACHE_ENV = "DLFOUND_CACHE_DIR"
_DIGEST_KEY = "__sha256__"


def cache_root(cache_dir: Optional[os.PathLike | str] = None) -> Path:
    """The cache directory: `cache_dir`, else $DLFOUND_CACHE_DIR, else ~/.cache/dlfound."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dlfound"


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """A sha256 over the names, dtypes, shapes and bytes of `arrays`."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(memoryview(value).cast("B"))
    return digest.hexdigest()


def save_checked(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Writes `arrays` plus their digest to `path` atomically (write to a temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(arrays)
    payload[_DIGEST_KEY] = np.array(arrays_digest(arrays))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checked(path: Path) -> Optional[dict[str, np.ndarray]]:
    """The arrays stored at `path`, or None if it is missing, unreadable or fails its digest."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("cache %s is unreadable (%s); rebuilding it", path, exc)
        return None
    expected = arrays.pop(_DIGEST_KEY, None)
    if expected is None or str(expected) != arrays_digest(arrays):
        log.warning("cache %s fails its checksum; rebuilding it", path)
        return None
    return arrays


def cached_arrays(path: Path, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Loads the checked cache at `path`, or calls `build()` and caches its result."""
    arrays = load_checked(path)
    if arrays is None:
        arrays = build()
        try:
            save_checked(path, arrays)
        except OSError as exc:  # a cache only saves time: go on without it
            log.warning("cannot write the data cache %s (%s); going on without it: set $%s to a writable "
                        "directory to keep it", path, exc.strerror or exc, CACHE_ENV)
    return arrays
