"""Linear regions of ReLU MLPs along a path, affine pieces of sampled 1-D functions, and the sawtooth net.

A plain ReLU MLP (Flax params `hidden_0`, ..., `readout`) is affine on each activation region, the
set of inputs sharing one on/off pattern of every hidden unit. Along a path sampled densely in
order, the number of regions met is 1 + the number of consecutive samples whose patterns differ.
The function's affine pieces can only be fewer (a unit may switch with no effect on the output).

`sawtooth_params(k)` is Telgarsky's construction: k layers of 2 ReLUs, each computing the tent map
t(x) = 2 relu(x) - 4 relu(x - 1/2), so the net computes t^k, with 2^k affine pieces on [0, 1].

References:
  Telgarsky (2016), "Benefits of depth in neural networks", COLT.
  Montufar, Pascanu, Cho & Bengio (2014), "On the number of linear regions of deep neural networks", NeurIPS.
  Hanin & Rolnick (2019), "Complexity of linear regions in deep networks", ICML.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def hidden_depth(params) -> int:
    """Number of hidden layers of MLP params (keys `hidden_0`, `hidden_1`, ...)."""
    return sum(1 for name in params if name.startswith("hidden_"))


def relu_patterns(params, x_NxD: jax.Array) -> jax.Array:
    """On/off pattern (pre-activation > 0) of every hidden unit of a plain ReLU MLP, shape (N, units)."""
    h = jnp.reshape(x_NxD, (x_NxD.shape[0], -1))
    patterns = []
    for i in range(hidden_depth(params)):
        z = h @ params[f"hidden_{i}"]["kernel"] + params[f"hidden_{i}"]["bias"]
        patterns.append(z > 0)
        h = jax.nn.relu(z)
    return jnp.concatenate(patterns, axis=-1)


def count_pattern_runs(patterns_NxU: jax.Array) -> jax.Array:
    """1 + the number of consecutive rows whose patterns differ: the regions met along an ordered path.

    Two switches between the same pair of samples count once, so sample finely enough to
    separate them (the count is a lower bound that converges as the sampling is refined).
    """
    changed = jnp.any(patterns_NxU[1:] != patterns_NxU[:-1], axis=-1)
    return 1 + jnp.sum(changed)


def forward_float64(params, x_NxD) -> np.ndarray:
    """Outputs (N, outputs) of a plain ReLU MLP in float64 numpy: rounding far below any knot's slope change."""
    h = np.reshape(np.asarray(x_NxD, np.float64), (np.shape(x_NxD)[0], -1))
    for i in range(hidden_depth(params)):
        layer = params[f"hidden_{i}"]
        h = np.maximum(h @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64), 0.0)
    return h @ np.asarray(params["readout"]["kernel"], np.float64) + np.asarray(params["readout"]["bias"], np.float64)


def line_points(start, end, num_points: int) -> jax.Array:
    """`num_points` points evenly spaced on the segment from `start` to `end` (inclusive), (N, D)."""
    t = jnp.linspace(0.0, 1.0, num_points)[:, None]
    start, end = jnp.asarray(start, jnp.float32), jnp.asarray(end, jnp.float32)
    return start[None, :] * (1.0 - t) + end[None, :] * t


def regions_along_line(params, start, end, num_points: int = 2**16) -> jax.Array:
    """Activation regions of a ReLU MLP met along the segment `start` -> `end` (jittable, vmappable)."""
    return count_pattern_runs(relu_patterns(params, line_points(start, end, num_points)))


def slope_tolerance(x_N, y_N) -> float:
    """Smallest slope change counted as a knot: y's rounding (8 ulps of max|y|) over the grid step,
    plus 1e-6 of the largest slope."""
    x, y = np.asarray(x_N, np.float64), np.asarray(y_N)
    eps = np.finfo(y.dtype).eps if np.issubdtype(y.dtype, np.floating) else np.finfo(np.float64).eps
    y = y.astype(np.float64)
    slopes = np.diff(y) / np.diff(x)
    rounding = 8 * eps * max(float(np.max(np.abs(y))), 1e-30) / float(np.min(np.diff(x)))
    return rounding + 1e-6 * float(np.max(np.abs(slopes), initial=0.0))


def count_pieces(x_N, y_N, tol: float | None = None) -> int:
    """Affine pieces of a continuous piecewise-linear function sampled at increasing x.

    A knot shows as a change of slope between consecutive sample intervals; a knot strictly inside
    an interval changes the slope twice in a row, so each run of consecutive changes is one knot.
    Knots closer than two grid steps merge (a lower bound that converges under refinement).
    Sample networks with `forward_float64`: float32 rounding of a sum of many units can exceed
    a small knot's slope change on a fine grid.

    Args:
      x_N: increasing sample points.
      y_N: function values at x_N.
      tol: smallest slope change that counts (default: `slope_tolerance`, above float rounding).
    """
    x, y = np.asarray(x_N, np.float64), np.asarray(y_N)
    if x.ndim != 1 or x.shape != y.shape or x.size < 2:
        raise ValueError(f"count_pieces needs 1-D x and y of equal length >= 2, got {x.shape} and {y.shape}")
    if np.any(np.diff(x) <= 0):
        raise ValueError("count_pieces needs strictly increasing x")
    tol = slope_tolerance(x, y) if tol is None else tol
    slopes = np.diff(y.astype(np.float64)) / np.diff(x)
    changed = np.abs(np.diff(slopes)) > tol
    starts = changed & ~np.concatenate([[False], changed[:-1]])
    return 1 + int(np.sum(starts))


def sawtooth_params(k: int, dtype=jnp.float32) -> dict:
    """Params of MLP(depth=k, width=2, num_outputs=1, activation="relu") computing the tent map t^k.

    Layer i feeds [relu(t), relu(t - 1/2)] forward, where t = x for the first layer and
    t = 2 relu(.) - 4 relu(. - 1/2) of the previous layer otherwise (Telgarsky 2015, 2016).
    On [0, 1] the output is t^k: 2^k affine pieces, 2^(k-1) teeth, 6k + 1 parameters.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"invalid k={k!r}; allowed: an integer >= 1")
    bias = jnp.asarray([0.0, -0.5], dtype)
    tent = jnp.asarray([[2.0, 2.0], [-4.0, -4.0]], dtype)
    params = {"hidden_0": {"kernel": jnp.asarray([[1.0, 1.0]], dtype), "bias": bias}}
    for i in range(1, k):
        params[f"hidden_{i}"] = {"kernel": tent, "bias": bias}
    params["readout"] = {"kernel": jnp.asarray([[2.0], [-4.0]], dtype), "bias": jnp.zeros((1,), dtype)}
    return params
