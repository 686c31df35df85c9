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


def test_median_ratio_is_the_ratio_of_medians_over_seeds():
    statistic = claims.median_ratio("tanh", "relu")
    values = {"tanh": np.array([[1.0, 2.0, 3.0, 10.0], [np.inf, np.inf, np.inf, 1.0]]),
              "relu": np.array([[1.0, 1.0, 2.0, 2.0], [np.inf, np.inf, np.inf, 2.0]])}
    result = statistic(values)  # medians 2.5 / 1.5; never reached by most seeds of both: inf / inf
    assert result[0] == pytest.approx(5 / 3) and np.isnan(result[1])
    never = {"tanh": np.array([[np.inf, np.inf, 1.0]]), "relu": np.array([[1.0, 2.0, 3.0]])}
    assert statistic(never)[0] == np.inf


def test_median_ratio_handles_never_reached_targets():
    ratio = claims.median_ratio("top", "bottom")
    np.testing.assert_array_equal(ratio({"top": np.array([[2.0, 4.0, 6.0]]),
                                         "bottom": np.array([[1.0, 2.0, 30.0]])}), [2.0])
    assert np.isnan(ratio({"top": np.array([[np.inf, np.inf, 1.0]]),
                           "bottom": np.array([[np.inf, np.inf, 2.0]])})[0])


def test_median_ratio_to_best_is_median_over_the_best_rival_median_per_resample():
    stat = claims.median_ratio_to_best("gelu", ("relu", "elu"))
    v = {"gelu": np.array([[0.3, 0.1, 0.2], [0.4, 0.4, 0.4]]),
         "relu": np.array([[0.9, 0.5, 0.6], [0.2, 0.2, 0.2]]),  # medians 0.6, 0.2
         "elu": np.array([[0.4, 0.5, 0.1], [1.0, 1.0, 1.0]])}  # medians 0.4, 1.0
    np.testing.assert_allclose(stat(v), [0.2 / 0.4, 0.4 / 0.2])
    assert np.isinf(stat({"gelu": np.array([[np.inf]]), "relu": np.array([[1.0]]), "elu": np.array([[2.0]])}))


def test_median_ratio_to_best_divides_by_the_lowest_rival_median():
    stat = claims.median_ratio_to_best("adam", ("sgd", "rmsprop"))
    v = {"adam": np.array([[0.3, 0.4, 0.5]]), "sgd": np.array([[0.6, 0.8, 1.0]]),
         "rmsprop": np.array([[0.2, 0.5, 0.9]])}  # medians 0.4, 0.8, 0.5
    np.testing.assert_allclose(stat(v), [0.4 / 0.5])


def test_mean_ratio_and_largest_mean_over_seeds():
    v = {"a": np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0]]), "b": np.array([[2.0, 2.0, 2.0], [4.0, 0.0, 2.0]])}
    np.testing.assert_allclose(claims.mean_ratio("a", "b")(v), [1.0, 1.0])  # 2/2, 2/2
    cells = {"a": np.array([[1.0, 2.0], [3.0, 5.0]]), "b": np.array([[2.0, 2.0], [0.0, 0.0]])}
    np.testing.assert_array_equal(claims.largest_mean(cells), [2.0, 4.0])  # means a (1.5, 4), b (2, 0)
    v = {"a": np.array([[100.0, 300, 200]]), "b": np.array([[50.0, 100, 400]])}
    np.testing.assert_allclose(claims.median_ratio("a", "b")(v), [2.0])
    assert claims.median_ratio("a", "b")({"a": np.array([[np.inf] * 3]), "b": v["b"]})[0] == np.inf
