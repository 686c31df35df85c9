"""The bad-input contract, shared by the bad-input tests: exit status 2, one `error:` line naming the
field and value, no traceback, nothing written.

`run_cli` runs the main sweep's command line in-process with `train_ensemble` replaced by a
tripwire, so any input that got as far as training fails the test.
"""

from __future__ import annotations

import itertools
from unittest import mock

import pytest

from dlfound import sweep as sweep_lib
from experiments import depth_activation

_counter = itertools.count()


@pytest.fixture(autouse=True)
def in_tmp(monkeypatch, tmp_path):
    """Relative default paths (./runs) land in the test's directory, never in the checkout."""
    monkeypatch.chdir(tmp_path)


def tripwire(*args, **kwargs):
    """Stands in for training: bad input must never get here."""
    raise AssertionError("bad input reached training")


def run_cli(capsys, tmp_path, *args, quick=True):
    """Runs the experiment's command line in-process; returns (status, stderr, run dir)."""
    out = tmp_path / f"run{next(_counter)}"
    argv = ["--quiet", *(["--quick"] if quick else []), *args]
    if "--out" not in args and "--from" not in args:
        argv += ["--out", str(out)]
    capsys.readouterr()
    with mock.patch.object(sweep_lib, "train_ensemble", tripwire):
        status = depth_activation.EXPERIMENT.main(argv)
    captured = capsys.readouterr()
    return status, captured.err, out


def rejected(status, err, out, *needles) -> str:
    """Asserts the bad-input contract and returns the one error line."""
    assert status == 2, f"exit status {status}; stderr: {err!r}"
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one 'error:' line, got {err!r}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert not (out / "results.jsonl").exists(), "results were written for bad input"
    return lines[0]


def value_forms(raw: str) -> set[str]:
    """Ways an error line may show the value `raw` (as typed, quoted, or parsed)."""
    forms = {repr(raw), repr(raw.strip())}
    if raw.strip():
        forms.add(raw.strip())
    for parse in (int, float):
        try:
            forms.add(repr(parse(raw)))
        except ValueError:
            pass
    if "," in raw:
        try:
            forms.add(repr(tuple(int(p) for p in raw.strip("()[]").split(",") if p.strip())))
        except ValueError:
            pass
    return forms


def assert_names_value(line: str, raw: str) -> None:
    assert any(form in line for form in value_forms(raw)), f"value {raw!r} not named in {line!r}"

