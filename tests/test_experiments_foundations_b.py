"""Quick runs of the F5, F6, F7 and T13 experiments, and their pure helpers against known answers."""

import jax
import numpy as np
import pytest

from dlfound.config import Config
from dlfound.data import load
from dlfound.data.functions import tent_power
from dlfound.files import read_json
from experiments import cybenko1989_universal_approximation as cybenko
from experiments import greydanus2020_mnist1d as greydanus
from experiments import saxe2014_linear_collapse as saxe
from experiments import telgarsky2016_depth_efficiency as telgarsky


@pytest.mark.parametrize("module, claim_ids", [
    (saxe, {"F5"}), (cybenko, {"F6"}), (telgarsky, {"F7"}), (greydanus, {"T13"})])
def test_quick_run_writes_a_summary_with_its_claims(module, claim_ids, tmp_path):
    assert module.EXPERIMENT.main(["--quick", "--seeds", "2", "--out", str(tmp_path), "--quiet"]) == 0
    summary = read_json(tmp_path / "summary.json")
    assert {c["id"] for c in summary["claims"]} == claim_ids
    assert all(c["verdict"] == "inconclusive" for c in summary["claims"])
    assert summary["quick"] is True and summary["seeds"] == [0, 1]
    assert list(tmp_path.glob("*.png"))


def test_identity_mlp_equals_its_collapsed_affine_map():
    x = np.random.default_rng(0).standard_normal((32, 40)).astype(np.float32)
    errors = saxe.random_init_errors((1, 3, 16), 64, x, 10)
    for error, scale in errors.values():
        assert scale > 1.0 and error <= saxe.COLLAPSE_RTOL * scale
    params = {"hidden_0": {"kernel": np.array([[2.0, 0.0]]), "bias": np.array([1.0, -1.0])},
              "readout": {"kernel": np.array([[1.0], [3.0]]), "bias": np.array([0.5])}}
    weight, bias = saxe.collapse(params)
    np.testing.assert_allclose(weight, [[2.0]])
    np.testing.assert_allclose(bias, [1.0 - 3.0 + 0.5])


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
    pair = greydanus.permutation_pair(cfg, data, 0, perm)
    assert pair["max_abs_diff"].shape == (5,)
    assert np.all(pair["max_abs_diff"] <= 1e-5) and np.all(pair["agreement"] == 1.0)
    assert np.all(pair["max_abs_logit"] > 0.1)
    moved = greydanus.shuffled(data, perm)
    np.testing.assert_array_equal(moved.x_test[:, perm.argsort()], data.x_test)
