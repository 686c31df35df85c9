"""Finding a dataset's four IDX files: a manual directory, Debian's copy, or the official URLs."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import Optional

from dlfound.data.errors import DataIntegrityError, DatasetUnavailable
from dlfound.data.idx import FILES, IdxSpec

log = logging.getLogger(__name__)

DATA_ENV = "DLFOUND_DATA_DIR"
DEBIAN_DIRS = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
DOWNLOAD_TIMEOUT_S = 60


def manual_dir(name: str, cache_root: Path, manual: Optional[os.PathLike | str] = None) -> Path:
    """Where the user puts the files: `manual`, else $DLFOUND_DATA_DIR/<name>, else <cache>/manual/<name>."""
    if manual is not None:
        return Path(manual).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() / name if env else cache_root / "manual" / name


def candidate_dirs(name: str, cache_root: Path, manual: Optional[os.PathLike | str] = None) -> list[Path]:
    """Directories searched in order: the manual directory, then Debian's copy, then earlier downloads."""
    dirs = [manual_dir(name, cache_root, manual)]
    if name in DEBIAN_DIRS:
        dirs.append(DEBIAN_DIRS[name])
    dirs.append(cache_root / "downloads" / name)
    return dirs


def _complete(directory: Path) -> bool:
    return all((directory / f).is_file() for f in FILES)


def fetch(url: str, dest: Path) -> None:
    """Downloads `url` to `dest` (atomically: a temp file renamed at the end)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            shutil.copyfileobj(response, out)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download(spec: IdxSpec, target: Path) -> None:
    """Fetches the four official files into `target`, checking each against its published .gz sha256."""
    for filename in FILES:
        dest = target / filename
        if dest.is_file() and _sha256(dest) == spec.archive_sha256.get(filename):
            continue
        log.info("downloading %s", spec.url(filename))
        fetch(spec.url(filename), dest)
        expected, actual = spec.archive_sha256.get(filename), _sha256(dest)
        if expected is not None and actual != expected:
            dest.unlink()
            raise DataIntegrityError(
                f"checksum mismatch for {spec.url(filename)}: downloaded sha256 {actual}, expected {expected}"
            )


def unavailable_message(spec: IdxSpec, where: Path, searched: list[Path], reason: str) -> str:
    """Says which four files to put in which directory, and what was tried."""
    files = "\n".join(f"  {where / f}    ({spec.url(f)})" for f in FILES)
    looked = ", ".join(str(d) for d in searched)
    return (
        f"dataset {spec.name!r} is not available: {reason}.\n"
        f"Put these four files (the official gzipped IDX files) in {where}/ :\n{files}\n"
        f"(searched: {looked}; set ${DATA_ENV} to use <dir>/{spec.name}/, or pass manual_dir=...)"
    )


def locate(spec: IdxSpec, cache_root: Path, manual: Optional[os.PathLike | str] = None,
           allow_download: bool = True) -> Path:
    """The first directory holding all four files, downloading them if allowed; else DatasetUnavailable."""
    searched = candidate_dirs(spec.name, cache_root, manual)
    for directory in searched:
        if _complete(directory):
            return directory
    where = searched[0]
    if not allow_download:
        raise DatasetUnavailable(unavailable_message(spec, where, searched, "downloads are disabled"))
    target = cache_root / "downloads" / spec.name
    try:
        download(spec, target)
    except OSError as exc:  # URLError, timeouts and refused connections are all OSErrors
        raise DatasetUnavailable(
            unavailable_message(spec, where, searched, f"the download from {spec.base_url} failed ({exc})")
        ) from None
    return target
