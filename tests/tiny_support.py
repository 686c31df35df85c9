"""Writes, loads and starts the tiny experiment (tiny_experiment.py) that subprocess-based tests run."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).with_name("tiny_experiment.py").read_text()
DEFAULT_WIDTHS = '"4,8,12,16"'
REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600


def write(directory: Path, name: str, widths: tuple[int, ...] | None = None) -> Path:
    """A copy of the tiny experiment at `directory/name.py`, with `widths` as its default cells."""
    text = SOURCE if widths is None else SOURCE.replace(DEFAULT_WIDTHS, '"' + ",".join(map(str, widths)) + '"')
    path = directory / f"{name}.py"
    path.write_text(text)
    return path


def load(path: Path, module_name: str):
    """Imports the written experiment as a module (for in-process runs)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def subprocess_env(**extra) -> dict:
    """This process's environment for a child: single-process, 2 CPU devices, the repository importable."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CI", "DLFOUND_COORDINATOR", "DLFOUND_NUM_PROCESSES", "DLFOUND_PROCESS_ID")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["DLFOUND_CPU_DEVICES"] = "2"
    env.update(extra)
    return env


def start(tiny: Path, out: Path, *args, **env) -> subprocess.Popen:
    """Starts the written experiment on `out` (stdout and stderr piped)."""
    return subprocess.Popen([sys.executable, str(tiny), "--out", str(out), *args], cwd=tiny.parent,
                            env=subprocess_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def run(tiny: Path, out: Path, *args, **env) -> subprocess.CompletedProcess:
    """Runs the written experiment on `out` to completion."""
    proc = start(tiny, out, *args, **env)
    stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
