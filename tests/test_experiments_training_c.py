"""T9-T11 (memorization, double descent, data scaling): quick end-to-end runs and their helpers."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from dlfound import plots
from dlfound.models import count_params
from dlfound.results import RunDir
from dlfound.sweep import Table
from experiments import belkin2019_double_descent as t10
from experiments import data_scaling as t11
from experiments import zhang2017_memorization as t9


def _summary(path):
    return json.loads((path / "summary.json").read_text())


@pytest.mark.parametrize("module, claim_id, count, pictures", [
    (t9, "T9", 3, ("train_accuracy_curves.png", "test_accuracy_vs_corruption.png",
                   "steps_to_fit_vs_corruption.png")),
    (t10, "T10", 2, ("double_descent.png",)),
    (t11, "T11", 2, ("test_accuracy_vs_train_size.png", "advantage_over_logistic.png")),
], ids=["T9", "T10", "T11"])
def test_quick_run_writes_summary_claims_and_plots(tmp_path, module, claim_id, count, pictures):
    assert module.EXPERIMENT.main(["--quick", "--seeds", "2", "--out", str(tmp_path), "--quiet"]) == 0
    summary = _summary(tmp_path)
    assert summary["quick"] is True and summary["seeds"] == [0, 1]
    assert [c["id"] for c in summary["claims"]] == [claim_id] * count
    assert all(c["verdict"] == "inconclusive" for c in summary["claims"])
    for name in (*pictures, "REPORT.md", "results.jsonl"):
        assert (tmp_path / name).is_file(), name
    if module is t9:
        _check_memorization_rows(tmp_path)


def _check_memorization_rows(tmp_path):
    """Every corruption level and seed trained in one cell (one compile)."""
    rows = RunDir(tmp_path).load_rows()
    assert {r["cell"] for r in rows} == {"width=32"}
    assert sorted({r["label_noise"] for r in rows}) == list(t9.CORRUPTION)
    assert {r["seed"] for r in rows} == {0, 1}
    metrics = _summary(tmp_path)["metrics"]
    assert metrics["chance"] == pytest.approx(0.1)
    assert set(metrics["test_accuracy"]) == {str(p) for p in t9.CORRUPTION}


def _fit_table(curves: dict, steps=(0, 10, 20, 30)) -> Table:
    rows = []
    for p, per_seed in curves.items():
        for s, curve in enumerate(per_seed):
            for t, (step, acc) in enumerate(zip(steps, curve)):
                rows.append({"cell": "c", "model": 10 * s + int(10 * p), "eval": t, "step": step,
                             "label_noise": p, "train_accuracy": acc})
    return Table(rows)


def test_steps_to_fit_per_seed_and_never_fitted_is_inf():
    table = _fit_table({0.0: [(0.1, 0.995, 1, 1), (0.1, 0.5, 0.99, 1)], 1.0: [(0.1, 0.2, 0.3, 0.98)] * 2})
    np.testing.assert_array_equal(t9.steps_to_fit(table, 0.0), [10, 20])
    assert np.all(np.isinf(t9.steps_to_fit(table, 1.0)))
    np.testing.assert_array_equal(t9.finite_or_nan([1.0, np.inf]), [1.0, np.nan])


def test_time_to_fit_verdict_follows_the_numbers():
    fits = {0.0: np.array([300.0, 310]), 0.5: np.array([400.0, 372]), 1.0: np.array([434.0, 434])}
    assert t9._judge_time(fits, 31, quick=False)["verdict"] == "reproduced"
    slower = {**fits, 1.0: np.array([3000.0, 3100])}  # ratio > 5: not a small factor
    assert t9._judge_time(slower, 31, quick=False)["verdict"] == "not reproduced"
    never = {**fits, 1.0: np.array([np.inf, 434])}
    assert t9._judge_time(never, 31, quick=False)["verdict"] == "not reproduced"


@pytest.mark.parametrize("input_dim, depth, classes, n", [(40, 2, 10, 4000), (784, 2, 10, 4000),
                                                          (40, 1, 10, 4000), (784, 2, 10, 60000)])
def test_interpolation_width_is_where_parameters_reach_the_examples(input_dim, depth, classes, n):
    h = t10.interpolation_width(n, input_dim, depth, classes)
    below, above = math.floor(h), math.ceil(h)
    assert count_params(input_dim, (below,) * depth, classes) <= n
    assert n <= count_params(input_dim, (above,) * depth, classes)
    assert t10.params_of_width(h, input_dim, depth, classes) == pytest.approx(n, rel=1e-9)
    for w in (1, 7, 64):
        assert t10.params_of_width(w, input_dim, depth, classes) == count_params(
            input_dim, (w,) * depth, classes)


def test_width_grid_brackets_the_threshold_on_mnist1d():
    h_n = t10.interpolation_width(4000, 40, 2, 10)
    assert h_n == pytest.approx(42.31, abs=0.01)  # h^2 + 52 h + 10 = 4000
    widths = t10.width_grid(h_n, t10.MULTIPLIERS)
    assert widths == (8, 17, 25, 32, 38, 47, 63, 95, 127, 254)
    assert min(widths) < h_n / 4 and max(widths) > 5 * h_n
    assert t10.width_grid(0.5, (0.2, 1.0, 1.2)) == (1,)


def test_first_interpolating_and_peak_excess():
    widths = (8, 16, 32, 48, 64, 256)
    train = (0.5, 0.4, 0.1, 0.015, 0.0, 0.0)
    assert t10.first_interpolating(widths, train) == 48
    assert t10.first_interpolating(widths, (0.5,) * 6) is None
    test = (0.52, 0.49, 0.55, 0.57, 0.56, 0.47)
    # peak within a factor 2 of 48 (widths 32..64) is 0.57; references h=16 (0.49) and h=256 (0.47)
    assert t10.peak_excess(widths, test, 48, 16, 256) == pytest.approx(0.08)
    assert math.isnan(t10.peak_excess(widths, test, 2000, 16, 256))  # no width near h_int


def test_double_descent_verdict_follows_the_numbers():
    widths = (8, 16, 32, 48, 64, 256)
    train = np.array([[0.5, 0.4, 0.1, 0.015, 0.0, 0.0]] * 3)
    test = np.array([[0.52, 0.49, 0.55, 0.57, 0.56, 0.47]] * 3)
    verdict, h_int = t10._judge_peak(widths, test, train, 16, 256, 42.3, quick=False)
    assert h_int == 48 and verdict["verdict"] == "reproduced"
    flat = np.array([[0.52, 0.50, 0.51, 0.52, 0.50, 0.49]] * 3)  # peak only 2 points above h=16
    assert t10._judge_peak(widths, flat, train, 16, 256, 42.3, quick=False)[0]["verdict"] == "not reproduced"
    unfit = np.full((3, 6), 0.3)
    assert t10._judge_peak(widths, test, unfit, 16, 256, 42.3, quick=False)[0]["verdict"] == "inconclusive"


@pytest.mark.parametrize("x, y", [
    ([1, 2, 3, 4, 5], [2, 4, 3, 8, 9]),
    ([1, 2, 3, 4, 5, 6], [1, 1, 2, 2, 3, 1]),
    ([0.1, 0.3, 0.2, 0.9], [5, 5, 5, 6]),
    ([1, 2, 3], [3, 2, 1]),
])
def test_spearman_matches_scipy_with_ties(x, y):
    assert t11.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_rank_averages_ties_and_constant_input_gives_nan():
    np.testing.assert_array_equal(t11.rank([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    assert math.isnan(t11.spearman([1, 2, 3], [4, 4, 4]))


def test_monotone_within_tolerance():
    assert t11.monotone_within([0.01, 0.0, 0.004, 0.08, 0.2], 0.02)
    assert not t11.monotone_within([0.01, 0.0, 0.004, 0.08, 0.05], 0.02)  # falls 3 points below 0.08
    assert not t11.monotone_within([0.0, np.nan, 0.1], 0.02)


def test_usable_fractions_start_at_one_batch():
    assert t11.usable_fractions((0.01, 0.1, 1.0), 4000, 32) == (0.01, 0.1, 1.0)  # 40 examples >= 32
    assert t11.usable_fractions((0.01, 0.1, 1.0), 4000, 64) == (0.016, 0.1, 1.0)  # 40 < 64: 64 examples
    assert t11.usable_fractions((0.001, 0.002, 1.0), 60000, 128) == (128 / 60000, 1.0)


@pytest.mark.parametrize("fraction, n, batch, steps", [(0.01, 4000, 32, 4000), (0.05, 4000, 32, 4000),
                                                       (1.0, 4000, 32, 4000), (0.2, 60000, 128, 936)])
def test_epochs_for_give_the_fixed_step_budget(fraction, n, batch, steps):
    epochs = t11.epochs_for(fraction, n, batch, steps)
    per_epoch = math.ceil(fraction * n) // batch
    assert epochs * per_epoch >= steps > (epochs - 1) * per_epoch


def test_lines_draws_vertical_markers(tmp_path):
    series = {"a": np.array([[1.0, 2, 3], [1.5, 2, 2.5]])}
    path = plots.lines(tmp_path / "v.png", np.array([1, 2, 4]), series, "x", "y", "t", logx=True,
                       vlines={"threshold": 3.0, "other": 1.5})
    assert path.is_file() and path.stat().st_size > 1000
