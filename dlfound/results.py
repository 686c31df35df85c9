"""The run directory: config, results rows and summary written so that a crash never loses finished work.

Layout of a run directory::

    .dlfound-run    the marker that dlfound made this directory: experiment, fingerprint, files written
    config.json     what was run: experiment, config, seeds, quick flag, environment
    results.jsonl   one JSON row per cell x model x evaluation; each finished cell ends in a marker row
    summary.json    metrics and claim verdicts
    models/         each finished cell's trained variables, an Orbax checkpoint per cell (dlfound.checkpoints)
    *.png, REPORT.md

dlfound writes, resumes and deletes only inside directories it marked, and deletes only the
files its marker lists: a directory that holds anything else is refused, never cleared.

Files are written atomically as strict JSON (`dlfound.files`). Longer than most modules: the
directory's ownership (marker, lock, clearing), its config and its results file are one object,
so that every write passes the same checks.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from dlfound.errors import ConfigError
from dlfound.rows_file import DONE_KEY, block_seeds, finished_blocks, parse_line
from dlfound.stored import load_model, load_models  # noqa: F401 - the API reads trained models here
from dlfound.files import (
    dumps,
    from_jsonable,
    fsync_dir,
    read_json,
    to_jsonable,
    write_bytes_atomic,
    write_json_atomic,
)

MIN_FREE_BYTES = 16 * 2**20
CONFIG_FILE = "config.json"
RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
MARKER_FILE = ".dlfound-run"
# Keys of config.json that identify a run; a resume must match them exactly.
# Seeds are not among them: a re-run with other seeds reuses the blocks of the seeds it shares
# and trains only the others (dlfound.sweep).
IDENTITY_KEYS = ("experiment", "config", "quick", "axes")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class RunDir:
    """A run directory: created and probed for writability and space on construction; claimed
    (marked as dlfound's) on the first write."""

    def __init__(self, path, min_free_bytes: int = MIN_FREE_BYTES, writer: bool = True,
                 keep_models: bool = True):
        self.path = Path(path).expanduser().absolute()
        self.writer = writer  # False for readers: processes of a multi-process run other than 0, analysis
        self.keep_models = keep_models  # each finished cell's trained variables (dlfound.checkpoints)
        self._finished: set[tuple] | None = None  # (cell, seeds) of each finished block
        self._identities: dict[tuple, object] = {}
        self._blocks: list | None = None
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(
                f"run directory {str(self.path)!r} exists and is not a directory; choose another --out"
            )
        if not writer:  # a reader creates and probes nothing (a colleague's read-only runs stay readable)
            return
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

    def check_space(self, needed_bytes: int) -> None:
        """ConfigError, with the estimate and the space, if `needed_bytes` more would not fit."""
        free = shutil.disk_usage(self.path).free
        if free < needed_bytes + MIN_FREE_BYTES:
            raise ConfigError(f"this run needs about {needed_bytes / 2**20:.0f} MiB for its results and "
                              f"{str(self.path)!r} has {free / 2**20:.0f} MiB free; free space, choose "
                              "another --out or train fewer seeds")

    def file(self, name: str) -> Path:
        """The path of `name`, a file this run writes: it joins the marker's list of the run's files
        (so `--overwrite` deletes it), and the directory is claimed first if it is not yet marked."""
        if self.writer:
            self._register(name)
        return self.path / name

    def marker(self) -> dict | None:
        """The directory's ownership marker (experiment, fingerprint, files), or None if unmarked."""
        try:
            marker = read_json(self.path / MARKER_FILE)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            marker = None
        if not (isinstance(marker, dict) and isinstance(marker.get("files"), list)):
            raise ConfigError(f"run directory {str(self.path)!r} holds a damaged {MARKER_FILE} marker; "
                              "choose another --out")
        return marker

    def _foreign(self) -> list[str]:
        """Names in the directory other than dlfound's own lock, marker and temporary files."""
        return sorted(p.name for p in self.path.iterdir()
                      if p.name not in (LOCK_FILE, MARKER_FILE) and not p.name.endswith(".tmp"))

    def _refuse_foreign(self) -> None:
        foreign = self._foreign() if self.marker() is None else []
        if foreign:
            listed = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
            raise ConfigError(f"{str(self.path)!r} is not a dlfound run directory (it holds {listed}, "
                              "which dlfound did not write and will not touch); choose another --out")

    def claim(self) -> dict:
        """The marker, written first if the directory is empty; ConfigError if it holds files
        dlfound did not write (they are never deleted or overwritten)."""
        marker = self.marker()
        if marker is not None:
            return marker
        self._refuse_foreign()
        marker = {"experiment": None, "fingerprint": None, "files": []}
        write_json_atomic(self.path / MARKER_FILE, marker)
        return marker

    def _register(self, *names: str) -> dict:
        marker = self.claim()
        new = [name for name in names if name not in marker["files"]]
        if new:
            marker["files"] = marker["files"] + new
            write_json_atomic(self.path / MARKER_FILE, marker)
        return marker

    @contextlib.contextmanager
    def lock(self) -> Iterator[RunDir]:
        """Holds an exclusive flock on `.lock` (freed by the OS even if the process is killed); refuses,
        creating nothing, a directory that holds files dlfound did not write."""
        self._refuse_foreign()
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
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
        path = self.path / CONFIG_FILE
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
        """Claims the directory and writes config.json. With `overwrite`, the files of the run
        already there are deleted first (a fresh start); without, a different run (another
        experiment, or other settings) is refused, unless it holds nothing but its config (a start
        that was refused, say for a batch larger than the data, never blocks the corrected command)."""
        marker = self.claim()
        identity = from_jsonable(to_jsonable({k: info.get(k) for k in IDENTITY_KEYS}))
        fingerprint = hashlib.sha256(dumps(identity).encode()).hexdigest()[:16]
        different = marker["fingerprint"] not in (None, fingerprint)
        if different and not overwrite and not set(marker["files"]) <= {CONFIG_FILE}:
            raise ConfigError(self._different_run(marker, identity))
        if different or overwrite:
            marker = self._clear()
        files = marker["files"] + [CONFIG_FILE] * (CONFIG_FILE not in marker["files"])
        write_json_atomic(self.path / MARKER_FILE, {"experiment": info.get("experiment"),
                                                    "fingerprint": fingerprint, "files": files})
        write_json_atomic(self.path / CONFIG_FILE, info)

    def _different_run(self, marker: dict, identity: dict) -> str:
        where = f"run directory {str(self.path)!r}"
        advice = "choose another --out or pass --overwrite to replace it"
        if marker.get("experiment") != identity.get("experiment"):
            old, new = marker.get("experiment"), identity.get("experiment")
            return f"{where} holds a run of {old!r}, not {new!r}; {advice}"
        try:
            old = self.read_config() or {}
        except ConfigError:
            old = {}
        differing = []
        for key in IDENTITY_KEYS:
            a, b = old.get(key), identity.get(key)
            if isinstance(a, dict) and isinstance(b, dict):
                differing += [(f"{key}.{k}", a.get(k, "(absent)"), b.get(k, "(absent)"))
                              for k in sorted(set(a) | set(b), key=str) if a.get(k) != b.get(k)]
            elif a != b:
                differing.append((key, a, b))
        if not differing:
            return f"{where} holds a different run of {identity.get('experiment')!r}; {advice}"
        shown = "; ".join(f"{k} is {_short(a)} there, {_short(b)} now" for k, a, b in differing[:3])
        more = f"; and {len(differing) - 3} more settings" if len(differing) > 3 else ""
        return f"{where} holds a different run of {identity.get('experiment')!r} ({shown}{more}); {advice}"

    def _clear(self) -> dict:
        """Deletes the files the marker lists (those dlfound wrote), and nothing else; returns the
        emptied marker."""
        marker = self.marker() or {"files": []}
        for name in marker["files"]:
            if name in (LOCK_FILE, MARKER_FILE) or Path(name).name != name:
                continue
            path = self.path / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)  # a sub-run this run made (the accelerator check's)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        marker = {"experiment": None, "fingerprint": None, "files": []}
        write_json_atomic(self.path / MARKER_FILE, marker)
        self._finished = None
        return marker

    def write_summary(self, summary: dict) -> None:
        """Atomically writes summary.json."""
        write_json_atomic(self.file(SUMMARY_FILE), summary)

    def read_summary(self) -> dict | None:
        """The stored summary.json, or None if there is none."""
        path = self.path / SUMMARY_FILE
        return read_json(path) if path.exists() else None

    def load_rows(self, repair: bool = True) -> list[dict]:
        """Rows of finished cells, in order; repairs a torn last line and drops unfinished cells on disk.

        `repair=False` only reads (for processes that do not own the directory, such as the
        non-writing processes of a multi-process run).
        """
        if repair:
            self._refuse_foreign()  # repairing writes: never to another tool's results.jsonl
        path = self.path / RESULTS_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._finished, self._blocks = set(), []
            return []
        complete_len = data.rfind(b"\n") + 1
        lines = data[:complete_len].splitlines(keepends=True)
        finished, kept = finished_blocks(lines)
        if repair and len(kept) != len(lines):
            write_bytes_atomic(path, b"".join(kept))
        elif repair and complete_len != len(data):
            with open(path, "r+b") as f:
                f.truncate(complete_len)
                f.flush()
                os.fsync(f.fileno())
        self._finished = set(finished)
        self._identities = {key: parse_line(block[-1]).get("identity") for key, block in finished.items()}
        self._blocks = [(key[0], self._identities[key], [parse_line(line) for line in block[:-1]])
                        for key, block in finished.items()]
        return [row for _, _, rows in self._blocks for row in rows]

    def blocks(self) -> list[tuple[str, object, list[dict]]]:
        """(cell id, identity, rows) of each finished block, in file order; a cell has one block
        per set of seeds trained together (a run extended with more seeds adds blocks)."""
        self.load_rows(repair=False)
        return list(self._blocks)

    def finished_cells(self) -> set[str]:
        """Ids of the cells with at least one block of rows complete on disk."""
        if self._finished is None:
            self.load_rows()
        return {cell for cell, _ in self._finished}

    def cell_identity(self, cell_id: str):
        """The identity stored with a finished cell's first block (see dlfound.identity), None if none."""
        if self._finished is None:
            self.load_rows()
        return next((v for (cell, _), v in self._identities.items() if cell == cell_id), None)

    def cell_rows(self, cell_id: str) -> list[dict]:
        """The rows of one finished cell (empty if it is not finished)."""
        return [row for row in self.load_rows() if row["cell"] == cell_id]

    def append_cell(self, cell_id: str, rows: list[dict]) -> bool:
        """Appends a finished cell's rows and its done marker in one write; False if already finished."""
        return bool(self.append_cells({cell_id: rows}))

    def append_cells(self, blocks: dict[str, list[dict]], identities: dict | None = None) -> list[str]:
        """Appends several finished cells (rows, then a done marker each, carrying the cell's entry
        of `identities`) in one write, so the cells of one program are committed together; returns
        the ids written (a block already finished, same cell and seeds, is skipped)."""
        if self._finished is None:
            self.load_rows()
        lines, written, keys = [], [], {}
        for cell_id, rows in blocks.items():
            marker = {"cell": cell_id, DONE_KEY: True, "rows": len(rows)}
            if identities and cell_id in identities:
                marker["identity"] = identities[cell_id]
            keys[cell_id] = (cell_id, block_seeds(from_jsonable(to_jsonable(marker))))
            if keys[cell_id] in self._finished:
                continue
            for row in rows:
                if row.get("cell", cell_id) != cell_id:
                    raise ValueError(f"row of cell {row['cell']!r} passed to append_cells for {cell_id!r}")
                if DONE_KEY in row:
                    raise ValueError(f"rows may not use the reserved key {DONE_KEY!r}")
                lines.append(dumps({"cell": cell_id, **row}))
            lines.append(dumps(marker))
            written.append(cell_id)
        if not written:
            return []
        payload = ("\n".join(lines) + "\n").encode()
        path = self.file(RESULTS_FILE)
        created = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            while payload:  # a short write is retried, and a full disk raises ENOSPC; the torn block
                count = os.write(fd, payload)  # is then dropped by the next load_rows
                if count == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                payload = payload[count:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path)
        self._finished.update(keys[c] for c in written)
        self._identities.update({keys[c]: from_jsonable(to_jsonable((identities or {}).get(c)))
                                 for c in written})
        self._blocks = None  # re-read on the next blocks()
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
        write_json_atomic(self.path / CONFIG_FILE, stored)


def load(run_dir):
    """The finished cells of `run_dir` as a tidy pandas DataFrame (`dlfound.analysis.load`)."""
    from dlfound import analysis  # pandas is optional: imported only when asked for

    return analysis.load(run_dir)
