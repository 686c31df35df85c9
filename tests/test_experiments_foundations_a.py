"""Foundations experiments F1-F4: quick end-to-end runs, and the helpers each one relies on."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlfound import backprop as bp
from dlfound import perceptron as pc
from dlfound import plots
from experiments import mcculloch1943_threshold_logic as f2
from experiments import rosenblatt1958_perceptron as f1
from experiments import rumelhart1986_xor_backprop as f3
from experiments import scratch_backprop as f4

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_Y = np.array([0, 1, 1, 0], np.int32)


def _claims(out_dir):
    found = json.loads((out_dir / "summary.json").read_text())["claims"]
    return list(found.values() if isinstance(found, dict) else found)


BOUND = "largest mean updates / (R/gamma)^2 over "
# Per claim record, in order, the names of its effects under --quick; None: exact, no "effects" at all.
QUICK_EFFECTS = {
    "F1": [[BOUND + "and, or, not, blobs"], [BOUND + "gamma 0.2, 0.05"],
           ["median updates, gamma 0.05 / gamma 0.2"], None],
    "F2": [None, None, None],
    "F3": [["fraction of seeds solved, H=2", "median epochs to solve, H=2 (low end)",
            "median epochs to solve, H=2 (high end)"],
           ["fraction of seeds solved, 1 hidden unit + direct links"],
           ["median epochs, H=4 / H=2", "median epochs, H=4 / H=2 (overall)"],
           ["largest fraction unsolved over H", "fraction unsolved, H=2 - H=4"],
           ["largest |log2(median epochs / (280 - 33 log2 H))| over H"]],
    "F4": [["mean over seeds of float64 max |loss difference|"],
           ["mean over seeds of float32 first-epoch max |loss difference|",
            "mean over seeds of float32 |test accuracy difference|"], None, None],
}


@pytest.mark.parametrize("module, claim_id", [(f1, "F1"), (f2, "F2"), (f3, "F3"), (f4, "F4")],
                         ids=["F1", "F2", "F3", "F4"])
def test_quick_run_writes_summary_with_claim_ids_and_effects(tmp_path, module, claim_id):
    assert module.EXPERIMENT.main(["--quick", "--seeds", "2", "--out", str(tmp_path), "--quiet"]) == 0
    records = _claims(tmp_path)
    assert {c["id"] for c in records} == {claim_id}
    names = [[e["name"] for e in c["effects"]] if "effects" in c else None for c in records]
    assert names == QUICK_EFFECTS[claim_id]
    for effect in (e for c in records for e in c.get("effects", [])):
        assert effect["seeds"] == 2 and effect["verdict"] == "inconclusive"  # < 8 seeds decide nothing
    assert list(tmp_path.glob("*.png"))


def test_default_seed_counts_can_decide():
    assert f1.EXPERIMENT.default_seeds >= 16 and f3.EXPERIMENT.default_seeds >= 16
    assert f4.EXPERIMENT.default_seeds >= 16


# F2: threshold logic


@pytest.mark.parametrize("n", [2, 3, 5])
def test_parity_network_is_exact_with_n_hidden_units(n):
    check = f2.check_gate(pc.parity_network(n), "parity", n)
    assert check["correct"] == check["rows"] == 2**n
    assert f2.hidden_units(pc.parity_network(n)) == n
    np.testing.assert_array_equal(f2.parity_as_step_mlp(n), check["want"])


def test_reference_functions_and_a_wrong_gate_is_caught():
    x = np.asarray(pc.truth_table(2))
    np.testing.assert_array_equal(f2.reference("and", x), [0, 0, 0, 1])
    np.testing.assert_array_equal(f2.reference("or", x), [0, 1, 1, 1])
    np.testing.assert_array_equal(f2.reference("xor", x), [0, 1, 1, 0])
    np.testing.assert_array_equal(f2.reference("not", np.array([[0], [1]])), [1, 0])
    assert f2.check_gate(pc.or_gate(2), "and", 2)["correct"] == 2  # OR differs from AND on 01 and 10
    with pytest.raises(ValueError, match="valid choices"):
        f2.reference("nand", x)


# F1: perceptron


@pytest.mark.parametrize("gamma", [0.05, 0.2])
def test_planted_margin_data_has_the_margin_and_labels(gamma):
    x, y, u = f1.planted_margin_data(300, gamma, seed=3)
    assert x.shape == (300, 2) and y.shape == (300,)
    s = np.c_[x, np.ones(len(x))] @ u
    assert np.isclose(np.linalg.norm(u), 1.0)
    assert np.all(np.abs(s) >= gamma - 1e-6)
    np.testing.assert_array_equal(y, (s > 0).astype(int))
    assert float(pc.margin(x, y, u)) >= gamma - 1e-5


def test_no_line_classifies_more_than_three_xor_points_but_one_fits_and():
    assert f1.best_random_linear_accuracy(XOR_X, XOR_Y, 20_000) == 0.75
    and_y = np.array([0, 0, 0, 1])
    assert f1.best_random_linear_accuracy(XOR_X, and_y, 20_000) == 1.0


def test_fixed_order_perceptron_cycles_on_xor_and_settles_on_and():
    epoch, period, mistakes = f1.fixed_order_cycle(XOR_X, XOR_Y, 50)
    assert epoch is not None and 1 <= period <= epoch and mistakes > 0
    epoch, period, mistakes = f1.fixed_order_cycle(XOR_X, np.array([0, 0, 0, 1]), 50)
    assert epoch is not None and period == 1 and mistakes == 0


def test_bound_fraction():
    np.testing.assert_array_equal(f1.bound_fraction([2, 5, 3], [10, 10, 4], [True, False, True]),
                                  [0.2, np.inf, 0.75])


def test_perceptron_runs_respect_the_bound_on_planted_data():
    x, y, _ = f1.planted_margin_data(200, 0.1, seed=0)
    result = f1._train_runs(jax.random.split(jax.random.key(0), 3), jnp.asarray(x), jnp.asarray(y), 50)
    assert np.all(np.asarray(result.converged))
    assert np.all(np.asarray(result.num_updates) <= float(pc.novikoff_bound(x, y)))


# F3: XOR backprop


def test_epochs_to_solve_and_stuck_runs():
    max_error = np.array([[0.9, 0.6, 0.4, 0.3], [0.9, 0.8, 0.7, 0.7], [0.45, 0.3, 0.2, 0.1]])
    np.testing.assert_array_equal(f3.epochs_to_solve(max_error, 0.5), [2, np.inf, 0])
    np.testing.assert_array_equal(f3.epochs_to_solve(max_error, 0.2), [np.inf, np.inf, 3])
    loss = np.array([[1.0, 0.5, 0.2, 0.1], [0.3, 0.25, 0.25, 0.25], [0.5, 0.4, 0.3, 0.2]])
    solved = np.array([True, False, False])
    np.testing.assert_array_equal(f3.stuck(loss, solved, window=2), [False, True, False])


def test_chauvin_formula():
    assert f3.chauvin(2) == pytest.approx(247.0)
    assert f3.chauvin(32) == pytest.approx(115.0)


def test_largest_log2_distance_is_the_worst_factor_from_the_target():
    statistic = f3.largest_log2_distance({"a": 100.0, "b": 50.0})
    values = {"a": np.array([[400.0, 400.0, 1.0], [100.0, 100.0, 100.0]]),
              "b": np.array([[25.0, 25.0, 25.0], [50.0, np.inf, np.inf]])}
    # row 0: |log2(400/100)| = 2, |log2(25/50)| = 1; row 1: 0 and a median of inf (never solved)
    np.testing.assert_array_equal(statistic(values), [2.0, np.inf])


@pytest.mark.parametrize("hidden, direct", [(2, False), (1, True)])
def test_first_update_is_gradient_descent_on_the_summed_error(hidden, direct):
    keys = jax.random.split(jax.random.key(1), 2)
    x, t = jnp.asarray(XOR_X), jnp.asarray(XOR_Y, jnp.float32)
    out = f3.train_xor(keys, x, t, 0.5, 0.9, hidden=hidden, direct=direct, num_epochs=1)
    assert out["loss"].shape == (2, 2)
    params = f3.init_net(keys[0], hidden, direct)
    assert ("D" in params) == direct and params["W1"].shape == (2, hidden)
    assert np.all(np.abs(np.concatenate([np.ravel(v) for v in params.values()])) <= f3.INIT_RANGE)
    grads = jax.grad(lambda p: f3.summed_error(p, x, t)[0])(params)
    stepped = jax.tree.map(lambda p, g: p - 0.5 * g, params, grads)
    np.testing.assert_allclose(out["loss"][0, 0], f3.summed_error(params, x, t)[0], rtol=1e-6)
    np.testing.assert_allclose(out["loss"][0, 1], f3.summed_error(stepped, x, t)[0], rtol=1e-5)


# F4: from-scratch backprop


def test_rel_err_and_tensor_names():
    assert f4.rel_err([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert f4.rel_err([0.0, 0.0], [3.0, 4.0]) == pytest.approx(1.0)
    assert f4.rel_err([1.0], [0.0]) == pytest.approx(1.0)
    assert f4.tensor_names(2) == ["W1", "b1", "W2", "b2"]


def test_gradient_checks_are_tiny_for_backprop_and_catch_a_wrong_gradient():
    with jax.enable_x64(True):
        k_x, k_y, k_p = jax.random.split(jax.random.key(0), 3)
        x = jax.random.normal(k_x, (16, 5), jnp.float64)
        y = jax.random.randint(k_y, (16,), 0, 3)
        params = bp.init_params(k_p, [5, 7, 3], "glorot", dtype=jnp.float64)
        assert max(f4.autodiff_errors(params, x, y, "tanh", "cross_entropy")) < 1e-12
        assert max(f4.finite_difference_errors(params, x, y, "tanh", "cross_entropy", 8)) < 1e-6
        # Checking a sigmoid net's gradient against the tanh loss must fail the check.
        wrong, _ = f4._gradients(params, x, y, "sigmoid", "cross_entropy")
        _, right = f4._gradients(params, x, y, "tanh", "cross_entropy")
        assert f4.rel_err(wrong[0][0], right[0][0]) > 1e-2


def test_mean_below_is_an_effect_of_the_mean():
    effect = f4.mean_below("gap", np.array([0.0, 0.01, 0.02, 0.03, 0.0, 0.01, 0.02, 0.03]), 0.05)
    assert effect["estimate"] == pytest.approx(0.015) and not effect["higher_passes"]
    assert effect["low"] <= 0.015 <= effect["high"] < 0.05 and effect["verdict"] == "reproduced"


def test_decision_regions_writes_a_png(tmp_path):
    path = plots.decision_regions(tmp_path / "regions.png",
                                  [("and", XOR_X, [0, 0, 0, 1], lambda p: p.sum(1) - 1.5),
                                   ("constant", XOR_X, XOR_Y, lambda p: -np.ones(len(p)))], "test")
    assert path.exists() and path.stat().st_size > 1000
