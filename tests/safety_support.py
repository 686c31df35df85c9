"""Helpers of the safety tests: the main sweep's command line with training replaced by a tripwire."""

from __future__ import annotations

from unittest import mock

from dlfound import sweep
from experiments import depth_activation


def tripwire(*args, **kwargs):
    raise AssertionError("reached training")


def run_cli(capsys, *argv):
    """The main sweep's command line in-process, training replaced by a tripwire; (status, stderr)."""
    capsys.readouterr()
    with mock.patch.object(sweep, "train_ensemble", tripwire):
        status = depth_activation.EXPERIMENT.main(["--quiet", "--quick", *argv])
    return status, capsys.readouterr().err


def one_line(err: str, *needles: str) -> str:
    """Asserts `err` is one `error:` line holding every needle, with no traceback; returns it."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]
