"""Run directory: atomic writes, locks, crash-tolerant results rows, config checks, seed statistics."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from dlfound import environment, files, results, stats
from dlfound.errors import ConfigError
from dlfound.results import RunDir

ROWS_A = [{"model": 0, "step": 10, "acc": 0.5}, {"model": 1, "step": 10, "acc": float("nan")}]
ROWS_B = [{"model": 0, "step": 10, "loss": 1.25}]


def test_json_round_trip_of_numpy_values_and_special_floats(tmp_path):
    obj = {
        "f": np.float32(0.5),
        "i": np.int64(3),
        "b": np.bool_(True),
        "a": np.arange(3),
        "t": (1, 2),
        "nan": float("nan"),
        "inf": np.inf,
        "ninf": -np.inf,
        "nested": [{"x": np.array([np.nan, 1.0])}],
        "none": None,
        "path": Path("/x"),
    }
    files.write_json_atomic(tmp_path / "x.json", obj)
    text = (tmp_path / "x.json").read_text()
    json.loads(text)  # strict JSON: no bare NaN/Infinity tokens
    assert "NaN" not in text and "Infinity" not in text
    back = files.read_json(tmp_path / "x.json")
    assert back["f"] == 0.5 and back["i"] == 3 and back["b"] is True and back["a"] == [0, 1, 2]
    assert back["t"] == [1, 2] and back["none"] is None and back["path"] == "/x"
    assert math.isnan(back["nan"]) and back["inf"] == math.inf and back["ninf"] == -math.inf
    assert math.isnan(back["nested"][0]["x"][0]) and back["nested"][0]["x"][1] == 1.0


def test_unserializable_value_names_its_type():
    with pytest.raises(TypeError, match="object"):
        files.dumps({"x": object()})


def test_crash_before_rename_leaves_the_old_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    files.write_json_atomic(target, {"version": 1})

    def crash(src, dst):
        raise OSError("simulated crash between write and rename")

    monkeypatch.setattr(results.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        files.write_json_atomic(target, {"version": 2})
    assert files.read_json(target) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_process_killed_before_rename_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "summary.json"
    files.write_json_atomic(target, {"version": 1})
    script = textwrap.dedent(f"""
        import os
        from dlfound import files
        files.os.replace = lambda src, dst: os._exit(9)
        files.write_json_atomic({str(target)!r}, {{"version": 2}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert files.read_json(target) == {"version": 1}
    marker = {"experiment": None, "fingerprint": None, "files": ["summary.json"]}
    files.write_json_atomic(tmp_path / results.MARKER_FILE, marker)
    with RunDir(tmp_path).lock():  # taking the lock sweeps the orphaned temp file away
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".dlfound-run", ".lock", "summary.json"]


def test_out_that_is_a_file_or_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        RunDir(tmp_path / "file")
    with pytest.raises(ConfigError, match="not writable"):
        RunDir(tmp_path / "file" / "run")


def test_read_only_out_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: chmod does not make the directory read-only")
        with pytest.raises(ConfigError, match="not writable.*choose another --out"):
            RunDir(ro / "run")
        with pytest.raises(ConfigError, match="not writable"):
            RunDir(ro)
    finally:
        ro.chmod(0o755)


def test_too_little_free_space_says_how_much_is_free(tmp_path):
    with pytest.raises(ConfigError, match=r"only [\d.]+ MiB free.*need at least"):
        RunDir(tmp_path / "run", min_free_bytes=2**62)


HOLDER = textwrap.dedent("""
    import sys, time
    from dlfound.results import RunDir
    with RunDir(sys.argv[1]).lock():
        print("locked", flush=True)
        time.sleep(60)
""")


def test_lock_held_by_another_process_is_refused_then_freed_by_sigkill(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(ConfigError) as err:
            with RunDir(tmp_path).lock():
                pass
        assert f"in use by another dlfound process (pid {holder.pid})" in str(err.value)
        assert "wait for it or choose another --out" in str(err.value)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunDir(tmp_path).lock() as run_dir:  # no stale lock after SIGKILL
        assert (run_dir.path / ".lock").read_text().strip() == str(os.getpid())


def test_lock_is_released_on_exit_and_reusable(tmp_path):
    run_dir = RunDir(tmp_path)
    with run_dir.lock():
        pass
    with run_dir.lock():
        pass


def test_append_and_load_rows(tmp_path):
    run_dir = RunDir(tmp_path)
    assert run_dir.load_rows() == [] and run_dir.finished_cells() == set()
    assert run_dir.append_cell("a", ROWS_A) is True
    assert run_dir.append_cell("b", ROWS_B) is True
    fresh = RunDir(tmp_path)
    assert fresh.finished_cells() == {"a", "b"}
    rows = fresh.load_rows()
    assert [r["cell"] for r in rows] == ["a", "a", "b"]
    assert all(results.DONE_KEY not in r for r in rows)
    assert math.isnan(rows[1]["acc"]) and rows[2]["loss"] == 1.25
    assert [r["model"] for r in fresh.cell_rows("a")] == [0, 1] and fresh.cell_rows("zzz") == []


def test_a_cell_is_one_write(tmp_path, monkeypatch):
    run_dir = RunDir(tmp_path)
    writes = []
    real_write = os.write
    monkeypatch.setattr(results.os, "write", lambda fd, data: writes.append(data) or real_write(fd, data))
    run_dir.append_cell("a", ROWS_A)
    assert len(writes) == 1 and writes[0].count(b"\n") == len(ROWS_A) + 1
    assert json.loads(writes[0].splitlines()[-1]) == {"cell": "a", "_done": True, "rows": 2}


def test_finished_cell_is_never_rewritten(tmp_path):
    run_dir = RunDir(tmp_path)
    run_dir.append_cell("a", ROWS_A)
    before = (tmp_path / "results.jsonl").read_bytes()
    assert run_dir.append_cell("a", ROWS_B) is False
    assert RunDir(tmp_path).append_cell("a", ROWS_B) is False
    assert (tmp_path / "results.jsonl").read_bytes() == before


def test_rows_of_another_cell_or_with_the_marker_key_are_refused(tmp_path):
    run_dir = RunDir(tmp_path)
    with pytest.raises(ValueError, match="'b'"):
        run_dir.append_cell("a", [{"cell": "b"}])
    with pytest.raises(ValueError, match="reserved"):
        run_dir.append_cell("a", [{"_done": True}])


def test_torn_last_line_is_truncated_back(tmp_path):
    run_dir = RunDir(tmp_path)
    run_dir.append_cell("a", ROWS_A)
    path = tmp_path / "results.jsonl"
    good = path.read_bytes()
    path.write_bytes(good + b'{"cell": "b", "model": 0, "st')
    assert [r["cell"] for r in RunDir(tmp_path).load_rows()] == ["a", "a"]
    assert path.read_bytes() == good


def test_rows_without_a_done_marker_are_dropped_from_disk(tmp_path):
    run_dir = RunDir(tmp_path)
    run_dir.append_cell("a", ROWS_A)
    path = tmp_path / "results.jsonl"
    good = path.read_bytes()
    path.write_bytes(good + b'{"cell": "b", "model": 0}\n{"cell": "b", "model": 1}\n')
    fresh = RunDir(tmp_path)
    assert fresh.finished_cells() == {"a"}
    assert path.read_bytes() == good
    assert fresh.append_cell("b", ROWS_B) is True
    assert [r["cell"] for r in RunDir(tmp_path).load_rows()] == ["a", "a", "b"]


def test_partial_rows_before_a_complete_block_are_not_counted(tmp_path):
    RunDir(tmp_path).claim()
    path = tmp_path / "results.jsonl"
    path.write_bytes(
        b'{"cell": "a", "model": 99}\n'
        + (b'{"cell": "a", "model": 0}\n{"cell": "a", "_done": true, "rows": 1}\n')
    )
    assert [r["model"] for r in RunDir(tmp_path).load_rows()] == [0]


def test_garbage_line_inside_a_cell_drops_that_cell(tmp_path):
    run_dir = RunDir(tmp_path)
    run_dir.append_cell("a", ROWS_A)
    run_dir.append_cell("b", ROWS_B)
    path = tmp_path / "results.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[0] = b"\x00garbage\n"
    path.write_bytes(b"".join(lines))
    assert RunDir(tmp_path).finished_cells() == {"b"}


@settings(max_examples=40, deadline=None)
@given(cut=st.floats(0, 1))
def test_truncation_at_any_byte_keeps_exactly_the_complete_cells(tmp_path_factory, cut):
    tmp = tmp_path_factory.mktemp("cut")
    run_dir = RunDir(tmp)
    ends = []
    for i in range(4):
        run_dir.append_cell(f"c{i}", [{"model": m, "value": i * 10 + m} for m in range(i + 1)])
        ends.append((tmp / "results.jsonl").stat().st_size)
    data = (tmp / "results.jsonl").read_bytes()
    size = int(cut * len(data))
    (tmp / "results.jsonl").write_bytes(data[:size])
    expected = {f"c{i}" for i, end in enumerate(ends) if end <= size}
    assert RunDir(tmp).finished_cells() == expected
    assert (tmp / "results.jsonl").read_bytes() == data[: max([0] + [e for e in ends if e <= size])]


def test_write_config_refuses_a_different_run_unless_overwrite(tmp_path):
    run_dir = RunDir(tmp_path)
    info = {
        "experiment": "x",
        "config": {"depth": 2, "width": 8},
        "seeds": [0, 1],
        "quick": False,
        "environment": {"utc_time": "then"},
    }
    run_dir.write_config(info)
    run_dir.write_config({**info, "environment": {"utc_time": "now"}})  # same run: resume
    run_dir.append_cell("a", ROWS_A)
    run_dir.file("plot.png").write_bytes(b"png")
    other = {**info, "config": {"depth": 3, "width": 8}}
    with pytest.raises(ConfigError, match=r"holds a different run of 'x' \(config.depth is 2 there, 3 now\)"):
        run_dir.write_config(other)
    assert run_dir.finished_cells() == {"a"}
    run_dir.write_config(other, overwrite=True)
    assert run_dir.read_config()["config"]["depth"] == 3
    assert RunDir(tmp_path).finished_cells() == set() and not (tmp_path / "plot.png").exists()


def test_summary_round_trip(tmp_path):
    run_dir = RunDir(tmp_path)
    assert run_dir.read_summary() is None
    run_dir.write_summary({"metrics": {"acc": np.float64(0.25), "never": np.inf}})
    assert run_dir.read_summary() == {"metrics": {"acc": 0.25, "never": math.inf}}


def test_environment_info_records_versions_devices_and_git():
    info = environment.environment_info()
    for key in (
        "python",
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "numpy",
        "backend",
        "device_count",
        "device_kinds",
        "process_count",
        "default_matmul_precision",
        "git_revision",
        "hostname",
        "command",
        "utc_time",
    ):
        assert key in info, key
    assert info["device_count"] >= 1 and info["process_count"] >= 1
    assert info["git_revision"] is None or len(info["git_revision"]) == 40
    json.loads(files.dumps(info))


@pytest.mark.parametrize("values", [[1.0, 2.0, 4.0], [0.3, 0.31, 0.29, 0.5, 0.1], np.arange(10) ** 2])
def test_describe_against_numpy_and_scipy(values):
    out = stats.describe(values)
    x = np.asarray(values, dtype=float)
    assert out["mean"] == pytest.approx(x.mean()) and out["std"] == pytest.approx(x.std(ddof=1))
    assert out["min"] == x.min() and out["max"] == x.max() and out["n"] == len(x) and out["n_nan"] == 0
    lo, hi = scipy.stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=scipy.stats.sem(x))
    assert out["ci95"] == pytest.approx([lo, hi])


def test_describe_single_seed_nans_and_empty():
    assert stats.describe([0.7]) == {
        "mean": 0.7,
        "std": 0.0,
        "min": 0.7,
        "max": 0.7,
        "n": 1,
        "n_nan": 0,
        "ci95": [0.7, 0.7],
    }
    out = stats.describe([1.0, float("nan"), 3.0])
    assert out["n"] == 2 and out["n_nan"] == 1 and out["mean"] == 2.0
    empty = stats.describe([float("nan")])
    assert empty["n"] == 0 and empty["n_nan"] == 1 and math.isnan(empty["mean"])
    json.loads(files.dumps(empty))
