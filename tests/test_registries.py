"""Registries by name: activations, initializers, losses and optimizers against their formulas."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlfound import activations, initializers, losses, optim
from dlfound.errors import ConfigError

_erf = np.vectorize(math.erf)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# Reference formulas in numpy (float64), one per registered activation.
REFERENCE = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),  # x * Phi(x), exact erf form
    "silu": lambda x: x * _sigmoid(x),
    "softplus": lambda x: np.log1p(np.exp(x)),
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "identity": lambda x: x,
    "step": lambda x: (x >= 0).astype(np.float64),
}


# ---------------------------------------------------------------------------------------------- activations

def test_every_activation_has_a_reference_formula():
    assert set(activations.names()) == set(REFERENCE)


@pytest.mark.parametrize("name", activations.names())
def test_activation_keeps_shape_and_dtype(name):
    x = jax.random.normal(jax.random.key(0), (3, 4, 5))
    y = activations.get(name)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert bool(jnp.all(jnp.isfinite(y)))


@pytest.mark.parametrize("name", activations.names())
def test_activation_matches_formula(name):
    x = np.concatenate([np.linspace(-6.0, 6.0, 241), [0.0, -1e-3, 1e-3]]).astype(np.float32)
    got = np.asarray(activations.get(name)(jnp.asarray(x)), np.float64)
    np.testing.assert_allclose(got, REFERENCE[name](x.astype(np.float64)), rtol=2e-6, atol=2e-6)


def test_gelu_is_the_exact_erf_form_not_the_tanh_approximation():
    x = jnp.asarray([-2.0, -0.5, 0.5, 1.0, 2.0])
    exact = np.asarray(REFERENCE["gelu"](np.asarray(x, np.float64)))
    approx = np.asarray(jax.nn.gelu(x, approximate=True))
    got = np.asarray(activations.get("gelu")(x))
    assert np.max(np.abs(approx - exact)) > 1e-4  # the two forms are distinguishable here
    np.testing.assert_allclose(got, exact, rtol=1e-6, atol=1e-7)


def test_step_is_one_at_zero_and_has_zero_gradient():
    step = activations.get("step")
    np.testing.assert_array_equal(step(jnp.asarray([-1.0, -1e-7, 0.0, 1e-7, 3.0])), [0, 0, 1, 1, 1])
    grad = jax.vmap(jax.grad(step))(jnp.asarray([-1.0, 0.5, 2.0]))
    np.testing.assert_array_equal(grad, 0.0)


def test_softsign_saturates_polynomially():
    s = activations.get("softsign")
    np.testing.assert_allclose(s(jnp.asarray([1.0, 9.0, -3.0])), [0.5, 0.9, -0.75], rtol=1e-6)


@pytest.mark.parametrize("registry,kind,typo", [
    (activations, "activation", "relux"),
    (initializers, "init", "hee"),
    (losses, "loss", "mean_squared"),
])
def test_unknown_name_lists_valid_ones(registry, kind, typo):
    with pytest.raises(ConfigError) as info:
        registry.get(typo)
    message = str(info.value)
    assert f"unknown {kind} {typo!r}" in message
    for name in registry.names():
        assert name in message


@pytest.mark.parametrize("registry", [activations, initializers, losses])
def test_unhashable_name_is_config_error(registry):
    with pytest.raises(ConfigError):
        registry.get(["relu"])


# --------------------------------------------------------------------------------------------- initializers

FAN_IN, FAN_OUT = 512, 256  # unequal fans tell fan_in, fan_out and fan_avg schemes apart


@pytest.mark.parametrize("name", [n for n in initializers.names() if n != "zeros"])
def test_initializer_variance_matches_expected(name):
    # orthogonal: the mean square is exactly 1/max(fans) at any size, and a big QR is slow to compile
    fan_in, fan_out = (128, 64) if name == "orthogonal" else (FAN_IN, FAN_OUT)
    w = initializers.get(name)(jax.random.key(1), (fan_in, fan_out), jnp.float32)
    assert w.shape == (fan_in, fan_out) and w.dtype == jnp.float32
    expected = initializers.expected_variance(name, fan_in, fan_out)
    # 131k samples: the variance estimate's standard error is <= 0.4%; 3% is a wide margin
    # (measured: at most 0.4% off).
    assert float(jnp.var(w)) == pytest.approx(expected, rel=0.03)
    assert abs(float(jnp.mean(w))) < 0.02 * math.sqrt(expected)


@pytest.mark.parametrize("name", ["lecun", "glorot", "he", "std_uniform"])
def test_square_variance(name):
    w = initializers.get(name)(jax.random.key(2), (512, 512), jnp.float32)
    assert float(jnp.var(w)) == pytest.approx(initializers.expected_variance(name, 512, 512), rel=0.03)


@pytest.mark.parametrize("name,bound", [
    ("glorot", math.sqrt(6.0 / (FAN_IN + FAN_OUT))),
    ("he_uniform", math.sqrt(6.0 / FAN_IN)),
    ("std_uniform", 1.0 / math.sqrt(FAN_IN)),
])
def test_uniform_initializers_respect_their_bound(name, bound):
    w = np.asarray(initializers.get(name)(jax.random.key(3), (FAN_IN, FAN_OUT), jnp.float32))
    assert np.max(np.abs(w)) <= bound * (1 + 1e-6)
    assert np.max(np.abs(w)) > 0.99 * bound  # uniform on the whole interval


def test_expected_variance_formulas():
    assert initializers.expected_variance("he", 100, 7) == pytest.approx(0.02)
    assert initializers.expected_variance("glorot", 100, 300) == pytest.approx(0.005)
    assert initializers.expected_variance("lecun", 50, 1) == pytest.approx(0.02)
    assert initializers.expected_variance("std_uniform", 10, 1) == pytest.approx(1 / 30)
    with pytest.raises(ConfigError, match="unknown init 'hee'"):
        initializers.expected_variance("hee", 1, 1)


@pytest.mark.parametrize("shape", [(64, 32), (32, 64), (48, 48)])
def test_orthogonal_is_orthogonal(shape):
    w = np.asarray(initializers.get("orthogonal")(jax.random.key(4), shape, jnp.float32), np.float64)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=1e-5)


def test_zeros():
    w = initializers.get("zeros")(jax.random.key(5), (7, 3), jnp.float32)
    np.testing.assert_array_equal(w, np.zeros((7, 3)))


def test_aliases_are_the_same_scheme():
    key = jax.random.key(6)
    for a, b in [("he", "kaiming"), ("glorot", "xavier"), ("glorot_normal", "xavier_normal")]:
        np.testing.assert_array_equal(initializers.get(a)(key, (8, 4)), initializers.get(b)(key, (8, 4)))


@pytest.mark.parametrize("activation", activations.names())
def test_intended_init(activation):
    expected = "he" if activation in {"relu", "leaky_relu", "elu", "gelu", "silu", "softplus"} else "glorot"
    assert initializers.intended_init(activation) == expected
    initializers.get(initializers.intended_init(activation))


def test_scale_kernels_scales_only_kernels():
    params = {"hidden_0": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)},
              "norm_0": {"scale": jnp.ones(3), "bias": jnp.ones(3)},
              "readout": {"kernel": jnp.full((3, 1), 2.0), "bias": jnp.ones(1)}}
    scaled = initializers.scale_kernels(params, jnp.asarray(0.5))
    np.testing.assert_array_equal(scaled["hidden_0"]["kernel"], 0.5)
    np.testing.assert_array_equal(scaled["readout"]["kernel"], 1.0)
    for layer, leaf in [("hidden_0", "bias"), ("norm_0", "scale"), ("norm_0", "bias"), ("readout", "bias")]:
        np.testing.assert_array_equal(scaled[layer][leaf], 1.0)


# --------------------------------------------------------------------------------------------------- losses

def _logits_and_labels(batch=16, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, classes)).astype(np.float32) * 2, rng.integers(0, classes, batch)


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_cross_entropy_is_minus_log_softmax():
    z, y = _logits_and_labels()
    expected = -np.mean(_log_softmax(z.astype(np.float64))[np.arange(len(y)), y])
    got = losses.get("cross_entropy")(jnp.asarray(z), jnp.asarray(y), 5)
    assert float(got) == pytest.approx(expected, rel=1e-6)


def test_mse_is_half_sum_of_squares_against_one_hot():
    z, y = _logits_and_labels()
    one_hot = np.eye(5)[y]
    expected = np.mean(0.5 * np.sum((one_hot - z) ** 2, axis=-1))
    assert float(losses.get("mse")(jnp.asarray(z), jnp.asarray(y), 5)) == pytest.approx(expected, rel=1e-6)


def test_mse_regression_uses_targets_directly():
    rng = np.random.default_rng(1)
    z, t = rng.normal(size=(10, 3)).astype(np.float32), rng.normal(size=(10, 3)).astype(np.float32)
    expected = np.mean(0.5 * np.sum((t - z) ** 2, axis=-1))
    assert float(losses.get("mse")(jnp.asarray(z), jnp.asarray(t), 0)) == pytest.approx(expected, rel=1e-6)


def test_sigmoid_mse_and_bce_against_formulas():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(20, 1)).astype(np.float32) * 3
    y = rng.integers(0, 2, 20)
    s = _sigmoid(z[:, 0].astype(np.float64))
    sigmoid_mse = np.mean(0.5 * (y - s) ** 2)
    bce = np.mean(-y * np.log(s) - (1 - y) * np.log(1 - s))
    z, y = jnp.asarray(z), jnp.asarray(y)
    assert float(losses.get("sigmoid_mse")(z, y, 2)) == pytest.approx(sigmoid_mse, rel=1e-5)
    assert float(losses.get("bce")(z, y, 2)) == pytest.approx(bce, rel=1e-5)


def test_accuracy_rules():
    z = jnp.asarray([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [0.0, 5.0, 1.0], [1.0, 0.0, 0.0]])
    y = jnp.asarray([0, 2, 0, 1])
    assert float(losses.get("cross_entropy").accuracy(z, y, 3)) == 0.5
    assert float(losses.get("mse").accuracy(z, y, 3)) == 0.5
    zb, yb = jnp.asarray([[1.5], [-0.2], [0.3], [-2.0]]), jnp.asarray([1, 0, 0, 1])
    assert float(losses.get("bce").accuracy(zb, yb, 2)) == 0.5
    assert float(losses.get("sigmoid_mse").accuracy(zb, yb, 2)) == 0.5
    assert math.isnan(float(losses.get("mse").accuracy(z, jnp.zeros((4, 3)), 0)))


@pytest.mark.parametrize("name,num_classes,target_dim,expected", [
    ("cross_entropy", 10, 1, 10),
    ("mse", 10, 1, 10),
    ("mse", 0, 1, 1),
    ("mse", 0, 3, 3),
    ("bce", 2, 1, 1),
    ("sigmoid_mse", 2, 1, 1),
])
def test_num_outputs(name, num_classes, target_dim, expected):
    assert losses.get(name).num_outputs(num_classes, target_dim) == expected


@pytest.mark.parametrize("name,num_classes,fragment", [
    ("cross_entropy", 0, "loss='cross_entropy' for a regression dataset; allowed: mse"),
    ("bce", 0, "loss='bce' for a regression dataset; allowed: mse"),
    ("bce", 10, "loss='bce' for 10 classes; allowed: cross_entropy, mse"),
    ("sigmoid_mse", 3, "loss='sigmoid_mse' for 3 classes"),
])
def test_num_outputs_errors(name, num_classes, fragment):
    with pytest.raises(ConfigError) as info:
        losses.get(name).num_outputs(num_classes)
    assert fragment in str(info.value)


# ------------------------------------------------------------------------------------------------ optimizers

TARGET = jnp.asarray([1.0, -2.0, 0.5, 3.0])


def _quadratic(params):
    return 0.5 * jnp.sum((params["w"] - TARGET) ** 2)


def _one_update(name, learning_rate, params=None, **kwargs):
    params = {"w": jnp.zeros(4)} if params is None else params
    tx = optim.make_optimizer(name, **kwargs)
    state = optim.init_with(tx, params, learning_rate, 0.0)
    updates, state = tx.update(jax.grad(_quadratic)(params), state, params)
    return optax.apply_updates(params, updates), state


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_every_optimizer_lowers_a_quadratic(name):
    params = {"w": jnp.zeros(4)}
    new, _ = _one_update(name, 0.1, params)
    assert float(_quadratic(new)) < float(_quadratic(params))


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_injected_learning_rate_lives_in_the_state(name):
    params = {"w": jnp.zeros(4)}
    tx = optim.make_optimizer(name)
    state = optim.init_with(tx, params, 0.03, 0.001)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.03)
    assert float(state.hyperparams["weight_decay"]) == pytest.approx(0.001)
    small, _ = _one_update(name, 0.01, params)
    large, _ = _one_update(name, 0.1, params)
    assert not np.allclose(small["w"], large["w"])


def test_sgd_update_is_minus_learning_rate_times_gradient():
    new, _ = _one_update("sgd", 0.25)
    np.testing.assert_allclose(new["w"], 0.25 * TARGET, rtol=1e-6)


def test_weight_decay_is_l2_for_sgd_and_decoupled_for_adamw():
    params = {"w": jnp.asarray([2.0, -4.0])}
    zero_grad = {"w": jnp.zeros(2)}
    for name, expected in [("sgd", [2.0 - 0.1 * 0.5 * 2.0, -4.0 + 0.1 * 0.5 * 4.0]),
                           ("adamw", [2.0 - 0.1 * 0.5 * 2.0, -4.0 + 0.1 * 0.5 * 4.0])]:
        tx = optim.make_optimizer(name)
        state = optim.init_with(tx, params, 0.1, 0.5)
        updates, _ = tx.update(zero_grad, state, params)
        np.testing.assert_allclose(optax.apply_updates(params, updates)["w"], expected, rtol=1e-6)
    # adam with an L2 term: the decay passes through Adam's normalization (a step of ~lr, not lr*wd*w).
    tx = optim.make_optimizer("adam")
    updates, _ = tx.update(zero_grad, optim.init_with(tx, params, 0.1, 0.5), params)
    np.testing.assert_allclose(updates["w"], [-0.1, 0.1], rtol=1e-4)


def test_grad_clip_norm_bounds_the_sgd_step():
    new, _ = _one_update("sgd", 1.0, grad_clip_norm=0.5)
    assert float(jnp.linalg.norm(new["w"])) == pytest.approx(0.5, rel=1e-5)


def test_unknown_optimizer_and_schedule_list_valid_ones():
    with pytest.raises(ConfigError) as info:
        optim.make_optimizer("adma")
    assert all(name in str(info.value) for name in optim.OPTIMIZERS)
    with pytest.raises(ConfigError) as info:
        optim.make_optimizer("adam", schedule="cosin")
    assert all(name in str(info.value) for name in optim.SCHEDULES)


@pytest.mark.parametrize("schedule,expected", [
    # multiplier at steps 0, 9 (last warmup step), 55 (middle of the decay), 100 (end)
    ("constant", (1.0, 1.0, 1.0, 1.0)),
    ("cosine", (1.0, 0.5 * (1 + math.cos(math.pi * 0.09)), 0.5 * (1 + math.cos(math.pi * 0.55)), 0.0)),
    ("warmup", (0.1, 1.0, 1.0, 1.0)),
    ("warmup_cosine", (0.1, 1.0, 0.5, 0.0)),
])
def test_schedule_shapes(schedule, expected):
    shape = optim.schedule_shape(schedule, total_steps=100, warmup_steps=10)
    got = [float(shape(step)) for step in (0, 9, 55, 100)]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    values = np.asarray(jax.vmap(shape)(jnp.arange(101)))
    assert values.min() >= 0.0 and values.max() <= 1.0 + 1e-7


def test_schedule_drives_the_optimizer_step():
    params = {"w": jnp.zeros(4)}
    tx = optim.make_optimizer("sgd", schedule="cosine", total_steps=4)
    state = optim.init_with(tx, params, 1.0, 0.0)
    grads = {"w": jnp.ones(4)}
    steps = []
    for _ in range(5):
        updates, state = tx.update(grads, state, params)
        steps.append(-float(updates["w"][0]))
    cosine = [0.5 * (1 + math.cos(math.pi * step / 4)) for step in range(5)]  # 1, 0.85, 0.5, 0.15, 0
    np.testing.assert_allclose(steps, cosine, atol=1e-6)


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_vmapped_learning_rates_equal_separate_calls(name):
    learning_rates = jnp.asarray([0.001, 0.03, 0.3])
    params = {"w": jnp.asarray([0.5, -1.0, 2.0, 0.0])}
    tx = optim.make_optimizer(name, schedule="warmup_cosine", total_steps=10, warmup_steps=2)

    def run(learning_rate):
        p, state = params, optim.init_with(tx, params, learning_rate, 0.01)
        for _ in range(3):
            updates, state = tx.update(jax.grad(_quadratic)(p), state, p)
            p = optax.apply_updates(p, updates)
        return p["w"]

    batched = jax.vmap(run)(learning_rates)
    for i, lr in enumerate(learning_rates):
        np.testing.assert_allclose(batched[i], run(lr), rtol=1e-6, atol=1e-7)


def test_folded_adam_equals_optax_adam_over_many_steps():
    """Kingma & Ba's reordering (bias corrections in one scalar, eps scaled) is Adam, step for step."""
    key = jax.random.key(0)
    params = {"w": jax.random.normal(key, (64, 32)), "b": jnp.zeros(32)}
    ours, ref = optim.scale_by_adam(), optax.scale_by_adam()
    s_ours, s_ref = ours.init(params), ref.init(params)
    assert jax.tree.structure(s_ours) == jax.tree.structure(s_ref)
    for step in range(50):
        # gradients spanning 8 orders of magnitude, some near eps, so the folded eps matters
        scale = 10.0 ** jax.random.uniform(jax.random.fold_in(key, step), (), minval=-9, maxval=-1)
        grads = jax.tree.map(lambda p: scale * jax.random.normal(jax.random.fold_in(key, 100 + step), p.shape),
                             params)
        u_ours, s_ours = ours.update(grads, s_ours)
        u_ref, s_ref = ref.update(grads, s_ref)
        chex.assert_trees_all_close(u_ours, u_ref, rtol=2e-5, atol=1e-6)
    chex.assert_trees_all_close(s_ours, s_ref, rtol=1e-6)


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_adam_family_matches_optax_on_a_quadratic(name):
    params = {"w": jnp.asarray([0.5, -1.0, 2.0, 0.0])}
    tx = optim.make_optimizer(name)
    ref = optax.adam(0.05) if name == "adam" else optax.adamw(0.05, weight_decay=0.01)
    state, ref_state, p, q = optim.init_with(tx, params, 0.05, 0.01 if name == "adamw" else 0.0), None, params, params
    ref_state = ref.init(params)
    for _ in range(100):
        updates, state = tx.update(jax.grad(_quadratic)(p), state, p)
        p = optax.apply_updates(p, updates)
        ref_updates, ref_state = ref.update(jax.grad(_quadratic)(q), ref_state, q)
        q = optax.apply_updates(q, ref_updates)
    np.testing.assert_allclose(p["w"], q["w"], rtol=1e-5, atol=1e-6)
    assert float(_quadratic(p)) < 0.05 * float(_quadratic(params))


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_leaving_decay_out_equals_zero_decay(name):
    params = {"w": jnp.asarray([0.5, -1.0, 2.0, 0.0])}

    def run(decay):
        tx = optim.make_optimizer(name, decay=decay)
        p, state = params, optim.init_with(tx, params, 0.05, 0.0)
        for _ in range(3):
            updates, state = tx.update(jax.grad(_quadratic)(p), state, p)
            p = optax.apply_updates(p, updates)
        return p["w"]

    np.testing.assert_array_equal(run(True), run(False))
