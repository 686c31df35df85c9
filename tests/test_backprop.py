"""From-scratch backprop equals autodiff and finite differences, and trains like it (claim F4)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from dlfound import backprop as bp
from dlfound.errors import ConfigError

ACTIVATIONS = sorted(bp.ACTIVATIONS)
DEPTHS = (0, 1, 3)
LOSSES = [("cross_entropy", "softmax"), ("mse", "linear"), ("mse", "sigmoid"), ("bce", "sigmoid")]
# float64 tolerances. Measured: backprop vs jax.grad <= 2e-15 relative (rounding only);
# central differences (h = 1e-6) <= 6e-8 relative (truncation h^2 plus rounding eps/h).
AUTODIFF_RTOL = 1e-10
FD_RTOL = 1e-6
FD_STEP = 1e-6


@pytest.fixture
def x64():
    """Enables float64 for one test and restores the previous setting afterwards."""
    with jax.enable_x64(True):
        yield


def _problem(depth, loss, key=0, batch=8, d_in=4, width=5):
    """A small random regression/classification problem and float64 params for it."""
    k_x, k_y, k_p = jax.random.split(jax.random.key(key), 3)
    k_out = 3
    x = jax.random.normal(k_x, (batch, d_in), jnp.float64)
    if loss == "cross_entropy":
        y = jax.random.randint(k_y, (batch,), 0, k_out)
    else:
        y = jax.random.uniform(k_y, (batch, k_out), jnp.float64)
    params = bp.init_params(k_p, [d_in] + [width] * depth + [k_out], "glorot", scale=1.5, dtype=jnp.float64)
    # Non-zero biases so the bias paths are exercised too.
    params = [(w, 0.1 * jnp.arange(b.size, dtype=b.dtype) - 0.2) for w, b in params]
    return params, x, y


def _rel_err(a, b):
    """||a - b|| / ||b|| (0 when both are zero)."""
    num, den = float(jnp.linalg.norm(a - b)), float(jnp.linalg.norm(b))
    return num / den if den > 0 else num


def _max_layer_err(grads, ref):
    """Largest relative error over every layer's W and b."""
    return max(_rel_err(g, r) for layer, ref_layer in zip(grads, ref) for g, r in zip(layer, ref_layer))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_and_derivative_match_jax_nn(x64, name):
    references = {
        "sigmoid": jax.nn.sigmoid,
        "tanh": jnp.tanh,
        "relu": jax.nn.relu,
        "leaky_relu": jax.nn.leaky_relu,
        "elu": jax.nn.elu,
        "gelu": functools.partial(jax.nn.gelu, approximate=False),
        "silu": jax.nn.silu,
        "softplus": jax.nn.softplus,
        "identity": lambda z: z,
    }
    f, f_prime = bp.get_activation(name)
    z = jnp.linspace(-6.0, 6.0, 1001) + 1e-3  # avoid the kink at exactly 0
    np.testing.assert_allclose(f(z), references[name](z), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(f_prime(z), jax.vmap(jax.grad(references[name]))(z), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("depth", DEPTHS)
def test_grads_equal_autodiff_and_central_finite_differences(x64, depth, activation):
    params, x, y = _problem(depth, "cross_entropy")
    _, grads = bp.loss_and_grads(params, x, y, activation, "cross_entropy")
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    ref = jax.grad(bp.loss_value)(params, x, y, activation, "cross_entropy")
    assert _max_layer_err(grads, ref) < AUTODIFF_RTOL
    flat, unravel = ravel_pytree(params)
    loss = lambda v: bp.loss_value(unravel(v), x, y, activation, "cross_entropy")  # noqa: E731
    basis = FD_STEP * jnp.eye(flat.size, dtype=flat.dtype)
    fd = jax.vmap(lambda e: (loss(flat + e) - loss(flat - e)) / (2 * FD_STEP))(basis)
    for layer, (g, ref) in enumerate(zip(grads, unravel(fd))):
        assert _rel_err(g[0], ref[0]) < FD_RTOL, f"W of layer {layer}"
        assert _rel_err(g[1], ref[1]) < FD_RTOL, f"b of layer {layer}"


@pytest.mark.parametrize("loss,output", LOSSES)
@pytest.mark.parametrize("depth", DEPTHS)
def test_grads_equal_autodiff_for_each_loss(x64, depth, loss, output):
    params, x, y = _problem(depth, loss, key=1)
    value, grads = bp.loss_and_grads(params, x, y, "tanh", loss, output)
    ref_value, ref = jax.value_and_grad(bp.loss_value)(params, x, y, "tanh", loss, output)
    assert float(value) == pytest.approx(float(ref_value), rel=1e-14)
    assert _max_layer_err(grads, ref) < AUTODIFF_RTOL


def test_losses_match_textbook_formulas(x64):
    z = jax.random.normal(jax.random.key(2), (6, 3), jnp.float64)
    labels = jnp.array([0, 1, 2, 2, 1, 0])
    p = jax.nn.softmax(z)
    ce = -jnp.mean(jnp.log(p[jnp.arange(6), labels]))
    assert float(bp.loss_from_logits(z, labels, "cross_entropy")) == pytest.approx(float(ce), rel=1e-13)
    t = jax.random.uniform(jax.random.key(3), (6, 3), jnp.float64)
    s = jax.nn.sigmoid(z)
    bce = -jnp.mean(jnp.sum(t * jnp.log(s) + (1 - t) * jnp.log(1 - s), axis=-1))
    assert float(bp.loss_from_logits(z, t, "bce")) == pytest.approx(float(bce), rel=1e-12)
    mse = 0.5 * jnp.mean(jnp.sum((s - t) ** 2, axis=-1))
    assert float(bp.loss_from_logits(z, t, "mse", "sigmoid")) == pytest.approx(float(mse), rel=1e-13)


def _blobs(n=96, classes=3, dim=4, seed=0):
    """Gaussian blobs around random centres: an easy classification task."""
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.normal(size=(classes, dim))
    y = rng.integers(0, classes, size=n)
    x = centres[y] + rng.normal(size=(n, dim))
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)


def test_training_curve_equals_autodiff_training():
    x, y = _blobs()
    autodiff = jax.value_and_grad(functools.partial(bp.loss_value, activation="tanh", loss="cross_entropy"))
    run = jax.jit(
        functools.partial(
            bp.train, sizes=(4, 8, 8, 3), activation="tanh", loss="cross_entropy", lr=0.1, num_steps=200,
            batch_size=16, scheme="glorot",
        ),
        static_argnames="grad_fn",
    )
    key = jax.random.key(5)
    params, losses = run(key, x, y)
    ref_params, ref_losses = run(key, x, y, grad_fn=autodiff)
    assert losses.shape == (200,) and losses.dtype == jnp.float32
    # float32, 200 steps: measured max abs diff 1.2e-7 (loss), 2.4e-7 (params); stated tolerance 1e-5.
    assert float(jnp.max(jnp.abs(losses - ref_losses))) < 1e-5
    np.testing.assert_allclose(ravel_pytree(params)[0], ravel_pytree(ref_params)[0], atol=1e-4)


def test_loss_goes_down_on_xor():
    x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = jnp.array([0.0, 1.0, 1.0, 0.0])
    params, losses = jax.jit(
        functools.partial(bp.train, sizes=(2, 8, 1), activation="tanh", loss="bce", lr=1.0, num_steps=500,
                          scheme="glorot")
    )(jax.random.key(0), x, y)
    assert float(losses[-1]) < 0.1 * float(losses[0])
    out, _ = bp.forward(params, x, "tanh", output="sigmoid")
    np.testing.assert_array_equal(out[:, 0] > 0.5, y > 0.5)


def test_train_step_is_forward_loss_backward_update():
    x, y = _blobs(n=32)
    params = bp.init_params(jax.random.key(0), (4, 6, 3), "he")
    new, value = bp.train_step(params, x, y, 0.5, "relu", "cross_entropy")
    _, grads = bp.loss_and_grads(params, x, y, "relu", "cross_entropy")
    assert value.shape == ()
    assert float(value) == pytest.approx(float(bp.loss_value(params, x, y, "relu", "cross_entropy")))
    assert jax.tree.all(jax.tree.map(jnp.array_equal, new, bp.sgd_update(params, grads, 0.5)))


def test_init_schemes_have_their_stated_scale():
    fan_in, fan_out = 400, 300
    expected = {
        "he": np.sqrt(2 / fan_in),
        "lecun": np.sqrt(1 / fan_in),
        "glorot": np.sqrt(2 / (fan_in + fan_out)),
        "std_uniform": np.sqrt(1 / (3 * fan_in)),
        "uniform": np.sqrt(1 / 12),
        "small_normal": 0.01,
    }
    for scheme, std in expected.items():
        ((w, b),) = bp.init_params(jax.random.key(0), (fan_in, fan_out), scheme, scale=2.0)
        assert float(jnp.std(w)) == pytest.approx(2.0 * std, rel=0.02), scheme
        assert not jnp.any(b)


def test_bad_names_raise_config_error_listing_valid_choices():
    params = bp.init_params(jax.random.key(0), (2, 3, 2))
    with pytest.raises(ConfigError, match="unknown activation 'swish'.*gelu, identity, leaky_relu"):
        bp.forward(params, jnp.ones((1, 2)), "swish")
    with pytest.raises(ConfigError, match="unknown loss 'hinge'.*bce, cross_entropy, mse"):
        bp.loss_and_grads(params, jnp.ones((1, 2)), jnp.zeros(1, jnp.int32), "relu", "hinge")
    with pytest.raises(ConfigError, match="output 'linear' does not go with loss 'cross_entropy'"):
        bp.resolve_output("cross_entropy", "linear")
    with pytest.raises(ConfigError, match="unknown init scheme 'xavier_typo'.*glorot, he"):
        bp.init_params(jax.random.key(0), (2, 2), "xavier_typo")
    with pytest.raises(ConfigError, match="sizes"):
        bp.init_params(jax.random.key(0), (2,))


@pytest.mark.parametrize("autodiff", [False, True])
def test_minibatch_training_visits_each_epochs_permutation_in_batches(autodiff):
    """20 steps of 16 from 100 examples: 3 whole epochs of 6 batches, then 2 batches of a 4th."""
    k_x, k_y = jax.random.split(jax.random.key(3))
    x, y = jax.random.normal(k_x, (100, 5)), jax.random.randint(k_y, (100,), 0, 3)
    grad_fn = ((lambda p, xb, yb: jax.value_and_grad(bp.loss_value)(p, xb, yb, "relu", "cross_entropy"))
               if autodiff else None)
    key, sizes = jax.random.key(7), [5, 8, 3]
    params, losses = jax.jit(lambda k: bp.train(k, x, y, sizes, "relu", "cross_entropy", 0.1, 20, 16,
                                                grad_fn=grad_fn))(key)
    k_init, k_data = jax.random.split(key)
    want_params, want = bp.init_params(k_init, sizes, "he"), []
    for t in range(20):
        epoch, i = divmod(t, 100 // 16)
        idx = jax.random.permutation(jax.random.fold_in(k_data, epoch), 100)[i * 16:(i + 1) * 16]
        want_params, value = bp.train_step(want_params, x[idx], y[idx], 0.1, "relu", "cross_entropy")
        want.append(value)
    assert losses.shape == (20,)
    np.testing.assert_allclose(losses, want, rtol=1e-5)
    for got, expected in zip(jax.tree.leaves(params), jax.tree.leaves(want_params)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
