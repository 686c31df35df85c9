"""Training experiments T3, T7, T8: quick end-to-end runs, and the helpers their verdicts rely on."""

import json
import math

import numpy as np
import pytest

from dlfound import claims
from experiments import hendrycks2016_gelu as t3
from experiments import kingma2015_optimizers as t7
from experiments import srivastava2014_dropout as t8


@pytest.mark.parametrize("module, claim_id", [(t3, "T3"), (t7, "T7"), (t8, "T8")], ids=["T3", "T7", "T8"])
def test_quick_run_writes_summary_with_claim_ids(tmp_path, module, claim_id):
    assert module.EXPERIMENT.main(["--quick", "--seeds", "2", "--out", str(tmp_path), "--quiet"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["quick"] is True and summary["seeds"] == [0, 1]
    assert len(summary["claims"]) == 2
    assert {c["id"] for c in summary["claims"]} == {claim_id}
    assert {c["verdict"] for c in summary["claims"]} == {"inconclusive"}
    assert summary["metrics"]["diverged_models"] == 0
    assert list(tmp_path.glob("*.png"))
    assert [[e["name"] for e in c["effects"]] for c in summary["claims"]] == QUICK_EFFECTS[claim_id]
    for claim in summary["claims"]:
        for e in claim["effects"]:
            assert e["seeds"] == 2 and e["verdict"] == "inconclusive"  # fewer than 8 seeds decide nothing


QUICK_EFFECTS = {  # --quick runs gelu and relu (T3), sgd and adam (T7), dropout 0 and 0.5 (T8)
    "T3": [["GELU / min(relu) median training loss, without dropout, early training, step 28"],
           ["GELU / min(relu) median training loss, with dropout 0.2, end of training, step 56"]],
    "T7": [["Adam / best other median final training loss"],
           ["adam steps to plain SGD's median final loss / run length (median)",
            "adam / plain SGD median final training loss"]],
    "T8": [["test accuracy gain, dropout 0.5 - none (mean over seeds)"],
           ["train - test accuracy gap shrinkage, none - dropout 0.5 (mean over seeds)"]],
}


def test_tuned_experiments_record_the_rate_picked_in_every_cell(tmp_path):
    assert t3.EXPERIMENT.main(["--quick", "--seeds", "2", "--out", str(tmp_path / "t3"), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "t3" / "summary.json").read_text())["metrics"]
    rates = t3.LEARNING_RATES[1:4]  # --quick's grid
    cells = {f"{k}/{a}" for k in ("early", "final") for a in ("gelu", "relu")}
    assert set(metrics["tuned_learning_rate"]) == cells
    assert all(r in rates for r in metrics["tuned_learning_rate"].values())


# T3: GELU vs ReLU vs ELU


def test_a_diverged_loss_counts_as_infinite():
    np.testing.assert_array_equal(claims.diverged_as_inf([0.5, np.nan]), [0.5, np.inf])
    np.testing.assert_array_equal(claims.diverged_as_inf([np.nan, 0.1]), [np.inf, 0.1])


def test_t3_learning_rates_are_six_log_spaced_values_and_settings_split_the_runs():
    from dlfound.config import Config

    assert len(t3.LEARNING_RATES) == 6
    assert np.ptp(np.diff(np.log10(t3.LEARNING_RATES))) < 0.01
    s = t3.settings_of(Config(num_epochs=36, eval_every_epochs=6), (0.0, 0.2), 18, 6, t3.LEARNING_RATES)
    assert (s["early"]["num_epochs"], s["early"]["dropout_rate"]) == (18, 0.0)
    assert (s["final"]["num_epochs"], s["final"]["dropout_rate"]) == (36, 0.2)
    with pytest.raises(Exception, match="must exceed"):
        t3.settings_of(Config(num_epochs=18, eval_every_epochs=6), (0.0, 0.2), 18, 6, t3.LEARNING_RATES)


def test_gelu_vs_best_rival_and_ordering():
    ratio, best = t3.gelu_vs_best({"gelu": 0.3, "relu": 0.9, "elu": 0.6})
    assert best == "elu" and ratio == pytest.approx(0.5)
    ratio, best = t3.gelu_vs_best({"gelu": 0.03, "relu": 0.06, "elu": 0.01})
    assert best == "elu" and ratio == pytest.approx(3.0)
    assert t3.ordering({"gelu": 0.3, "relu": 0.9, "elu": 0.6}) == "gelu < elu < relu"


# T7: optimizers


def test_reach_fraction_statistic_moves_the_target_with_the_resampled_sgd_seeds():
    steps = np.array([0.0, 100.0, 200.0, 400.0])
    curves = np.array([[2.0, 1.0, 0.5, 0.4],    # reaches 0.6 at step 200, 0.45 at 400
                       [2.0, 0.5, 0.45, 0.3],   # reaches 0.6 at step 100, 0.45 at 200
                       [2.0, 2.0, 2.0, 2.0]])   # never
    samples = {**t7.curve_samples("adam", curves), "sgd": np.array([0.6, 0.45, 0.7])}
    assert set(samples) == {"adam@0", "adam@1", "adam@2", "adam@3", "sgd"}
    stat = t7.reach_fraction_statistic("adam", "sgd", steps, 400.0)
    # as measured: target median(0.6, 0.45, 0.7) = 0.6; steps 200, 100, inf; median 200 of 400 steps
    np.testing.assert_allclose(stat({k: v[None, :] for k, v in samples.items()}), [0.5])
    # a resample of seeds (1, 1, 0): target median(0.45, 0.45, 0.6) = 0.45; steps 200, 200, 400 -> 200
    index = np.array([[1, 1, 0]])
    np.testing.assert_allclose(stat({k: v[index] for k, v in samples.items()}), [0.5])
    # seeds (2, 2, 1): target 0.7, steps inf, inf, 100 -> median inf
    index = np.array([[2, 2, 1]])
    assert np.isinf(stat({k: v[index] for k, v in samples.items()})[0])


def test_learning_rate_grids_are_five_log_spaced_values_for_every_optimizer():
    from dlfound import optim

    assert set(t7.LEARNING_RATES) == {"sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam"}
    assert set(t7.LEARNING_RATES) <= set(optim.OPTIMIZERS)
    for rates in t7.LEARNING_RATES.values():
        assert len(rates) == 5
        steps = np.diff(np.log10(rates))
        assert np.all(steps > 0) and np.ptp(steps) < 0.01  # increasing by factors of 10**0.5
        assert math.isclose(np.log10(rates[-1] / rates[0]), 2.0, abs_tol=0.01)


# T8: dropout


def test_paired_gain_subtracts_the_no_dropout_column_per_seed():
    rates = (0.0, 0.2, 0.5)
    acc = np.array([[0.60, 0.70, 0.75],
                    [0.62, 0.69, 0.66]])
    np.testing.assert_allclose(t8.paired_gain(acc, rates, 0.5), [0.15, 0.04])
    np.testing.assert_allclose(t8.paired_gain(acc, rates, 0.0), [0.0, 0.0])


def test_gain_effect_is_the_mean_paired_difference_of_the_rate_columns():
    from dlfound import claims

    acc = np.array([[0.60, 0.75], [0.62, 0.66], [0.58, 0.70]])
    samples = t8._columns(acc, (0.0, 0.5))
    assert set(samples) == {"0", "0.5"}
    e = claims.effect("gain", claims.mean_difference("0.5", "0"), samples, t8.MARGIN)
    assert e["estimate"] == pytest.approx((0.15 + 0.04 + 0.12) / 3)
