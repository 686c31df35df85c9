"""Threshold logic (McCulloch & Pitts 1943) and the perceptron rule (Rosenblatt 1958; Novikoff 1962).

McCulloch-Pitts units have hand-set weights and compute y = 1[x . w >= theta]; two layers compute
XOR and n-bit parity. Rosenblatt's perceptron learns w, b by the mistake-driven rule
w <- w + y x (labels y in {-1, +1}), which is not gradient descent on any smooth loss.
Throughout, the bias is absorbed as an extra constant input: x~ = [x, 1], w~ = [w, b].
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from dlfound.errors import unknown_name

PERCEPTRON_OUTPUTS = ("sign", "step")


def heaviside(s):
    """Step function 1[s >= 0] as float32 (McCulloch & Pitts: fire when the sum reaches threshold)."""
    return (s >= 0).astype(jnp.float32)


def truth_table(n: int):
    """All 2^n binary inputs in counting order (row r is r in binary, most significant bit first).

    Returns: x of shape (2^n, n), float32 in {0, 1}.
    """
    r = jnp.arange(2**n)[:, None]
    return ((r >> jnp.arange(n - 1, -1, -1)) & 1).astype(jnp.float32)


class ThresholdUnit(nn.Module):
    """McCulloch-Pitts unit(s): y = 1[x . w >= theta].

    `weights` is (D,) for one unit (output (B,)) or (D, U) for a layer of U units (output (B, U));
    `threshold` is a scalar or (U,). Both become params initialised to the given values, so they
    can be read and replaced in the variables like any other params.
    """

    weights: Any
    threshold: Any

    @nn.compact
    def __call__(self, x_BxD):
        w = self.param("weights", lambda _: jnp.asarray(self.weights, jnp.float32))
        theta = self.param("threshold", lambda _: jnp.asarray(self.threshold, jnp.float32))
        return heaviside(x_BxD @ w - theta)


class ThresholdNetwork(nn.Module):
    """Layers of McCulloch-Pitts units: `layers` is a sequence of (weights, threshold) per layer."""

    layers: Any

    @nn.compact
    def __call__(self, x_BxD):
        h = x_BxD
        for i, (w, theta) in enumerate(self.layers):
            h = ThresholdUnit(w, theta, name=f"layer_{i}")(h)
        return h


def _unit_params(weights, threshold):
    """The params `ThresholdUnit(weights, threshold).init` creates, built without running the unit."""
    return {"weights": jnp.asarray(weights, jnp.float32), "threshold": jnp.asarray(threshold, jnp.float32)}


def _configured(module: nn.Module):
    """(module, variables) holding exactly the hand-set weights (what `module.init` would return)."""
    if isinstance(module, ThresholdUnit):
        return module, {"params": _unit_params(module.weights, module.threshold)}
    return module, {"params": {f"layer_{i}": _unit_params(*layer) for i, layer in enumerate(module.layers)}}


def and_gate(n: int = 2):
    """n-input AND: 1[x_1 + ... + x_n >= n]. Returns (ThresholdUnit, variables)."""
    return _configured(ThresholdUnit((1.0,) * n, float(n)))


def or_gate(n: int = 2):
    """n-input OR: 1[x_1 + ... + x_n >= 1]. Returns (ThresholdUnit, variables)."""
    return _configured(ThresholdUnit((1.0,) * n, 1.0))


def not_gate():
    """NOT: 1[-x >= 0]. M&P used absolute inhibition; a weight of -1 is the modern equivalent."""
    return _configured(ThresholdUnit((-1.0,), 0.0))


def xor_network():
    """Two-layer XOR: h = (OR, AND) = (1[x1 + x2 >= 1], 1[x1 + x2 >= 2]), y = 1[h1 - h2 >= 1].

    Returns: (ThresholdNetwork, variables).
    """
    layers = ((((1.0, 1.0), (1.0, 1.0)), (1.0, 2.0)), ((1.0, -1.0), 1.0))
    return _configured(ThresholdNetwork(layers))


def parity_network(n: int):
    """n-bit parity with n hidden units: h_j = 1[sum x >= j], y = 1[sum_j (-1)^(j+1) h_j >= 1].

    With k = sum x, h_1..h_k fire, so the alternating sum is 1 when k is odd and 0 when even.
    Returns: (ThresholdNetwork, variables).
    """
    hidden = (tuple((1.0,) * n for _ in range(n)), tuple(float(j) for j in range(1, n + 1)))
    readout = (tuple(float((-1) ** j) for j in range(n)), 1.0)
    return _configured(ThresholdNetwork((hidden, readout)))


class Perceptron(nn.Module):
    """Rosenblatt (1958) perceptron: s = x . w + b; output sign(s) in {-1, 0, +1} or step 1[s > 0].

    sign(s) = 0 only exactly on the boundary, which training counts as a mistake, so
    `mean(apply(x) == y)` is the accuracy that `train_perceptron` reports. Params start at zero
    (Novikoff's bound assumes w_0 = 0); names `kernel` (D,) and `bias` () as in flax.
    """

    output: str = "sign"

    @nn.compact
    def __call__(self, x_BxD):
        w = self.param("kernel", nn.initializers.zeros, (x_BxD.shape[-1],), jnp.float32)
        b = self.param("bias", nn.initializers.zeros, (), jnp.float32)
        s = x_BxD @ w + b
        if self.output == "sign":
            return jnp.sign(s)
        if self.output == "step":
            return (s > 0).astype(jnp.float32)
        raise unknown_name("perceptron output", self.output, PERCEPTRON_OUTPUTS)


def augment(x_NxD):
    """Absorbs the bias: x~ = [x, 1], shape (N, D+1)."""
    x_NxD = jnp.asarray(x_NxD, jnp.result_type(float))
    return jnp.concatenate([x_NxD, jnp.ones((x_NxD.shape[0], 1), x_NxD.dtype)], axis=1)


def signed_labels(y):
    """Labels to {-1, +1}: y > 0 -> +1, else -1 (so {0, 1} and {-1, +1} labels both work)."""
    return jnp.where(jnp.asarray(y) > 0, 1.0, -1.0)


def perceptron_rule(w_E, x_E, y):
    """One step of the rule (E = D+1, bias absorbed): on a mistake y (w . x) <= 0, w <- w + y x.

    Returns: (new w, whether it was a mistake).
    """
    mistake = y * jnp.dot(x_E, w_E) <= 0
    return w_E + jnp.where(mistake, y, 0.0) * x_E, mistake


class PerceptronResult(NamedTuple):
    """What `train_perceptron` returns (add a leading axis when vmapped over seeds)."""

    params: dict  # {"kernel": (D,), "bias": ()}, for Perceptron().apply({"params": params}, x)
    num_updates: jax.Array  # total mistakes = updates over all epochs, int32
    epoch_mistakes: jax.Array  # (num_epochs,) mistakes in each epoch, int32
    epoch_accuracy: jax.Array  # (num_epochs,) fraction with y (x . w + b) > 0 after each epoch
    converged: jax.Array  # bool: some epoch made no mistake (then every later epoch makes none)
    epochs_to_converge: jax.Array  # 1-based index of the first mistake-free epoch; -1 if none


def train_perceptron(key, x_NxD, y_N, num_epochs: int = 100) -> PerceptronResult:
    """Rosenblatt's rule from w = 0 over `num_epochs` epochs, each a fresh seeded permutation.

    One `lax.scan` over epochs, inside it one over examples. Vmappable over keys:
    `jax.vmap(train_perceptron, in_axes=(0, None, None))(keys, x, y)` (fix `num_epochs` with
    functools.partial). Labels {0, 1} or {-1, +1} (see `signed_labels`).
    """
    x_NxE, y_N = augment(x_NxD), signed_labels(y_N).astype(jnp.result_type(float))
    n = x_NxE.shape[0]

    def epoch(w_E, k):
        def step(w_E, i):
            return perceptron_rule(w_E, x_NxE[i], y_N[i])

        w_E, mistakes = jax.lax.scan(step, w_E, jax.random.permutation(k, n))
        accuracy = jnp.mean(y_N * (x_NxE @ w_E) > 0)
        return w_E, (jnp.sum(mistakes, dtype=jnp.int32), accuracy)

    w_E, (epoch_mistakes, epoch_accuracy) = jax.lax.scan(
        epoch, jnp.zeros(x_NxE.shape[1], x_NxE.dtype), jax.random.split(key, num_epochs)
    )
    clean = epoch_mistakes == 0
    return PerceptronResult(
        params={"kernel": w_E[:-1], "bias": w_E[-1]},
        num_updates=jnp.sum(epoch_mistakes, dtype=jnp.int32),
        epoch_mistakes=epoch_mistakes,
        epoch_accuracy=epoch_accuracy,
        converged=jnp.any(clean),
        epochs_to_converge=jnp.where(jnp.any(clean), jnp.argmax(clean) + 1, -1).astype(jnp.int32),
    )


def radius(x_NxD):
    """R = max_i ||x~_i|| with the bias input absorbed (x~ = [x, 1])."""
    return jnp.max(jnp.linalg.norm(augment(x_NxD), axis=1))


def margin(x_NxD, y_N, w_E):
    """Geometric margin of the unit vector w/||w|| in the augmented space: min_i y_i (w . x~_i) / ||w||.

    `w_E` is (D+1,) = [w, b]; a (D,) vector is taken with b = 0. Negative when w does not separate.
    """
    x_NxE = augment(x_NxD)
    w_E = jnp.asarray(w_E, x_NxE.dtype)
    if w_E.shape[0] == x_NxE.shape[1] - 1:
        w_E = jnp.append(w_E, 0.0)
    return jnp.min(signed_labels(y_N) * (x_NxE @ w_E)) / jnp.linalg.norm(w_E)


def max_margin_direction(x_NxD, y_N, num_iters: int = 10_000):
    """Approximate max-margin unit separator u* in the augmented space (homogeneous hard-margin SVM).

    By duality, max_{||u||=1} min_i u . z_i with z_i = y_i x~_i equals the distance from the origin
    to the convex hull of the z_i (positive iff separable), and u* = p*/||p*|| for the hull's
    minimum-norm point p*. p* is found by the Mitchell-Demyanov-Malozemov (1974) algorithm, i.e.
    pairwise Frank-Wolfe on the simplex (linear convergence: Lacoste-Julien & Jaggi 2015), started
    at the shortest z_i: move weight from the active z_i with the largest z_i . p to the z_i with
    the smallest, with exact line search. Every iterate brackets the optimum,
    margin(p) <= gamma* <= ||p||; the iterate with the largest margin is returned, and any
    direction's own margin (see `margin`) gives a valid bound. Returns: (D+1,) unit vector [w, b].
    """
    z_NxE = signed_labels(y_N)[:, None] * augment(x_NxD)

    def body(_, state):
        lam, p, best_p, best = state
        s = z_NxE @ p
        gamma = jnp.min(s) / jnp.linalg.norm(p)
        best_p, best = jnp.where(gamma > best, p, best_p), jnp.maximum(gamma, best)
        i_to = jnp.argmin(s)
        i_from = jnp.argmax(jnp.where(lam > 0, s, -jnp.inf))
        d = z_NxE[i_to] - z_NxE[i_from]
        dd = jnp.dot(d, d)
        step = jnp.where(dd > 0, jnp.clip(-jnp.dot(p, d) / jnp.where(dd > 0, dd, 1.0), 0.0, lam[i_from]), 0.0)
        return lam.at[i_to].add(step).at[i_from].add(-step), p + step * d, best_p, best

    start = jnp.argmin(jnp.linalg.norm(z_NxE, axis=1))
    lam0 = jnp.zeros(z_NxE.shape[0], z_NxE.dtype).at[start].set(1.0)
    state = (lam0, z_NxE[start], z_NxE[start], jnp.array(-jnp.inf, z_NxE.dtype))
    _, p, best_p, best = jax.lax.fori_loop(0, num_iters, body, state)
    best_p = jnp.where(jnp.min(z_NxE @ p) / jnp.linalg.norm(p) > best, p, best_p)
    return best_p / jnp.linalg.norm(best_p)


def novikoff_bound(x_NxD, y_N, w_star=None, num_iters: int = 10_000):
    """Novikoff (1962): the perceptron from w = 0 makes at most (R/gamma)^2 mistakes.

    R = max ||x~_i|| and gamma = margin of a unit separator u in the augmented space x~ = [x, 1]
    (the space where the bias is learned as a weight, so the theorem applies to `train_perceptron`
    exactly). The theorem holds for EVERY separating unit u, so (R/gamma(u))^2 is valid for any u;
    the max-margin u* gives the tightest. `w_star` (D+1,) = [w, b] is used when given; otherwise
    `max_margin_direction`, whose own margin is computed, so the bound is valid even if the
    optimisation stopped short (then it is merely looser). Returns: scalar, inf if gamma <= 0.
    """
    u = max_margin_direction(x_NxD, y_N, num_iters) if w_star is None else w_star
    gamma = margin(x_NxD, y_N, u)
    return jnp.where(gamma > 0, (radius(x_NxD) / jnp.where(gamma > 0, gamma, 1.0)) ** 2, jnp.inf)
