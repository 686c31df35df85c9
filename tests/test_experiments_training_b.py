"""Training experiments T3, T7, T8: quick end-to-end runs, and the helpers their verdicts rely on."""

import json
import math

import numpy as np
import pytest

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


# T3: GELU vs ReLU vs ELU


def test_eval_index_is_first_evaluation_at_or_after_step():
    steps = np.array([0, 56, 112, 504, 560])
    assert t3.eval_index(steps, 500) == 3
    assert t3.eval_index(steps, 504) == 3
    assert t3.eval_index(steps, 0) == 0
    assert t3.eval_index(steps, 10_000) == 4  # beyond the run: the last evaluation


def test_gelu_vs_best_rival_and_ordering():
    ratio, best = t3.gelu_vs_best({"gelu": 0.3, "relu": 0.9, "elu": 0.6})
    assert best == "elu" and ratio == pytest.approx(0.5)
    ratio, best = t3.gelu_vs_best({"gelu": 0.03, "relu": 0.06, "elu": 0.01})
    assert best == "elu" and ratio == pytest.approx(3.0)
    assert t3.ordering({"gelu": 0.3, "relu": 0.9, "elu": 0.6}) == "gelu < elu < relu"


# T7: optimizers


def test_best_rate_uses_median_over_seeds_and_treats_divergence_as_worst():
    rates = (1e-3, 1e-2, 1e-1)
    losses = np.array([[0.5, 0.2, np.nan],
                       [0.4, 0.9, 0.01],
                       [0.6, 0.3, np.inf]])  # medians 0.5, 0.3, inf
    assert t7.best_rate(losses, rates) == (1, 1e-2)
    assert t7.best_rate(np.full((2, 3), np.nan), rates)[0] == 0  # all diverged: first rate, no error
    assert t7.best_rate(np.array([[0.2, 0.2, 0.3]]), rates) == (0, 1e-3)  # ties go to the first


def test_learning_rate_grids_are_five_log_spaced_values_for_every_optimizer():
    from dlfound import optim

    assert set(t7.LEARNING_RATES) == {"sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adam"}
    assert set(t7.LEARNING_RATES) <= set(optim.OPTIMIZERS)
    for rates in t7.LEARNING_RATES.values():
        assert len(rates) == 5
        steps = np.diff(np.log10(rates))
        assert np.all(steps > 0) and np.ptp(steps) < 0.06  # increasing by factors of 3 or 10/3
        assert math.isclose(np.log10(rates[-1] / rates[0]), 2.0, abs_tol=0.01)


# T8: dropout


def test_paired_gain_subtracts_the_no_dropout_column_per_seed():
    rates = (0.0, 0.2, 0.5)
    acc = np.array([[0.60, 0.70, 0.75],
                    [0.62, 0.69, 0.66]])
    np.testing.assert_allclose(t8.paired_gain(acc, rates, 0.5), [0.15, 0.04])
    np.testing.assert_allclose(t8.paired_gain(acc, rates, 0.0), [0.0, 0.0])
