"""Claim verdicts and the helpers that state criteria."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlfound import claims


@pytest.mark.parametrize(
    "passed, verdict",
    [
        (True, claims.REPRODUCED),
        (False, claims.NOT_REPRODUCED),
        (None, claims.INCONCLUSIVE),
        (np.bool_(True), claims.REPRODUCED),
        (np.bool_(False), claims.NOT_REPRODUCED),
    ],
)
def test_judge_maps_the_outcome_to_a_verdict(passed, verdict):
    out = claims.judge(
        "T1", "ReLU trains deep nets", "acc >= 0.9 in 5/5 seeds", passed, "5/5 seeds", {"k": 5}
    )
    assert out == {
        "id": "T1",
        "claim": "ReLU trains deep nets",
        "criterion": "acc >= 0.9 in 5/5 seeds",
        "verdict": verdict,
        "evidence": "5/5 seeds",
        "numbers": {"k": 5},
    }


@pytest.mark.parametrize("passed", [True, False, None])
def test_quick_runs_are_always_inconclusive_and_say_why(passed):
    out = claims.judge("T1", "c", "k", passed, "acc 0.3", quick=True)
    assert out["verdict"] == claims.INCONCLUSIVE
    assert out["evidence"] == "quick run (tiny budget; verdict not meaningful): acc 0.3"
    assert out["numbers"] == {}


def test_judge_refuses_a_non_boolean_outcome():
    with pytest.raises(TypeError, match="0.7"):
        claims.judge("T1", "c", "k", 0.7, "e")


def test_k_of_n_and_all_of():
    assert claims.k_of_n([True, False, True]) == (2, 3)
    assert claims.k_of_n(np.array([[True, True], [False, True]])) == (3, 4)
    assert claims.k_of_n([]) == (0, 0)
    assert claims.all_of(True, True) is True
    assert claims.all_of(True, None) is None
    assert claims.all_of(None, False) is False
    assert claims.all_of([True, np.bool_(True)]) is True
    assert claims.all_of([]) is True


@pytest.mark.parametrize(
    "x, text",
    [
        (None, "n/a"),
        (True, "true"),
        (3, "3"),
        (np.int64(7), "7"),
        (1234567, "1.23e+06"),
        (2.0, "2"),
        (0.97341, "0.973"),
        (12.345, "12.3"),
        (1234.5, "1234"),
        (1.5e7, "1.5e+07"),
        (1.234e-5, "1.23e-05"),
        (float("nan"), "nan"),
        (-math.inf, "-inf"),
        ([0.5, 1.0], "[0.5, 1]"),
        (np.array([0.25, np.inf]), "[0.25, inf]"),
        ("relu", "relu"),
    ],
)
def test_fmt(x, text):
    assert claims.fmt(x) == text


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers()))
def test_fmt_never_raises_and_is_short(x):
    assert len(claims.fmt(x)) <= 24


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (6, 3, 2.0),
        (1, 0, math.inf),
        (-1, 0, -math.inf),
        (0, 0, math.nan),
        (math.nan, 1, math.nan),
        (math.inf, math.inf, math.nan),
        (math.inf, 2, math.inf),
        (1, math.inf, 0.0),
    ],
)
def test_ratio(a, b, expected):
    out = claims.ratio(a, b)
    assert (math.isnan(out) and math.isnan(expected)) or out == expected


def test_steps_to_target_for_accuracies_losses_and_seeds():
    steps = [100, 200, 300, 400]
    assert claims.steps_to_target([0.1, 0.5, 0.95, 0.99], steps, 0.9) == 300.0
    assert claims.steps_to_target([0.1, 0.5, 0.6, 0.7], steps, 0.9) == math.inf
    assert claims.steps_to_target([2.0, 0.4, 0.1, 0.3], steps, 0.5, higher_is_better=False) == 200.0
    acc_SxT = np.array([[0.1, 0.95, 0.9, 0.9], [np.nan, np.nan, np.nan, np.nan], [0.0, 0.0, 0.0, 0.91]])
    np.testing.assert_array_equal(claims.steps_to_target(acc_SxT, steps, 0.9), [200.0, np.inf, 400.0])
    with pytest.raises(ValueError, match="last axis"):
        claims.steps_to_target([0.1, 0.2], steps, 0.9)


def test_print_verdicts_one_line_each():
    verdicts = [
        claims.judge("T1", "Claim one", "k", True, "ratio 12"),
        claims.judge("F2", "Claim two", "k", None, "no data"),
    ]
    out = io.StringIO()
    claims.print_verdicts(verdicts, file=out)
    assert out.getvalue().splitlines() == [
        "[T1] reproduced: Claim one -- ratio 12",
        "[F2] inconclusive: Claim two -- no data",
    ]
    assert claims.count_verdicts(verdicts) == {
        claims.REPRODUCED: 1,
        claims.NOT_REPRODUCED: 0,
        claims.INCONCLUSIVE: 1,
    }
