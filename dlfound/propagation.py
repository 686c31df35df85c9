"""Signal propagation at initialization: predicted and measured per-layer second moments.

Used to check He et al. (2015, eq. 10) and Glorot & Bengio (2010): with zero biases and
zero-mean symmetric weights a ReLU layer multiplies the second moment of its input by
fan_in * Var(W) / 2, so He init keeps it and LeCun/Glorot halve it at every layer.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from dlfound import initializers, losses
from dlfound.models import MLP, layer_names


def robust_rms(a: jax.Array, axes=None) -> jax.Array:
    """sqrt(mean(a^2)) computed as max|a| * RMS(a / max|a|): no underflow of a^2 for tiny signals."""
    axes = tuple(range(a.ndim)) if axes is None else axes
    peak = jnp.max(jnp.abs(a), axis=axes, keepdims=True)
    scaled = a / jnp.where(peak > 0, peak, 1.0)
    return jnp.squeeze(peak, axes) * jnp.sqrt(jnp.mean(jnp.square(scaled), axis=axes))


def predicted_mean_square(scheme: str, sizes, input_mean_square: float) -> np.ndarray:
    """E[h_l^2] of each hidden layer of a ReLU MLP with zero biases at init (He et al. eq. 10).

    For zero-mean symmetric weights, E[z_l^2] = fan_in Var(W_l) E[h_{l-1}^2] and
    E[relu(z)^2] = E[z^2] / 2, so each layer multiplies the second moment by fan_in Var(W) / 2.
    `sizes` = (inputs, hidden widths...); returns one value per hidden layer.
    """
    out, ms = [], float(input_mean_square)
    for fan_in, fan_out in itertools.pairwise(sizes):
        ms *= fan_in * initializers.expected_variance(scheme, fan_in, fan_out) / 2.0
        out.append(ms)
    return np.array(out)


def typical_slope(scheme: str, width: int) -> float:
    """Per-layer change of the typical (median) log2 second moment in square layers of `width`.

    The mean gains log2(n Var(W) / 2) bits per layer; the per-layer factor is a mean of n
    squared half-Gaussians with relative variance 5/n, so its log is lower on average by about
    5 / (2n) nats (Hanin 2018): the typical value drifts below the mean with depth.
    """
    gain = width * initializers.expected_variance(scheme, width, width) / 2.0
    return math.log2(gain) - 5.0 / (2.0 * width * math.log(2.0))


def fitted_slope(log2_ms_SxL: np.ndarray, valid_L: np.ndarray) -> float:
    """Least-squares slope (bits per layer) of the seed-mean log2 second moment over the valid layers."""
    layers = np.arange(1, log2_ms_SxL.shape[1] + 1)[valid_L]
    if layers.size < 2:
        return math.nan
    return float(np.polyfit(layers, log2_ms_SxL[:, valid_L].mean(axis=0), 1)[0])


def draw_params(scheme: str, sizes, keys: jax.Array) -> dict:
    """MLP parameters as the library initializes them (kernel by `scheme`, zero biases), one set per key."""
    init = initializers.get(scheme)
    params = {}
    for i, (name, fan_in, fan_out) in enumerate(zip(layer_names(len(sizes) - 2), sizes[:-1], sizes[1:])):
        kernel = jax.vmap(lambda k, i=i, a=fan_in, b=fan_out: init(jax.random.fold_in(k, i), (a, b), jnp.float32))(keys)
        params[name] = {"kernel": kernel, "bias": jnp.zeros((keys.shape[0], fan_out), jnp.float32)}
    return params


def unit_spread(kernel_IxU: np.ndarray, bias_U: np.ndarray) -> float:
    """Largest distance between a unit's incoming weights (and bias) and unit 0's, relative to unit 0's norm."""
    units = np.concatenate([kernel_IxU, bias_U[None, :]], axis=0).T.astype(np.float64)
    return float(np.max(np.linalg.norm(units - units[:1], axis=1)) / max(np.linalg.norm(units[0]), 1e-30))


def layer_statistics(schemes, data, width: int, depth: int, grad_depth: int, probe: int, seeds) -> dict:
    """Per initialization scheme, for ReLU MLPs of `width` at init on `probe` training examples:
    each layer's activation RMS at `depth` and kernel-gradient RMS (cross-entropy) at `grad_depth`,
    one row per seed, with the mean-field prediction and the typical-value slope."""
    n = probe
    x = jnp.asarray(data.x_train[:n]).reshape((min(n, data.num_train), -1))
    y = jnp.asarray(data.y_train[:n])
    sizes = (x.shape[1],) + (width,) * depth + (data.num_classes,)
    keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
    model = MLP(depth, width, data.num_classes, "relu", "he")  # apply does not depend on the initializer
    grad_model = MLP(grad_depth, width, data.num_classes, "relu", "he")
    loss = losses.get("cross_entropy")

    def forward(params):
        _, inter = model.apply({"params": params}, x, mutable=["intermediates"])
        return jnp.stack([robust_rms(inter["intermediates"][f"activation_{i}"][0]) for i in range(depth)])

    def gradients(params):
        sub = {name: params[name] for name in layer_names(grad_depth)[:-1]} | {"readout": params["readout"]}
        g = jax.grad(lambda p: loss(grad_model.apply({"params": p}, x), y, data.num_classes))(sub)
        return jnp.stack([robust_rms(g[name]["kernel"]) for name in layer_names(grad_depth)])

    forward, gradients = jax.jit(jax.vmap(forward)), jax.jit(jax.vmap(gradients))
    input_ms = float(jnp.mean(jnp.square(x)))
    out = {"input_rms": math.sqrt(input_ms), "rms": {}, "grad_rms": {}, "predicted_ms": {},
           "typical_slope": {}}
    for scheme in schemes:
        params = draw_params(scheme, sizes, keys)
        out["rms"][scheme] = np.asarray(forward(params), np.float64)
        out["grad_rms"][scheme] = np.asarray(gradients(params), np.float64)
        out["predicted_ms"][scheme] = predicted_mean_square(scheme, sizes[:-1], input_ms)
        out["typical_slope"][scheme] = typical_slope(scheme, width)
    return out
