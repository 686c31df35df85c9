"""The experiments that ship with dlfound, found inside the installation, never in a user's own
`experiments/` folder: `dlfound list` and `dlfound run <name> [flags]`.

An installed dlfound carries them as the package `dlfound.experiments` (pyproject maps the
repository's experiments/ folder there); a source checkout that is not installed binds its
experiments/ folder to that same name. `python -m experiments.<name>` keeps working from a checkout.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

from dlfound.errors import ConfigError

PACKAGE = "dlfound.experiments"


def package() -> ModuleType:
    """The experiments package, imported as `dlfound.experiments`."""
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]
    try:
        return importlib.import_module(PACKAGE)
    except ModuleNotFoundError:
        pass
    folder = Path(__file__).resolve().parents[1] / "experiments"
    if not (folder / "__init__.py").is_file():
        raise ConfigError("dlfound's experiments are missing from this installation; reinstall dlfound")
    spec = importlib.util.spec_from_file_location(PACKAGE, folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module


def _first_doc_line(path: Path) -> str:
    """The first line of a module's docstring, read from its source without importing it."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError, ValueError) as e:
        return f"(unreadable: {e})"
    lines = doc.strip().splitlines()
    return lines[0] if lines else ""


def experiments() -> list[tuple[str, str]]:
    """(name, first docstring line) of each experiment, sorted by name."""
    out = []
    for info in pkgutil.iter_modules(package().__path__):
        if not info.name.startswith("_") and not info.ispkg:
            out.append((info.name, _first_doc_line(Path(info.module_finder.path) / f"{info.name}.py")))
    return sorted(out)


def load(name: str) -> ModuleType:
    """The experiment module `name`; ConfigError listing the experiments if there is none."""
    names = [n for n, _ in experiments()]
    if name not in names:
        raise ConfigError(f"no experiment {name!r}; experiments: {', '.join(names)} (see `dlfound list`)")
    return importlib.import_module(f"{PACKAGE}.{name}")
