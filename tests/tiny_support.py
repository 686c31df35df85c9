"""Writes and loads the tiny experiment (tiny_experiment.py) that subprocess-based tests run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SOURCE = Path(__file__).with_name("tiny_experiment.py").read_text()
DEFAULT_WIDTHS = '"4,8,12,16"'


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
