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


T9_EFFECTS = [[f"mean final train accuracy, p={p:g}" for p in (0, 0.25, 0.5, 0.75, 1)],
              ["|mean test accuracy - chance|, p=1", "mean test accuracy - chance, p=0",
               "largest rise of mean test accuracy from one p to the next"],
              ["median steps to fit, p=1 / p=0"] * 2
              + ["largest fall of median steps to fit from one p to the next"]]
T10_EFFECTS = [["|log2(h*/h_int)|, p=0.15", "peak test error minus err(h=17), p=0.15",
                "peak test error minus err(h=42), p=0.15"],
               ["peak excess E, p=0", "E(p=0.15) - E(p=0)"]]
T11_EFFECTS = [[f"{name}, {model}" for model in ("logistic regression", "MLP 1x128")
                for name in ("Spearman(size, mean test accuracy)", "mean test accuracy rise 100 -> 400")],
               ["largest fall of MLP 1x128 minus logistic",
                "growth of MLP 1x128 minus logistic, 100 -> 400"]]


@pytest.mark.parametrize("module, claim_id, effects, pictures", [
    (t9, "T9", T9_EFFECTS, ("train_accuracy_curves.png", "test_accuracy_vs_corruption.png",
                            "steps_to_fit_vs_corruption.png")),
    (t10, "T10", T10_EFFECTS, ("double_descent.png",)),
    (t11, "T11", T11_EFFECTS, ("test_accuracy_vs_train_size.png", "advantage_over_logistic.png")),
], ids=["T9", "T10", "T11"])
def test_quick_run_writes_summary_claims_and_plots(tmp_path, module, claim_id, effects, pictures):
    assert module.EXPERIMENT.main(["--quick", "--seeds", "2", "--out", str(tmp_path), "--quiet"]) == 0
    summary = _summary(tmp_path)
    assert summary["quick"] is True and summary["seeds"] == [0, 1]
    assert [c["id"] for c in summary["claims"]] == [claim_id] * len(effects)
    assert all(c["verdict"] == "inconclusive" for c in summary["claims"])
    assert [[e["name"] for e in c["effects"]] for c in summary["claims"]] == effects
    effects_run = [e for c in summary["claims"] for e in c["effects"]]
    assert all(e["seeds"] == 2 and e["verdict"] == "inconclusive" for e in effects_run)
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
    fits = {0.0: np.array([300.0, 310] * 4), 0.5: np.array([400.0, 372] * 4), 1.0: np.array([434.0, 434] * 4)}
    assert t9._judge_time(fits, 31, quick=False)["verdict"] == "reproduced"
    slower = {**fits, 1.0: np.array([3000.0, 3100] * 4)}  # ratio > 5: not a small factor
    assert t9._judge_time(slower, 31, quick=False)["verdict"] == "not reproduced"
    never = {**fits, 1.0: np.full(8, np.inf)}
    assert t9._judge_time(never, 31, quick=False)["verdict"] == "not reproduced"
    few = {p: v[:3] for p, v in fits.items()}  # fewer than 8 seeds decide nothing
    assert t9._judge_time(few, 31, quick=False)["verdict"] == "inconclusive"


def test_largest_step_and_median_ratio():
    values = np.array([[0.6, 0.5, 0.52, 0.3], [0.6, 0.7, 0.5, 0.4]])
    np.testing.assert_allclose(t9.largest_step(values), [0.02, 0.1])  # largest rise per row
    np.testing.assert_allclose(t9.largest_step(values, sign=-1.0), [0.22, 0.2])  # largest fall
    assert t9.largest_step([300.0, np.inf, np.inf], sign=-1.0) == np.inf  # two levels never fit: fails


def test_fit_and_chance_verdicts_follow_the_numbers():
    seeds = 8
    fitted = {p: np.ones(seeds) for p in t9.CORRUPTION}
    steps = {p: np.full(seeds, 300.0 + 100 * p) for p in t9.CORRUPTION}
    assert t9._judge_fit(fitted, steps, 930, quick=False)["verdict"] == "reproduced"
    short = {**fitted, 0.5: np.full(seeds, 0.95)}
    assert t9._judge_fit(short, steps, 930, quick=False)["verdict"] == "not reproduced"
    test = {p: np.full(seeds, 0.65 - 0.55 * p) + np.linspace(-0.01, 0.01, seeds) for p in t9.CORRUPTION}
    assert t9._judge_chance(test, 0.1, quick=False)["verdict"] == "reproduced"
    bump = {**test, 0.75: test[0.5] + 0.05}  # the mean rises from p=0.5 to 0.75
    assert t9._judge_chance(bump, 0.1, quick=False)["verdict"] == "not reproduced"


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
    # peak within a factor 2 of h_int = 48 (widths 32..64) is 0.57; references h=16 (0.49) and h=256 (0.47)
    assert t10.peak_excess(widths, test, train, 42.3, 16, 256) == pytest.approx(0.08)
    # no width interpolates: h_int falls back to h_n; no width within a factor 2 of 2000
    assert math.isnan(t10.peak_excess(widths, test, (0.5,) * 6, 2000, 16, 256))


def test_peak_statistics_are_vectorized_over_resamples():
    widths = (8, 16, 32, 48, 64, 256)
    train = np.array([[0.5, 0.4, 0.1, 0.015, 0.0, 0.0], [0.5, 0.4, 0.01, 0.0, 0.0, 0.0], [0.5] * 6])
    test = np.array([[0.52, 0.49, 0.55, 0.57, 0.56, 0.47]] * 3)
    np.testing.assert_array_equal(t10.interpolating_index(train), [3, 2, -1])
    distance = t10.peak_distance(widths, test, train)  # h* = 48; h_int = 48, 32, none
    np.testing.assert_allclose(distance[:2], [0.0, np.log2(48 / 32)])
    assert np.isnan(distance[2])
    excess = t10.peak_excess(widths, test, train, 42.3, 16, 256)
    np.testing.assert_allclose(excess, [0.08, 0.08, 0.08])  # the third falls back to h_n = 42.3


def test_double_descent_verdict_follows_the_numbers():
    widths = (8, 16, 32, 48, 64, 256)
    seeds = 8
    train = np.array([[0.5, 0.4, 0.1, 0.015, 0.0, 0.0]] * seeds)
    test = np.array([[0.52, 0.49, 0.55, 0.57, 0.56, 0.47]] * seeds)
    verdict, h_int = t10._judge_peak(widths, {0.15: (test, train)}, 0.15, 16, 256, 42.3, quick=False)
    assert h_int == 48 and verdict["verdict"] == "reproduced"
    flat = np.array([[0.52, 0.50, 0.51, 0.52, 0.50, 0.49]] * seeds)  # peak only 2 points above h=16
    judged = t10._judge_peak(widths, {0.15: (flat, train)}, 0.15, 16, 256, 42.3, quick=False)[0]
    assert judged["verdict"] == "not reproduced"
    unfit = np.full((seeds, 6), 0.3)
    judged = t10._judge_peak(widths, {0.15: (test, unfit)}, 0.15, 16, 256, 42.3, quick=False)[0]
    assert judged["verdict"] == "inconclusive"
    clean = np.array([[0.50, 0.45, 0.44, 0.43, 0.42, 0.40]] * seeds)
    control = t10._judge_control(widths, {0.15: (test, train), 0.0: (clean, train)}, 0.15, 16, 256, 42.3,
                                 quick=False)
    assert control["verdict"] == "reproduced"  # E(0) = 0.44 - 0.45 = -1 point, E(0.15) - E(0) = +9 points
    assert control["numbers"]["excess_clean"] == pytest.approx(-0.01)
    assert control["effects"][1]["estimate"] == pytest.approx(0.09)


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
    assert math.isnan(t11.spearman([1, 2, 3], [4, np.nan, 5]))


def test_spearman_is_vectorized_over_rows():
    x = [1, 2, 3, 4, 5]
    rows = np.array([[2, 4, 3, 8, 9], [5, 4, 3, 2, 1], [1, 1, 2, 2, 3], [7, 7, 7, 7, 7]], dtype=float)
    rho = t11.spearman(x, rows)
    for r, y in zip(rho[:3], rows[:3]):
        assert r == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert math.isnan(rho[3])


def test_monotone_within_tolerance():
    assert t11.monotone_within([0.01, 0.0, 0.004, 0.08, 0.2], 0.02)
    assert not t11.monotone_within([0.01, 0.0, 0.004, 0.08, 0.05], 0.02)  # falls 3 points below 0.08
    assert not t11.monotone_within([0.0, np.nan, 0.1], 0.02)


def test_largest_fall_is_the_deepest_dip_below_an_earlier_value():
    values = np.array([[0.01, 0.0, 0.004, 0.08, 0.05], [0.1, 0.2, 0.3, 0.4, 0.5], [0.3, 0.1, 0.25, 0.0, 0.2]])
    np.testing.assert_allclose(t11.largest_fall(values), [0.03, 0.0, 0.3])
    assert np.isnan(t11.largest_fall([0.0, np.nan, 0.1]))


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
