"""The run directory: config, results rows and summary written so that a crash never loses finished work.

Layout of a run directory::

    config.json     what was run: experiment, config, seeds, quick flag, environment
    results.jsonl   one JSON row per cell x model x evaluation; each finished cell ends in a marker row
    summary.json    metrics and claim verdicts
    *.png, REPORT.md

JSON files hold NaN and infinities as the strings "nan", "inf" and "-inf" (strict JSON that any
parser reads); `read_json` turns those strings back into floats.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dlfound.errors import ConfigError

MIN_FREE_BYTES = 16 * 2**20
CONFIG_FILE = "config.json"
RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
DONE_KEY = "_done"
# Keys of config.json that identify a run; a resume must match them exactly.
IDENTITY_KEYS = ("experiment", "config", "seeds", "quick")
_SPECIAL_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


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


def _fsync_dir(directory: Path) -> None:
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
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def write_json_atomic(path, obj) -> None:
    """Atomically writes `obj` as indented strict JSON."""
    write_bytes_atomic(path, (dumps(obj, indent=2) + "\n").encode())


def read_json(path):
    """Reads a JSON file written by `write_json_atomic` (special floats restored)."""
    with open(path, encoding="utf-8") as f:
        return from_jsonable(json.load(f))


def _first_difference(old, new, prefix: str = ""):
    """The dotted key of the first difference between two JSON values, or None if equal."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            if key not in old or key not in new:
                return f"{prefix}{key}"
            found = _first_difference(old[key], new[key], f"{prefix}{key}.")
            if found is not None:
                return found
        return None
    return None if old == new else prefix.rstrip(".") or "(value)"


def _lookup(obj, dotted: str):
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return "(absent)"
        obj = obj[part]
    return obj


def _parse_line(line: bytes):
    try:
        row = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    return from_jsonable(row) if isinstance(row, dict) and "cell" in row else None


def _finished_blocks(lines: list[bytes]) -> tuple[dict[str, list[bytes]], list[bytes]]:
    """Groups complete lines into finished cells (raw lines, marker last) and the lines kept."""
    pending: dict[str, list[bytes]] = {}
    finished: dict[str, list[bytes]] = {}
    for line in lines:
        row = _parse_line(line)
        if row is None:
            continue
        cell = str(row["cell"])
        if not row.get(DONE_KEY):
            pending.setdefault(cell, []).append(line)
            continue
        count = row.get("rows")
        block = pending.pop(cell, [])
        if isinstance(count, int):
            if len(block) < count:
                continue
            block = block[len(block) - count:]
        if cell not in finished:
            finished[cell] = block + [line]
    kept = [line for block in finished.values() for line in block]
    return finished, kept


class RunDir:
    """A run directory: created and probed for writability and space on construction."""

    def __init__(self, path, min_free_bytes: int = MIN_FREE_BYTES):
        self.path = Path(path).expanduser().absolute()
        self._finished: set[str] | None = None
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(
                f"run directory {str(self.path)!r} exists and is not a directory; choose another --out"
            )
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path, prefix=".probe-") as probe:
                probe.write(b"probe")
                probe.flush()
        except OSError as e:
            raise ConfigError(
                f"run directory {str(self.path)!r} is not writable ({e.strerror or e}); choose another --out"
            ) from None
        free = shutil.disk_usage(self.path).free
        if free < min_free_bytes:
            raise ConfigError(
                f"only {free / 2**20:.1f} MiB free at run directory {str(self.path)!r}; "
                f"need at least {min_free_bytes / 2**20:.1f} MiB; free space or choose another --out"
            )

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        """The path of `name` inside the run directory."""
        return self.path / name

    @contextlib.contextmanager
    def lock(self) -> Iterator[RunDir]:
        """Holds an exclusive flock on `.lock` (freed by the OS even if the process is killed)."""
        fd = os.open(self.file(LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"run directory {str(self.path)!r} is in use by another dlfound process (pid {holder}); "
                "wait for it or choose another --out"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            for stale in self.path.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    stale.unlink()
            yield self
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def read_config(self) -> dict | None:
        """The stored config.json, or None if there is none; ConfigError if it is not a JSON object."""
        path = self.file(CONFIG_FILE)
        if not path.exists():
            return None
        try:
            stored = read_json(path)
        except (OSError, ValueError) as e:
            raise ConfigError(f"run directory {str(self.path)!r} holds an unreadable config.json ({e}); "
                              "choose another --out or pass --overwrite") from None
        if not isinstance(stored, dict):
            raise ConfigError(f"run directory {str(self.path)!r} holds a config.json that is not a dlfound "
                              "run config; choose another --out or pass --overwrite")
        return stored

    def write_config(self, info: dict, overwrite: bool = False) -> None:
        """Writes config.json; refuses a directory holding a different run unless `overwrite`.

        With `overwrite`, the other run's results, summary, report and plots are deleted.
        """
        try:
            old = self.read_config()
        except ConfigError:
            if not overwrite:
                raise
            self._clear()
            old = None
        if old is not None:
            new = from_jsonable(to_jsonable({k: info.get(k) for k in IDENTITY_KEYS}))
            key = _first_difference({k: old.get(k) for k in IDENTITY_KEYS}, new)
            if key is not None and not overwrite:
                raise ConfigError(
                    f"run directory {str(self.path)!r} holds a different run ({key} is "
                    f"{_lookup(old, key)!r} there, {_lookup(new, key)!r} now); "
                    "choose another --out or pass --overwrite"
                )
            if key is not None:
                self._clear()
        write_json_atomic(self.file(CONFIG_FILE), info)

    def _clear(self) -> None:
        for name in (RESULTS_FILE, SUMMARY_FILE, "REPORT.md", CONFIG_FILE):
            with contextlib.suppress(FileNotFoundError):
                self.file(name).unlink()
        for png in self.path.glob("*.png"):
            png.unlink()
        self._finished = None

    def write_summary(self, summary: dict) -> None:
        """Atomically writes summary.json."""
        write_json_atomic(self.file(SUMMARY_FILE), summary)

    def read_summary(self) -> dict | None:
        """The stored summary.json, or None if there is none."""
        path = self.file(SUMMARY_FILE)
        return read_json(path) if path.exists() else None

    def load_rows(self, repair: bool = True) -> list[dict]:
        """Rows of finished cells, in order; repairs a torn last line and drops unfinished cells on disk.

        `repair=False` only reads (for processes that do not own the directory, such as the
        non-writing processes of a multi-process run).
        """
        path = self.file(RESULTS_FILE)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._finished = set()
            return []
        complete_len = data.rfind(b"\n") + 1
        lines = data[:complete_len].splitlines(keepends=True)
        finished, kept = _finished_blocks(lines)
        if repair and len(kept) != len(lines):
            write_bytes_atomic(path, b"".join(kept))
        elif repair and complete_len != len(data):
            with open(path, "r+b") as f:
                f.truncate(complete_len)
                f.flush()
                os.fsync(f.fileno())
        self._finished = set(finished)
        rows = [_parse_line(line) for block in finished.values() for line in block[:-1]]
        return rows

    def finished_cells(self) -> set[str]:
        """Ids of the cells whose rows are complete on disk."""
        if self._finished is None:
            self.load_rows()
        return set(self._finished)

    def cell_rows(self, cell_id: str) -> list[dict]:
        """The rows of one finished cell (empty if it is not finished)."""
        return [row for row in self.load_rows() if row["cell"] == cell_id]

    def append_cell(self, cell_id: str, rows: list[dict]) -> bool:
        """Appends a finished cell's rows and its done marker in one write; False if already finished."""
        return bool(self.append_cells({cell_id: rows}))

    def append_cells(self, blocks: dict[str, list[dict]]) -> list[str]:
        """Appends several finished cells (rows, then a done marker each) in one write, so the
        cells of one program are committed together; returns the ids written (finished ones are
        skipped)."""
        finished = self.finished_cells()
        lines, written = [], []
        for cell_id, rows in blocks.items():
            if cell_id in finished:
                continue
            for row in rows:
                if row.get("cell", cell_id) != cell_id:
                    raise ValueError(f"row of cell {row['cell']!r} passed to append_cells for {cell_id!r}")
                if DONE_KEY in row:
                    raise ValueError(f"rows may not use the reserved key {DONE_KEY!r}")
                lines.append(dumps({"cell": cell_id, **row}))
            lines.append(dumps({"cell": cell_id, DONE_KEY: True, "rows": len(rows)}))
            written.append(cell_id)
        if not written:
            return []
        payload = ("\n".join(lines) + "\n").encode()
        path = self.file(RESULTS_FILE)
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written_bytes = os.write(fd, payload)
            if written_bytes != len(payload):
                raise OSError(f"short write to {path}: {written_bytes} of {len(payload)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path)
        self._finished.update(written)
        return written

    def record_programs(self, axes, programs: list[dict]) -> None:
        """Adds how the cells were packed into compiled programs to config.json (not part of the
        run's identity: a resume on another backend may pack differently)."""
        stored = self.read_config()
        if stored is None:  # not a command-line run: nothing to annotate
            return
        known = {tuple(p["cells"]): p for p in stored.get("programs", [])}
        known.update({tuple(p["cells"]): p for p in programs})
        stored["packing"] = list(axes)
        stored["programs"] = list(known.values())
        write_json_atomic(self.file(CONFIG_FILE), stored)


def _t_quantile(p: float, df: int) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def describe(values) -> dict:
    """Mean, sample std, min, max, count and 95% t-interval over seeds; NaNs are excluded and counted."""
    x = np.asarray(values, dtype=np.float64).ravel()
    nan = np.isnan(x)
    x = x[~nan]
    n = int(x.size)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan,
                "n": 0, "n_nan": int(nan.sum()), "ci95": [math.nan, math.nan]}
    mean = float(np.mean(x))
    std = float(np.std(x, ddof=1)) if n > 1 else 0.0
    half = _t_quantile(0.975, n - 1) * std / math.sqrt(n) if n > 1 else 0.0
    return {"mean": mean, "std": std, "min": float(np.min(x)), "max": float(np.max(x)),
            "n": n, "n_nan": int(nan.sum()), "ci95": [mean - half, mean + half]}
