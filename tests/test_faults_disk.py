"""Faults of the run directory and the disk: an unwritable --out, a full disk before or during a run
and a disk-full error while appending a cell give one clear line and keep finished work."""

from __future__ import annotations

import errno
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest
import tiny_support

from dlfound import results, sweep
from dlfound.errors import ConfigError
from dlfound.results import RunDir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_support.write(tmp_path_factory.mktemp("tiny"), "tiny_exp")


def _tiny_module(tiny: Path):
    name = "dlfound_test_tiny_exp"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, tiny)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _tripwire(*args, **kwargs):
    raise AssertionError("training started")


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _unwritable_outs(tmp_path) -> list:
    regular = tmp_path / "file"
    regular.write_text("not a directory")
    outs = [regular / "sub", regular / "a" / "b", Path("/proc/dlfound-test/run")]
    if os.geteuid() != 0:
        locked = tmp_path / "readonly"
        locked.mkdir()
        locked.chmod(0o500)
        outs += [locked, locked / "sub"]
    return outs


def test_unwritable_out_fails_before_training(tiny, tmp_path, capsys, monkeypatch):
    """Paths under a regular file and in /proc (and read-only directories when not root: root ignores
    modes)."""
    module = _tiny_module(tiny)
    monkeypatch.setattr(sweep, "train_ensemble", _tripwire)
    monkeypatch.setattr(module, "load", _tripwire)
    for out in _unwritable_outs(tmp_path):
        capsys.readouterr()
        assert module.EXPERIMENT.main(["--quiet", "--out", str(out)]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "not writable" in line and str(out) in line and "--out" in line


def test_unwritable_out_in_a_subprocess(tiny, tmp_path):
    regular = tmp_path / "file"
    regular.write_text("not a directory")
    proc = tiny_support.run(tiny, regular / "sub")
    assert proc.returncode == 2
    line = _one_error_line(proc.stderr)
    assert "not writable" in line and proc.stdout == ""


def test_full_disk_fails_before_training(tiny, tmp_path, capsys, monkeypatch):
    with pytest.raises(ConfigError, match="MiB free"):
        RunDir(tmp_path / "a", min_free_bytes=shutil.disk_usage(tmp_path).free + 2**40)
    module = _tiny_module(tiny)
    monkeypatch.setattr(sweep, "train_ensemble", _tripwire)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(results.shutil, "disk_usage", lambda path: usage._replace(free=2**20))
    assert module.EXPERIMENT.main(["--quiet", "--out", str(tmp_path / "b")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "1.0 MiB free" in line and "free space or choose another --out" in line
    assert not (tmp_path / "b" / "config.json").exists()


def test_disk_full_while_appending_a_cell_is_repaired(tmp_path, monkeypatch):
    """ENOSPC half way through a cell's write: the error surfaces, and the torn block is dropped on resume."""
    run = RunDir(tmp_path)
    rows = [{"model": m, "eval": 0, "loss": 0.5 + m} for m in range(3)]
    assert run.append_cell("a", rows)
    real_write = os.write

    def full(fd, data):
        if b'"cell": "b"' in data:
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(results.os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        run.append_cell("b", rows)
    monkeypatch.setattr(results.os, "write", real_write)
    resumed = RunDir(tmp_path)
    assert resumed.finished_cells() == {"a"}
    assert resumed.append_cell("b", rows)
    assert [r["cell"] for r in RunDir(tmp_path).load_rows()] == ["a"] * 3 + ["b"] * 3


def test_disk_full_during_a_run_is_one_clear_line(tiny, tmp_path, capsys, monkeypatch):
    module = _tiny_module(tiny)
    real_append = RunDir.append_cells

    def full(self, blocks, identities=None):
        if self.finished_cells():
            raise OSError(errno.ENOSPC, "No space left on device", str(self.file("results.jsonl")))
        return real_append(self, blocks, identities)

    monkeypatch.setattr(RunDir, "append_cells", full)
    status = module.EXPERIMENT.main(["--quiet", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    line = _one_error_line(err)
    assert "No space left on device" in line and "re-run the same command to resume" in line
    assert RunDir(tmp_path / "run").finished_cells() == {"width=4"}
