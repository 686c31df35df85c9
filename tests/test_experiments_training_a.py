"""Quick runs of the initialization, batch-norm and residual experiments, and their pure helpers."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlfound import claims, initializers, propagation
from dlfound.config import Config, step_budget
from experiments import glorot2010_saturation as saturation_exp
from experiments import he2015_initialization as init_exp
from experiments import he2016_residual as residual_exp
from experiments import ioffe2015_batchnorm as bn_exp

SLOPES = [f"|fitted slope - recursion| (bits/layer), {s}" for s in init_exp.SCHEMES]
STEPS_50 = "median steps to 50% train"
INIT_EFFECTS = {  # the quick budget: init depth 6, gradient depth 4, trained depth 2
    *SLOPES, "|log2 median He RMS(h_6)/RMS(x)|", "mean glorot RMS(h_6)/RMS(x)", "mean lecun RMS(h_6)/RMS(x)",
    "largest layer's median Glorot / He kernel-gradient RMS",
    "|log10 He median gradient RMS, first / last hidden layer|", f"He {STEPS_50}, depth 2",
    f"{STEPS_50}, Glorot / He, depth 2", f"he {STEPS_50}, depth 2", f"glorot {STEPS_50}, depth 2",
    "small_normal mean final train accuracy, depth 2", "mean smallest hidden kernel norm, zero init",
    "glorot - zero-init train accuracy"}
SATURATION_EFFECTS = {  # the quick budget: depth 2 (one lower layer), one Table 1 activation
    "tanh: normalized - standard init test accuracy", "mean top-layer activation",
    "smallest lower layer's mean activation", "mean train accuracy"}
BN_EFFECTS = {  # the quick budget: the paper's net at its two rates
    *(f"{name}, lr {lr}" for lr in (0.1, 0.5) for name in (
        "BN - no-BN final test accuracy", "BN median steps to 50% test", "no-BN median steps to 50% test")),
    "3 x 100 sigmoid: BN - no-BN rates that train per seed",
    "3 x 100 sigmoid: best median steps to train target, BN / no BN",
    "3 x 100 sigmoid: best median final test accuracy, BN - no BN"}
RESIDUAL_EFFECTS = {"mean plain loss depth 3 / depth 2", "mean residual / plain loss, depth 3",  # depths 2, 3
                    "residual / plain median loss growth, depth 3 / 2"}
QUICK_RUNS = [
    (init_exp, {"T4"}, INIT_EFFECTS),
    (saturation_exp, {"T1", "T4"}, SATURATION_EFFECTS),
    (bn_exp, {"T5"}, BN_EFFECTS),
    (residual_exp, {"T6"}, RESIDUAL_EFFECTS),
]


@pytest.mark.parametrize("module,ids,effects", QUICK_RUNS,
                         ids=[m.__name__.rsplit(".", 1)[1] for m, _, _ in QUICK_RUNS])
def test_quick_run_writes_summary_with_claim_ids(module, ids, effects, tmp_path):
    assert module.EXPERIMENT.main(["--quick", "--seeds", "2", "--out", str(tmp_path), "--quiet"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["quick"] is True
    assert {c["id"] for c in summary["claims"]} == ids
    assert all(c["verdict"] == "inconclusive" for c in summary["claims"])
    assert all(c.get("effects") for c in summary["claims"])  # every claim is judged on intervals
    names = [e["name"] for c in summary["claims"] for e in c["effects"]]
    assert set(names) == effects and len(names) == len(effects)
    assert list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("module", [bn_exp, residual_exp], ids=["ioffe2015_batchnorm", "he2016_residual"])
def test_fashion_column_trains_a_tenth_of_the_training_set(module):
    fashion = module.EXPERIMENT.datasets["fashion_mnist"]
    assert fashion.config == {"train_fraction": 0.1}
    assert set(fashion.settings) == {"steps", "eval_steps"}


def test_step_budget_turns_steps_into_epochs():
    cfg = Config(batch_size=128)
    out = step_budget(cfg, 4000, steps=1500, eval_steps=62)  # 31 steps per epoch
    assert (out.num_epochs, out.eval_every_epochs) == (48, 2)
    out = step_budget(cfg, 54000, steps=1500, eval_steps=62)  # 421 steps per epoch
    assert (out.num_epochs, out.eval_every_epochs) == (4, 1)
    assert step_budget(cfg, 100, steps=10, eval_steps=1).num_epochs >= 1


def test_robust_rms_survives_underflow_of_squares():
    a = jnp.full((4, 8), 1e-25, jnp.float32)  # a**2 underflows to 0 in float32
    assert float(jnp.sqrt(jnp.mean(a**2))) == 0.0
    np.testing.assert_allclose(float(propagation.robust_rms(a)), 1e-25, rtol=1e-5)
    assert float(propagation.robust_rms(jnp.zeros((3, 3)))) == 0.0
    x = jax.random.normal(jax.random.key(0), (5, 100))
    np.testing.assert_allclose(propagation.robust_rms(x, (1,)), jnp.sqrt(jnp.mean(x**2, axis=1)), rtol=1e-5)


def test_predicted_mean_square_follows_the_he_recursion():
    sizes = (40, 64, 64, 64)
    he = propagation.predicted_mean_square("he", sizes, 1.0)
    np.testing.assert_allclose(he, [1.0, 1.0, 1.0])  # fan_in * 2/fan_in / 2 = 1 per layer
    lecun = propagation.predicted_mean_square("lecun", sizes, 2.0)
    np.testing.assert_allclose(lecun, [1.0, 0.5, 0.25])  # halved at every layer
    glorot = propagation.predicted_mean_square("glorot", (64,) * 31, 1.0)
    assert math.isclose(math.sqrt(glorot[-1]), 2.0**-15, rel_tol=1e-9)  # the 2^-15 RMS factor at 30 layers
    assert propagation.typical_slope("he", 64) == pytest.approx(-5 / (2 * 64 * math.log(2)))
    assert propagation.typical_slope("lecun", 64) == pytest.approx(-1 - 5 / (2 * 64 * math.log(2)))


def test_measured_init_rms_matches_the_recursion_on_average():
    """Monte-Carlo check of the mean-field prediction with the library's initializers."""
    sizes = (16, 256, 256, 256)
    keys = jax.vmap(jax.random.key)(jnp.arange(16, dtype=jnp.uint32))
    x = jax.random.normal(jax.random.key(1), (64, 16))
    for scheme in ("he", "lecun"):
        params = propagation.draw_params(scheme, sizes + (10,), keys)
        h = jnp.broadcast_to(x, (16, 64, 16))
        for i in range(3):
            h = jax.nn.relu(jnp.einsum("sbi,sio->sbo", h, params[f"hidden_{i}"]["kernel"]))
        measured = float(jnp.mean(h**2))
        predicted = propagation.predicted_mean_square(scheme, sizes, float(jnp.mean(x**2)))[-1]
        assert measured == pytest.approx(predicted, rel=0.15)
    assert initializers.expected_variance("he", 64, 64) == 2 / 64


def test_fitted_slope_and_unit_spread():
    layers = np.arange(1, 11)
    log2_ms = np.stack([-1.0 * layers + 3, -1.0 * layers + 5])  # two seeds, slope -1
    valid = np.ones(10, bool)
    assert propagation.fitted_slope(log2_ms, valid) == pytest.approx(-1.0)
    valid[5:] = False
    assert propagation.fitted_slope(log2_ms, valid) == pytest.approx(-1.0)
    assert math.isnan(propagation.fitted_slope(log2_ms, np.eye(10, dtype=bool)[0]))
    same = np.tile(np.array([[0.5], [-1.0], [2.0]]), (1, 6))
    assert propagation.unit_spread(same, np.full(6, 0.1)) == 0.0
    different = same.copy()
    different[0, 3] += 0.3
    assert propagation.unit_spread(different, np.full(6, 0.1)) > 0.1


def test_best_rate_uses_the_seed_median_and_treats_divergence_as_worst():
    by_rate = {0.003: np.array([0.10, 0.12, 0.50]), 0.03: np.array([0.05, 0.30, 0.40])}
    assert residual_exp.best_rate(by_rate) == 0.003  # medians 0.12 vs 0.30
    by_rate[0.03] = np.array([0.01, 0.01, np.nan])  # median over (0.01, 0.01, inf) = 0.01
    assert residual_exp.best_rate(by_rate) == 0.03
    by_rate[0.03] = np.array([0.01, np.nan, np.inf])
    assert residual_exp.best_rate(by_rate) == 0.003


def test_residual_statistics_match_hand_computed_values():
    cells = {"res_deep": np.array([[0.2, 0.4, 0.3]]), "res_shallow": np.array([[0.01, 0.02, 0.03]]),
             "plain_deep": np.array([[2.0, 2.2, 2.4]]), "plain_shallow": np.array([[0.01, 0.01, 0.02]])}
    np.testing.assert_allclose(residual_exp.growth_ratio(cells), [(0.3 / 0.02) / (2.2 / 0.01)])


def test_rates_that_train_and_best_over_rates():
    entry = lambda steps, diverged: {"steps_to_train_target": np.array(steps), "diverged": np.array(diverged)}
    by_lr = {0.1: entry([100.0, np.inf, 300.0], [False, False, False]),
             0.5: entry([50.0, 60.0, 70.0], [False, True, False])}  # seed 1 reached, then diverged
    np.testing.assert_array_equal(bn_exp.rates_that_train(by_lr), [2.0, 0.0, 2.0])
    v = {"BN 0.1": np.array([[1.0, 2.0, 3.0]]), "BN 0.5": np.array([[5.0, 0.0, 1.0]])}
    np.testing.assert_allclose(bn_exp.best_over_rates(v, "BN", (0.1, 0.5), np.min), [1.0])  # medians 2, 1
    np.testing.assert_allclose(bn_exp.best_over_rates(v, "BN", (0.1, 0.5), np.max), [2.0])


def test_seed_slopes_average_to_the_fitted_slope_and_seed_effect_resamples_whole_rows():
    layers = np.arange(1, 6)
    log2_ms = np.stack([-1.0 * layers + 3, -2.0 * layers, -1.5 * layers + 1])
    valid = np.ones(5, bool)
    np.testing.assert_allclose(init_exp.seed_slopes(log2_ms, valid), [-1.0, -2.0, -1.5])
    fitted = propagation.fitted_slope(log2_ms, valid)
    assert init_exp.seed_slopes(log2_ms, valid).mean() == pytest.approx(fitted)
    assert np.all(np.isnan(init_exp.seed_slopes(log2_ms, np.eye(5, dtype=bool)[0])))
    rows = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]] * 3)  # 9 seeds, two layers each
    ratio = lambda v: v["x"][..., 1].mean(-1) / v["x"][..., 0].mean(-1)
    effect = claims.effect_of_rows("layer 2 / layer 1", ratio, {"x": rows}, 5.0)
    assert effect["estimate"] == pytest.approx(10.0)
    assert effect["low"] == pytest.approx(10.0) and effect["high"] == pytest.approx(10.0)  # rows stay whole
    assert effect["seeds"] == 9 and effect["verdict"] == "reproduced"
