"""Nothing lost, nothing silent: folders dlfound did not write are left alone, and every fault is one
sentence (data contents and sizes: test_safety_data.py)."""

from __future__ import annotations

import errno
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tiny_support
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safety_support import one_line, run_cli

from dlfound import __main__ as dlfound_main
from dlfound import report, results, runtime
from dlfound.config import Config
from dlfound.errors import ConfigError
from dlfound.results import RunDir

HYP = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_examples = itertools.count()
INFO = {"experiment": "depth_activation", "config": Config().to_dict(), "seeds": [0, 1], "quick": True}


@pytest.fixture(autouse=True)
def _in_tmp(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _foreign_folder(path: Path) -> Path:
    path.mkdir()
    (path / "config.json").write_text('{"learning_rate": 0.1, "tool": "another"}')
    (path / "results.jsonl").write_text('{"step": 1}\n')
    (path / "REPORT.md").write_text("# my notes\n")
    (path / "figure.png").write_bytes(b"\x89PNG not dlfound's")
    return path


# --- ownership of run folders ----------------------------------------------------------------


def test_overwrite_never_touches_a_folder_dlfound_did_not_write(capsys, tmp_path):
    foreign = _foreign_folder(tmp_path / "foreign")
    before = _snapshot(foreign)
    for argv in (["--out", str(foreign), "--overwrite"], ["--out", str(foreign)]):
        status, err = run_cli(capsys, *argv)
        assert status == 2
        one_line(err, str(foreign), "not a dlfound run directory", "config.json")
    assert _snapshot(foreign) == before


def test_overwrite_deletes_only_the_files_the_run_wrote(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write_config(INFO)
    run.file("curve.png").write_bytes(b"png")
    run.append_cell("a", [{"model": 0, "eval": 0, "loss": 1.0}])
    run.write_summary({"metrics": {}})
    (run.path / "notes.txt").write_text("the user's own notes")
    assert set(run.marker()["files"]) == {"config.json", "curve.png", "results.jsonl", "summary.json"}
    with pytest.raises(ConfigError, match=r"config\.depth is 2 there, 5 now"):
        run.write_config({**INFO, "config": Config(depth=5).to_dict()})
    run.write_config({**INFO, "config": Config(depth=5).to_dict()}, overwrite=True)
    assert sorted(p.name for p in run.path.iterdir()) == [".dlfound-run", "config.json", "notes.txt"]
    assert run.marker()["files"] == ["config.json"]


def test_a_different_run_is_named_for_what_it_is(tmp_path):
    run = RunDir(tmp_path / "run")
    run.write_config({**INFO, "experiment": "he2016_residual"})
    run.append_cell("a", [{"model": 0}])  # a run with results is protected; one with only its config is not
    with pytest.raises(ConfigError, match="holds a run of 'he2016_residual', not 'depth_activation'"):
        run.write_config(INFO)
    same = RunDir(tmp_path / "same")
    same.write_config(INFO)
    same.append_cell("a", [{"model": 0}])
    same.write_config(INFO)  # the same run resumes
    same.write_config({**INFO, "seeds": [0, 1, 2]})  # other seeds: the same run, extended (see sweep)
    with pytest.raises(ConfigError, match=r"quick is True there, False now"):
        same.write_config({**INFO, "quick": False})


def test_appending_results_claims_only_an_empty_folder(tmp_path):
    foreign = _foreign_folder(tmp_path / "foreign")
    before = _snapshot(foreign)
    with pytest.raises(ConfigError, match="not a dlfound run directory"):
        RunDir(foreign).append_cell("a", [{"model": 0}])
    assert _snapshot(foreign) == before
    assert RunDir(tmp_path / "new").append_cell("a", [{"model": 0}])


def test_report_writes_only_where_it_owns_the_name(tmp_path, capsys):
    run = RunDir(tmp_path / "runs" / "one")
    run.write_config(INFO)
    run.write_summary({"experiment": "depth_activation", "claims": [], "metrics": {}})
    assert dlfound_main.main(["report", str(run.path)]) == 0
    assert report.REPORT_FILE in run.marker()["files"]
    assert dlfound_main.main(["report", str(run.path)]) == 0  # its own report is regenerated
    foreign_report = tmp_path / "runs" / "REPORT.md"
    foreign_report.write_text("# the group's hand-written overview\n")
    capsys.readouterr()
    assert dlfound_main.main(["report", str(tmp_path / "runs")]) == 2
    one_line(capsys.readouterr().err, "was not written by `dlfound report`", "--output")
    assert foreign_report.read_text() == "# the group's hand-written overview\n"
    assert dlfound_main.main(["report", str(tmp_path / "runs"), "--output", str(tmp_path / "index.md")]) == 0
    assert "depth_activation" in (tmp_path / "index.md").read_text()


def test_one_unreadable_summary_does_not_stop_the_index(tmp_path, capsys):
    for name in ("a", "b"):
        run = RunDir(tmp_path / name)
        run.write_config({**INFO, "experiment": name})
        run.write_summary({"experiment": name, "claims": [], "metrics": {}})
    (tmp_path / "a" / "summary.json").write_text("{torn")
    capsys.readouterr()
    assert dlfound_main.main(["report", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "warning: skipped" in captured.err and "Traceback" not in captured.err
    index = (tmp_path / "REPORT.md").read_text()
    assert "[b](b/REPORT.md)" in index and "a: left out" in index


@HYP
@given(names=st.lists(st.sampled_from(["config.json", "results.jsonl", "summary.json", "REPORT.md", "a.png",
                                       "notes.txt", ".hidden", "sub/"]), min_size=1, max_size=5, unique=True),
       overwrite=st.booleans())
def test_generated_foreign_folders_are_never_changed(capsys, tmp_path, names, overwrite):
    folder = tmp_path / f"foreign-{abs(hash((tuple(names), overwrite)))}"
    folder.mkdir(exist_ok=True)
    for name in names:
        if name.endswith("/"):
            (folder / name).mkdir(exist_ok=True)
        else:
            (folder / name).write_text(f"{name} of another tool")
    before = sorted((p.relative_to(folder), p.is_file() and p.read_text()) for p in folder.rglob("*"))
    status, err = run_cli(capsys, "--out", str(folder), *(["--overwrite"] if overwrite else []))
    assert status == 2
    one_line(err, "not a dlfound run directory")
    assert sorted((p.relative_to(folder), p.is_file() and p.read_text()) for p in folder.rglob("*")) == before


# --- faults ------------------------------------------------------------------------------------


def test_a_short_write_is_completed(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(results.os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    run = RunDir(tmp_path)
    rows = [{"model": m, "eval": 0, "loss": 0.25 * m} for m in range(4)]
    assert run.append_cell("a", rows)
    monkeypatch.setattr(results.os, "write", real_write)
    assert [r["loss"] for r in RunDir(tmp_path).load_rows()] == [0.0, 0.25, 0.5, 0.75]


def test_a_disk_that_fills_mid_write_isone_line(tmp_path, capsys, monkeypatch):
    tiny = tiny_support.load(tiny_support.write(tmp_path, "tiny_full"), "dlfound_test_tiny_full")
    real_write = os.write
    calls = []

    def filling(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data))
        if len(calls) == 2:
            return real_write(fd, bytes(data[: len(data) // 3]))  # short write, then the disk is full
        return 0

    monkeypatch.setattr(results.os, "write", filling)
    status = tiny.main(["--quiet", "--out", str(tmp_path / "run")])
    one_line(capsys.readouterr().err, "No space left on device", "re-run the same command to resume")
    assert status == 1
    monkeypatch.setattr(results.os, "write", real_write)
    assert RunDir(tmp_path / "run").finished_cells() == {"width=4"}


@pytest.mark.parametrize("name, value, needle", [
    ("DLFOUND_CPU_DEVICES", "abc", "invalid $DLFOUND_CPU_DEVICES='abc'; allowed: an integer from 1 to"),
    ("DLFOUND_CPU_DEVICES", "-1", "invalid $DLFOUND_CPU_DEVICES='-1'"),
    ("DLFOUND_CPU_DEVICES", "0", "invalid $DLFOUND_CPU_DEVICES='0'"),
])
def test_bad_environment_variables_areone_line(capsys, tmp_path, monkeypatch, name, value, needle):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="fix or unset it"):
        runtime.check_environment()
    status, err = run_cli(capsys, "--out", str(tmp_path / "run"))
    assert status == 2
    one_line(err, needle)
    assert not (tmp_path / "run").exists()


def test_coordinator_without_its_partners_isone_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DLFOUND_COORDINATOR", "localhost:1")
    monkeypatch.delenv("DLFOUND_NUM_PROCESSES", raising=False)
    status, err = run_cli(capsys, "--out", str(tmp_path / "run"))
    assert status == 2
    one_line(err, "$DLFOUND_NUM_PROCESSES is not")
    monkeypatch.setenv("DLFOUND_NUM_PROCESSES", "2")
    monkeypatch.setenv("DLFOUND_PROCESS_ID", "2")
    status, err = run_cli(capsys, "--out", str(tmp_path / "run"))
    one_line(err, "$DLFOUND_PROCESS_ID='2'; allowed: an integer from 0 to 1")


def test_a_bad_device_count_fails_at_the_command_not_at_import(tmp_path):
    env = tiny_support.subprocess_env(DLFOUND_CPU_DEVICES="abc")
    proc = subprocess.run([sys.executable, "-m", "experiments.depth_activation", "--quick", "--out",
                           str(tmp_path / "run")], cwd=tiny_support.REPO, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    one_line(proc.stderr, "$DLFOUND_CPU_DEVICES='abc'")


def test_an_unwritable_folder_mid_run_isone_line(tmp_path, capsys, monkeypatch):
    tiny = tiny_support.load(tiny_support.write(tmp_path, "tiny_denied"), "dlfound_test_tiny_denied")
    real = RunDir.append_cells

    def denied(self, blocks, identities=None):
        if self.finished_cells():
            raise PermissionError(errno.EACCES, "Permission denied", str(self.path / "results.jsonl"))
        return real(self, blocks, identities)

    monkeypatch.setattr(RunDir, "append_cells", denied)
    assert tiny.main(["--quiet", "--out", str(tmp_path / "run")]) == 1
    one_line(capsys.readouterr().err, "Permission denied", "fix that and re-run the same command")


# --- smaller surprises -------------------------------------------------------------------------


def test_duplicate_seeds_in_a_from_config_are_refused(capsys, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "config.json").write_text(json.dumps({**INFO, "seeds": [0, 3, 3]}))
    status, err = run_cli(capsys, "--from", str(source), "--out", str(tmp_path / "run"))
    assert status == 2
    one_line(err, "lists seed 3 more than once")


def test_a_repeated_set_key_is_refused(capsys, tmp_path):
    status, err = run_cli(capsys, "--set", "width=8", "--set", "width=16", "--out", str(tmp_path / "run"))
    assert status == 2
    one_line(err, "--set width is given twice (8 and 16)")


def test_an_all_diverged_run_still_gets_its_figures(tmp_path):
    """Every member NaN or inf (a run that diverged at step 0): log-scaled plots fall back to linear."""
    from dlfound import plots

    diverged = {"nan": np.full((3, 4), np.nan), "inf": np.full((3, 4), np.inf)}
    assert plots.curves_with_bands(tmp_path / "c.png", np.arange(4), diverged, "step", "loss", "t",
                                   logy=True).exists()
    assert plots.lines(tmp_path / "l.png", np.arange(1, 5), diverged, "d", "loss", "t", logx=True,
                       logy=True).exists()


def test_an_unwritable_data_cache_is_a_warning_not_a_failure(tmp_path, caplog):
    from dlfound.data import cache

    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache directory should be")
    arrays = cache.cached_arrays(blocked / "arrays" / "x.npz", lambda: {"x": np.arange(3)})
    assert arrays["x"].tolist() == [0, 1, 2]
    assert "cannot write the data cache" in caplog.text and "DLFOUND_CACHE_DIR" in caplog.text
