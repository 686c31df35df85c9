"""Packaging: one top-level package in the wheel, the experiments found inside dlfound (a user's own
`experiments/` folder never shadows them), and `dlfound run NAME`."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tiny_support import REPO, subprocess_env


def _dlfound(cwd: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlfound", *args], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def research_folder(tmp_path):
    """A researcher's folder with an `experiments` package of its own."""
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "__init__.py").write_text("")
    (tmp_path / "experiments" / "my_sweep.py").write_text('"""My own sweep."""\n')
    return tmp_path


def test_the_wheel_ships_one_top_level_package_with_every_experiment(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    names = zipfile.ZipFile(next(tmp_path.glob("dlfound-*.whl"))).namelist()
    assert {n.split("/")[0] for n in names} == {"dlfound", next(n for n in names if ".dist-info/" in n).split("/")[0]}
    shipped = {Path(n).name for n in names if n.startswith("dlfound/experiments/")}
    assert {p.name for p in (REPO / "experiments").glob("*.py")} <= shipped


def test_list_and_run_find_dlfound_experiments_not_a_users_folder(research_folder):
    listed = _dlfound(research_folder, "list")
    assert listed.returncode == 0, listed.stderr
    assert "depth_activation" in listed.stdout and "my_sweep" not in listed.stdout
    helped = _dlfound(research_folder, "run", "depth_activation", "--help")
    assert helped.returncode == 0 and "Depth x activation" in helped.stdout


def test_run_of_an_unknown_experiment_names_the_valid_ones(research_folder):
    out = _dlfound(research_folder, "run", "depth_activaton", "--quick")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "no experiment 'depth_activaton'" in out.stderr and "depth_activation" in out.stderr


def _floors_declared() -> dict:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    out = {}
    for spec in project["dependencies"] + project["optional-dependencies"]["test"]:
        name, _, version = spec.partition(">=")
        out[name.strip().lower()] = version.strip()
    return out


def test_every_declared_floor_is_the_version_ci_tests():
    pinned = {}
    for line in (REPO / ".ci" / "floors.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[name.strip().lower()] = version.strip()
    assert _floors_declared() == pinned
