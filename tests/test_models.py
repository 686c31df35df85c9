"""The Flax MLP: exact parameter counts, layer names, shapes, linear collapse, residuals, dropout, sow."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dlfound import models
from dlfound.config import Config
from dlfound.models import MLP, count_params, layer_names

ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")


def _num_params(tree) -> int:
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(tree))


def _init(model, x, seed=0):
    return model.init(jax.random.key(seed), x)


def _shapes(model, x):
    """The variables' shapes, traced without running anything (cheap for many configs)."""
    return jax.eval_shape(model.init, jax.random.key(0), x)


def _x(batch=4, dim=6, seed=1):
    return jax.random.normal(jax.random.key(seed), (batch, dim))


@pytest.mark.parametrize("norm", [None, "batch", "layer"])
@pytest.mark.parametrize("width_kind", ["int", "tuple"])
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_parameter_count_is_exact(depth, width_kind, norm):
    widths = (7, 5, 3)[:depth]
    width = 5 if width_kind == "int" else widths
    model = MLP(depth=depth, width=width, num_outputs=4, norm=norm)
    variables = _shapes(model, _x(dim=6))
    expected = count_params(6, model.widths, 4, norm)
    assert _num_params(variables["params"]) == expected
    dense = sum((a + 1) * b for a, b in zip((6, *model.widths), (*model.widths, 4)))
    assert expected == dense + (2 * sum(model.widths) if norm else 0)
    if norm == "batch" and depth:
        # running mean and variance are state, not parameters
        assert _num_params(variables["batch_stats"]) == 2 * sum(model.widths)
    else:
        assert "batch_stats" not in variables


def test_seeds_mnist_mlp_has_109386_parameters():
    assert count_params(784, (128, 64), 10) == 109_386
    model = MLP(depth=2, width=(128, 64), num_outputs=10)
    params = _shapes(model, jnp.zeros((1, 28, 28)))["params"]
    assert _num_params(params) == 109_386
    assert params["hidden_0"]["kernel"].shape == (784, 128)


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_layer_names(depth):
    params = _shapes(MLP(depth=depth, width=8, num_outputs=3), _x())["params"]
    assert tuple(params) == layer_names(depth)
    assert layer_names(depth) == tuple(f"hidden_{i}" for i in range(depth)) + ("readout",)


def test_depth_zero_is_logistic_regression():
    model = MLP(depth=0, width=8, num_outputs=3, activation="tanh")
    x = _x()
    params = _init(model, x)["params"]
    assert set(params) == {"readout"}
    w, b = params["readout"]["kernel"], params["readout"]["bias"]
    np.testing.assert_allclose(model.apply({"params": params}, x), x @ w + b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("input_shape", [(6,), (4, 5), (3, 2, 2)])
@pytest.mark.parametrize("depth", [0, 2])
def test_output_shape_flattens_inputs(depth, input_shape):
    model = MLP(depth=depth, width=8, num_outputs=3)
    x = jnp.ones((5, *input_shape))
    out = jax.eval_shape(model.apply, _shapes(model, x), x)
    assert out.shape == (5, 3) and out.dtype == jnp.float32
    assert _shapes(model, x)["params"][layer_names(depth)[0]]["kernel"].shape[0] == int(np.prod(input_shape))


@pytest.mark.parametrize("depth", [1, 3])
def test_identity_mlp_collapses_to_one_affine_map(depth):
    model = MLP(depth=depth, width=(9, 4, 7)[:depth], num_outputs=3, activation="identity",
                initializer="glorot")
    x = _x(batch=8)
    params = _init(model, x)["params"]
    # Non-zero biases so folding them through the later layers is exercised.
    params = jax.tree.map(lambda p: p + 0.1 if p.ndim == 1 else p, params)
    w_total = jnp.eye(6)
    b_total = jnp.zeros(6)
    for name in layer_names(depth):
        w, b = params[name]["kernel"], params[name]["bias"]
        w_total, b_total = w_total @ w, b_total @ w + b
    np.testing.assert_allclose(model.apply({"params": params}, x), x @ w_total + b_total, atol=1e-5)


def _manual_forward(params, x, act, residual_layers):
    h = x
    for i in range(len(params) - 1):
        a = act(h @ params[f"hidden_{i}"]["kernel"] + params[f"hidden_{i}"]["bias"])
        h = h + a if i in residual_layers else a
    return h @ params["readout"]["kernel"] + params["readout"]["bias"]


def test_residual_only_where_widths_match():
    x = _x(dim=6)
    widths = (6, 4, 4, 5)  # 6->6 residual, 6->4 plain, 4->4 residual, 4->5 plain
    residual = MLP(depth=4, width=widths, num_outputs=2, activation="tanh", residual=True)
    plain = MLP(depth=4, width=widths, num_outputs=2, activation="tanh")
    params = _init(residual, x)["params"]
    got_residual = residual.apply({"params": params}, x)
    expected_residual = _manual_forward(params, x, jnp.tanh, residual_layers={0, 2})
    expected_plain = _manual_forward(params, x, jnp.tanh, residual_layers=set())
    np.testing.assert_allclose(got_residual, expected_residual, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(plain.apply({"params": params}, x), expected_plain, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got_residual, plain.apply({"params": params}, x))


def test_dropout_function_keep_fraction_and_scaling():
    rate = 0.3
    x = jnp.ones((200, 500))
    y = np.asarray(models.dropout(x, rate, jax.random.key(0)))
    kept = y != 0
    # 100k Bernoulli(0.7) draws: standard error 0.0014; allow 0.01.
    assert abs(kept.mean() - (1 - rate)) < 0.01
    np.testing.assert_allclose(y[kept], 1 / (1 - rate), rtol=1e-6)
    assert abs(y.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation
    np.testing.assert_array_equal(models.dropout(x, rate, None), x)
    np.testing.assert_array_equal(models.dropout(x, 0.0, jax.random.key(1)), x)


def _identity_dropout_net(width, rate):
    """One hidden layer with identity kernels, so the output is dropout applied to the input."""
    model = MLP(depth=1, width=width, num_outputs=width, activation="identity", dropout_rate=rate)
    eye = {"kernel": jnp.eye(width), "bias": jnp.zeros(width)}
    return model, {"params": {"hidden_0": eye, "readout": eye}}


def test_dropout_off_in_eval_and_on_in_train_with_expected_keep_fraction():
    rate, width = 0.25, 256
    model, variables = _identity_dropout_net(width, rate)
    x = jnp.ones((64, width))
    np.testing.assert_allclose(model.apply(variables, x), x, atol=1e-6)
    out = np.asarray(model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(3)}))
    kept = out > 0.5
    assert abs(kept.mean() - (1 - rate)) < 0.02  # 16k draws: standard error 0.0034
    np.testing.assert_allclose(out[kept], 1 / (1 - rate), rtol=1e-5)
    np.testing.assert_allclose(out[~kept], 0.0, atol=1e-6)
    other = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(4)})
    assert not np.array_equal(out, other)


def test_traced_dropout_rate_override():
    model, variables = _identity_dropout_net(128, 0.5)
    x = jnp.ones((32, 128))
    apply = jax.jit(lambda rate: model.apply(variables, x, train=True, dropout_rate=rate,
                                             rngs={"dropout": jax.random.key(5)}))
    np.testing.assert_allclose(apply(0.0), x, atol=1e-6)
    assert abs(float(jnp.mean(apply(0.75) > 0.5)) - 0.25) < 0.03


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_sow_records_one_entry_per_hidden_layer(depth):
    model = MLP(depth=depth, width=(5, 4, 3)[:depth], num_outputs=2)
    x = _x()
    _, state = jax.eval_shape(lambda v: model.apply(v, x, mutable=["intermediates"]), _shapes(model, x))
    inter = state.get("intermediates", {})
    assert sorted(inter) == [f"activation_{i}" for i in range(depth)]
    assert [inter[f"activation_{i}"][0].shape for i in range(depth)] == [(4, w) for w in model.widths]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_sow_records_each_hidden_activation(activation):
    depth = 3
    model = MLP(depth=depth, width=(5, 4, 3), num_outputs=2, activation=activation)
    x = _x()
    variables = _init(model, x)
    out, state = model.apply(variables, x, mutable=["intermediates"])
    np.testing.assert_allclose(out, model.apply(variables, x), rtol=1e-6)
    inter = state["intermediates"]
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid,
           "identity": lambda z: z}[activation]
    h = x
    for i in range(depth):
        layer = variables["params"][f"hidden_{i}"]
        h = act(h @ layer["kernel"] + layer["bias"])
        (recorded,) = inter[f"activation_{i}"]
        assert recorded.shape == (4, model.widths[i])
        np.testing.assert_allclose(recorded, h, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_zero_init_keeps_hidden_units_identical(activation):
    model = MLP(depth=2, width=6, num_outputs=3, activation=activation, initializer="zeros")
    x = _x(batch=16)
    y = jax.random.randint(jax.random.key(2), (16,), 0, 3)
    params = _init(model, x)["params"]

    def loss(p):
        out = model.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(out, y).mean()

    sgd_step = jax.jit(lambda p: jax.tree.map(lambda q, g: q - 0.5 * g, p, jax.grad(loss)(p)))
    for _ in range(5):  # gradient descent cannot break the symmetry between units
        params = sgd_step(params)
    _, state = jax.jit(lambda p: model.apply({"params": p}, x, mutable=["intermediates"]))(params)
    for i in range(2):
        (a,) = state["intermediates"][f"activation_{i}"]
        np.testing.assert_allclose(a, jnp.broadcast_to(a[:, :1], a.shape), rtol=1e-6)
    kernel = params["hidden_1"]["kernel"]
    np.testing.assert_allclose(kernel, jnp.broadcast_to(kernel[:1, :1], kernel.shape), rtol=1e-6)
    assert float(jnp.abs(params["readout"]["bias"]).max()) > 0  # it did train
    if activation == "sigmoid":  # sigmoid(0) = 1/2 != 0, so the gradient reaches the hidden kernels
        assert float(jnp.abs(kernel).max()) > 0


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_norm_layers_normalize_in_train_mode(norm):
    model = MLP(depth=1, width=32, num_outputs=2, activation="identity", norm=norm)
    x = 3.0 + 5.0 * _x(batch=64, dim=6)
    variables = _init(model, x)
    _, state = model.apply(variables, x, train=True, mutable=["intermediates", "batch_stats"])
    (a,) = state["intermediates"]["activation_0"]
    axis = 0 if norm == "batch" else 1
    np.testing.assert_allclose(a.mean(axis), 0.0, atol=1e-4)
    np.testing.assert_allclose(a.std(axis), 1.0, atol=1e-2)
    if norm == "batch":
        before, after = variables["batch_stats"]["norm_0"]["mean"], state["batch_stats"]["norm_0"]["mean"]
        assert not np.allclose(after, before)


def test_make_model_follows_config():
    cfg = Config(depth=3, width=(16, 8, 4), activation="tanh", norm="layer", dropout_rate=0.1, residual=True)
    model = models.make_model(cfg, num_outputs=10)
    assert (model.depth, model.widths, model.num_outputs) == (3, (16, 8, 4), 10)
    assert (model.activation, model.initializer, model.norm) == ("tanh", "glorot", "layer")
    assert (model.dropout_rate, model.residual) == (0.1, True)
    assert models.make_model(Config(activation="relu"), 2).initializer == "he"
    assert models.make_model(Config(activation="relu", init="orthogonal"), 2).initializer == "orthogonal"


@pytest.mark.parametrize("init,fan_in", [("he", 400), ("glorot", 400)])
def test_model_kernels_use_the_named_initializer(init, fan_in):
    model = MLP(depth=1, width=300, num_outputs=10, initializer=init)
    params = _init(model, jnp.zeros((1, fan_in)))["params"]
    expected = 2.0 / fan_in if init == "he" else 2.0 / (fan_in + 300)
    assert float(jnp.var(params["hidden_0"]["kernel"])) == pytest.approx(expected, rel=0.05)
    np.testing.assert_array_equal(params["hidden_0"]["bias"], 0.0)
    assert math.isfinite(float(jnp.var(params["readout"]["kernel"])))
