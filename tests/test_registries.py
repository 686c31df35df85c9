"""Registries by name: activations, initializers and losses against their formulas."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dlfound import activations, initializers, losses
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
