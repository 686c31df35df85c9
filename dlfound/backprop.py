"""From-scratch learning for an MLP: forward, loss, backward, update in jax.numpy, without autodiff.

The seeds' recipe (initialise; loop: forward, cost, backward, update) written out by hand so it can
be checked against `jax.grad`. Parameters are a list of `(W, b)` per layer, `W` of shape
fan_in x fan_out. With z_l = a_{l-1} W_l + b_l, a_l = f(z_l), a_0 = x and L layers, backprop
(Rumelhart, Hinton & Williams 1986) is

    delta_L = dLoss/dz_L                           (hand-written per loss, see `output_delta`)
    delta_l = (delta_{l+1} W_{l+1}^T) * f'(z_l)    for l = L-1, ..., 1
    dLoss/dW_l = a_{l-1}^T delta_l,   dLoss/db_l = sum over the batch of delta_l.

Every function is pure and jit-able (names of activations, losses and init schemes are static).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
from jax.scipy.special import erf

from dlfound.errors import ConfigError, unknown_name

Params = list  # [(W_l, b_l) for l = 1..L]

LEAKY_SLOPE = 0.01  # leaky_relu negative slope, as jax.nn.leaky_relu
ELU_ALPHA = 1.0  # elu alpha, as jax.nn.elu


def _sigmoid(z):
    """Logistic function written as 0.5 (1 + tanh(z/2)): exact and overflow-free."""
    return 0.5 * (1.0 + jnp.tanh(0.5 * z))


def _gelu_cdf(z):
    """Standard normal CDF Phi(z) = (1 + erf(z / sqrt 2)) / 2."""
    return 0.5 * (1.0 + erf(z / math.sqrt(2.0)))


def _silu_grad(z):
    """d/dz z s(z) = s(z) (1 + z (1 - s(z)))."""
    s = _sigmoid(z)
    return s * (1.0 + z * (1.0 - s))


# name -> (f, f'), both elementwise. GELU is the EXACT erf form x Phi(x) (Hendrycks & Gimpel 2016,
# eq. 1; jax.nn.gelu(approximate=False)); its derivative Phi(z) + z phi(z) is exact for that form.
# At kinks (relu, leaky_relu at 0) the derivative is the one-sided value jax.nn uses.
ACTIVATIONS: dict[str, tuple[Callable, Callable]] = {
    "sigmoid": (_sigmoid, lambda z: _sigmoid(z) * (1.0 - _sigmoid(z))),
    "tanh": (jnp.tanh, lambda z: 1.0 - jnp.tanh(z) ** 2),
    "relu": (lambda z: jnp.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "leaky_relu": (
        lambda z: jnp.where(z >= 0, z, LEAKY_SLOPE * z),
        lambda z: jnp.where(z >= 0, 1.0, LEAKY_SLOPE).astype(z.dtype),
    ),
    "elu": (
        lambda z: jnp.where(z > 0, z, ELU_ALPHA * jnp.expm1(jnp.minimum(z, 0.0))),
        lambda z: jnp.where(z > 0, 1.0, ELU_ALPHA * jnp.exp(jnp.minimum(z, 0.0))).astype(z.dtype),
    ),
    "gelu": (
        lambda z: z * _gelu_cdf(z),
        lambda z: _gelu_cdf(z) + z * jnp.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi),
    ),
    "silu": (lambda z: z * _sigmoid(z), _silu_grad),
    "softplus": (lambda z: jnp.logaddexp(z, 0.0), _sigmoid),
    "identity": (lambda z: z, jnp.ones_like),
}

# loss -> output nonlinearities it accepts (the first is the default).
LOSS_OUTPUTS: dict[str, tuple[str, ...]] = {
    "cross_entropy": ("softmax",),  # integer labels (B,)
    "mse": ("linear", "sigmoid"),  # targets (B, K), or (B,) when K = 1
    "bce": ("sigmoid",),  # targets in [0, 1], (B, K) or (B,) when K = 1
}
OUTPUTS = ("softmax", "sigmoid", "linear")


def _normal(std):
    return lambda key, fi, fo, dtype: std(fi, fo) * jax.random.normal(key, (fi, fo), dtype)


def _uniform(limit):
    return lambda key, fi, fo, dtype: jax.random.uniform(
        key, (fi, fo), dtype, -limit(fi, fo), limit(fi, fo)
    )


# name -> W sampler; biases start at 0. Variances as in CLAIMS.md "Initialisations".
INITIALIZERS: dict[str, Callable] = {
    "he": _normal(lambda fi, fo: math.sqrt(2.0 / fi)),  # He et al. 2015: N(0, 2/fan_in)
    "lecun": _normal(lambda fi, fo: math.sqrt(1.0 / fi)),  # LeCun 1998: N(0, 1/fan_in)
    "glorot": _uniform(lambda fi, fo: math.sqrt(6.0 / (fi + fo))),  # Glorot & Bengio 2010, eq. 16
    "std_uniform": _uniform(lambda fi, fo: 1.0 / math.sqrt(fi)),  # Glorot & Bengio 2010, eq. 1
    "uniform": _uniform(lambda fi, fo: 0.5),  # U(-0.5, 0.5), Rumelhart et al. 1986 XOR setup
    "small_normal": _normal(lambda fi, fo: 0.01),  # N(0, 0.01^2), the seeds' "* 0.01"
    "zeros": lambda key, fi, fo, dtype: jnp.zeros((fi, fo), dtype),
}


def get_activation(name: str) -> tuple[Callable, Callable]:
    """Returns `(f, f_prime)` for an activation name; unknown names raise ConfigError."""
    if name not in ACTIVATIONS:
        raise unknown_name("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]


def resolve_output(loss: str, output: Optional[str] = None) -> str:
    """Checks a (loss, output) pair and returns the output (the loss's default when None)."""
    if loss not in LOSS_OUTPUTS:
        raise unknown_name("loss", loss, LOSS_OUTPUTS)
    if output is None:
        return LOSS_OUTPUTS[loss][0]
    if output not in OUTPUTS:
        raise unknown_name("output", output, OUTPUTS)
    if output not in LOSS_OUTPUTS[loss]:
        raise ConfigError(
            f"output {output!r} does not go with loss {loss!r}; valid choices: "
            + ", ".join(LOSS_OUTPUTS[loss])
        )
    return output


def init_params(key, sizes, scheme: str = "he", scale: float = 1.0, dtype=jnp.float32) -> Params:
    """Samples `[(W_l, b_l)]` for layer sizes `[d_0, ..., d_L]`: W_l ~ scheme * scale, b_l = 0.

    Args: key: a `jax.random.key`; sizes: input, hidden..., output widths (len >= 2).
    Returns: list of (W of shape d_{l-1} x d_l, b of shape d_l).
    """
    if scheme not in INITIALIZERS:
        raise unknown_name("init scheme", scheme, INITIALIZERS)
    sizes = tuple(sizes)
    if len(sizes) < 2 or any(int(s) != s or s < 1 for s in sizes):
        raise ConfigError(f"sizes must be >= 2 positive ints (input, ..., output); got {sizes!r}")
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        (scale * INITIALIZERS[scheme](k, fi, fo, dtype), jnp.zeros((fo,), dtype))
        for k, fi, fo in zip(keys, sizes[:-1], sizes[1:])
    ]


def _log_softmax(z_BxK):
    """z - logsumexp(z), stabilised by the row max."""
    m = jnp.max(z_BxK, axis=-1, keepdims=True)
    return z_BxK - m - jnp.log(jnp.sum(jnp.exp(z_BxK - m), axis=-1, keepdims=True))


def apply_output(z_BxK, output: str):
    """The output nonlinearity: softmax, sigmoid or linear (identity)."""
    if output == "softmax":
        return jnp.exp(_log_softmax(z_BxK))
    if output == "sigmoid":
        return _sigmoid(z_BxK)
    if output == "linear":
        return z_BxK
    raise unknown_name("output", output, OUTPUTS)


def forward(params: Params, x_BxD, activation: str, output: str = "softmax"):
    """Runs the MLP; hidden layers use `activation`, the last layer `output`.

    Returns: (out_BxK, cache) with cache = {"a": [a_0 = x, a_1, ..., a_{L-1}], "z": [z_1, ..., z_L]}.
    """
    f, _ = get_activation(activation)
    a, acts, pre = x_BxD, [x_BxD], []
    for i, (w, b) in enumerate(params):
        z = a @ w + b
        pre.append(z)
        if i < len(params) - 1:
            a = f(z)
            acts.append(a)
    return apply_output(pre[-1], output), {"a": acts, "z": pre}


def _targets(y, z_BxK):
    """Regression/binary targets shaped like the output ((B,) allowed when K = 1)."""
    return jnp.reshape(y, z_BxK.shape).astype(z_BxK.dtype)


def loss_from_logits(z_BxK, y, loss: str, output: Optional[str] = None):
    """Mean-over-batch loss from the output pre-activation z_L.

    cross_entropy: mean_b [logsumexp(z_b) - z_b[y_b]] with integer labels y (B,);
    mse: mean_b 1/2 sum_k (yhat_bk - y_bk)^2 with yhat = z (linear) or sigmoid(z);
    bce: mean_b sum_k [softplus(z_bk) - y_bk z_bk] = -[y log p + (1 - y) log(1 - p)], p = sigmoid(z).
    """
    output = resolve_output(loss, output)
    if loss == "cross_entropy":
        logp = _log_softmax(z_BxK)
        return -jnp.mean(jnp.take_along_axis(logp, y.astype(jnp.int32)[:, None], axis=-1))
    t = _targets(y, z_BxK)
    if loss == "mse":
        return 0.5 * jnp.mean(jnp.sum((apply_output(z_BxK, output) - t) ** 2, axis=-1))
    return jnp.mean(jnp.sum(jnp.logaddexp(z_BxK, 0.0) - t * z_BxK, axis=-1))


def output_delta(z_BxK, y, loss: str, output: Optional[str] = None):
    """Hand-written dLoss/dz_L (B x K) for `loss_from_logits`, including the 1/B of the batch mean.

    cross_entropy: (softmax(z) - onehot(y)) / B; bce: (sigmoid(z) - y) / B;
    mse linear: (z - y) / B; mse sigmoid: (s - y) s (1 - s) / B with s = sigmoid(z) (chain rule).
    """
    output = resolve_output(loss, output)
    batch = z_BxK.shape[0]
    if loss == "cross_entropy":
        onehot = (y.astype(jnp.int32)[:, None] == jnp.arange(z_BxK.shape[-1])).astype(z_BxK.dtype)
        return (jnp.exp(_log_softmax(z_BxK)) - onehot) / batch
    t = _targets(y, z_BxK)
    if loss == "bce":
        return (_sigmoid(z_BxK) - t) / batch
    if output == "linear":
        return (z_BxK - t) / batch
    s = _sigmoid(z_BxK)
    return (s - t) * s * (1.0 - s) / batch


def backward(params: Params, cache, y, activation: str, loss: str, output: Optional[str] = None) -> Params:
    """The delta recursion: gradients of `loss_from_logits` w.r.t. every (W, b), same structure as params.

    The output layer's delta is recomputed from cache["z"][-1], so it cannot disagree with `output`.
    """
    _, f_prime = get_activation(activation)
    delta = output_delta(cache["z"][-1], y, loss, output)
    grads = [None] * len(params)
    for l in reversed(range(len(params))):
        grads[l] = (cache["a"][l].T @ delta, jnp.sum(delta, axis=0))
        if l > 0:
            delta = (delta @ params[l][0].T) * f_prime(cache["z"][l - 1])
    return grads


def loss_value(params: Params, x_BxD, y, activation: str, loss: str, output: Optional[str] = None):
    """Forward pass then loss: the scalar the gradients are of (differentiable by jax.grad for checks)."""
    output = resolve_output(loss, output)
    _, cache = forward(params, x_BxD, activation, output)
    return loss_from_logits(cache["z"][-1], y, loss, output)


def loss_and_grads(params: Params, x_BxD, y, activation: str, loss: str, output: Optional[str] = None):
    """(loss, grads) by forward + hand-written backward; the from-scratch `jax.value_and_grad`."""
    output = resolve_output(loss, output)
    _, cache = forward(params, x_BxD, activation, output)
    grads = backward(params, cache, y, activation, loss, output)
    return loss_from_logits(cache["z"][-1], y, loss, output), grads


def sgd_update(params: Params, grads: Params, lr) -> Params:
    """Plain gradient descent: theta <- theta - lr * dLoss/dtheta, layer by layer."""
    return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(params, grads)]


def train_step(params: Params, x_BxD, y, lr, activation: str, loss: str, output: Optional[str] = None):
    """One step of the recipe: forward, loss, backward, update. Returns (new params, loss before update)."""
    value, grads = loss_and_grads(params, x_BxD, y, activation, loss, output)
    return sgd_update(params, grads, lr), value


def train(
    key,
    x_NxD,
    y,
    sizes,
    activation: str,
    loss: str,
    lr,
    num_steps: int,
    batch_size: Optional[int] = None,
    *,
    scheme: str = "he",
    scale: float = 1.0,
    output: Optional[str] = None,
    grad_fn: Optional[Callable] = None,
):
    """Initialises, then runs `num_steps` SGD steps in `lax.scan`s (one over steps, or over epochs of steps).

    Args: key: `jax.random.key` (split into init and data-order keys); batch_size: None = full batch,
      else shuffled minibatches: epoch e = step // (N // B) visits permutation fold_in(data key, e),
      drawn once per epoch, in batches of B (the last partial batch dropped);
      grad_fn: `(params, x, y) -> (loss, grads)`, default the from-scratch `loss_and_grads`
      (pass a `jax.value_and_grad` of `loss_value` to compare against autodiff).
    Returns: (final params, losses of shape (num_steps,), each before its step's update).
    """
    output = resolve_output(loss, output)
    get_activation(activation)
    x_NxD = jnp.asarray(x_NxD)
    dtype = x_NxD.dtype if jnp.issubdtype(x_NxD.dtype, jnp.floating) else jnp.float32
    x_NxD, y = x_NxD.astype(dtype), jnp.asarray(y)
    k_init, k_data = jax.random.split(key)
    params = init_params(k_init, sizes, scheme, scale, dtype)
    if grad_fn is None:
        grad_fn = lambda p, xb, yb: loss_and_grads(p, xb, yb, activation, loss, output)  # noqa: E731
    n = x_NxD.shape[0]

    def update(params, xb, yb):
        value, grads = grad_fn(params, xb, yb)
        return sgd_update(params, grads, lr), value

    if batch_size is None or batch_size >= n:
        return jax.lax.scan(lambda p, _: update(p, x_NxD, y), params, None, length=num_steps)

    def epoch(params, e, num_batches: int):
        order = jax.random.permutation(jax.random.fold_in(k_data, e), n)

        def step(params, i):
            idx = jax.lax.dynamic_slice_in_dim(order, i * batch_size, batch_size)
            return update(params, x_NxD[idx], y[idx])

        return jax.lax.scan(step, params, jnp.arange(num_batches))

    steps_per_epoch = n // batch_size
    full_epochs, rest = divmod(num_steps, steps_per_epoch)
    params, losses = jax.lax.scan(lambda p, e: epoch(p, e, steps_per_epoch), params, jnp.arange(full_epochs))
    losses = losses.reshape(-1)
    if rest:  # a last, partial epoch
        params, last = epoch(params, full_epochs, rest)
        losses = jnp.concatenate([losses, last])
    return params, losses
