"""Faults in runs: killed sweeps resume to the same results, torn files are repaired, bad run
directories and disks fail before training, and run directories are locked. (Corrupted caches and
diverging members: test_faults_data_divergence.py.)

The subprocess tests run a tiny experiment (moons, 4 structural cells x 3 seeds) written into a
temporary directory. `TINY_STALL_AFTER=k` makes it stall after committing k cells (the (k+1)-th cell
is trained but not yet written), so a SIGKILL lands at a known point.
"""

from __future__ import annotations

import collections
import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tiny_support
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlfound import files
from dlfound.errors import ConfigError
from dlfound.results import RunDir

NUM_CELLS = 4
TIMEOUT_S = tiny_support.TIMEOUT_S


# Fields of config.json's environment that legitimately change between runs of the same thing.
VOLATILE = {"utc_time", "command", "git_revision", "git_dirty", "hostname"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_support.write(tmp_path_factory.mktemp("tiny"), "tiny_exp")


def _markers(out: Path) -> int:
    try:
        lines = (out / "results.jsonl").read_bytes().splitlines()
    except FileNotFoundError:
        return 0
    return sum(b'"_done": true' in line for line in lines)


def _wait_for(proc: subprocess.Popen, ready, what: str) -> None:
    deadline = time.time() + TIMEOUT_S
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) before {what}: {proc.stderr.read()}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def _trained_cells(stderr: str) -> int:
    """Cells trained by a (non-quiet) run, from its progress lines."""
    return sum(" models in " in line for line in stderr.splitlines())


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory) -> dict:
    """An uninterrupted run: its summary, rows and config."""
    out = tmp_path_factory.mktemp("reference") / "run"
    start = time.time()
    proc = tiny_support.run(tiny, out, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return {"out": out, "seconds": time.time() - start,
            "summary": json.loads((out / "summary.json").read_text()),
            "rows": (out / "results.jsonl").read_bytes(),
            "config": json.loads((out / "config.json").read_text())}


def _assert_same_as_reference(out: Path, reference: dict) -> None:
    """summary.json and results.jsonl identical to the uninterrupted run; config.json differs only in
    volatile fields."""
    assert json.loads((out / "summary.json").read_text()) == reference["summary"]
    data = (out / "results.jsonl").read_bytes()
    rows = [json.loads(line) for line in data.splitlines()]  # every line parses: nothing torn
    keys = [(r["cell"], r["model"], r["eval"]) for r in rows if not r.get("_done")]
    assert len(keys) == len(set(keys)), "duplicated rows"
    done = collections.Counter(r["cell"] for r in rows if r.get("_done"))
    assert len(done) == NUM_CELLS and set(done.values()) == {1}
    assert data == reference["rows"], "results.jsonl differs from the uninterrupted run"
    config, ref = json.loads((out / "config.json").read_text()), reference["config"]
    assert {**config, "environment": None} == {**ref, "environment": None}
    stable = [{k: v for k, v in c["environment"].items() if k not in VOLATILE} for c in (config, ref)]
    assert stable[0] == stable[1]
    assert not list(out.glob(".*.tmp")), "temporary files left behind"


def _resume(tiny, out, reference, expected_trained=None) -> None:
    proc = tiny_support.run(tiny, out)
    assert proc.returncode == 0, proc.stderr
    if expected_trained is not None:
        assert _trained_cells(proc.stderr) == expected_trained, proc.stderr
    _assert_same_as_reference(out, reference)


@pytest.mark.parametrize("committed", [1, 2])
def test_sigkill_after_a_finished_cell_then_resume(tiny, reference, tmp_path, committed):
    out = tmp_path / "run"
    proc = tiny_support.start(tiny, out, "--quiet", TINY_STALL_AFTER=str(committed))
    _wait_for(proc, lambda: _markers(out) >= committed, f"{committed} finished cells")
    _kill(proc)
    assert _markers(out) == committed
    _resume(tiny, out, reference, expected_trained=NUM_CELLS - committed)


def test_sigkill_at_random_times_then_resume(tiny, reference, tmp_path):
    """Two kills at random moments (after a random number of finished cells plus a random delay: startup,
    training, a write or the summary), then a resume."""
    rng = random.Random()
    out = tmp_path / "run"
    kills = []
    for _ in range(2):
        proc = tiny_support.start(tiny, out, "--quiet")
        after = rng.randrange(NUM_CELLS)
        _wait_for(proc, lambda p=proc, n=after: _markers(out) >= n or p.poll() is not None, f"{after} cells")
        delay = rng.uniform(0.0, 1.5)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        kills.append({"after": after, "delay": round(delay, 2), "status": proc.returncode,
                      "cells": _markers(out)})
    committed = _markers(out)
    proc = tiny_support.run(tiny, out)
    assert proc.returncode == 0, (kills, proc.stderr)
    assert _trained_cells(proc.stderr) == NUM_CELLS - committed, (kills, proc.stderr)
    _assert_same_as_reference(out, reference)
    print("random kills:", kills)


def _boundaries(data: bytes) -> list[int]:
    """Byte offsets just after each cell's done marker."""
    ends, pos = [0], 0
    for line in data.splitlines(keepends=True):
        pos += len(line)
        if b'"_done": true' in line:
            ends.append(pos)
    return ends


def test_torn_tail_is_repaired_at_any_offset(reference, tmp_path):
    """Cutting results.jsonl anywhere leaves exactly the cells finished before the cut."""
    data, run = reference["rows"], RunDir(tmp_path / "run")
    ends = _boundaries(data)
    assert len(ends) == NUM_CELLS + 1 and ends[-1] == len(data)
    offsets = {0, len(data)} | {e + d for e in ends for d in (-2, -1, 1, 2, 40) if 0 < e + d < len(data)}
    offsets |= set(random.Random(0).sample(range(len(data)), 60))
    all_rows = [json.loads(line) for line in data.splitlines()]
    cells = [r["cell"] for r in all_rows if r.get("_done")]
    for offset in sorted(offsets):
        run.file("results.jsonl").write_bytes(data[:offset])
        keep = max(e for e in ends if e <= offset)
        finished = cells[: ends.index(keep)]
        rows = run.load_rows()
        assert run.file("results.jsonl").read_bytes() == data[:keep], offset
        assert run.finished_cells() == set(finished), offset
        expected = [files.from_jsonable(r) for r in all_rows
                    if not r.get("_done") and r["cell"] in finished]
        np.testing.assert_equal(rows, expected)


CORRUPTIONS = st.lists(st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("garbage_in_line"), st.integers(0, 10**6), st.floats(0, 1),
              st.sampled_from([b"\x00", b"\x01"])),
    st.tuples(st.just("garbage_line"), st.integers(0, 10**6),
              st.binary(max_size=30).filter(lambda b: b"\n" not in b)),
    st.tuples(st.just("delete_line"), st.integers(0, 10**6)),
), min_size=1, max_size=3)


def _corrupt(data: bytes, ops) -> bytes:
    for op in ops:
        lines = data.splitlines(keepends=True)
        if op[0] == "truncate":
            data = data[: int(op[1] * len(data))]
        elif not lines:
            continue
        elif op[0] == "garbage_in_line":
            i = op[1] % len(lines)
            cut = 1 + int(op[2] * (len(lines[i].rstrip(b"\n")) - 2))
            lines[i] = lines[i][:cut] + op[3] + lines[i][cut:]
            data = b"".join(lines)
        elif op[0] == "garbage_line":
            lines.insert(op[1] % (len(lines) + 1), op[2] + b"\n")
            data = b"".join(lines)
        else:
            del lines[op[1] % len(lines)]
            data = b"".join(lines)
    return data


def _rows_of(rows, cell):
    return [r for r in rows if r["cell"] == cell]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 4), min_size=1, max_size=5), ops=CORRUPTIONS)
def test_any_torn_or_garbled_file_keeps_only_intact_cells(tmp_path_factory, sizes, ops):
    """Whatever is cut, garbled or lost, each cell read back has exactly its original rows, and
    appending the missing cells completes the file.

    Garbage here always breaks a line's JSON (a control byte); a change that leaves valid JSON, such as
    a flipped digit, is not detectable: rows carry no checksum.
    """
    path = tmp_path_factory.mktemp("garbled")
    blocks = {f"cell{c}": [{"model": m, "eval": 0, "loss": [0.5, float("nan"), -1e30][m % 3], "tag": "a b"}
                           for m in range(n)] for c, n in enumerate(sizes)}
    run = RunDir(path)
    for cell, rows in blocks.items():
        run.append_cell(cell, rows)
    original = run.file("results.jsonl").read_bytes()
    run.file("results.jsonl").write_bytes(_corrupt(original, ops))

    resumed = RunDir(path)
    rows = resumed.load_rows()
    finished = resumed.finished_cells()
    assert finished <= set(blocks)
    for cell in finished:
        np.testing.assert_equal(_rows_of(rows, cell), [{"cell": cell, **r} for r in blocks[cell]])
    assert all(json.loads(line) for line in resumed.file("results.jsonl").read_bytes().splitlines())
    for cell, block in blocks.items():
        assert resumed.append_cell(cell, block) == (cell not in finished)
    complete = RunDir(path)
    rows = complete.load_rows()
    assert complete.finished_cells() == set(blocks)
    for cell, block in blocks.items():
        np.testing.assert_equal(_rows_of(rows, cell), [{"cell": cell, **r} for r in block])


def test_torn_last_line_is_repaired_on_resume(tiny, reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference["out"], out)
    data = reference["rows"]
    ends = _boundaries(data)
    cut = ends[-2] + (ends[-1] - ends[-2]) // 2  # halfway through the last cell's block, mid-line
    assert data[cut - 1:cut] != b"\n"
    (out / "results.jsonl").write_bytes(data[:cut])
    (out / "summary.json").unlink()
    _resume(tiny, out, reference, expected_trained=1)


def test_garbage_line_inside_a_finished_cell_retrains_only_that_cell(tiny, reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference["out"], out)
    lines = reference["rows"].splitlines(keepends=True)
    lines[3] = lines[3][:20] + b"\x00garbage\n"  # a row of the first cell
    (out / "results.jsonl").write_bytes(b"".join(lines))
    proc = tiny_support.run(tiny, out)
    assert proc.returncode == 0 and _trained_cells(proc.stderr) == 1, proc.stderr
    assert json.loads((out / "summary.json").read_text()) == reference["summary"]
    # The retrained cell is appended after the others: same rows, another order.
    assert sorted(reference["rows"].splitlines()) == sorted((out / "results.jsonl").read_bytes().splitlines())


def test_second_process_is_refused_while_the_first_holds_the_lock(tiny, reference, tmp_path):
    out = tmp_path / "run"
    holder = tiny_support.start(tiny, out, "--quiet", TINY_STALL_AFTER="0")  # trains the first cell, then stalls
    lock = out / ".lock"
    _wait_for(holder, lambda: lock.is_file() and lock.read_text().strip() == str(holder.pid), "the lock")
    second = tiny_support.run(tiny, out, "--quiet")
    assert second.returncode == 2, second.stderr
    assert "Traceback" not in second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "in use by another dlfound process" in lines[0] and f"pid {holder.pid}" in lines[0]
    assert holder.poll() is None
    _kill(holder)  # while training or stalled: no finished cell yet
    assert _markers(out) == 0
    with RunDir(out).lock():  # the OS freed the flock with the process: nothing stale
        pass
    _resume(tiny, out, reference, expected_trained=NUM_CELLS)


def test_lock_is_exclusive_within_a_process_too(tmp_path):
    run = RunDir(tmp_path)
    busy = f"in use by another dlfound process \\(pid {os.getpid()}\\)"
    with run.lock(), pytest.raises(ConfigError, match=busy), RunDir(tmp_path).lock():
        pass
    with RunDir(tmp_path).lock():
        pass
