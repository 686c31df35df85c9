"""Quick runs of the F5, F6, F7 and T13 experiments, and their pure helpers against known answers."""

import jax
import numpy as np
import pytest

from dlfound import claims
from dlfound.config import Config
from dlfound.data import load
from dlfound.data.functions import tent_power
from dlfound.files import read_json
from experiments import cybenko1989_universal_approximation as cybenko
from experiments import greydanus2020_mnist1d as greydanus
from experiments import saxe2014_linear_collapse as saxe
from experiments import telgarsky2016_depth_efficiency as telgarsky


QUICK_EFFECTS = {  # the effect names each quick run judges (--quick grids: see each EXPERIMENT.quick)
    saxe: {"|mean(identity - logistic)| test accuracy, depth 2",
           "mean(relu - logistic) test accuracy, depth 2", "median t(1.5) - t(3) (steps)",
           "median t(0.75) - t(1.5) (steps)", "median t(0.75)/t(3) >= 3", "median t(0.75)/t(3) <= 5"},
    cybenko: {"sin: best MSE(w=8) / best MSE(w=2)", "sin: rises of the best MSE along widths 2..8",
              "sin: log-log slope of the best MSE, widths 2..8", "abs: max over widths of best MSE / Var(y)"},
    telgarsky: {"m=4: mean fewest errors over learning rates (bound 29)", "mean regions depth 8 / depth 1",
                "max over depths of mean regions", "depth 2 x width 2: mean L1 of each seed's best net"},
    greydanus: {"logistic mean test accuracy >= 0.27", "logistic mean test accuracy <= 0.37",
                "mlp mean test accuracy >= 0.6", "mlp mean test accuracy <= 0.75",
                "mean(MLP - logistic) test accuracy", "|mean(shuffled) - mean(original)| MLP test accuracy"},
}


@pytest.mark.parametrize("module, claim_ids", [
    (saxe, {"F5"}), (cybenko, {"F6"}), (telgarsky, {"F7"}), (greydanus, {"T13"})])
def test_quick_run_writes_a_summary_with_its_claims(module, claim_ids, tmp_path):
    assert module.EXPERIMENT.main(["--quick", "--seeds", "2", "--out", str(tmp_path), "--quiet"]) == 0
    summary = read_json(tmp_path / "summary.json")
    assert {c["id"] for c in summary["claims"]} == claim_ids
    assert all(c["verdict"] == "inconclusive" for c in summary["claims"])
    assert summary["quick"] is True and summary["seeds"] == [0, 1]
    assert list(tmp_path.glob("*.png"))
    effects = [e for c in summary["claims"] for e in c.get("effects", [])]
    assert {e["name"] for e in effects} == QUICK_EFFECTS[module]
    region_seeds = telgarsky.EXPERIMENT.quick.settings["region_seeds"]  # F7's init-region counts
    assert all(e["seeds"] in (2, region_seeds) and e["verdict"] == "inconclusive" for e in effects)


def test_saxe_fashion_column_is_declared_and_runs_quick(tmp_path):
    overrides = saxe.EXPERIMENT.datasets["fashion_mnist"]
    assert overrides.config["train_fraction"] < 1
    args = ["--quick", "--seeds", "2", "--dataset", "fashion_mnist", "--out", str(tmp_path), "--quiet"]
    assert saxe.EXPERIMENT.main(args) == 0
    summary = read_json(tmp_path / "summary.json")
    assert summary["config"]["dataset"] == "fashion_mnist"
    assert summary["config"]["train_fraction"] == overrides.config["train_fraction"]
    effects = [e for c in summary["claims"] for e in c.get("effects", [])]
    assert {e["name"] for e in effects} == QUICK_EFFECTS[saxe]


def test_identity_mlp_equals_its_collapsed_affine_map():
    x = np.random.default_rng(0).standard_normal((32, 40)).astype(np.float32)
    errors = saxe.random_init_errors((1, 3, 16), 64, x, 10)
    for error, scale in errors.values():
        assert scale > 1.0 and error <= saxe.COLLAPSE_RTOL * scale
    seeded = saxe.seeded_init_errors((1, 3), 64, x, 10, seeds=(0, 5))
    assert seeded[3] == [saxe.random_init_errors((1, 3), 64, x, 10, seed)[3] for seed in (0, 5)]
    assert seeded[3][0] != seeded[3][1]  # each seed its own init
    params = {"hidden_0": {"kernel": np.array([[2.0, 0.0]]), "bias": np.array([1.0, -1.0])},
              "readout": {"kernel": np.array([[1.0], [3.0]]), "bias": np.array([0.5])}}
    weight, bias = saxe.collapse(params)
    np.testing.assert_allclose(weight, [[2.0]])
    np.testing.assert_allclose(bias, [1.0 - 3.0 + 0.5])


def test_saxe_statistics_by_hand():
    v = {"a": np.array([[0.5, 0.6, 0.7], [0.5, 0.5, 0.5]]), "b": np.array([[0.6, 0.6, 0.6], [0.4, 0.4, 0.4]])}
    np.testing.assert_allclose(claims.absolute_mean_difference("a", "b")(v), [0.0, 0.1])
    np.testing.assert_allclose(claims.median_of("a")(v), [0.6, 0.5])


def test_decoupled_linear_dynamics_follow_saxe_closed_form():
    strengths = (2.0, 0.5)
    u = np.asarray(saxe.mode_dynamics(jax.random.key(0), strengths, 12000, decoupled=True, modes=4, lr=1e-3))
    measured = saxe.half_times(u, strengths)
    expected = [saxe.closed_form_half_time(s, 1e-4, 1e-3) for s in strengths]
    np.testing.assert_allclose(measured, expected, rtol=0.01)
    assert u[-1, 0] == pytest.approx(2.0, rel=1e-3)  # a learned mode converges to its strength s


def test_constant_feature_and_loglog_slope():
    data = cybenko.target_data("bump", num_points=16)
    assert data.x_train.shape == (16, 2) and np.all(data.x_train[:, 1] == 1.0)
    assert data.num_classes == 0 and data.y_train.shape == (16, 1)
    widths = np.array([2, 4, 8, 16])
    assert cybenko.loglog_slope(widths, 3.0 / widths**2) == pytest.approx(-2.0)
    rows = np.stack([3.0 / widths**2, 5.0 * widths])  # one slope per row
    np.testing.assert_allclose(cybenko.loglog_slope(widths, rows), [-2.0, 1.0])


def test_best_over_seeds_statistics_by_hand():
    # 2 resamples x 3 seeds at widths 2, 4, 8: the best over seeds per width
    v = {"w=2": np.array([[0.4, 0.5, 0.6], [0.5, 0.5, 0.6]]),
         "w=4": np.array([[0.3, 0.01, 0.2], [0.3, 0.3, 0.2]]),
         "w=8": np.array([[0.001, 0.1, 0.1], [0.1, 0.1, 0.4]])}
    np.testing.assert_allclose(cybenko.best_curve(v, (2, 4, 8)), [[0.4, 0.01, 0.001], [0.5, 0.2, 0.1]])
    np.testing.assert_allclose(cybenko.best_ratio(v, 2, 8), [0.001 / 0.4, 0.1 / 0.5])
    assert cybenko.rises(np.array([[3.0, 2.0, 2.5, 1.0], [1.0, 2.0, 3.0, 3.0]])).tolist() == [1, 2]


def test_nap_task_and_telgarsky_counting_bound():
    data = telgarsky.nap_data(4)
    assert data.x_train.shape == (16, 1) and data.y_train.tolist() == [i % 2 for i in range(16)]
    assert telgarsky.nap_bound(64, 15) == 24 and telgarsky.nap_bound(64, 4) == 29
    assert telgarsky.nap_bound(8, 10) == 0
    # The tent net t^k thresholded at 1/2 labels the 2^k points i/2^k as i mod 2.
    x = np.arange(64) / 64
    assert np.array_equal(tent_power(x, 6) > 0.5, np.arange(64) % 2 == 1)


def test_least_squares_fit_is_exact_with_the_sawtooth_knots_and_a_constant_with_half():
    x = telgarsky.dyadic_grid(2**10)
    assert telgarsky.least_squares_l1(4, 15, x) < 1e-10
    assert telgarsky.least_squares_l1(4, 7, x) == pytest.approx(0.25, abs=1e-3)


def test_region_counts_at_init_are_small_and_the_construction_doubles():
    counts = telgarsky.region_counts(2, range(3), neurons=8, points=4096)
    assert counts.shape == (3,) and np.all((counts >= 1) & (counts <= 4 * 8))
    construct = telgarsky.construction((1, 2, 3), telgarsky.dyadic_grid(2**10))
    assert [c["regions"] for c in construct.values()] == [2, 4, 8]
    assert all(c["max_error"] == 0.0 for c in construct.values())


def test_permuted_inputs_and_first_layer_train_to_the_same_function():
    data = load("blobs", validation_fraction=0.0, num_examples=64, dim=6)
    cfg = Config(dataset="blobs", depth=2, width=8, activation="relu", optimizer="adam", learning_rate=1e-2,
                 batch_size=16, num_epochs=5, validation_fraction=0.0)
    perm = np.random.default_rng(1).permutation(6)
    pair = greydanus.permutation_pair(cfg, data, [0, 1], perm)
    assert pair["max_abs_diff"].shape == (2, 5)
    assert np.all(pair["max_abs_diff"] <= 1e-5) and np.all(pair["agreement"] == 1.0)
    assert np.all(pair["max_abs_logit"] > 0.1)
    assert greydanus.equivariant_after_first_epoch(pair)
    moved = greydanus.shuffled(data, perm)
    np.testing.assert_array_equal(moved.x_test[:, perm.argsort()], data.x_test)


def test_equivariance_check_and_greydanus_statistics_by_hand():
    # 2 seeds x 2 epochs; only the first epoch is judged: 1e-6 <= 1e-5 x max(1, 0.5), 1.5e-4 <= 1e-5 x 20
    pair = {"max_abs_diff": np.array([[1e-6, 1.0], [1.5e-4, 1.0]]),
            "max_abs_logit": np.array([[0.5, 9.0], [20.0, 9.0]]),
            "agreement": np.array([[1.0, 0.5], [1.0, 0.5]])}
    assert greydanus.equivariant_after_first_epoch(pair)
    pair["max_abs_diff"][1, 0] = 2.5e-4
    assert not greydanus.equivariant_after_first_epoch(pair)
    pair["max_abs_diff"][1, 0] = 1.5e-4
    v = {"a": np.array([[0.3, 0.5]]), "b": np.array([[0.5, 0.5]])}
    np.testing.assert_allclose(claims.absolute_mean_difference("a", "b")(v), [0.1])
    low, high = greydanus.band_effects("x", np.full(8, 0.3), (0.27, 0.37))
    assert low["estimate"] == pytest.approx(0.3) and low["verdict"] == high["verdict"] == "reproduced"
    assert low["higher_passes"] and not high["higher_passes"]
    pair["agreement"][0, 0] = 0.999
    assert not greydanus.equivariant_after_first_epoch(pair)


def test_per_seed_minimum_over_learning_rates():
    values = [0.3, np.nan, 0.2, 0.4, np.nan, np.nan]  # NaN: a diverged net, counted as inf
    seeds = [0, 1, 0, 1, 2, 2]  # members (seed, rate): (0,a) (1,a) (0,b) (1,b) (2,a) (2,b)
    np.testing.assert_array_equal(telgarsky.per_seed_min(values, seeds), [0.2, 0.4, np.inf])
    np.testing.assert_allclose(telgarsky.mean_of("l1")({"l1": np.array([[0.2, 0.4]])}), [0.3])
